package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vipgate/vipgate/core/config"
)

// newConfigCmd shows the committed configuration, its history, and rolls
// back.
func newConfigCmd() *cobra.Command {
	cmd, client := newGroup("config", "the committed config: show, history, rollback")

	show := &cobra.Command{
		Use:   "show [VERSION]",
		Short: "print the committed config (or a version from the history) as YAML",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			var out struct {
				Version uint64 `json:"version"`
				YAML    string `json:"yaml"`
			}
			path := "/api/v1/config"
			if len(pos) == 1 {
				path = "/api/v1/config/history/" + pos[0]
			}
			if err := client().do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), out.YAML)
			return nil
		},
	}

	history := &cobra.Command{
		Use:   "history",
		Short: "list the committed versions: time, author, comment; * marks the current one",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Version uint64            `json:"version"`
				History []config.Revision `json:"history"`
			}
			if err := client().do(cmd.Context(), "GET", "/api/v1/config/history", nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tTIME\tAUTHOR\tCOMMENT")
			for _, h := range out.History {
				mark := ""
				if h.Version == out.Version {
					mark = " *"
				}
				fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\n", h.Version, mark, h.Time.Local().Format(time.DateTime), h.Author, h.Comment)
			}
			return tw.Flush()
		},
	}

	var dry, allowEmpty bool
	var author func() string
	rollback := &cobra.Command{
		Use:   "rollback VERSION [--dry-run] [--allow-empty]",
		Short: "commit an earlier version again (a new version with its content)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			v, err := strconv.ParseUint(pos[0], 10, 64)
			if err != nil {
				return usageErrorf("version %q is not a number", pos[0])
			}
			var resp configResponse
			if err := client().do(cmd.Context(), "POST", "/api/v1/config/rollback", map[string]any{"version": v, "author": author(), "dry_run": dry, "allow_empty": allowEmpty}, &resp); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), apiErrorText("config rollback", "", err))
				return exitCode(exitFailed)
			}
			printConfigResult(cmd.OutOrStdout(), resp)
			printFileWarnings(cmd.ErrOrStderr(), resp, "")
			return nil
		},
	}
	rf := rollback.Flags()
	rf.BoolVar(&dry, "dry-run", false, "show the diff only")
	author = authorFlag(rf, "who makes this change (audit trail)")
	rf.BoolVar(&allowEmpty, "allow-empty", false, "to a version with no frontend, no VRRP instance and no DNS zone")

	cmd.AddCommand(show, history, rollback)
	return cmd
}
