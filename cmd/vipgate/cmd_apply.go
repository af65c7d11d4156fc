package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vipgate/vipgate/cluster/raft"
)

// authorFlag registers --author: who makes a change, for the audit trail;
// by default USER@HOST, found when the command runs (not in the help).
func authorFlag(fs *pflag.FlagSet, usage string) func() string {
	a := fs.String("author", "", usage+" (default USER@HOST)")
	return func() string {
		if *a == "" {
			return defaultAuthor()
		}
		return *a
	}
}

// defaultAuthor names who made a change, for the audit trail.
func defaultAuthor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	if host != "" {
		return name + "@" + host
	}
	return name
}

// newApplyCmd sends a cluster document to any node; it is forwarded to
// the raft leader, validated, committed, and applied by every node.
func newApplyCmd() *cobra.Command {
	var file, comment string
	var author func() string
	var dry, allowEmpty bool
	var ifVersion uint64
	var client func() *adminClient
	cmd := &cobra.Command{
		Use:   "apply -f cluster.yaml [--dry-run] [--if-version N] [--allow-empty] [-m COMMENT]",
		Short: "send a cluster config to the cluster (prints the diff)",
		Long: `Send a cluster document to any node of a raft cluster: it is forwarded to
the leader, validated, committed, and applied by every node. The diff
against the committed config is printed, then the new version. Lua files
the document names are read here and carried in the document.

With --if-version N the document is committed only if the committed version
is still N (the one whose diff was reviewed, as vipgate apply --dry-run and
vipgate config history show it): compare-and-set, decided by the raft log
when the change is applied, so two operators applying at once cannot both
win; the later is refused and nothing is changed.`,
		Example: `  vipgate apply -f cluster.yaml --dry-run      # review the diff: "committed version is 7"
  vipgate apply -f cluster.yaml --if-version 7 -m "add web3"`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErrorf("-f FILE is required")
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			// Lua files are local to this machine: carry their code in the document.
			base := "."
			if file != "-" {
				base = filepath.Dir(file)
			}
			if data, err = raft.InlineFiles(data, base); err != nil {
				// One line per missing file ("line N: ..."), positioned in the file.
				for _, l := range strings.Split(err.Error(), "\n") {
					fmt.Fprintf(cmd.ErrOrStderr(), "vipgate apply: %s:%s\n", file, strings.TrimPrefix(l, "line "))
				}
				return exitCode(exitFailed)
			}
			var resp configResponse
			err = client().do(cmd.Context(), "POST", "/api/v1/config", configRequest{Author: author(), YAML: string(data), DryRun: dry, Comment: comment, AllowEmpty: allowEmpty, IfVersion: ifVersion}, &resp)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), apiErrorText("apply", file, err))
				return exitCode(exitFailed)
			}
			printConfigResult(cmd.OutOrStdout(), resp)
			printFileWarnings(cmd.ErrOrStderr(), resp, file)
			return nil
		},
	}
	f := cmd.Flags()
	client = adminFlags(f)
	f.StringVarP(&file, "file", "f", "", "cluster config file to apply (- for stdin)")
	f.BoolVar(&dry, "dry-run", false, "show the diff against the committed config; change nothing")
	author = authorFlag(f, "who makes this change (audit trail)")
	f.StringVarP(&comment, "message", "m", "", "comment recorded with the change")
	f.Uint64Var(&ifVersion, "if-version", 0, "commit only if the committed version is still N (refused if it moved; 0: no condition)")
	f.BoolVar(&allowEmpty, "allow-empty", false, "commit a document with no frontend, no VRRP instance and no DNS zone (refused otherwise: it closes every listener)")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	return cmd
}

// apiErrorText says why the API refused a config; validation problems
// name the user's file instead of the server's "cluster.yaml". (A node
// without raft answers 409 "runs standalone" itself; a 404 is the API's
// own, e.g. an unknown version.)
func apiErrorText(cmd, file string, err error) string {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == 422 {
		msg := ae.Msg
		if file != "" && file != "-" {
			msg = strings.ReplaceAll(msg, "cluster.yaml:", file+":")
		}
		return fmt.Sprintf("vipgate %s: the cluster refused the configuration (nothing was changed):\n%s", cmd, msg)
	}
	return fmt.Sprintf("vipgate %s: %v", cmd, err)
}

// printFileWarnings shows the files the document names that the receiving
// node cannot use: not an error (files are node-local, each node checks its
// own and reports it in its status), but the operator sees it now.
func printFileWarnings(w io.Writer, resp configResponse, file string) {
	for _, p := range resp.FileWarnings {
		if file != "" && file != "-" {
			p = strings.Replace(p, "cluster.yaml:", file+":", 1)
		}
		fmt.Fprintf(w, "warning: %s (on node %s)\n", p, resp.FileNode)
	}
	if n := len(resp.FileWarnings); n > 0 {
		fmt.Fprintf(w, "warning: %d file problem(s) on node %s: files are node-local, so this does not block the commit; "+
			"each node reports its own in `vipgate status` (config_files) and as a config.files event\n", n, resp.FileNode)
	}
}

func printConfigResult(w io.Writer, resp configResponse) {
	switch {
	case !resp.Changed:
		fmt.Fprintf(w, "no changes (committed version %d)\n", resp.Version)
	case resp.DryRun:
		fmt.Fprint(w, resp.Diff)
		fmt.Fprintf(w, "dry run: nothing applied (committed version is %d)\n", resp.Version)
	default:
		fmt.Fprint(w, resp.Diff)
		fmt.Fprintf(w, "committed version %d\n", resp.Version)
	}
}
