package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/vipgate/vipgate/internal/testenv"
)

// smtpSink is a minimal in-process SMTP server recording what it gets.
type smtpSink struct {
	addr string
	mu   sync.Mutex
	msgs []string
}

func newSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	k := &smtpSink{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{k: k}, nil }))
	s.Domain = "sink.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return k
}

func (k *smtpSink) messages() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.msgs...)
}

type sinkSession struct{ k *smtpSink }

func (s *sinkSession) Reset()                               {}
func (s *sinkSession) Logout() error                        { return nil }
func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.k.mu.Lock()
	s.k.msgs = append(s.k.msgs, string(b))
	s.k.mu.Unlock()
	return err
}

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
	sink := newSMTPSink(t)
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	f := filepath.Join(t.TempDir(), "cluster.yaml")
	os.WriteFile(f, []byte(alertsCluster(sink.addr, dead)), 0o600)
	var out, errb bytes.Buffer
	code := runAlerts(context.Background(), []string{"test", "-f", f, "--node", "gw9"}, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1 (one mailer failed)\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"mailer down-relay (" + dead + ", tls none)",
		"connect  FAILED",
		"=> NOT delivered: connect:",
		"mailer sink (" + sink.addr + ", tls none)",
		"rcpt     ok",
		"data     ok",
		"=> delivered",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if m := sink.messages(); len(m) != 1 || !strings.Contains(m[0], "test mail from vipgate alerts test") || !strings.Contains(m[0], "gw9") {
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
	sink := newSMTPSink(t)
	n := startNode(t, alertsCluster(sink.addr, fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))))
	var out, errb bytes.Buffer
	code := runAlerts(context.Background(), []string{"test", "--admin", n.admin, "--to", "someone@example.test"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "to someone@example.test") || !strings.Contains(out.String(), "=> delivered") {
		t.Errorf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
	if m := sink.messages(); len(m) != 1 || !strings.Contains(m[0], "To: someone@example.test") || !strings.Contains(m[0], "X-Vipgate-Mailer: sink") {
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
	sink := newSMTPSink(t)
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
`, fe, a.addr, b.addr, sink.addr))
	testenv.Eventually(t, 10*time.Second, "b UP and checked", func() bool {
		st, ok := n.serverRow("be", "b")
		return st == "UP" && ok
	})
	b.kill()
	testenv.Eventually(t, 10*time.Second, "the DOWN mail", func() bool { return len(sink.messages()) == 1 })
	m := sink.messages()[0]
	for _, want := range []string{"server be/b is DOWN", "node t1, datacenter dc1", "backend be: 1 of 2 servers usable"} {
		if !strings.Contains(strings.ReplaceAll(m, "=\r\n", ""), want) {
			t.Errorf("mail lacks %q:\n%s", want, m)
		}
	}
}
