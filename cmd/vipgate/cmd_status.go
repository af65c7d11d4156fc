package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vipgate/vipgate/core/stats"
)

// runStatus is `vipgate status ARGS...` (the tests call it so).
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runSub(ctx, "status", args, stdout, stderr)
}

// newStatusCmd prints the node's state: the proxy as a `show stat`-like
// table, then every other section the node registered (VRRP, raft, DNS,
// alerts…).
func newStatusCmd() *cobra.Command {
	var asJSON bool
	var client func() *adminClient
	cmd := &cobra.Command{
		Use:   "status [SECTION] [--json]",
		Short: "show the node's state as tables (like HAProxy show stat)",
		Long: `Show a running node's state: the proxy as a table like HAProxy's show stat
(one line per frontend, server and backend), then every other section the
node has (node, vrrp, raft, dns, alerts, config_files, ...). With SECTION,
that section only; with --json, the raw status document.`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			return showStatus(cmd, client(), pos, asJSON)
		},
	}
	client = adminFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print the raw JSON answer (and a failure as {\"error\": ...})")
	cmd.AddCommand(newStatusChecksCmd(&asJSON, &client))
	return cmd
}

func showStatus(cmd *cobra.Command, c *adminClient, pos []string, asJSON bool) error {
	stdout := cmd.OutOrStdout()
	path := "/api/v1/status"
	if len(pos) == 1 {
		path += "/" + url.PathEscape(pos[0])
	}
	var raw json.RawMessage
	if err := c.do(cmd.Context(), "GET", path, nil, &raw); err != nil {
		return err
	}
	if asJSON {
		stdout.Write(raw)
		return nil
	}
	if len(pos) == 1 {
		if printSection(stdout, pos[0], raw) != 0 {
			return exitCode(exitFailed)
		}
		return nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	names := make([]string, 0, len(doc))
	for k := range doc {
		names = append(names, k)
	}
	// node first, proxy second, the rest by name.
	rank := map[string]int{"node": 0, "proxy": 1}
	sort.Slice(names, func(i, j int) bool {
		ri, oki := rank[names[i]]
		rj, okj := rank[names[j]]
		if oki || okj {
			if !oki {
				ri = 99
			}
			if !okj {
				rj = 99
			}
			return ri < rj
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		printSection(stdout, n, doc[n])
		fmt.Fprintln(stdout)
	}
	return nil
}

func printSection(w io.Writer, name string, raw json.RawMessage) int {
	if name == "proxy" {
		var s stats.Snapshot
		if err := json.Unmarshal(raw, &s); err != nil {
			fmt.Fprintf(os.Stderr, "proxy section: %v\n", err)
			return 1
		}
		printStats(w, s)
		return 0
	}
	fmt.Fprintf(w, "== %s ==\n", name)
	if name == "vrrp" && printVRRP(w, raw) == nil {
		return 0
	}
	printGeneric(w, raw)
	return 0
}

// printStats renders the proxy like HAProxy's `show stat`, one line per
// frontend, server and backend.
func printStats(w io.Writer, s stats.Snapshot) {
	fmt.Fprintln(w, "== proxy ==")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROXY\tNAME\tSTATUS\tWEIGHT\tSCUR\tSMAX\tSLIM\tSTOT\tBIN\tBOUT\tQCUR\tECON\tERESP\tWRETR\tWREDIS\tCHECK\tLASTCHG")
	for _, f := range s.Frontends {
		fmt.Fprintf(tw, "%s\tFRONTEND\t%s\t\t%d\t%d\t%d\t%d\t%d\t%d\t\t\t\t\t\t\t\n",
			f.Name, f.Status, f.CurSess, f.MaxSess, f.Limit, f.TotalSess, f.BytesIn, f.BytesOut)
	}
	for _, b := range s.Backends {
		for _, sv := range b.Servers {
			check := "-"
			if sv.Checked {
				check = "pending"
				if sv.CheckOK != nil {
					check = sv.CheckReason
					if check == "" {
						check = map[bool]string{true: "ok", false: "failed"}[*sv.CheckOK]
					}
				}
			}
			name := sv.Name
			if sv.Backup {
				name += " (backup)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
				b.Name, name, sv.Status, sv.Weight, sv.CurSess, sv.MaxSess, limit(sv.Limit), sv.TotalSess,
				sv.BytesIn, sv.BytesOut, sv.Queued, sv.ConnErrors, sv.RespErrors, sv.Retries, sv.Redisp,
				check, ago(sv.LastChange))
		}
		fmt.Fprintf(tw, "%s\tBACKEND\t%s\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\t\n",
			b.Name, b.Status, b.Weight, b.CurSess, b.MaxSess, limit(b.Limit), b.TotalSess, b.BytesIn, b.BytesOut,
			b.Queued, b.ConnErrors, b.RespErrors, b.Retries, b.Redisp)
	}
	tw.Flush()
}

func limit(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String()
}

// printGeneric renders any JSON section readably: a list of objects as a
// table, an object as key: value lines.
func printGeneric(w io.Writer, raw json.RawMessage) {
	var list []map[string]any
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		keys := map[string]bool{}
		for _, m := range list {
			for k := range m {
				keys[k] = true
			}
		}
		cols := make([]string, 0, len(keys))
		for k := range keys {
			cols = append(cols, k)
		}
		sort.Strings(cols)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
		for _, m := range list {
			vals := make([]string, len(cols))
			for i, c := range cols {
				vals[i] = scalar(m[c])
			}
			fmt.Fprintln(tw, strings.Join(vals, "\t"))
		}
		tw.Flush()
		return
	}
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s:\t%s\n", k, scalar(obj[k]))
		}
		tw.Flush()
		return
	}
	fmt.Fprintln(w, string(raw))
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
		return fmt.Sprint(x)
	case bool:
		return fmt.Sprint(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
