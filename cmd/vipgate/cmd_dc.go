package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newDCCmd shows the datacenters and commits a manual failover.
func newDCCmd() *cobra.Command {
	cmd, client := newGroup("dc", "datacenters: status, failover")

	status := &cobra.Command{
		Use:   "status",
		Short: "each datacenter's role, health (as the cluster sees it) and the active one",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Active   string `json:"active"`
				Decision struct {
					DC, Reason, Author string
					Time               time.Time
					HoldUntil          time.Time `json:"hold_until"`
				} `json:"decision"`
				Datacenters []dcInfo `json:"datacenters"`
			}
			if err := client().do(cmd.Context(), "GET", "/api/v1/dc", nil, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DATACENTER\tROLE\tACTIVE\tHEALTH\tSINCE\tREASON")
			for _, d := range out.Datacenters {
				act, health, since := "", "unknown", ""
				if d.Active {
					act = "*"
				}
				if d.Healthy != nil {
					health = map[bool]string{true: "healthy", false: "UNHEALTHY"}[*d.Healthy]
					since = d.Since.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Role, act, health, since, d.Reason)
			}
			tw.Flush()
			if out.Decision.DC != "" {
				fmt.Fprintf(w, "\nactive %s since %s by %s: %s\n", out.Decision.DC, out.Decision.Time.Local().Format(time.DateTime), out.Decision.Author, out.Decision.Reason)
				if out.Decision.HoldUntil.After(time.Now()) {
					fmt.Fprintf(w, "held until %s: no automatic failover before then\n", out.Decision.HoldUntil.Local().Format(time.DateTime))
				}
			} else {
				fmt.Fprintf(w, "\nactive %s (the primary; no failover decided yet)\n", out.Active)
			}
			return nil
		},
	}

	var reason string
	var author func() string
	var force bool
	var hold time.Duration
	failover := &cobra.Command{
		Use:   "failover DATACENTER [--reason TEXT] [--force] [--hold DURATION]",
		Short: "make DATACENTER the active one (committed through raft)",
		Long: `Make DATACENTER the active one, committed through raft. A manual failover
holds: with failover.mode auto, no automatic decision replaces it for
failover.hold_down (or --hold), even when it chose a datacenter the cluster
sees as unhealthy.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if hold < 0 {
				return usageErrorf("--hold %s is negative", hold)
			}
			body := map[string]any{"datacenter": pos[0], "reason": reason, "force": force, "author": author()}
			if hold > 0 {
				body["hold"] = hold.String()
			}
			var out struct {
				Active, Previous, Mode, Hold string
				Index                        uint64
				HoldUntil                    time.Time `json:"hold_until"`
			}
			if err := client().do(cmd.Context(), "POST", "/api/v1/dc/failover", body, &out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "active datacenter: %s (was %s), committed at index %d\n", out.Active, out.Previous, out.Index)
			if out.Mode == "auto" {
				fmt.Fprintf(w, "held until %s (%s): automatic failover (failover.mode: auto) will not change it before then,\n"+
					"even if %s is unhealthy; after that it fails over as usual\n", out.HoldUntil.Local().Format(time.DateTime), out.Hold, out.Active)
			} else {
				fmt.Fprintf(w, "failover.mode is %s: it stays until the next manual failover\n", out.Mode)
			}
			return nil
		},
	}
	ff := failover.Flags()
	ff.StringVar(&reason, "reason", "", "why (recorded with the decision)")
	ff.BoolVar(&force, "force", false, "even to a datacenter the cluster sees as unhealthy")
	ff.DurationVar(&hold, "hold", 0, "keep the choice this long before automatic failover may change it (default failover.hold_down)")
	author = authorFlag(ff, "who decides (audit trail)")

	cmd.AddCommand(status, failover)
	return cmd
}
