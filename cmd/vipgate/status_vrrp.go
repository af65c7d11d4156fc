package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/vipgate/vipgate/cluster/vrrp"
)

// printVRRP renders the vrrp section as one line per instance — state,
// effective (base) priority, master, last transition and why — then the
// tracks that fail and the drop counters, which is where a misconfigured
// peer shows up.
func printVRRP(w io.Writer, raw json.RawMessage) error {
	var rows []vrrp.Status
	if err := json.Unmarshal(raw, &rows); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tVRID\tINTERFACE\tSTATE\tPRIORITY\tMASTER\tLAST TRANSITION\tREASON\tVIPS")
	for _, r := range rows {
		prio := fmt.Sprint(r.Priority)
		if r.Priority != r.BasePriority {
			prio = fmt.Sprintf("%d (base %d)", r.Priority, r.BasePriority)
		}
		last := "-"
		if !r.LastTransition.IsZero() {
			last = ago(r.LastTransition) + " ago"
		}
		// The node name is what an operator acts on; the address stays
		// beside it because it is what tcpdump and keepalived show.
		master := orDash(r.Master)
		if r.MasterNode != "" {
			master = r.MasterNode + " (" + master + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.VRID, r.Interface, r.State, prio,
			master, last, orDash(r.LastReason), strings.Join(r.VIPs, ","))
	}
	tw.Flush()
	for _, r := range rows {
		for _, t := range r.Tracks {
			if !t.Up {
				fmt.Fprintf(w, "%s: track %s failing: %s\n", r.Name, t.Name, orDash(t.Reason))
			}
		}
		reasons := make([]string, 0, len(r.Dropped))
		for k := range r.Dropped {
			if k != "other_vrid" { // normal with several virtual routers on a link
				reasons = append(reasons, k)
			}
		}
		sort.Strings(reasons)
		for _, k := range reasons {
			fmt.Fprintf(w, "%s: %d adverts dropped (%s)\n", r.Name, r.Dropped[k], k)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
