package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

const ctlUsage = `Scope: "node" actions change this node only and last until it restarts or the
operator changes them back; "cluster" actions are committed through raft and
hold on every node, across restarts and config changes.

actions                                           scope
  server ready|drain|maint BACKEND/SERVER         node (drain: no new sessions; maint: none, no checks)
  server ready|drain|maint BACKEND/SERVER --cluster
                                                  cluster (needs raft)
  server weight BACKEND/SERVER N                  node (0-256; 0 takes no new sessions)
  server check enable|disable BACKEND/SERVER      node (disabled: the server counts as up)
  server shutdown-sessions BACKEND/SERVER         node (ends the server's established sessions)
  frontend enable|disable FRONTEND                node (stop or resume accepting; connections stay)
  stick show TABLE [--limit N]                    (read) entries of a stick table
  stick clear TABLE [KEY]                         node (one entry, or the whole table; peers keep theirs)
  dc failover DATACENTER [--reason T] [--force]   cluster (same as vipgate dc failover)
  log level debug|info|warn|error                 node
  stop [--grace DURATION]                         node (soft stop, as SIGUSR1: refuse new connections,
                                                  resign VRRP, let open ones finish up to the grace)

`

// runCtl is `vipgate ctl ARGS...` (the tests call it so).
func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runSub(ctx, "ctl", args, stdout, stderr)
}

// ctlOpts are the flags that shape an action's request.
type ctlOpts struct {
	cluster bool
	limit   int
	reason  string
	force   bool
	author  string
	grace   string
}

// newCtlCmd runs runtime actions through the admin API. The actions are a
// small grammar (ctlRequest), completed by ctlComplete.
func newCtlCmd() *cobra.Command {
	var o ctlOpts
	var asJSON bool
	var client func() *adminClient
	var author func() string
	cmd := &cobra.Command{
		Use:   "ctl ACTION ARGS...",
		Short: "runtime actions: server ready|drain|maint|weight|check|shutdown-sessions, frontend enable|disable, stick show|clear, dc failover, log level, stop",
		Long:  "Runtime actions on a running node, through its admin API.\n\n" + ctlUsage,
		Example: `  vipgate ctl server drain app/web1
  vipgate ctl server maint app/web1 --cluster
  vipgate ctl server weight app/web1 50
  vipgate ctl stick show app_sessions --limit 20`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: ctlComplete,
		RunE: func(cmd *cobra.Command, a []string) error {
			o.author = author()
			method, path, body, err := ctlRequest(a, o)
			if err != nil {
				return &usageError{err.Error()}
			}
			stdout := cmd.OutOrStdout()
			var out json.RawMessage
			if err := client().do(cmd.Context(), method, path, body, &out); err != nil {
				return err
			}
			if asJSON {
				stdout.Write(out)
				return nil
			}
			var m map[string]any
			_ = json.Unmarshal(out, &m)
			if a[0] == "stick" && a[1] == "show" {
				printStickEntries(stdout, m)
				return nil
			}
			detail := ""
			switch {
			case m["cleared"] != nil:
				detail = fmt.Sprintf(" (%s entries removed)", scalar(m["cleared"]))
			case m["sessions"] != nil:
				detail = fmt.Sprintf(" (%s sessions ended)", scalar(m["sessions"]))
			case m["index"] != nil:
				detail = fmt.Sprintf(" (committed at raft index %s)", scalar(m["index"]))
			case m["grace"] != nil:
				detail = fmt.Sprintf(" (%s connections open, cut after %s)", scalar(m["connections"]), scalar(m["grace"]))
			}
			fmt.Fprintf(stdout, "ok (%s scope): %s%s\n", scalar(m["scope"]), strings.Join(a, " "), detail)
			return nil
		},
	}
	f := cmd.Flags()
	client = adminFlags(f)
	f.BoolVar(&asJSON, "json", false, "print the API answer as JSON (and a failure as {\"error\": ...})")
	f.BoolVar(&o.cluster, "cluster", false, "server ready|drain|maint: commit through raft for every node")
	f.IntVar(&o.limit, "limit", 100, "stick show: at most this many entries")
	f.StringVar(&o.reason, "reason", "", "dc failover: why (recorded with the decision)")
	f.BoolVar(&o.force, "force", false, "dc failover: even to a datacenter the cluster sees as unhealthy")
	author = authorFlag(f, "cluster actions: who decides (audit trail)")
	f.StringVar(&o.grace, "grace", "", "stop: let open connections finish this long (default: the node's hard_stop_after)")
	return cmd
}

// ctlGrammar is the words of each action, for completion.
var ctlGrammar = map[string][]string{
	"":             {"server", "frontend", "stick", "dc", "log"},
	"server":       {"ready", "drain", "maint", "weight", "check", "shutdown-sessions"},
	"frontend":     {"enable", "disable"},
	"stick":        {"show", "clear"},
	"dc":           {"failover"},
	"log":          {"level"},
	"log level":    {"debug", "info", "warn", "error"},
	"server check": {"enable", "disable"},
}

// ctlComplete completes the action words; the names (servers, frontends,
// tables) are the running node's and are not completed.
func ctlComplete(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if w, ok := ctlGrammar[strings.Join(args, " ")]; ok {
		return w, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

func printStickEntries(w io.Writer, m map[string]any) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSERVER\tEXPIRES IN")
	entries, _ := m["entries"].([]any)
	for _, e := range entries {
		if em, ok := e.(map[string]any); ok {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", scalar(em["key"]), scalar(em["server"]), scalar(em["ttl"]))
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "%d entries shown (node-local view of table %s)\n", len(entries), scalar(m["table"]))
}

func splitServer(s string) (string, string, error) {
	b, srv, ok := strings.Cut(s, "/")
	if !ok || b == "" || srv == "" || strings.Contains(srv, "/") {
		return "", "", fmt.Errorf("want BACKEND/SERVER, got %q", s)
	}
	return b, srv, nil
}

// serverPath is the API path of a server action (names are escaped: they
// are validated by the config, but a typo must not become another path).
func serverPath(prefix, bs, action string) (string, error) {
	b, s, err := splitServer(bs)
	if err != nil {
		return "", err
	}
	return prefix + "/servers/" + url.PathEscape(b) + "/" + url.PathEscape(s) + "/" + action, nil
}

// ctlRequest maps an action to its admin API call.
func ctlRequest(a []string, o ctlOpts) (method, path string, body any, err error) {
	if len(a) == 1 && a[0] == "stop" {
		b := map[string]string{}
		if o.grace != "" {
			b["grace"] = o.grace
		}
		return "POST", "/api/v1/stop", b, nil
	}
	if o.grace != "" {
		return "", "", nil, fmt.Errorf("--grace applies to stop only")
	}
	if len(a) < 2 {
		return "", "", nil, fmt.Errorf("missing action")
	}
	if o.cluster && (a[0] != "server" || (a[1] != "ready" && a[1] != "drain" && a[1] != "maint")) {
		return "", "", nil, fmt.Errorf("--cluster applies to server ready|drain|maint only")
	}
	switch a[0] {
	case "server":
		switch a[1] {
		case "ready", "drain", "maint":
			if len(a) != 3 {
				return "", "", nil, fmt.Errorf("server %s needs BACKEND/SERVER", a[1])
			}
			if o.cluster {
				p, err := serverPath("/api/v1/cluster", a[2], "state")
				return "POST", p, map[string]string{"state": a[1], "author": o.author}, err
			}
			p, err := serverPath("/api/v1", a[2], "state")
			return "POST", p, map[string]string{"state": a[1]}, err
		case "weight":
			if len(a) != 4 {
				return "", "", nil, fmt.Errorf("server weight needs BACKEND/SERVER N")
			}
			n, err := strconv.Atoi(a[3])
			if err != nil {
				return "", "", nil, fmt.Errorf("weight %q is not a number", a[3])
			}
			p, err := serverPath("/api/v1", a[2], "weight")
			return "POST", p, map[string]int{"weight": n}, err
		case "check":
			if len(a) != 4 || (a[2] != "enable" && a[2] != "disable") {
				return "", "", nil, fmt.Errorf("server check needs enable|disable BACKEND/SERVER")
			}
			p, err := serverPath("/api/v1", a[3], "check")
			return "POST", p, map[string]bool{"enabled": a[2] == "enable"}, err
		case "shutdown-sessions":
			if len(a) != 3 {
				return "", "", nil, fmt.Errorf("server shutdown-sessions needs BACKEND/SERVER")
			}
			p, err := serverPath("/api/v1", a[2], "shutdown-sessions")
			return "POST", p, struct{}{}, err
		}
	case "stick":
		switch {
		case a[1] == "show" && len(a) == 3:
			if o.limit < 1 {
				return "", "", nil, fmt.Errorf("--limit must be positive")
			}
			return "GET", "/api/v1/stick/" + url.PathEscape(a[2]) + "?limit=" + strconv.Itoa(o.limit), nil, nil
		case a[1] == "clear" && len(a) == 3:
			return "DELETE", "/api/v1/stick/" + url.PathEscape(a[2]), nil, nil
		case a[1] == "clear" && len(a) == 4:
			return "DELETE", "/api/v1/stick/" + url.PathEscape(a[2]) + "/" + url.PathEscape(a[3]), nil, nil
		}
		return "", "", nil, fmt.Errorf("stick needs show TABLE, or clear TABLE [KEY]")
	case "dc":
		if a[1] == "failover" && len(a) == 3 {
			return "POST", "/api/v1/dc/failover", map[string]any{"datacenter": a[2], "reason": o.reason, "force": o.force, "author": o.author}, nil
		}
		return "", "", nil, fmt.Errorf("dc needs failover DATACENTER")
	case "log":
		if len(a) == 3 && a[1] == "level" {
			return "PUT", "/api/v1/log", map[string]string{"level": a[2]}, nil
		}
		return "", "", nil, fmt.Errorf("log needs level debug|info|warn|error")
	case "frontend":
		if len(a) == 3 && (a[1] == "enable" || a[1] == "disable") {
			return "POST", "/api/v1/frontends/" + url.PathEscape(a[2]) + "/state", map[string]bool{"enabled": a[1] == "enable"}, nil
		}
		return "", "", nil, fmt.Errorf("frontend needs enable|disable FRONTEND")
	}
	return "", "", nil, fmt.Errorf("unknown action %q", strings.Join(a, " "))
}
