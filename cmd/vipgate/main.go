// Command vipgate is the one binary of a vipgate node: the proxy, VRRP,
// raft, DNS and alerting in one process (`vipgate run`), and the tools that
// talk to it (check, apply, status, ctl, events, cluster, dc, config,
// alerts, import).
//
// The commands form one tree (spf13/cobra, cli.go): help, the shell
// completions and the man pages are generated from it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(execute(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
