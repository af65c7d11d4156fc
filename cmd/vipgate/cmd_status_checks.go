package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/core/stats"
)

// newStatusChecksCmd: `vipgate status checks [BACKEND[/SERVER]]`, the
// health of each server as its checks see it: state and streak toward the
// next change (HAProxy's "UP 1/3"), the last result with its reason and
// age, counters, and passive health's failures in live traffic. Naming
// one server adds its recent events: when and why it changed.
func newStatusChecksCmd(asJSON *bool, client *func() *adminClient) *cobra.Command {
	return &cobra.Command{
		Use:   "checks [BACKEND[/SERVER]]",
		Short: "health checks: each server's state, streak, last result and why, passive failures",
		Long: `Show the health checks of a running node, one line per server:

    STATUS   the proxy's view: UP, DOWN, DRAIN, MAINT (an operator's), NOLB...
    CHECK    the check state and its streak toward the next change, as HAProxy
             shows it: "UP 1/3" is one failure of the three (fall) that take
             it DOWN; "DOWN 1/2" one success of the two (rise) that bring it UP
    LAST     the last result (ok or FAILED), how long ago, how long it took,
             and its reason (the HTTP status, the timeout, the refused connect)
    CHECKS   checks run and failed; PASSIVE: times live traffic's errors
             acted on the server (observe/error_limit/on_error)

With BACKEND, that backend's servers; with BACKEND/SERVER, that server and
its recent events (each change of state with its reason).`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			c := (*client)()
			var checks []health.ServerCheckStatus
			if err := c.do(cmd.Context(), "GET", "/api/v1/checks", nil, &checks); err != nil {
				return err
			}
			want := ""
			if len(pos) == 1 {
				want = pos[0]
				var sel []health.ServerCheckStatus
				for _, s := range checks {
					if s.Backend == want || s.Backend+"/"+s.Server == want {
						sel = append(sel, s)
					}
				}
				if len(sel) == 0 {
					return fmt.Errorf("no server %s on this node (vipgate status proxy lists them)", want)
				}
				checks = sel
			}
			if *asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(checks)
			}
			// The proxy's status says what the checks do not: an operator's
			// drain or maintenance.
			var snap stats.Snapshot
			_ = c.do(cmd.Context(), "GET", "/api/v1/status/proxy", nil, &snap)
			printChecks(cmd.OutOrStdout(), checks, serverStatuses(snap))
			if strings.Contains(want, "/") {
				evs, err := eventsAbout(cmd, c, want, 10)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "\nrecent events of %s (vipgate events --subject %s):\n", want, want)
				if len(evs) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "  none kept")
				}
				for _, ev := range evs {
					printEvent(cmd.OutOrStdout(), ev, false)
				}
			}
			return nil
		},
	}
}

// eventsAbout is the last n events about subject the node keeps.
func eventsAbout(cmd *cobra.Command, c *adminClient, subject string, n int) ([]events.Event, error) {
	shown, _, _, err := recentEvents(cmd, c, eventFilter{subject: subject, level: events.Debug}, n)
	return shown, err
}

func serverStatuses(s stats.Snapshot) map[string]string {
	m := map[string]string{}
	for _, b := range s.Backends {
		for _, sv := range b.Servers {
			m[b.Name+"/"+sv.Name] = sv.Status
		}
	}
	return m
}

func printChecks(w io.Writer, checks []health.ServerCheckStatus, status map[string]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tSERVER\tADDRESS\tSTATUS\tKIND\tCHECK\tLAST\tCHECKS\tFAILED\tPASSIVE\tREASON")
	for _, s := range checks {
		st := status[s.Backend+"/"+s.Server]
		if st == "" {
			st = "-"
		}
		kind, check, last, reason := "-", "not checked", "-", ""
		if s.Kind != "" {
			kind = s.Kind
			check = checkState(s)
			if !s.Last.Time.IsZero() {
				res := "ok"
				if !s.Last.OK {
					res = "FAILED"
				}
				last = fmt.Sprintf("%s %s (%s)", res, ago(s.Last.Time), s.Last.Duration.Round(time.Millisecond))
				reason = s.Last.Reason
			} else {
				last = "pending"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Backend, s.Server, s.Addr, st, kind, check, last,
			s.Checks, s.Failures, s.TrafficFailures, reason)
	}
	tw.Flush()
}

// checkState is HAProxy's check column: the state and, while a change is
// under way, the streak toward it ("UP 1/3": one of fall failures).
func checkState(s health.ServerCheckStatus) string {
	if !s.Enabled {
		return "disabled (counts as up)"
	}
	state := strings.ToUpper(s.Health)
	if s.Streak == 0 {
		return state
	}
	need := s.Fall
	if !strings.EqualFold(s.Health, "up") {
		need = s.Rise
	}
	return fmt.Sprintf("%s %d/%d", state, s.Streak, need)
}
