package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/plugins/alert/email"
)

// runAlerts is `vipgate alerts ARGS...` (the tests call it so).
func runAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runSub(ctx, "alerts", args, stdout, stderr)
}

// newAlertsCmd: `vipgate alerts test` sends a test mail through every
// mailer and reports each SMTP step; `vipgate alerts status` shows the
// queue; retry and discard handle the dead letters.
func newAlertsCmd() *cobra.Command {
	var asJSON bool
	cmd, client := newGroup("alerts", "alerting: test, status, retry, discard")

	var file, to, node string
	test := &cobra.Command{
		Use:   "test [-f cluster.yaml] [--to ADDR,...] [--node NAME]",
		Short: "send a test mail through each mailer and report every SMTP step",
		Long: `Send a test mail through each configured mailer and report every step
(connect, TLS, EHLO, AUTH, MAIL, RCPT, DATA). With -f it reads the mailers
from a cluster file and sends from this machine, so a config can be tested
before it is applied; without -f it asks a running node to send. The exit
status is 1 unless every mailer delivered.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var rcpts []string
			for _, s := range strings.Split(to, ",") {
				if s = strings.TrimSpace(s); s != "" {
					rcpts = append(rcpts, s)
				}
			}
			var rep email.TestReport
			if file != "" {
				c, err := config.LoadFile(file)
				if err != nil {
					return err
				}
				name := node
				if name == "" {
					name, _ = os.Hostname()
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
				defer cancel()
				rep = email.TestMailers(ctx, &c.Alerts, name, "", rcpts)
			} else if err := client().do(cmd.Context(), "POST", "/api/v1/alerts/test", alertTestRequest{To: rcpts}, &rep); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				enc.Encode(rep)
			} else {
				printTestReport(stdout, rep)
			}
			if rep.Error != "" && len(rep.Mailers) == 0 {
				fmt.Fprintf(stderr, "vipgate alerts test: %s\n", rep.Error)
				return exitCode(exitFailed)
			}
			for _, m := range rep.Mailers {
				if !m.OK {
					return exitCode(exitFailed)
				}
			}
			return nil
		},
	}
	tf := test.Flags()
	tf.StringVarP(&file, "file", "f", "", "cluster file to read the alerts section from (send from here, not through a node)")
	tf.StringVar(&to, "to", "", "comma-separated recipients (default: every rule's recipients)")
	tf.StringVar(&node, "node", "", "with -f: the node name to announce in EHLO and the mail (default: this host's name)")
	_ = test.MarkFlagFilename("file", "yaml", "yml")

	status := &cobra.Command{
		Use:   "status",
		Short: "the alert queue, counters and dead letters of a running node",
		Long: `Show the alert queue and counters of a running node, and its dead letters:
mails a recipient refused for good (5xx), kept until retried or discarded.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var raw json.RawMessage
			if err := client().do(cmd.Context(), "GET", "/api/v1/alerts", nil, &raw); err != nil {
				return err
			}
			if asJSON {
				cmd.OutOrStdout().Write(raw)
				return nil
			}
			var s email.Stats
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			printAlertStats(cmd.OutOrStdout(), s)
			return nil
		},
	}

	var ids string
	var all bool
	dead := func(action, use, short string) *cobra.Command {
		return &cobra.Command{
			Use:   use,
			Short: short,
			Args:  exactArgs(0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				req := deadLetterRequest{Action: action, All: all}
				for _, f := range strings.Split(ids, ",") {
					if f = strings.TrimSpace(f); f == "" {
						continue
					}
					id, err := strconv.ParseUint(f, 10, 64)
					if err != nil {
						return usageErrorf("--id %q: not a number", f)
					}
					req.IDs = append(req.IDs, id)
				}
				if action == "discard" && len(req.IDs) == 0 && !req.All {
					return usageErrorf("name the dead letters (--id) or give --all")
				}
				var res struct{ Count int }
				if err := client().do(cmd.Context(), "POST", "/api/v1/alerts/dead", req, &res); err != nil {
					return err
				}
				verb := map[string]string{"retry": "requeued", "discard": "discarded"}[action]
				fmt.Fprintf(cmd.OutOrStdout(), "%d dead letter(s) %s\n", res.Count, verb)
				return nil
			},
		}
	}
	retry := dead("retry", "retry [--id N,...]", "put dead letters (all, or --id) back into the queue for the recipients that refused them")
	retry.Flags().StringVar(&ids, "id", "", "comma-separated dead-letter ids (default: all)")
	discard := dead("discard", "discard (--id N,... | --all)", "delete dead letters")
	discard.Flags().StringVar(&ids, "id", "", "comma-separated dead-letter ids")
	discard.Flags().BoolVar(&all, "all", false, "every dead letter")

	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print the raw JSON answer (and a failure as {\"error\": ...})")
	cmd.AddCommand(test, status, retry, discard)
	return cmd
}

func printTestReport(w io.Writer, rep email.TestReport) {
	fmt.Fprintf(w, "from %s to %s\n", rep.From, strings.Join(rep.To, ", "))
	for _, m := range rep.Mailers {
		fmt.Fprintf(w, "\nmailer %s (%s, tls %s)\n", m.Mailer, m.Address, m.TLS)
		for _, s := range m.Steps {
			st := "ok"
			if !s.OK {
				st = "FAILED"
			}
			fmt.Fprintf(w, "  %-8s %-6s %8s  %s\n", s.Step, st, s.Took.Round(time.Millisecond), s.Detail)
		}
		switch {
		case m.OK:
			fmt.Fprintf(w, "  => delivered\n")
		case len(m.Delivered) > 0:
			fmt.Fprintf(w, "  => delivered to %s only\n", strings.Join(m.Delivered, ", "))
		default:
			fmt.Fprintf(w, "  => NOT delivered: %s\n", m.Error)
		}
		for _, to := range slices.Sorted(maps.Keys(m.Rejected)) {
			fmt.Fprintf(w, "     refused for good: %s: %s\n", to, m.Rejected[to])
		}
		for _, to := range slices.Sorted(maps.Keys(m.Deferred)) {
			fmt.Fprintf(w, "     deferred (try later): %s: %s\n", to, m.Deferred[to])
		}
	}
	if rep.Error != "" {
		fmt.Fprintf(w, "\n%s\n", rep.Error)
	}
}

func printAlertStats(w io.Writer, s email.Stats) {
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format(time.DateTime)
	}
	fmt.Fprintf(w, "queued mails      %d (oldest %s)\n", s.Queued, ts(s.OldestQueued))
	fmt.Fprintf(w, "held in windows   %d events\n", s.PendingEvents)
	fmt.Fprintf(w, "sent              %d\n", s.Sent)
	fmt.Fprintf(w, "failed attempts   %d\n", s.Failed)
	fmt.Fprintf(w, "dropped           %d\n", s.Dropped)
	fmt.Fprintf(w, "refused (5xx)     %d recipient(s), %d dead letter(s) kept\n", s.Rejected, s.DeadLetters)
	fmt.Fprintf(w, "corrupt records   %d\n", s.Corrupt)
	fmt.Fprintf(w, "bus drops         %d\n", s.BusDropped)
	fmt.Fprintf(w, "not leader (skip) %d\n", s.NotLeader)
	fmt.Fprintf(w, "last sent         %s\n", ts(s.LastSent))
	if s.RetryAt != nil {
		fmt.Fprintf(w, "next retry        %s\n", ts(s.RetryAt))
	}
	if s.LastError != "" {
		fmt.Fprintf(w, "last error        %s (%s)\n", s.LastError, ts(s.LastErrorAt))
	}
	fmt.Fprintf(w, "rules             %d\n", s.Rules)
	for _, d := range s.Dead {
		fmt.Fprintf(w, "dead letter %d (%s) %q\n", d.ID, d.DeadAt.Local().Format(time.DateTime), d.Subject)
		for _, to := range slices.Sorted(maps.Keys(d.Rejected)) {
			fmt.Fprintf(w, "  %s: %s\n", to, d.Rejected[to])
		}
	}
	if len(s.Dead) > 0 {
		fmt.Fprintf(w, "(vipgate alerts retry [--id N] once the addresses work; vipgate alerts discard --id N to give up)\n")
	}
	for _, m := range s.Mailers {
		fmt.Fprintf(w, "mailer %s (%s): sent %d, failed %d, last ok %s", m.Name, m.Address, m.Sent, m.Failed, ts(m.LastOK))
		if m.LastError != "" {
			fmt.Fprintf(w, ", last error %s: %s", ts(m.LastErrorAt), m.LastError)
		}
		fmt.Fprintln(w)
	}
}
