// Command vipgate is the one binary of a vipgate node: the proxy, VRRP,
// raft, DNS and alerting in one process (`vipgate run`), and the tools that
// talk to it (check, apply, status, ctl, cluster, dc, config, alerts, import).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// version is set by the Makefile (-ldflags -X main.version=...).
var version = "dev"

type command struct {
	summary string
	// subs lists the subcommands (or actions), for the usage summary.
	subs string
	run  func(ctx context.Context, args []string) int
}

// commands lists every subcommand. Each lives in cmd_<name>.go.
func commands() map[string]command {
	return map[string]command{
		"run":     {"run a node (proxy, VRRP, raft, DNS, alerts)", "", cmdRun},
		"check":   {"validate cluster or node files and print every problem", "", cmdCheck},
		"status":  {"show the node's state as tables (like HAProxy show stat)", "", cmdStatus},
		"ctl":     {"runtime actions", "server ready|drain|maint|weight|check|shutdown-sessions, frontend enable|disable, stick show|clear, dc failover, log level", cmdCtl},
		"version": {"print the version", "", cmdVersion},
		"apply":   {"send a cluster config to the cluster (prints the diff)", "", cmdApply},
		"cluster": {"raft membership", "members, join, leave, remove, recover", cmdCluster},
		"config":  {"the committed config", "show, history, rollback", cmdConfig},
		"dc":      {"datacenters", "status, failover", cmdDC},
		"alerts":  {"alerting", "test, status", cmdAlerts},
		"import":  {"translate haproxy.cfg / keepalived.conf into a cluster config", "", cmdImport},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: vipgate COMMAND [options]\n\ncommands:\n")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := cmds[n]
		line := c.summary
		if c.subs != "" {
			line += ": " + c.subs
		}
		fmt.Fprintf(w, "  %-8s %s\n", n, line)
	}
	fmt.Fprintf(w, "\nRun 'vipgate COMMAND -h' for a command's options.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stderr)
		os.Exit(2)
	}
	c, ok := commands()[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "vipgate: unknown command %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(c.run(ctx, os.Args[2:]))
}

func cmdVersion(ctx context.Context, args []string) int {
	fmt.Println("vipgate", version)
	return 0
}
