package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version, commit and buildTime are set by the Makefile (-ldflags -X
// main.version=...); the commit otherwise comes from the binary's build
// info (go build -buildvcs), as does the Go version.
var (
	version   = "dev"
	commit    = ""
	buildTime = ""
)

// Exit statuses, as before the command tree: 0 done, 1 the action failed
// (the node refused or could not be reached, a file is invalid), 2 bad usage.
const (
	exitFailed = 1
	exitUsage  = 2
)

// exitCode ends a command with this status; the command has printed what
// it had to say.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is bad usage: printed with the command's usage, exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// topCommands lists the top-level commands, in the order of the help.
// Each lives in cmd_<name>.go.
func topCommands() []*cobra.Command {
	return []*cobra.Command{
		newRunCmd(), newCheckCmd(), newApplyCmd(), newStatusCmd(), newEventsCmd(), newCtlCmd(),
		newClusterCmd(), newConfigCmd(), newDCCmd(), newAlertsCmd(), newImportCmd(), newVersionCmd(),
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "vipgate",
		Short: "load balancer, VRRP, replicated config and DNS in one binary",
		Long: `vipgate is one binary per node: the proxy, VRRP, raft-replicated config,
authoritative DNS and alerting (vipgate run), and the commands that check
files and talk to a running node's admin API.

Exit status: 0 done, 1 the action failed (a node refused it or could not be
reached, a file has problems), 2 bad usage. Help and --version print on
stdout and exit 0. With --json, a failure is {"error": ...} on stdout.

Environment:

    VIPGATE_NODE    the node file of vipgate run when --node is not given
    VIPGATE_ADMIN   the admin API address of the client commands (--admin)
    VIPGATE_TOKEN   the admin API bearer token (--token)
    VIPGATE_CACERT  the CA of the admin API's TLS certificate (--cacert)

Files:

    /etc/vipgate/node.yaml     who this node is: name, datacenter, data_dir, listen addresses
    /etc/vipgate/cluster.yaml  what a standalone node serves, or the seed of a raft cluster
    /var/lib/vipgate           the node's state (data_dir of the packaged node.yaml)

Shell completions: vipgate completion bash|zsh|fish (the Debian package
installs them). docs/operations.md and docs/troubleshooting.md tell more.`,
		Version: version,
		// A bare `vipgate` or an unknown command is a usage error (exit 2),
		// not a request for help.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("no command given")
			}
			return unknownCommand(cmd, args[0])
		},
	}
	root.SetVersionTemplate("{{.Version}}")
	root.Version = versionString()
	root.AddCommand(topCommands()...)
	root.AddCommand(newGenDocsCmd(root))
	root.SuggestionsMinimumDistance = 2
	// No "auto generated on DATE" in the man pages: the package is reproducible.
	root.DisableAutoGenTag = true
	walk(root, func(c *cobra.Command) {
		c.SilenceErrors = true
		c.SilenceUsage = true
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
		// Flags may follow the arguments, as they always could.
		c.Flags().SetInterspersed(true)
	})
	return root
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walk(s, f)
	}
}

// unknownCommand is the usage error of a command group given a word that
// is none of its subcommands.
func unknownCommand(cmd *cobra.Command, arg string) error {
	msg := fmt.Sprintf("unknown command %q", arg)
	if s := cmd.SuggestionsFor(arg); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return &usageError{msg}
}

// groupRunE is the RunE of a command that only groups subcommands: without
// one it is a usage error (exit 2), as before.
func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErrorf("which %s command?", cmd.Name())
	}
	return unknownCommand(cmd, args[0])
}

// newGroup is a command that groups subcommands talking to a node's admin
// API; the admin flags are its, for all of them.
func newGroup(use, short string) (*cobra.Command, func() *adminClient) {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: groupRunE}
	return cmd, adminFlags(cmd.PersistentFlags())
}

// exactArgs and rangeArgs are cobra's, as usage errors (exit 2).
func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || (hi >= 0 && len(args) > hi) {
			switch {
			case lo == hi:
				return usageErrorf("want %d argument(s), got %d", lo, len(args))
			case hi < 0:
				return usageErrorf("want at least %d argument(s), got %d", lo, len(args))
			}
			return usageErrorf("want %d to %d argument(s), got %d", lo, hi, len(args))
		}
		return nil
	}
}

// execute runs the command line args (without the program name) and
// returns the exit status. Help and the version go to stdout (exit 0); a
// usage error prints the command's usage on stderr (exit 2); a failure
// prints "vipgate CMD: why" on stderr, or with --json a JSON object on
// stdout (exit 1).
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(goStyleFlags(root, args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(os.Stdin)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if cmd == nil {
		cmd = root
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	var ue *usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(stderr, "%s: %v\n\n", cmd.CommandPath(), err)
		fmt.Fprint(stderr, cmd.UsageString())
		return exitUsage
	}
	if wantsJSON(cmd) {
		writeJSONError(stdout, err)
	} else {
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	}
	return exitFailed
}

// runSub is execute for one top-level command (the tests call it so).
func runSub(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, append([]string{name}, args...), stdout, stderr)
}

// wantsJSON reports whether the command was given --json.
func wantsJSON(cmd *cobra.Command) bool {
	f := cmd.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}

// writeJSONError prints a failure for a script: {"error": "...", "status":
// HTTP status when the admin API refused}.
func writeJSONError(w io.Writer, err error) {
	out := struct {
		Error  string `json:"error"`
		Status int    `json:"status,omitempty"`
	}{Error: err.Error()}
	var ae *apiError
	if errors.As(err, &ae) {
		out.Error, out.Status = ae.Msg, ae.Status
	}
	b, _ := json.Marshal(out)
	fmt.Fprintf(w, "%s\n", b)
}

// goStyleFlags turns -name into --name for the command tree's long flags:
// vipgate parsed its flags with Go's flag package, which takes both, and
// scripts written then keep working. One-letter flags (-f, -m, -q, -o)
// are pflag shorthands and stay as they are.
func goStyleFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	walk(root, func(c *cobra.Command) {
		add := func(f *pflag.Flag) { long[f.Name] = len(f.Name) > 1 }
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
	})
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// versionString is what --version and `vipgate version` print.
func versionString() string {
	rev, commitTime, modified, goVersion := commit, "", "", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				commitTime = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	built := buildTime
	if built == "" {
		built = "unknown"
	}
	if rev == "" {
		rev = "unknown"
	}
	if commitTime != "" {
		rev += " of " + commitTime
	}
	return fmt.Sprintf("vipgate %s\ncommit:  %s%s\nbuilt:   %s\ngo:      %s %s/%s\n",
		version, rev, modified, built, goVersion, runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, commit, build time and Go version",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprint(cmd.OutOrStdout(), versionString())
			return nil
		},
	}
}
