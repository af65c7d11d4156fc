package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vipgate/vipgate/core/events"
)

// newEventsCmd prints a node's events (server up/down with the check's
// reason, VRRP transitions, failovers, raft leadership, config applies…),
// the history it keeps and, with --follow, each new one as it happens.
func newEventsCmd() *cobra.Command {
	var f eventFilter
	var n int
	var follow, asJSON bool
	var kinds string
	var level string
	var client func() *adminClient
	cmd := &cobra.Command{
		Use:   "events [-n N] [--follow] [--kind KIND,...] [--subject BACKEND[/SERVER]] [--level LEVEL] [--json]",
		Short: "the node's events: server up/down and why, VRRP transitions, failovers, config applies",
		Long: `Print a running node's events, oldest first: servers going UP or DOWN (with
the check's reason), backends losing their last server, VRRP transitions
(with the reason: priority, a peer's advert, a tracked script), datacenter
failovers and failbacks (who, why), raft leadership and quorum, config
applies, certificate expiry, alert delivery. A node keeps its last 256
events in memory (a restart clears them; alerts and logs keep them longer).
With --follow it then prints each new event as it is published, until
interrupted.

A kind matches itself or, given without a dot, every kind of its family
(--kind server,vrrp). --subject be matches be and be/SERVER. --level shows
that severity and the more severe ones (emerg, alert, crit, err, warning,
notice, info, debug).`,
		Example: `  vipgate events --subject exchange/ex1        # why is ex1 DOWN (and since when)
  vipgate events --kind vrrp,raft             # why did the VIP move
  vipgate events --kind dc -n 10              # why did the datacenter fail over
  vipgate events -f --level warning           # watch what goes wrong`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return usageErrorf("-n must be positive")
			}
			if kinds != "" {
				for _, k := range strings.Split(kinds, ",") {
					if k = strings.TrimSpace(k); k != "" {
						f.kinds = append(f.kinds, k)
					}
				}
			}
			f.level = events.Debug
			if level != "" {
				l, err := events.ParseLevel(level)
				if err != nil {
					return &usageError{err.Error()}
				}
				f.level = l
			}
			return showEvents(cmd, client(), f, n, follow, asJSON)
		},
	}
	fl := cmd.Flags()
	client = adminFlags(fl)
	fl.IntVarP(&n, "lines", "n", 20, "print the last N matching events the node keeps")
	fl.BoolVarP(&follow, "follow", "f", false, "then print each new event as it happens, until interrupted")
	fl.StringVar(&kinds, "kind", "", "only these kinds, comma-separated (server.down, or a family: server, vrrp, dc, raft, config)")
	fl.StringVar(&f.subject, "subject", "", "only events about this: BACKEND/SERVER, BACKEND (and its servers), a VRRP instance, a datacenter")
	fl.StringVar(&level, "level", "", "only this severity and more severe ones (err, warning, notice, info)")
	fl.BoolVar(&asJSON, "json", false, "one JSON object a line (and a failure as {\"error\": ...})")
	_ = cmd.RegisterFlagCompletionFunc("kind", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"server", "backend", "vrrp", "dc", "raft", "config", "cert", "lua", "frontend", "alert"}, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("level", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// eventFilter is what --kind, --subject and --level let through.
type eventFilter struct {
	kinds   []string
	subject string
	level   events.Level
}

func (f eventFilter) match(ev events.Event) bool {
	if ev.Level > f.level {
		return false
	}
	if f.subject != "" && ev.Subject != f.subject && !strings.HasPrefix(ev.Subject, f.subject+"/") {
		return false
	}
	if len(f.kinds) == 0 {
		return true
	}
	for _, k := range f.kinds {
		if string(ev.Kind) == k || (!strings.Contains(k, ".") && strings.HasPrefix(string(ev.Kind), k+".")) {
			return true
		}
	}
	return false
}

func showEvents(cmd *cobra.Command, c *adminClient, f eventFilter, n int, follow, asJSON bool) error {
	w := cmd.OutOrStdout()
	shown, kept, last, err := recentEvents(cmd, c, f, n)
	if err != nil {
		return err
	}
	for _, ev := range shown {
		printEvent(w, ev, asJSON)
	}
	if !follow {
		if len(shown) == 0 && !asJSON {
			fmt.Fprintf(cmd.ErrOrStderr(), "no matching event among the %d this node keeps\n", kept)
		}
		return nil
	}
	// The stream repeats what the node keeps; what was printed is skipped
	// by its sequence number, so nothing published since is missed.
	err = c.stream(cmd.Context(), "/api/v1/events?follow=1&n=100000", func(line []byte) error {
		var ev events.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("decoding an event: %w", err)
		}
		if ev.Kind != eventsDropped && ev.Seq <= last {
			return nil
		}
		if ev.Kind == eventsDropped || f.match(ev) {
			printEvent(w, ev, asJSON)
		}
		return nil
	})
	if cmd.Context().Err() != nil {
		return nil // interrupted: the usual way to stop following
	}
	if err == nil {
		return fmt.Errorf("the node closed the event stream (stopping?)")
	}
	return err
}

// printEvent prints one event a line: time, severity, kind, subject,
// node/datacenter and the message; or the event as JSON.
func printEvent(w io.Writer, ev events.Event, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	subject := ev.Subject
	if subject == "" {
		subject = "-"
	}
	fmt.Fprintf(w, "%s  %-7s  %-18s  %-20s  %s/%s  %s\n", ev.Time.Local().Format("2006-01-02 15:04:05.000"),
		ev.Level, ev.Kind, subject, ev.Node, ev.DC, ev.Message)
}

// recentEvents is the last n events f lets through of those the node
// keeps (kept), oldest first, and the newest sequence number it has.
func recentEvents(cmd *cobra.Command, c *adminClient, f eventFilter, n int) (shown []events.Event, kept int, last uint64, err error) {
	var evs []events.Event
	if err := c.do(cmd.Context(), "GET", "/api/v1/events?n=100000", nil, &evs); err != nil {
		return nil, 0, 0, err
	}
	for _, ev := range evs {
		last = max(last, ev.Seq)
		if f.match(ev) {
			shown = append(shown, ev)
		}
	}
	if len(shown) > n {
		shown = shown[len(shown)-n:]
	}
	return shown, len(evs), last, nil
}
