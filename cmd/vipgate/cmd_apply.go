package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/vipgate/vipgate/cluster/raft"
)

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

// cmdApply sends a cluster document to any node; it is forwarded to the
// raft leader, validated, committed, and applied by every node.
func cmdApply(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	client := adminFlags(fs)
	file := fs.String("f", "", "cluster config file to apply (- for stdin)")
	dry := fs.Bool("dry-run", false, "show the diff against the committed config; change nothing")
	author := fs.String("author", defaultAuthor(), "who makes this change (audit trail)")
	comment := fs.String("m", "", "comment recorded with the change")
	allowEmpty := fs.Bool("allow-empty", false, "commit a document with no frontend, no VRRP instance and no DNS zone (refused otherwise: it closes every listener)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vipgate apply -f cluster.yaml [--dry-run] [--allow-empty] [-m COMMENT] [--admin ADDR] [--token TOKEN]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fs.Usage()
		return 2
	}
	var data []byte
	var err error
	if *file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(*file)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vipgate apply: %v\n", err)
		return 1
	}
	// Lua files are local to this machine: carry their code in the document.
	base := "."
	if *file != "-" {
		base = filepath.Dir(*file)
	}
	if data, err = raft.InlineFiles(data, base); err != nil {
		// One line per missing file ("line N: ..."), positioned in the file.
		for _, l := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(os.Stderr, "vipgate apply: %s:%s\n", *file, strings.TrimPrefix(l, "line "))
		}
		return 1
	}
	var resp configResponse
	err = client().do(ctx, "POST", "/api/v1/config", configRequest{Author: *author, YAML: string(data), DryRun: *dry, Comment: *comment, AllowEmpty: *allowEmpty}, &resp)
	if err != nil {
		reportAPIError("apply", *file, err)
		return 1
	}
	printConfigResult(resp)
	printFileWarnings(os.Stderr, resp, *file)
	return 0
}

// reportAPIError prints err; validation problems name the user's file
// instead of the server's "cluster.yaml". (A node without raft answers 409
// "runs standalone" itself; a 404 is the API's own, e.g. an unknown version.)
func reportAPIError(cmd, file string, err error) {
	fmt.Fprintln(os.Stderr, apiErrorText(cmd, file, err))
}

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

func printConfigResult(resp configResponse) {
	switch {
	case !resp.Changed:
		fmt.Printf("no changes (committed version %d)\n", resp.Version)
	case resp.DryRun:
		fmt.Print(resp.Diff)
		fmt.Printf("dry run: nothing applied (committed version is %d)\n", resp.Version)
	default:
		fmt.Print(resp.Diff)
		fmt.Printf("committed version %d\n", resp.Version)
	}
}
