package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// fake is a scripted checker: it answers ok/fail per server, counts calls
// per server, and can block until its context ends.
type fake struct {
	mu       sync.Mutex
	ok       map[string]bool
	calls    map[string]int
	returned atomic.Int64
	block    atomic.Bool
	panics   atomic.Bool
	built    atomic.Int64 // how many checkers the factory made
}

func newFake() *fake { return &fake{ok: map[string]bool{}, calls: map[string]int{}} }

func (f *fake) set(server string, ok bool) {
	f.mu.Lock()
	f.ok[server] = ok
	f.mu.Unlock()
}

func (f *fake) count(server string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[server]
}

func (f *fake) Check(ctx context.Context, t Target) Result {
	defer f.returned.Add(1)
	f.mu.Lock()
	f.calls[t.Server]++
	ok := f.ok[t.Server]
	f.mu.Unlock()
	if f.panics.Load() {
		panic("boom")
	}
	if f.block.Load() {
		<-ctx.Done()
		return Result{Reason: "blocked: " + ctx.Err().Error()}
	}
	if ok {
		return Result{OK: true}
	}
	return Result{Reason: "connection refused"}
}

type harness struct {
	t      *testing.T
	f      *fake
	m      *Manager
	bus    *events.Bus
	sub    *events.Subscription
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	f := newFake()
	reg := NewRegistry()
	reg.Register("fake", func(c *config.Check) (Checker, error) { f.built.Add(1); return f, nil })
	bus := events.New("n1", "dc1")
	h := &harness{t: t, f: f, bus: bus, sub: bus.Subscribe("test", 1000, nil), m: NewManager(reg, bus, nil)}
	h.m.maxStagger = 20 * time.Millisecond
	t.Cleanup(h.stop)
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.m.Run(ctx) }()
}

// stop ends Run and waits for every worker to return.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return after cancel")
	}
}

// events drains what was published so far.
func (h *harness) events() []events.Event {
	var out []events.Event
	for {
		select {
		case e := <-h.sub.C:
			out = append(out, e)
		default:
			return out
		}
	}
}

func fakeCheck(rise, fall int) *config.Check {
	ms := config.Duration(20 * time.Millisecond)
	return &config.Check{Kind: "fake", Inter: ms, FastInter: ms, DownInter: ms, Rise: rise, Fall: fall, Timeout: config.Duration(time.Second)}
}

func TestManagerFallAndRise(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 10)
	h.f.set("s1", true)
	h.m.Reconcile([]Item{{Server: s, Check: fakeCheck(2, 3), InitState: "fully-up"}})
	h.run()
	testenv.Eventually(t, 5*time.Second, "a few passing checks", func() bool { return h.f.count("s1") >= 3 })
	if s.Health() != upstream.Up {
		t.Fatalf("server %v with passing checks", s.Health())
	}

	h.f.set("s1", false)
	testenv.Eventually(t, 5*time.Second, "server marked down", func() bool { return s.Health() == upstream.Down })
	h.f.set("s1", true)
	testenv.Eventually(t, 5*time.Second, "server back up", func() bool { return s.Health() == upstream.Up })
	h.stop()

	evs := h.events()
	if len(evs) != 2 {
		t.Fatalf("want exactly 2 events (down, up), got %d: %+v", len(evs), evs)
	}
	down, up := evs[0], evs[1]
	if down.Kind != events.ServerDown || down.Level != events.Warning || down.Attr("reason") != "connection refused" ||
		down.Attr("backend") != "web" || down.Attr("server") != "s1" || down.Attr("check_duration") == "" {
		t.Errorf("bad down event: %+v", down)
	}
	if up.Kind != events.ServerUp || up.Level != events.Notice || up.Attr("reason") != "check passed" {
		t.Errorf("bad up event: %+v", up)
	}
	if !strings.Contains(down.Message, "DOWN") || down.Subject != "web/s1" {
		t.Errorf("down event message/subject: %q %q", down.Message, down.Subject)
	}
	if lc := s.LastCheck(); !lc.OK || lc.Time.IsZero() {
		t.Errorf("last check not recorded: %+v", lc)
	}
}

func TestManagerInitialState(t *testing.T) {
	for _, tt := range []struct {
		init string
		want upstream.Health
	}{{"", upstream.Up}, {"down", upstream.Down}, {"up", upstream.Up}, {"fully-up", upstream.Up}, {"fully-down", upstream.Down}} {
		h := newHarness(t)
		s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
		h.m.Reconcile([]Item{{Server: s, Check: fakeCheck(2, 3), InitState: tt.init}})
		if s.Health() != tt.want || !s.Checked() {
			t.Errorf("init_state %q: health %v checked %v, want %v", tt.init, s.Health(), s.Checked(), tt.want)
		}
		if evs := h.events(); len(evs) != 0 {
			t.Errorf("init_state %q: the initial state published events: %+v", tt.init, evs)
		}
	}
}

// TestManagerInitStateFirstCheck: HAProxy's init-state "up" and "down" are
// decided by the first check; the fully- forms need the whole streak.
func TestManagerInitStateFirstCheck(t *testing.T) {
	for _, tt := range []struct {
		init   string
		pass   bool
		checks int // checks until the state flips
	}{{"up", false, 1}, {"", false, 1}, {"fully-up", false, 3}, {"down", true, 1}, {"fully-down", true, 2}} {
		h := newHarness(t)
		s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
		h.f.set("s1", tt.pass)
		// Only fastinter is short: once the state has flipped, the next
		// check is an hour away, so the count read below is exact.
		c := fakeCheck(2, 3)
		c.Inter, c.DownInter = config.Duration(time.Hour), config.Duration(time.Hour)
		h.m.Reconcile([]Item{{Server: s, Check: c, InitState: tt.init}})
		start := s.Health()
		h.run()
		testenv.Eventually(t, 10*time.Second, "state flips ("+tt.init+")", func() bool { return s.Health() != start })
		if n := h.f.count("s1"); n != tt.checks {
			t.Errorf("init_state %q: flipped after %d checks, want %d", tt.init, n, tt.checks)
		}
	}
}

// The next three tests use one interval that is very long and check that
// progress still happens quickly: only the short interval can explain it.
func TestManagerDownInter(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	c := fakeCheck(2, 3)
	c.Inter, c.FastInter = config.Duration(time.Hour), config.Duration(time.Hour)
	h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-down"}})
	h.run()
	testenv.Eventually(t, 10*time.Second, "5 checks at downinter while down", func() bool { return h.f.count("s1") >= 5 })
}

func TestManagerFastInterWhileRising(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	h.f.set("s1", true)
	c := fakeCheck(4, 3)
	c.Inter, c.DownInter = config.Duration(time.Hour), config.Duration(time.Hour)
	h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-down"}})
	h.run()
	testenv.Eventually(t, 10*time.Second, "rise at fastinter", func() bool { return s.Health() == upstream.Up })
	if n := h.f.count("s1"); n != 4 {
		t.Fatalf("%d checks to rise 4", n)
	}
}

func TestManagerFastInterWhileFalling(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	c := fakeCheck(2, 4)
	c.Inter, c.DownInter = config.Duration(time.Hour), config.Duration(time.Hour)
	// inter is long, so the first check comes at the (short) stagger and
	// the following ones only if fastinter is used.
	h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-up"}})
	h.run()
	testenv.Eventually(t, 10*time.Second, "fall at fastinter", func() bool { return s.Health() == upstream.Down })
	if n := h.f.count("s1"); n != 4 {
		t.Fatalf("%d checks to fall 4", n)
	}
}

func TestManagerSlowStart(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 100)
	h.f.set("s1", true)
	h.m.Reconcile([]Item{{Server: s, Check: fakeCheck(1, 1), SlowStart: time.Hour, InitState: "fully-down"}})
	h.run()
	testenv.Eventually(t, 5*time.Second, "first rise", func() bool { return s.Health() == upstream.Up })
	if w := s.Weight(); w != 100 || s.InSlowStart() {
		t.Fatalf("first rise after start is slow-started (weight %d): HAProxy only ramps recovering servers", w)
	}
	h.f.set("s1", false)
	testenv.Eventually(t, 5*time.Second, "down", func() bool { return s.Health() == upstream.Down })
	h.f.set("s1", true)
	testenv.Eventually(t, 5*time.Second, "recovered", func() bool { return s.Health() == upstream.Up })
	if w := s.Weight(); w < 1 || w >= 100 || !s.InSlowStart() {
		t.Fatalf("weight %d right after recovery with slowstart 1h, want a ramp from 1", w)
	}

	// A short ramp reaches the full weight.
	s2 := upstream.NewServer("web", "s2", "127.0.0.1:2", 100)
	h.m.Reconcile([]Item{
		{Server: s, Check: fakeCheck(1, 1), SlowStart: time.Hour, InitState: "fully-down"},
		{Server: s2, Check: fakeCheck(1, 1), SlowStart: 200 * time.Millisecond, InitState: "fully-up"},
	})
	testenv.Eventually(t, 5*time.Second, "s2 down", func() bool { return s2.Health() == upstream.Down })
	h.f.set("s2", true)
	testenv.Eventually(t, 5*time.Second, "s2 recovered", func() bool { return s2.Health() == upstream.Up })
	testenv.Eventually(t, 5*time.Second, "s2 weight ramped to 100", func() bool { return s2.Weight() == 100 })
}

func TestManagerShutdownSessions(t *testing.T) {
	for _, tt := range []struct {
		omd  string
		want int32
	}{{"shutdown-sessions", 2}, {"", 0}} {
		h := newHarness(t)
		s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
		var killed atomic.Int32
		s.Track(func() { killed.Add(1) })
		s.Track(func() { killed.Add(1) })
		h.m.Reconcile([]Item{{Server: s, Check: fakeCheck(1, 2), InitState: "fully-up", OnMarkedDown: tt.omd}})
		h.run()
		testenv.Eventually(t, 5*time.Second, "down", func() bool { return s.Health() == upstream.Down })
		h.stop()
		if killed.Load() != tt.want {
			t.Errorf("on_marked_down %q: %d sessions killed, want %d", tt.omd, killed.Load(), tt.want)
		}
		evs := h.events()
		if len(evs) != 1 || (tt.want > 0) != (evs[0].Attr("killed_sessions") == "2") {
			t.Errorf("on_marked_down %q: events %+v", tt.omd, evs)
		}
	}
}

func TestManagerCancelledCheckNotCounted(t *testing.T) {
	for _, how := range []string{"removed", "reloaded", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t)
			s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
			h.f.block.Store(true)
			c := fakeCheck(1, 1)
			c.Timeout = config.Duration(time.Hour)
			h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-up"}})
			h.run()
			testenv.Eventually(t, 5*time.Second, "check in flight", func() bool { return h.f.count("s1") >= 1 })
			switch how {
			case "removed":
				h.m.Reconcile(nil)
			case "reloaded":
				c2 := *c
				c2.Rise = 2
				h.f.block.Store(false)
				h.f.set("s1", true)
				h.m.Reconcile([]Item{{Server: s, Check: &c2, InitState: "fully-up"}})
			}
			h.stop() // waits for every worker to return
			if h.f.returned.Load() < 1 {
				t.Fatal("blocked check never returned")
			}
			if s.Health() != upstream.Up {
				t.Fatalf("a cancelled check (fall 1) marked the server %v", s.Health())
			}
			for _, e := range h.events() {
				t.Errorf("unexpected event %s: %s", e.Kind, e.Message)
			}
			for _, st := range h.m.Status() {
				if st.Failures != 0 {
					t.Errorf("cancelled check counted as a failure: %+v", st)
				}
			}
		})
	}
}

func TestManagerReloadKeepsState(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	c := fakeCheck(2, 1000)
	h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-up"}})
	h.run()
	testenv.Eventually(t, 5*time.Second, "failures accumulate", func() bool {
		st := h.m.Status()
		return len(st) == 1 && st[0].Streak >= 3
	})
	// Same server, equal check config (a new copy, as a reload makes).
	c2 := *c
	h.m.Reconcile([]Item{{Server: s, Check: &c2, InitState: "fully-up"}})
	st := h.m.Status()
	if h.f.built.Load() != 1 || st[0].Streak < 3 || st[0].Checks < 3 {
		t.Fatalf("unchanged check restarted on reload: built %d, status %+v", h.f.built.Load(), st[0])
	}

	// A changed check restarts the worker but keeps the server's state,
	// even though init_state says down.
	c3 := *c
	c3.Fall = 999
	h.m.Reconcile([]Item{{Server: s, Check: &c3, InitState: "fully-down"}})
	st = h.m.Status()
	if h.f.built.Load() != 2 || st[0].Fall != 999 || st[0].Checks != 0 || s.Health() != upstream.Up {
		t.Fatalf("changed check: built %d, health %v, status %+v", h.f.built.Load(), s.Health(), st[0])
	}
	if evs := h.events(); len(evs) != 0 {
		t.Fatalf("reload published events: %+v", evs)
	}
}

func TestManagerSetEnabled(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	h.m.Reconcile([]Item{{Server: s, Check: fakeCheck(2, 2), InitState: "fully-down"}})
	h.run()
	if s.Health() != upstream.Down {
		t.Fatal("not down initially")
	}
	h.m.SetEnabled(s.Key(), false)
	if s.Health() != upstream.Up || s.Checked() {
		t.Fatalf("checks disabled: health %v checked %v, want UP and unchecked", s.Health(), s.Checked())
	}
	evs := h.events()
	if len(evs) != 1 || evs[0].Kind != events.ServerUp || evs[0].Attr("reason") != "checks disabled by operator" {
		t.Fatalf("events after disable: %+v", evs)
	}
	// Disabled survives a reload of the same server.
	h.m.Reconcile([]Item{{Server: s, Check: fakeCheck(2, 3), InitState: "fully-down"}})
	if st := h.m.Status(); st[0].Enabled || s.Health() != upstream.Up {
		t.Fatalf("reload re-enabled checks: %+v", st[0])
	}
	h.m.SetEnabled(s.Key(), true)
	if !s.Checked() {
		t.Fatal("checks not re-enabled")
	}
	testenv.Eventually(t, 5*time.Second, "down after re-enable", func() bool { return s.Health() == upstream.Down })
}

func TestManagerMaintNotChecked(t *testing.T) {
	h := newHarness(t)
	a := upstream.NewServer("web", "a", "127.0.0.1:1", 1)
	b := upstream.NewServer("web", "b", "127.0.0.1:2", 1)
	b.SetAdmin(upstream.Maint)
	h.m.Reconcile([]Item{{Server: a, Check: fakeCheck(2, 3), InitState: "fully-down"}, {Server: b, Check: fakeCheck(2, 3), InitState: "fully-down"}})
	h.run()
	testenv.Eventually(t, 5*time.Second, "a checked 5 times", func() bool { return h.f.count("a") >= 5 })
	if n := h.f.count("b"); n != 0 {
		t.Fatalf("server in maintenance checked %d times", n)
	}
	b.SetAdmin(upstream.Ready)
	testenv.Eventually(t, 5*time.Second, "b checked after maintenance", func() bool { return h.f.count("b") >= 1 })
}

// TestManagerCheckOnLeavingMaint: a server that leaves maintenance is
// checked at once (HAProxy), not one inter later: here inter is an hour,
// and the server died while in maintenance.
func TestManagerCheckOnLeavingMaint(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s", "127.0.0.1:1", 1)
	h.f.set("s", true)
	c := fakeCheck(1, 1)
	c.Inter, c.FastInter, c.DownInter = config.Duration(time.Hour), config.Duration(time.Hour), config.Duration(time.Hour)
	h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-up"}})
	h.run()
	testenv.Eventually(t, 5*time.Second, "first check", func() bool { return h.f.count("s") == 1 })
	s.SetAdmin(upstream.Maint)
	h.f.set("s", false)
	s.SetAdmin(upstream.Ready)
	testenv.Eventually(t, 5*time.Second, "down at once after maintenance (inter is 1h)", func() bool { return s.Health() == upstream.Down })
	if n := h.f.count("s"); n != 2 {
		t.Fatalf("%d checks, want 2", n)
	}
}

// TestManagerPassiveHealth: with observe, error_limit consecutive errors
// reported by the proxy act as HAProxy's on-error says, and always bring
// the next check forward to fastinter (inter is an hour here).
func TestManagerPassiveHealth(t *testing.T) {
	refused := errors.New("connection refused")
	tests := []struct {
		onError   string
		fall      int
		wantDown  bool // at once, from the errors
		wantCheck bool // a check failing after them takes it down
	}{
		{"mark-down", 3, true, false},
		{"fail-check", 1, true, false},
		{"fail-check", 3, false, false},
		{"sudden-death", 3, false, true},
		{"sudden-death", 1, true, false}, // a failed check, as HAProxy's
		{"fastinter", 3, false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s fall %d", tt.onError, tt.fall), func(t *testing.T) {
			h := newHarness(t)
			s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
			h.f.set("s1", true)
			c := fakeCheck(1, tt.fall)
			c.Inter, c.DownInter = config.Duration(time.Hour), config.Duration(time.Hour)
			c.Observe, c.ErrorLimit, c.OnError = "layer4", 3, tt.onError
			h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-up"}})
			h.run()
			testenv.Eventually(t, 5*time.Second, "first check", func() bool { return h.f.count("s1") == 1 })
			if tt.wantCheck {
				h.f.set("s1", false)
			}
			for range 3 {
				s.ObserveConnect(refused)
			}
			// Every mode checks again at fastinter (20ms), not in an hour.
			testenv.Eventually(t, 5*time.Second, "a check at fastinter", func() bool { return h.f.count("s1") >= 2 })
			// The server may be back UP already (the fastinter check passes
			// and rise is 1): the events tell what happened.
			var down *events.Event
			if tt.wantDown || tt.wantCheck {
				testenv.Eventually(t, 5*time.Second, "server.down", func() bool {
					for _, e := range h.events() {
						if e.Kind == events.ServerDown && down == nil {
							down = &e
						}
					}
					return down != nil
				})
			} else if evs := h.events(); len(evs) > 0 || s.Health() != upstream.Up {
				t.Fatalf("%s with fall %d: events %+v, health %v; want the server left UP", tt.onError, tt.fall, evs, s.Health())
			}
			if traffic := down != nil && strings.Contains(down.Attr("reason"), "3 consecutive errors in traffic (last: connection refused)"); traffic != tt.wantDown {
				t.Errorf("server.down %+v: naming the traffic errors %v, want %v", down, traffic, tt.wantDown)
			}
			if st := h.m.Status()[0]; st.TrafficFailures != 1 {
				t.Errorf("traffic_failures %d, want 1", st.TrafficFailures)
			}
		})
	}
}

func TestManagerUnchecked(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	h.m.Reconcile([]Item{{Server: s, Check: fakeCheck(2, 3), InitState: "fully-down"}})
	if s.Health() != upstream.Down {
		t.Fatal("not down initially")
	}
	h.m.Reconcile([]Item{{Server: s}})
	if s.Health() != upstream.Up || s.Checked() {
		t.Fatalf("check removed: health %v checked %v", s.Health(), s.Checked())
	}
	evs := h.events()
	if len(evs) != 1 || evs[0].Kind != events.ServerUp {
		t.Fatalf("events: %+v", evs)
	}
	st := h.m.Status()
	if len(st) != 1 || st[0].Kind != "" || st[0].Health != "UP" {
		t.Fatalf("status: %+v", st)
	}
}

func TestManagerBadKindAndPanic(t *testing.T) {
	h := newHarness(t)
	bad := upstream.NewServer("web", "bad", "127.0.0.1:1", 1)
	pan := upstream.NewServer("web", "pan", "127.0.0.1:2", 1)
	c := fakeCheck(1, 1)
	c.Kind = "nosuch"
	h.f.panics.Store(true)
	h.m.Reconcile([]Item{{Server: bad, Check: c, InitState: "fully-up"}, {Server: pan, Check: fakeCheck(1, 1), InitState: "fully-up"}})
	h.run()
	testenv.Eventually(t, 5*time.Second, "both down", func() bool {
		return bad.Health() == upstream.Down && pan.Health() == upstream.Down
	})
	if r := bad.LastCheck().Reason; !strings.Contains(r, `check kind "nosuch" is not available`) {
		t.Errorf("bad kind reason %q", r)
	}
	if r := pan.LastCheck().Reason; !strings.Contains(r, "boom") {
		t.Errorf("panic reason %q", r)
	}
}

func TestManagerTimeoutReason(t *testing.T) {
	h := newHarness(t)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	h.f.block.Store(true)
	c := fakeCheck(1, 1)
	c.Timeout = config.Duration(30 * time.Millisecond)
	h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-up"}})
	h.run()
	testenv.Eventually(t, 5*time.Second, "down by timeout", func() bool { return s.Health() == upstream.Down })
	if r := s.LastCheck().Reason; !strings.HasPrefix(r, "timeout") {
		t.Fatalf("reason %q, want timeout", r)
	}
}

func TestManagerNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	h := newHarness(t)
	var items []Item
	for _, n := range []string{"a", "b", "c", "d"} {
		items = append(items, Item{Server: upstream.NewServer("web", n, "127.0.0.1:1", 1), Check: fakeCheck(2, 3), InitState: "fully-down"})
	}
	h.m.Reconcile(items)
	h.run()
	testenv.Eventually(t, 5*time.Second, "checks running", func() bool { return h.f.count("d") >= 2 })
	h.m.Reconcile(items[:2])
	h.m.Reconcile(items)
	h.stop()
	h.sub.Close()
	testenv.Eventually(t, 5*time.Second, "goroutines back to the start count", func() bool {
		return runtime.NumGoroutine() <= before
	})
	if err := h.m.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

// BenchmarkWorkerApply is the per-check bookkeeping the manager adds to
// every probe (tracker, last check, transitions and their events).
func BenchmarkWorkerApply(b *testing.B) {
	reg := NewRegistry()
	reg.Register("fake", func(c *config.Check) (Checker, error) { return newFake(), nil })
	bus := events.New("n1", "dc1")
	m := NewManager(reg, bus, nil)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	m.Reconcile([]Item{{Server: s, Check: fakeCheck(2, 3), InitState: "fully-up"}})
	w := m.workers[s.Key()]
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// Mostly passing, with a flap now and then.
		w.apply(Result{OK: i%50 > 3, Reason: "connection refused", Duration: time.Millisecond})
	}
}

// TestManagerRetriesUnavailableCheck: a check that could not be built (its
// ca_file missing on this node) reports the server DOWN; the next reconcile
// of the same configuration (a re-apply after the file was put in place)
// builds it again instead of keeping the broken one.
func TestManagerRetriesUnavailableCheck(t *testing.T) {
	h := newHarness(t)
	var broken atomic.Bool
	broken.Store(true)
	h.m.reg.Register("flaky", func(c *config.Check) (Checker, error) {
		if broken.Load() {
			return nil, errors.New("ca_file: open /x: no such file or directory")
		}
		return h.f, nil
	})
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	h.f.set("s1", true)
	c := fakeCheck(1, 1)
	c.Kind = "flaky"
	items := []Item{{Server: s, Check: c, InitState: "up"}}
	h.m.Reconcile(items)
	h.run()
	testenv.Eventually(t, 5*time.Second, "DOWN: check unavailable", func() bool {
		return s.Health() == upstream.Down && strings.Contains(s.LastCheck().Reason, "check unavailable")
	})
	broken.Store(false)
	h.m.Reconcile(items)
	testenv.Eventually(t, 5*time.Second, "UP once the check can be built", func() bool { return s.Health() == upstream.Up })
}

// countHandler counts log records at Warn and above.
type countHandler struct{ warns atomic.Int64 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestManagerPassiveHealthQuiet: passive health acting without changing
// the server's state (here on_error fastinter on a server answering 503
// to every request while its checks pass) writes no warning per trigger:
// at error_limit 1 that was a warning per request, a log flood at the
// request rate. traffic_failures counts them; a state change is logged
// as "server is DOWN" with the traffic's reason.
func TestManagerPassiveHealthQuiet(t *testing.T) {
	logs := &countHandler{}
	h := newHarness(t)
	h.m.log = slog.New(logs)
	s := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	h.f.set("s1", true)
	c := fakeCheck(1, 3)
	c.Inter, c.DownInter = config.Duration(time.Hour), config.Duration(time.Hour)
	c.Observe, c.ErrorLimit, c.OnError = "layer7", 1, "fastinter"
	h.m.Reconcile([]Item{{Server: s, Check: c, InitState: "fully-up"}})
	h.run()
	const n = 200
	for range n {
		s.ObserveStatus(503)
	}
	testenv.Eventually(t, 5*time.Second, "traffic_failures", func() bool { return h.m.Status()[0].TrafficFailures == n })
	if w := logs.warns.Load(); w != 0 {
		t.Fatalf("%d warnings for %d passive-health triggers that changed nothing, want none", w, n)
	}
}
