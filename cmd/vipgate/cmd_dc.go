package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

// cmdDC shows the datacenters and commits a manual failover.
func cmdDC(ctx context.Context, args []string) int {
	usage := func() {
		fmt.Fprintf(os.Stderr, "usage: vipgate dc status | failover DATACENTER [--reason TEXT] [--force] [--hold DURATION]  [--admin ADDR] [--token TOKEN]\n")
		fmt.Fprintf(os.Stderr, "  a manual failover holds: with failover.mode auto, no automatic decision replaces it for\n"+
			"  failover.hold_down (or --hold), even when it chose a datacenter the cluster sees as unhealthy\n")
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("dc "+args[0], flag.ContinueOnError)
	client := adminFlags(fs)
	reason := fs.String("reason", "", "failover: why (recorded with the decision)")
	force := fs.Bool("force", false, "failover: even to a datacenter the cluster sees as unhealthy")
	hold := fs.Duration("hold", 0, "failover: keep the choice this long before automatic failover may change it (default failover.hold_down)")
	author := fs.String("author", defaultAuthor(), "failover: who decides (audit trail)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	c := client()
	switch args[0] {
	case "status":
		var out struct {
			Active   string `json:"active"`
			Decision struct {
				DC, Reason, Author string
				Time               time.Time
				HoldUntil          time.Time `json:"hold_until"`
			} `json:"decision"`
			Datacenters []dcInfo `json:"datacenters"`
		}
		if err := c.do(ctx, "GET", "/api/v1/dc", nil, &out); err != nil {
			fmt.Fprintf(os.Stderr, "vipgate dc status: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
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
			fmt.Printf("\nactive %s since %s by %s: %s\n", out.Decision.DC, out.Decision.Time.Local().Format(time.DateTime), out.Decision.Author, out.Decision.Reason)
			if out.Decision.HoldUntil.After(time.Now()) {
				fmt.Printf("held until %s: no automatic failover before then\n", out.Decision.HoldUntil.Local().Format(time.DateTime))
			}
		} else {
			fmt.Printf("\nactive %s (the primary; no failover decided yet)\n", out.Active)
		}
		return 0
	case "failover":
		if len(pos) != 1 {
			usage()
			return 2
		}
		if *hold < 0 {
			fmt.Fprintf(os.Stderr, "vipgate dc failover: --hold %s is negative\n", *hold)
			return 2
		}
		body := map[string]any{"datacenter": pos[0], "reason": *reason, "force": *force, "author": *author}
		if *hold > 0 {
			body["hold"] = hold.String()
		}
		var out struct {
			Active, Previous, Mode, Hold string
			Index                        uint64
			HoldUntil                    time.Time `json:"hold_until"`
		}
		if err := c.do(ctx, "POST", "/api/v1/dc/failover", body, &out); err != nil {
			fmt.Fprintf(os.Stderr, "vipgate dc failover: %v\n", err)
			return 1
		}
		fmt.Printf("active datacenter: %s (was %s), committed at index %d\n", out.Active, out.Previous, out.Index)
		if out.Mode == "auto" {
			fmt.Printf("held until %s (%s): automatic failover (failover.mode: auto) will not change it before then,\n"+
				"even if %s is unhealthy; after that it fails over as usual\n", out.HoldUntil.Local().Format(time.DateTime), out.Hold, out.Active)
		} else {
			fmt.Printf("failover.mode is %s: it stays until the next manual failover\n", out.Mode)
		}
		return 0
	}
	usage()
	return 2
}
