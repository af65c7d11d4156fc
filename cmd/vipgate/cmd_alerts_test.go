package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testsmtp"
)

func alertsCluster(sink, dead string) string {
	return fmt.Sprintf(`
alerts:
  from: vipgate@example.test
  mailers:
    - {name: down-relay, address: %q, connect_timeout: 1s}
    - {name: sink, address: %q}
  rules:
    - {events: [server.*], to: ops@example.test, coalesce: 0}
`, dead, sink)
}

func TestAlertsTestFromFile(t *testing.T) {
	sink := testsmtp.Start(t)
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	f := filepath.Join(t.TempDir(), "cluster.yaml")
	os.WriteFile(f, []byte(alertsCluster(sink.Addr, dead)), 0o600)
	var out, errb bytes.Buffer
	code := runAlerts(context.Background(), []string{"test", "-f", f, "--node", "gw9"}, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1 (one mailer failed)\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"mailer down-relay (" + dead + ", tls none)",
		"connect  FAILED",
		"=> NOT delivered: connect:",
		"mailer sink (" + sink.Addr + ", tls none)",
		"rcpt     ok",
		"data     ok",
		"=> delivered",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if m := sink.Messages(); len(m) != 1 || !strings.Contains(m[0].Raw, "test mail from vipgate alerts test") || !strings.Contains(m[0].Raw, "gw9") {
		t.Errorf("sink got %q", m)
	}

	// A config error is reported with its position, nothing is sent.
	os.WriteFile(f, []byte("alerts:\n  mailers: [{name: m, address: nope}]\n"), 0o600)
	out.Reset()
	errb.Reset()
	if code := runAlerts(context.Background(), []string{"test", "-f", f}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "cluster.yaml:2") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

func TestAlertsTestThroughNode(t *testing.T) {
	sink := testsmtp.Start(t)
	n := startNode(t, alertsCluster(sink.Addr, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))))
	// The document has no frontends, so startNode cannot tell when it is
	// applied: wait for the alerter to hold its rule.
	testenv.Eventually(t, 10*time.Second, "the alerts config applied", func() bool {
		var sec map[string]any
		return n.get("/api/v1/status/alerts", &sec) == nil && sec["rules"] == float64(1)
	})
	var out, errb bytes.Buffer
	code := runAlerts(context.Background(), []string{"test", "--admin", n.admin, "--to", "someone@example.test"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "to someone@example.test") || !strings.Contains(out.String(), "=> delivered") {
		t.Errorf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
	if m := sink.Messages(); len(m) != 1 || !strings.Contains(m[0].Raw, "To: someone@example.test") || !strings.Contains(m[0].Raw, "X-Vipgate-Mailer: sink") {
		t.Errorf("sink got %q", m)
	}

	out.Reset()
	if code := runAlerts(context.Background(), []string{"status", "--admin", n.admin}, &out, &errb); code != 0 {
		t.Fatalf("status exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"queued mails      0", "mailer down-relay (", "rules             1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	var sec map[string]any
	if err := n.get("/api/v1/status/alerts", &sec); err != nil || sec["queued"] == nil {
		t.Errorf("status section: %v %v", sec, err)
	}
}

// TestNodeMailsServerDown: the whole node (health checks, bus, alerter,
// proxy state in the body) mails a backend server going down.
func TestNodeMailsServerDown(t *testing.T) {
	sink := testsmtp.Start(t)
	a := startGreeter(t, "a", "127.0.0.1:0")
	b := startGreeter(t, "b", "127.0.0.1:0")
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	n := startNode(t, fmt.Sprintf(`
frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    check: {kind: tcp, inter: 50ms, rise: 1, fall: 1}
    servers:
      - {name: a, address: %q}
      - {name: b, address: %q}
alerts:
  from: vipgate@example.test
  mailers: [{name: sink, address: %q}]
  rules:
    - {events: [server.down], to: ops@example.test, coalesce: 0}
`, fe, a.addr, b.addr, sink.Addr))
	testenv.Eventually(t, 10*time.Second, "b UP and checked", func() bool {
		st, ok := n.serverRow("be", "b")
		return st == "UP" && ok
	})
	b.kill()
	testenv.Eventually(t, 10*time.Second, "the DOWN mail", func() bool { return len(sink.Messages()) == 1 })
	m := sink.Messages()[0].Raw
	for _, want := range []string{"server be/b is DOWN", "node t1, datacenter dc1", "backend be: 1 of 2 servers usable"} {
		if !strings.Contains(strings.ReplaceAll(m, "=\r\n", ""), want) {
			t.Errorf("mail lacks %q:\n%s", want, m)
		}
	}
}

// TestAlertsDeadLettersThroughNode: a recipient the relay refuses (550)
// shows up as a dead letter in `alerts status`; `alerts retry` tries it
// again, `alerts discard` needs ids or --all.
func TestAlertsDeadLettersThroughNode(t *testing.T) {
	sink := testsmtp.Start(t)
	sink.Answer("nobody@example.test", 550)
	a := startGreeter(t, "a", "127.0.0.1:0")
	n := startNode(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: a, address: %q}]}]
alerts:
  from: vipgate@example.test
  mailers: [{name: sink, address: %q}]
  rules:
    - {events: [server.admin], min_level: notice, to: [ops@example.test, nobody@example.test], coalesce: 0}
`, a.addr, sink.Addr))
	if code, body := n.do(t, call{method: "POST", path: "/api/v1/servers/be/a/state", body: `{"state": "drain"}`}); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := runAlerts(context.Background(), append(args, "--admin", n.admin), &out, &errb)
		return code, out.String() + errb.String()
	}
	testenv.Eventually(t, 10*time.Second, "a dead letter for nobody@", func() bool {
		_, out := run("status")
		return strings.Contains(out, "1 dead letter(s) kept") && strings.Contains(out, "nobody@example.test: sink: SMTP error 550: answer 550 for nobody@example.test")
	})
	// alerts test names the refused recipient and its answer.
	code, out := run("test", "--to", "ops@example.test,nobody@example.test")
	if code != 1 || !strings.Contains(out, "=> delivered to ops@example.test only") || !strings.Contains(out, "refused for good: nobody@example.test: SMTP error 550") ||
		!strings.Contains(out, "to every recipient") {
		t.Errorf("alerts test: %d\n%s", code, out)
	}
	if code, out := run("retry"); code != 0 || !strings.Contains(out, "1 dead letter(s) requeued") {
		t.Errorf("retry: %d %s", code, out)
	}
	// Refused again: a dead letter again.
	testenv.Eventually(t, 10*time.Second, "dead again", func() bool {
		_, out := run("status")
		return strings.Contains(out, "2 recipient(s), 1 dead letter(s) kept")
	})
	if code, out := run("discard"); code != 2 || !strings.Contains(out, "--all") {
		t.Errorf("discard without ids: %d %s", code, out)
	}
	if code, out := run("discard", "--all"); code != 0 || !strings.Contains(out, "1 dead letter(s) discarded") {
		t.Errorf("discard --all: %d %s", code, out)
	}
	if _, out := run("status"); !strings.Contains(out, "0 dead letter(s) kept") {
		t.Errorf("after discard:\n%s", out)
	}
}
