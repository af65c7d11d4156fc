package logtarget

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testsyslog"
)

// nodeLog parses a node file's log section, so the targets get the
// defaults and validation a node gets.
func nodeLog(t *testing.T, section string) config.NodeLog {
	t.Helper()
	n, err := config.ParseNode("node.yaml", []byte("name: n1\ndatacenter: dc1\n"+section))
	if err != nil {
		t.Fatal(err)
	}
	return n.Log
}

func runSet(t *testing.T, s *Set) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitMsgs waits until r has n messages and returns them.
func waitMsgs(t *testing.T, r *testsyslog.Receiver, n int) []testsyslog.Msg {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%d syslog messages", n), func() bool { return len(r.Msgs()) >= n })
	if errs := r.Errs(); len(errs) > 0 {
		t.Fatalf("unparsable messages: %v", errs)
	}
	return r.Msgs()
}

// TestSyslogReceives: over real sockets (unixgram, udp, tcp with both
// framings), in both header formats and both encodings, a receiver gets
// the node's lines and the access lines with the facility, severity, tag,
// pid and message the target says.
func TestSyslogReceives(t *testing.T) {
	host, _ := os.Hostname()
	for _, network := range []string{"unixgram", "udp", "tcp"} {
		for _, format := range []string{"rfc3164", "rfc5424"} {
			for _, enc := range []string{"text", "json"} {
				framings := []string{"octet-counting"}
				if network == "tcp" {
					framings = append(framings, "newline")
				}
				for _, framing := range framings {
					t.Run(strings.Join([]string{network, format, enc, framing}, "/"), func(t *testing.T) {
						r := testsyslog.Listen(t, network)
						s := New(nodeLog(t, fmt.Sprintf("log:\n  level: info\n  targets:\n    - {address: %q, facility: local3, format: %s, encoding: %s, framing: %s, tag: vg}\n",
							r.Addr, format, enc, framing)), new(slog.LevelVar), nil)
						runSet(t, s)
						s.Log.With("sub", "raft").Warn("election lost", "term", 7)
						s.Log.Debug("not sent")
						s.Access.LogAttrs(context.Background(), slog.LevelInfo, `127.0.0.1:1 [07/Dec/2026:12:00:00.000] fe be/s1 1/0/0/1/2 200 5 - - ---- 1/1/1/1/0 0/0 "GET / HTTP/1.1"`,
							slog.String("frontend", "fe"), slog.Int("status", 200))
						msgs := waitMsgs(t, r, 2)
						if len(msgs) != 2 {
							t.Fatalf("%d messages: %v", len(msgs), msgs)
						}
						node, acc := msgs[0], msgs[1]
						for _, m := range msgs {
							if m.Facility != 19 || m.App != "vg" || m.PID != fmt.Sprint(os.Getpid()) || m.RFC5424 != (format == "rfc5424") {
								t.Errorf("header: %+v", m)
							}
							if time.Since(m.Time) > time.Hour && m.Time.Year() != 0 {
								t.Errorf("time %v", m.Time)
							}
							// 3164 over a unix socket leaves the host name to the local daemon.
							if wantHost := host; network == "unixgram" && format == "rfc3164" {
								if m.Host != "" {
									t.Errorf("host %q over a unix socket", m.Host)
								}
							} else if m.Host != wantHost {
								t.Errorf("host %q, want %q", m.Host, wantHost)
							}
						}
						if node.Severity != 4 || acc.Severity != 6 {
							t.Errorf("severities %d, %d: want 4 (warning), 6 (info)", node.Severity, acc.Severity)
						}
						if format == "rfc5424" && (acc.MsgID != "access" || node.MsgID != "-") {
							t.Errorf("msgids %q, %q", node.MsgID, acc.MsgID)
						}
						if enc == "text" {
							if node.Text != `msg="election lost" sub=raft term=7` {
								t.Errorf("node line %q", node.Text)
							}
							if !strings.HasPrefix(acc.Text, "127.0.0.1:1 [07/Dec/2026") || strings.Contains(acc.Text, "status=") {
								t.Errorf("access line %q: want the HAProxy line alone", acc.Text)
							}
							return
						}
						var nj, aj map[string]any
						if err := json.Unmarshal([]byte(node.Text), &nj); err != nil {
							t.Fatalf("node line %q: %v", node.Text, err)
						}
						if err := json.Unmarshal([]byte(acc.Text), &aj); err != nil {
							t.Fatalf("access line %q: %v", acc.Text, err)
						}
						if nj["msg"] != "election lost" || nj["sub"] != "raft" || nj["term"] != 7.0 || nj["time"] != nil {
							t.Errorf("node json %v", nj)
						}
						if aj["frontend"] != "fe" || aj["status"] != 200.0 || !strings.HasPrefix(aj["msg"].(string), "127.0.0.1:1 ") {
							t.Errorf("access json %v", aj)
						}
					})
				}
			}
		}
	}
}

// TestSyslogNeverBlocks: with no receiver, lines beyond the buffer are
// dropped and counted at once; a tcp receiver that drops the connection is
// reconnected to and gets the later lines.
func TestSyslogNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	s := New(nodeLog(t, fmt.Sprintf("log:\n  targets: [{address: %q, buffer: 5}]\n", dir+"/nobody.sock")), new(slog.LevelVar), nil)
	runSet(t, s)
	for i := 0; i < 100; i++ {
		s.Log.Info("line", "i", i)
	}
	tg := s.Targets()[0]
	if d := tg.Dropped(); d < 95 {
		t.Errorf("dropped %d of 100 with a buffer of 5 and no receiver", d)
	}

	r := testsyslog.Listen(t, "tcp")
	s = New(nodeLog(t, fmt.Sprintf("log:\n  targets: [{address: %q}]\n", r.Addr)), new(slog.LevelVar), nil)
	runSet(t, s)
	s.Log.Info("first")
	waitMsgs(t, r, 1)
	r.CloseConns()
	// Lines written into the closed connection may be lost (counted);
	// keep writing until one arrives over a new connection.
	testenv.Eventually(t, 15*time.Second, "a line after the reconnect", func() bool {
		s.Log.Info("again")
		for _, m := range r.Msgs() {
			if strings.Contains(m.Text, `msg=again`) {
				return true
			}
		}
		return false
	})
}

// TestStderrTargets: without targets the node logs to stderr as slog does
// and a text access line is the message alone; a listed stderr target
// writes lines with time and level.
func TestStderrTargets(t *testing.T) {
	var out testenv.LogBuffer
	s := New(nodeLog(t, ""), new(slog.LevelVar), &out)
	runSet(t, s)
	s.Log.Info("hello", "k", 1)
	if got := out.String(); !strings.Contains(got, `level=INFO msg=hello k=1`) {
		t.Errorf("stderr:\n%s", got)
	}
	// The access line is HAProxy's alone (its `log stderr format raw`),
	// written from the queue.
	s.Access.Info("1.2.3.4:5 [x] fe", "frontend", "fe")
	testenv.Eventually(t, 5*time.Second, "the access line on stderr", func() bool { return strings.Contains(out.String(), "\n1.2.3.4:5 [x] fe\n") })
	if ts := s.Targets(); len(ts) != 1 || ts[0].Name() != "stderr" || ts[0].Stream() != "access" {
		t.Errorf("targets %v: want the access queue to stderr", ts)
	}

	out = testenv.LogBuffer{}
	s = New(nodeLog(t, "log:\n  format: json\n  targets: [{address: stderr}]\n"), new(slog.LevelVar), &out)
	runSet(t, s)
	s.Log.Warn("w")
	testenv.Eventually(t, 5*time.Second, "the line on stderr", func() bool { return strings.Contains(out.String(), `"level":"WARN","msg":"w"}`) })
}

// TestSyslogFlushesOnStop: the lines logged just before the node stops
// (its "shutting down") still reach the receiver.
func TestSyslogFlushesOnStop(t *testing.T) {
	r := testsyslog.Listen(t, "tcp")
	s := New(nodeLog(t, fmt.Sprintf("log:\n  targets: [{address: %q}]\n", r.Addr)), new(slog.LevelVar), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx, slog.New(slog.DiscardHandler)) }()
	s.Log.Info("first")
	waitMsgs(t, r, 1) // connected
	for i := range 50 {
		s.Log.Info("last", "i", i)
	}
	cancel()
	<-done
	waitMsgs(t, r, 51)
	if d := s.Targets()[0].Dropped(); d != 0 {
		t.Errorf("%d dropped", d)
	}
}

// TestRouterFollowsConfig: a frontend's own targets get its access lines,
// the others go to the node's; a config that changes the targets moves the
// lines to the new receiver and stops the old sender.
func TestRouterFollowsConfig(t *testing.T) {
	a, b, def := testsyslog.Listen(t, "tcp"), testsyslog.Listen(t, "udp"), testsyslog.Listen(t, "unixgram")
	set := New(nodeLog(t, fmt.Sprintf("log:\n  access: [{address: %q}]\n", def.Addr)), new(slog.LevelVar), nil)
	runSet(t, set)
	r := NewRouter(set.Access.Handler(), new(slog.LevelVar), "text")
	doc := func(addr string) *config.Cluster {
		c, err := config.Parse("c.yaml", []byte(fmt.Sprintf(`
frontends:
  - {name: fe1, bind: "127.0.0.1:1", default_backend: be, log_targets: [{address: %q, facility: local4, format: rfc5424}]}
  - {name: fe2, bind: "127.0.0.1:2", default_backend: be}
backends: [{name: be, servers: [{name: s, address: "127.0.0.1:3"}]}]
`, addr)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r.Apply(doc(a.Addr))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	log := slog.New(r)
	line := func(fe, text string) { log.Info(text, "frontend", fe) }
	line("fe1", "one")
	line("fe2", "two")
	if m := waitMsgs(t, a, 1); m[0].Text != "one" || m[0].Facility != 20 || !m[0].RFC5424 || m[0].MsgID != "access" {
		t.Errorf("fe1's target got %+v", m[0])
	}
	if m := waitMsgs(t, def, 1); m[0].Text != "two" {
		t.Errorf("the node's access target got %+v", m[0])
	}
	if ts := r.Targets(); len(ts) != 1 || ts[0].Stream() != "frontend/fe1" {
		t.Errorf("targets %v", ts)
	}
	r.Apply(doc(b.Addr))
	line("fe1", "three")
	if m := waitMsgs(t, b, 1); m[0].Text != "three" {
		t.Errorf("fe1's new target got %+v", m[0])
	}
	if n := len(a.Msgs()); n != 1 {
		t.Errorf("the old target got %d lines", n)
	}
	if ts := r.Targets(); len(ts) != 1 || ts[0].Name() != b.Addr {
		t.Errorf("targets after the change: %v", ts)
	}
}
