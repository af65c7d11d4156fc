package builtin_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/plugins/check/builtin"
	"github.com/vipgate/vipgate/plugins/check/internal/checktest"
)

func TestRegister(t *testing.T) {
	r := health.NewRegistry()
	builtin.Register(r)
	if got := strings.Join(r.Kinds(), ","); got != "exec,http,tcp,tls" {
		t.Fatalf("kinds %s", got)
	}
}

type env struct {
	m   *health.Manager
	sub *events.Subscription
}

func start(t *testing.T) *env {
	t.Helper()
	r := health.NewRegistry()
	builtin.Register(r)
	bus := events.New("gw1", "dc1")
	e := &env{m: health.NewManager(r, bus, nil), sub: bus.Subscribe("test", 1000, nil)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return e
}

// next waits for the next server event.
func (e *env) next(t *testing.T) events.Event {
	t.Helper()
	select {
	case ev := <-e.sub.C:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return events.Event{}
}

func check(kind string) *config.Check {
	ms := config.Duration(30 * time.Millisecond)
	return &config.Check{Kind: kind, Inter: ms, FastInter: ms, DownInter: ms, Rise: 2, Fall: 3,
		Timeout: config.Duration(time.Second), Verify: "required"}
}

// A TCP backend killed mid-test is marked down after fall checks and comes
// back after rise, with one event per transition and the reason.
func TestTCPBackendKilledAndRestarted(t *testing.T) {
	listen := func(addr string) net.Listener {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return ln
	}
	ln := listen("127.0.0.1:0")
	addr := ln.Addr().String()
	s := upstream.NewServer("app", "a1", addr, 1)
	e := start(t)
	e.m.Reconcile([]health.Item{{Server: s, Check: check("tcp"), InitState: "fully-down"}})
	if s.Health() != upstream.Down {
		t.Fatal("server not down before its first checks")
	}

	ev := e.next(t)
	if ev.Kind != events.ServerUp || ev.Attr("initial") != "true" || ev.Level != events.Info || s.Health() != upstream.Up {
		t.Fatalf("first event %+v", ev)
	}
	if st := e.m.Status(); st[0].Checks-st[0].Failures < 2 {
		t.Fatalf("up after %d passed checks, rise is 2", st[0].Checks-st[0].Failures)
	}

	ln.Close() // the backend dies
	ev = e.next(t)
	if ev.Kind != events.ServerDown || ev.Attr("reason") != "connection refused" || ev.Attr("check") != "tcp" || s.Health() != upstream.Down {
		t.Fatalf("down event %+v", ev)
	}
	st := e.m.Status()
	// Exact counts are core/health's tests (with intervals that stop the
	// checks); here a slow test machine may have run one more check.
	if len(st) != 1 || st[0].Failures < 3 {
		t.Fatalf("marked down after %d failures, fall is 3: %+v", st[0].Failures, st)
	}

	passed := st[0].Checks - st[0].Failures
	ln = listen(addr) // and comes back on the same address
	defer ln.Close()
	ev = e.next(t)
	if ev.Kind != events.ServerUp || ev.Attr("initial") != "" || ev.Level != events.Notice || s.Health() != upstream.Up {
		t.Fatalf("up event %+v", ev)
	}
	if st := e.m.Status(); st[0].Checks-st[0].Failures-passed < 2 {
		t.Fatalf("back up after %d passed checks, rise is 2", st[0].Checks-st[0].Failures-passed)
	}
	select {
	case ev := <-e.sub.C:
		t.Fatalf("extra event %+v", ev)
	default:
	}
}

func TestHTTPBackend503(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	s := upstream.NewServer("web", "w1", strings.TrimPrefix(srv.URL, "http://"), 1)
	c := check("http")
	c.HTTP = &config.HTTPCheck{Method: "GET", Path: "/health"}
	e := start(t)
	e.m.Reconcile([]health.Item{{Server: s, Check: c, InitState: "fully-up"}})
	status.Store(503)
	ev := e.next(t)
	if ev.Kind != events.ServerDown || ev.Attr("reason") != "HTTP 503" {
		t.Fatalf("event %+v", ev)
	}
	status.Store(200)
	if ev := e.next(t); ev.Kind != events.ServerUp {
		t.Fatalf("event %+v", ev)
	}
}

func TestExecBackend(t *testing.T) {
	testenv.RequireTool(t, "sh")
	dir := t.TempDir()
	flag := filepath.Join(dir, "healthy")
	script := filepath.Join(dir, "check.sh")
	body := fmt.Sprintf("#!/bin/sh\n[ -e %s ] || { echo \"$HAPROXY_SERVER_NAME not healthy\"; exit 1; }\n", flag)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := upstream.NewServer("db", "d1", "127.0.0.1:5432", 1)
	c := check("exec")
	c.Command = []string{script}
	e := start(t)
	e.m.Reconcile([]health.Item{{Server: s, Check: c, InitState: "fully-up"}})
	ev := e.next(t)
	if ev.Kind != events.ServerDown || ev.Attr("reason") != "exit status 1: d1 not healthy" {
		t.Fatalf("event %+v", ev)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if ev := e.next(t); ev.Kind != events.ServerUp {
		t.Fatalf("event %+v", ev)
	}
}

// Check port override: the check probes another port than the traffic.
func TestCheckPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	s := upstream.NewServer("app", "a1", "127.0.0.1:1", 1) // nothing on port 1
	c := check("tcp")
	c.Port = ln.Addr().(*net.TCPAddr).Port
	e := start(t)
	e.m.Reconcile([]health.Item{{Server: s, Check: c, InitState: "fully-down"}})
	testenv.Eventually(t, 10*time.Second, "up through the check port", func() bool { return s.Health() == upstream.Up })
}

// A server that accepts but never answers fails by timeout, and the reason
// says so once.
func TestSilentServerTimesOut(t *testing.T) {
	addr := checktest.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // never answers
	s := upstream.NewServer("app", "a1", addr, 1)
	c := check("tcp")
	c.Send, c.Expect, c.Timeout, c.Fall = "PING\r\n", "+PONG", config.Duration(50*time.Millisecond), 1
	e := start(t)
	e.m.Reconcile([]health.Item{{Server: s, Check: c}})
	ev := e.next(t)
	if ev.Kind != events.ServerDown || ev.Attr("reason") != "no answer: timeout" {
		t.Fatalf("event %+v", ev)
	}
}

// counting is an HTTP server that counts requests and answers a settable status.
func counting(t *testing.T, status int) (addr string, n *atomic.Int64) {
	n = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), n
}

// Intervals seen from the server: one interval is an hour, so progress in
// seconds can only come from the short one.
func TestIntervalsSeenByServer(t *testing.T) {
	t.Run("downinter while down", func(t *testing.T) {
		addr, n := counting(t, 503)
		s := upstream.NewServer("web", "w1", addr, 1)
		c := check("http")
		c.HTTP = &config.HTTPCheck{Method: "GET", Path: "/"}
		c.Inter, c.FastInter = config.Duration(time.Hour), config.Duration(time.Hour)
		e := start(t)
		e.m.Reconcile([]health.Item{{Server: s, Check: c, InitState: "fully-down"}})
		testenv.Eventually(t, 10*time.Second, "5 requests at downinter", func() bool { return n.Load() >= 5 })
	})
	t.Run("fastinter while rising", func(t *testing.T) {
		addr, n := counting(t, 200)
		s := upstream.NewServer("web", "w1", addr, 1)
		c := check("http")
		c.HTTP = &config.HTTPCheck{Method: "GET", Path: "/"}
		c.Rise = 3
		c.Inter, c.DownInter = config.Duration(time.Hour), config.Duration(time.Hour)
		e := start(t)
		e.m.Reconcile([]health.Item{{Server: s, Check: c, InitState: "fully-down"}})
		testenv.Eventually(t, 10*time.Second, "up at fastinter", func() bool { return s.Health() == upstream.Up })
		// Once UP the next check is an hour away: exactly rise requests.
		if got := n.Load(); got != 3 {
			t.Fatalf("%d requests to rise 3", got)
		}
	})
}
