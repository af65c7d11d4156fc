package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// cmdConfig shows the committed configuration, its history, and rolls back.
func cmdConfig(ctx context.Context, args []string) int {
	usage := func() {
		fmt.Fprintf(os.Stderr, "usage: vipgate config show [VERSION] | history | rollback VERSION [--dry-run] [--allow-empty]  [--admin ADDR] [--token TOKEN]\n")
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("config "+args[0], flag.ContinueOnError)
	client := adminFlags(fs)
	dry := fs.Bool("dry-run", false, "rollback: show the diff only")
	author := fs.String("author", defaultAuthor(), "rollback: who makes this change")
	allowEmpty := fs.Bool("allow-empty", false, "rollback: to a version with no frontend, no VRRP instance and no DNS zone")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	c := client()
	switch args[0] {
	case "show":
		var out struct {
			Version uint64 `json:"version"`
			YAML    string `json:"yaml"`
		}
		path := "/api/v1/config"
		if len(pos) == 1 {
			path = "/api/v1/config/history/" + pos[0]
		}
		if err := c.do(ctx, "GET", path, nil, &out); err != nil {
			fmt.Fprintf(os.Stderr, "vipgate config show: %v\n", err)
			return 1
		}
		fmt.Print(out.YAML)
		return 0
	case "history":
		var out struct {
			Version uint64            `json:"version"`
			History []config.Revision `json:"history"`
		}
		if err := c.do(ctx, "GET", "/api/v1/config/history", nil, &out); err != nil {
			fmt.Fprintf(os.Stderr, "vipgate config history: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tTIME\tAUTHOR\tCOMMENT")
		for _, h := range out.History {
			mark := ""
			if h.Version == out.Version {
				mark = " *"
			}
			fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\n", h.Version, mark, h.Time.Local().Format(time.DateTime), h.Author, h.Comment)
		}
		tw.Flush()
		return 0
	case "rollback":
		if len(pos) != 1 {
			usage()
			return 2
		}
		v, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vipgate config rollback: version %q is not a number\n", pos[0])
			return 2
		}
		var resp configResponse
		if err := c.do(ctx, "POST", "/api/v1/config/rollback", map[string]any{"version": v, "author": *author, "dry_run": *dry, "allow_empty": *allowEmpty}, &resp); err != nil {
			reportAPIError("config rollback", "", err)
			return 1
		}
		printConfigResult(resp)
		printFileWarnings(os.Stderr, resp, "")
		return 0
	}
	usage()
	return 2
}
