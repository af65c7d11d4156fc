package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/plugins/alert/email"
)

// cmdAlerts: `vipgate alerts test` sends a test mail through every mailer
// and reports each SMTP step; `vipgate alerts status` shows the queue.
func cmdAlerts(ctx context.Context, args []string) int {
	return runAlerts(ctx, args, os.Stdout, os.Stderr)
}

func runAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintf(stderr, `usage: vipgate alerts test [-f cluster.yaml] [--to ADDR,...] [--node NAME] [--admin ADDR] [--token TOKEN]
       vipgate alerts status [--json] [--admin ADDR] [--token TOKEN]
       vipgate alerts retry [--id N,...] [--admin ADDR] [--token TOKEN]
       vipgate alerts discard (--id N,... | --all) [--admin ADDR] [--token TOKEN]

test   sends a test mail through each configured mailer and reports every step
       (connect, TLS, EHLO, AUTH, MAIL, RCPT, DATA). With -f it reads the mailers
       from a cluster file and sends from this machine, so a config can be tested
       before it is applied; without -f it asks a running node to send.
status shows the alert queue and counters of a running node, and its dead
       letters: mails a recipient refused for good (5xx), kept until
retry  puts dead letters (all, or --id) back into the queue for the recipients
       that refused them, or
discard deletes them.
`)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("alerts "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := adminFlags(fs)
	file := fs.String("f", "", "test: cluster file to read the alerts section from (send from here, not through a node)")
	to := fs.String("to", "", "test: comma-separated recipients (default: every rule's recipients)")
	node := fs.String("node", "", "test -f: the node name to announce in EHLO and the mail (default: this host's name)")
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	ids := fs.String("id", "", "retry/discard: comma-separated dead-letter ids (default: all for retry)")
	all := fs.Bool("all", false, "discard: every dead letter")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var rcpts []string
	for _, s := range strings.Split(*to, ",") {
		if s = strings.TrimSpace(s); s != "" {
			rcpts = append(rcpts, s)
		}
	}
	switch args[0] {
	case "test":
		var rep email.TestReport
		if *file != "" {
			c, err := config.LoadFile(*file)
			if err != nil {
				fmt.Fprintf(stderr, "vipgate alerts test: %v\n", err)
				return 1
			}
			name := *node
			if name == "" {
				name, _ = os.Hostname()
			}
			ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			rep = email.TestMailers(ctx, &c.Alerts, name, "", rcpts)
		} else if err := client().do(ctx, "POST", "/api/v1/alerts/test", alertTestRequest{To: rcpts}, &rep); err != nil {
			fmt.Fprintf(stderr, "vipgate alerts test: %v\n", err)
			return 1
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(rep)
		} else {
			printTestReport(stdout, rep)
		}
		if rep.Error != "" && len(rep.Mailers) == 0 {
			fmt.Fprintf(stderr, "vipgate alerts test: %s\n", rep.Error)
			return 1
		}
		for _, m := range rep.Mailers {
			if !m.OK {
				return 1
			}
		}
		return 0
	case "status":
		var raw json.RawMessage
		if err := client().do(ctx, "GET", "/api/v1/alerts", nil, &raw); err != nil {
			fmt.Fprintf(stderr, "vipgate alerts status: %v\n", err)
			return 1
		}
		if *asJSON {
			stdout.Write(raw)
			return 0
		}
		var s email.Stats
		if err := json.Unmarshal(raw, &s); err != nil {
			fmt.Fprintf(stderr, "vipgate alerts status: %v\n", err)
			return 1
		}
		printAlertStats(stdout, s)
		return 0
	case "retry", "discard":
		req := deadLetterRequest{Action: args[0], All: *all}
		for _, f := range strings.Split(*ids, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			id, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				fmt.Fprintf(stderr, "vipgate alerts %s: --id %q: not a number\n", args[0], f)
				return 2
			}
			req.IDs = append(req.IDs, id)
		}
		if args[0] == "discard" && len(req.IDs) == 0 && !req.All {
			fmt.Fprintf(stderr, "vipgate alerts discard: name the dead letters (--id) or give --all\n")
			return 2
		}
		var res struct{ Count int }
		if err := client().do(ctx, "POST", "/api/v1/alerts/dead", req, &res); err != nil {
			fmt.Fprintf(stderr, "vipgate alerts %s: %v\n", args[0], err)
			return 1
		}
		verb := map[string]string{"retry": "requeued", "discard": "discarded"}[args[0]]
		fmt.Fprintf(stdout, "%d dead letter(s) %s\n", res.Count, verb)
		return 0
	}
	usage()
	return 2
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
