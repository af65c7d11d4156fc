package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const ctlUsage = `usage: vipgate ctl [--admin ADDR] [--token TOKEN] [--json] ACTION ARGS

actions (node-local unless noted):
  server ready|drain|maint BACKEND/SERVER   operator state (drain: no new sessions; maint: none, no checks)
  server weight BACKEND/SERVER N            set the weight (0-256)
  server check enable|disable BACKEND/SERVER
  frontend enable|disable FRONTEND          stop or resume accepting (established connections stay)
  log level debug|info|warn|error           change the node's log level at runtime
`

// cmdCtl runs runtime actions through the admin API.
func cmdCtl(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	client := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print the API answer as JSON")
	fs.Usage = func() { fmt.Fprint(fs.Output(), ctlUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a := fs.Args()
	method, path, body, err := ctlRequest(a)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vipgate ctl: %v\n\n", err)
		fs.Usage()
		return 2
	}
	var out json.RawMessage
	if err := client().do(ctx, method, path, body, &out); err != nil {
		fmt.Fprintf(os.Stderr, "vipgate ctl: %v\n", err)
		return 1
	}
	if *asJSON {
		os.Stdout.Write(out)
		return 0
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	fmt.Printf("ok (%s scope): %s\n", scalar(m["scope"]), strings.Join(a, " "))
	return 0
}

func splitServer(s string) (string, string, error) {
	b, srv, ok := strings.Cut(s, "/")
	if !ok || b == "" || srv == "" {
		return "", "", fmt.Errorf("want BACKEND/SERVER, got %q", s)
	}
	return b, srv, nil
}

func ctlRequest(a []string) (method, path string, body any, err error) {
	if len(a) < 2 {
		return "", "", nil, fmt.Errorf("missing action")
	}
	switch a[0] {
	case "server":
		switch a[1] {
		case "ready", "drain", "maint":
			if len(a) != 3 {
				return "", "", nil, fmt.Errorf("server %s needs BACKEND/SERVER", a[1])
			}
			b, s, err := splitServer(a[2])
			if err != nil {
				return "", "", nil, err
			}
			return "POST", "/api/v1/servers/" + b + "/" + s + "/state", map[string]string{"state": a[1]}, nil
		case "weight":
			if len(a) != 4 {
				return "", "", nil, fmt.Errorf("server weight needs BACKEND/SERVER N")
			}
			b, s, err := splitServer(a[2])
			if err != nil {
				return "", "", nil, err
			}
			n, err := strconv.Atoi(a[3])
			if err != nil {
				return "", "", nil, fmt.Errorf("weight %q is not a number", a[3])
			}
			return "POST", "/api/v1/servers/" + b + "/" + s + "/weight", map[string]int{"weight": n}, nil
		case "check":
			if len(a) != 4 || (a[2] != "enable" && a[2] != "disable") {
				return "", "", nil, fmt.Errorf("server check needs enable|disable BACKEND/SERVER")
			}
			b, s, err := splitServer(a[3])
			if err != nil {
				return "", "", nil, err
			}
			return "POST", "/api/v1/servers/" + b + "/" + s + "/check", map[string]bool{"enabled": a[2] == "enable"}, nil
		}
	case "log":
		if len(a) == 3 && a[1] == "level" {
			return "PUT", "/api/v1/log", map[string]string{"level": a[2]}, nil
		}
	case "frontend":
		if len(a) == 3 && (a[1] == "enable" || a[1] == "disable") {
			return "POST", "/api/v1/frontends/" + a[2] + "/state", map[string]bool{"enabled": a[1] == "enable"}, nil
		}
	}
	return "", "", nil, fmt.Errorf("unknown action %q", strings.Join(a, " "))
}
