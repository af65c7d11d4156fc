package vrrp

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// fakeSeg is a broadcast segment between fake NetIOs.
type fakeSeg struct {
	mu    sync.Mutex
	ports []*fakeIO
}

type fakeIO struct {
	seg      *fakeSeg
	self     netip.Addr
	recv     chan Received
	link     chan bool
	vips     atomic.Bool
	announce atomic.Int64
	ttl      atomic.Int32
	// sentInterval is the interval field of the last advert sent.
	sentInterval atomic.Int64
	closed       chan struct{}
	once         sync.Once
}

func (s *fakeSeg) port(addr string) *fakeIO {
	f := &fakeIO{seg: s, self: netip.MustParseAddr(addr), recv: make(chan Received, 256), link: make(chan bool, 4), closed: make(chan struct{})}
	f.link <- true
	f.ttl.Store(TTL)
	s.mu.Lock()
	s.ports = append(s.ports, f)
	s.mu.Unlock()
	return f
}

func (f *fakeIO) Self() netip.Addr { return f.self }
func (f *fakeIO) Send(b []byte, dst netip.Addr) error {
	if p, err := Parse(b, f.self, dst); err == nil {
		f.sentInterval.Store(int64(p.Interval))
	}
	f.seg.mu.Lock()
	defer f.seg.mu.Unlock()
	for _, p := range f.seg.ports {
		if p == f || (dst != Group4 && dst != p.self) {
			continue
		}
		select {
		case <-p.closed:
		case p.recv <- Received{Data: append([]byte(nil), b...), Src: f.self, Dst: dst, TTL: int(f.ttl.Load())}:
		default:
		}
	}
	return nil
}
func (f *fakeIO) Recv() <-chan Received    { return f.recv }
func (f *fakeIO) Link() <-chan bool        { return f.link }
func (f *fakeIO) AddVIPs() error           { f.vips.Store(true); return nil }
func (f *fakeIO) DelVIPs() error           { f.vips.Store(false); return nil }
func (f *fakeIO) Announce() error          { f.announce.Add(1); return nil }
func (f *fakeIO) Reach([]netip.Addr) error { return nil }
func (f *fakeIO) Close() error             { f.once.Do(func() { close(f.closed) }); return nil }

func instCfg(name string, prio int) config.VRRPInstance {
	d := config.Duration(0)
	return config.VRRPInstance{
		Name: name, Interface: "eth0", VRID: 51, Version: 3, Priority: prio,
		AdvertInterval: config.Duration(20 * time.Millisecond), GARPMasterDelay: &d, GARPMasterRepeat: 3,
		VIPs: config.StringList{"198.18.1.100/24"},
	}
}

type node struct {
	in     *Instance
	io     *fakeIO
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, seg *fakeSeg, addr string, cfg config.VRRPInstance, bus *events.Bus, tracks ...Track) *node {
	t.Helper()
	return startNodeLog(t, seg, addr, cfg, ioDiscard{}, bus, tracks...)
}

// startNodeLog is startNode with the instance's log (debug level) in w.
func startNodeLog(t *testing.T, seg *fakeSeg, addr string, cfg config.VRRPInstance, w io.Writer, bus *events.Bus, tracks ...Track) *node {
	t.Helper()
	io := seg.port(addr)
	in, err := NewInstance(cfg, InstanceOptions{IO: io, Log: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), Bus: bus, Tracks: tracks})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{in: in, io: io, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(n.done); in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-n.done })
	return n
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

var _ io.Writer = ioDiscard{}

func (n *node) state() State { return n.in.Status().State }

func TestInstanceElectionAndResign(t *testing.T) {
	seg := &fakeSeg{}
	bus := events.New("n1", "dc1")
	sub := bus.Subscribe("test", 64, nil)
	a := startNode(t, seg, "198.18.0.1", instCfg("vi", 100), bus)
	b := startNode(t, seg, "198.18.0.2", instCfg("vi", 200), nil)
	testenv.Eventually(t, 5*time.Second, "b master, a backup", func() bool {
		return b.state() == Master && a.state() == Backup && b.io.vips.Load() && !a.io.vips.Load()
	})
	// Takeover announces the VIP (MetalLB #291: no silent takeover).
	if n := b.io.announce.Load(); n < 3 {
		t.Fatalf("master sent %d gratuitous ARPs, want a burst of 3", n)
	}
	if got := a.in.Status().Master; got != "198.18.0.2" {
		t.Fatalf("a sees master %q", got)
	}
	// Clean shutdown: b resigns (priority 0), a takes over after skew only.
	b.cancel()
	<-b.done
	if b.io.vips.Load() {
		t.Fatal("stopped master kept the VIP")
	}
	testenv.Eventually(t, 5*time.Second, "a master", func() bool { return a.state() == Master && a.io.vips.Load() })
	// The transition events carry instance/from/to/reason.
	seen := map[string]bool{}
	for len(sub.C) > 0 {
		e := <-sub.C
		if e.Kind == events.VRRPTransition && e.Attr("instance") == "vi" {
			seen[e.Attr("from")+">"+e.Attr("to")] = true
			if e.Attr("reason") == "" {
				t.Fatalf("event without reason: %+v", e)
			}
		}
	}
	if !seen["INIT>BACKUP"] || !seen["BACKUP>MASTER"] {
		t.Fatalf("events seen: %v", seen)
	}
}

func TestInstanceDropsMismatched(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(c *config.VRRPInstance)
		ttl    int
		reason string
	}{
		{"auth", func(c *config.VRRPInstance) {
			c.Version, c.AdvertInterval, c.AuthPass = 2, config.Duration(time.Second), "other"
		}, TTL, "auth"},
		{"addresses", func(c *config.VRRPInstance) { c.VIPs = config.StringList{"198.18.1.200/24"} }, TTL, "addresses"},
		{"version", func(c *config.VRRPInstance) { c.Version, c.AdvertInterval = 2, config.Duration(time.Second) }, TTL, "version"},
		{"ttl", func(c *config.VRRPInstance) {}, 64, "ttl"},
		{"interval", func(c *config.VRRPInstance) { c.Version, c.AdvertInterval = 2, config.Duration(2*time.Second) }, TTL, "interval"},
		{"other_vrid", func(c *config.VRRPInstance) { c.VRID = 52 }, TTL, "other_vrid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seg := &fakeSeg{}
			mine := instCfg("vi", 100)
			switch tc.name {
			case "auth":
				mine.Version, mine.AdvertInterval, mine.AuthPass = 2, config.Duration(time.Second), "secret"
			case "interval":
				mine.Version, mine.AdvertInterval = 2, config.Duration(time.Second)
			}
			var log syncLog
			a := startNodeLog(t, seg, "198.18.0.1", mine, &log, nil)
			// The address owner is master at once: no Master_Down_Interval
			// of whole seconds (v2) to wait before its first advert.
			other := instCfg("vi", 255)
			tc.mod(&other)
			b := startNode(t, seg, "198.18.0.2", other, nil)
			b.io.ttl.Store(int32(tc.ttl))
			testenv.Eventually(t, 15*time.Second, "three drops counted as "+tc.reason, func() bool {
				return a.in.Status().Dropped[tc.reason] >= 3
			})
			// The dropped master does not hold a back: a becomes master too.
			testenv.Eventually(t, 10*time.Second, "a master despite b", func() bool { return a.state() == Master })
			// Several drops, one log line (rate-limited to one per 10s and
			// reason); another virtual router's adverts are normal on a
			// shared link: debug level, never a warning.
			lines := strings.Count(log.String(), "level=WARN msg=\"dropped advertisement: "+tc.reason+"\"")
			if tc.reason == "other_vrid" {
				if lines != 0 || strings.Count(log.String(), "level=DEBUG msg=\"ignored advertisement of another virtual router\"") != 1 {
					t.Fatalf("log:\n%s", log.String())
				}
			} else if lines != 1 {
				t.Fatalf("%d warnings for %d drops, want 1:\n%s", lines, a.in.Status().Dropped[tc.reason], log.String())
			}
		})
	}
}

// syncLog is a log sink read while the instance writes.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestInstanceTrackWeightAndFault(t *testing.T) {
	seg := &fakeSeg{}
	var healthy atomic.Bool
	healthy.Store(true)
	src := TrackFunc(func(context.Context) health.Result {
		if healthy.Load() {
			return health.Result{OK: true}
		}
		return health.Result{Reason: "script exited 1"}
	})
	// a: 150, -100 when its track fails → 50 < b's 100: b preempts.
	a := startNode(t, seg, "198.18.0.1", instCfg("vi", 150), nil, Track{Name: "chk", Source: src, Interval: 10 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2, Weight: -100})
	b := startNode(t, seg, "198.18.0.2", instCfg("vi", 100), nil)
	testenv.Eventually(t, 5*time.Second, "a master", func() bool { return a.state() == Master && b.state() == Backup })
	healthy.Store(false)
	testenv.Eventually(t, 5*time.Second, "b master after a's track failed", func() bool {
		return b.state() == Master && a.state() == Backup && a.in.Status().Priority == 50
	})
	healthy.Store(true)
	testenv.Eventually(t, 5*time.Second, "a preempts back", func() bool { return a.state() == Master && b.state() == Backup })

	// weight 0: a failure is FAULT.
	seg2 := &fakeSeg{}
	var ok2 atomic.Bool
	c := startNode(t, seg2, "198.18.0.3", instCfg("vi", 100), nil, Track{Name: "f", Source: TrackFunc(func(context.Context) health.Result {
		return health.Result{OK: ok2.Load(), Reason: "down"}
	}), Interval: 10 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1})
	testenv.Eventually(t, 5*time.Second, "fault", func() bool { return c.state() == Fault })
	if c.io.vips.Load() {
		t.Fatal("FAULT holds the VIP")
	}
	ok2.Store(true)
	testenv.Eventually(t, 5*time.Second, "recovered to master", func() bool { return c.state() == Master })
}

// TestInstanceTrackDelta: a source's own delta (a track file, a Lua
// script) moves the priority; below -253 it is FAULT (keepalived's
// track_file rule).
func TestInstanceTrackDelta(t *testing.T) {
	seg := &fakeSeg{}
	var delta atomic.Int64
	src := TrackFunc(func(context.Context) health.Result {
		d := int(delta.Load())
		return health.Result{OK: d >= -253, HasDelta: true, PriorityDelta: d, Reason: "file says so"}
	})
	a := startNode(t, seg, "198.18.0.1", instCfg("vi", 150), nil, Track{Name: "file", Source: src, Interval: 10 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1, FaultBelow253: true})
	b := startNode(t, seg, "198.18.0.2", instCfg("vi", 100), nil)
	testenv.Eventually(t, 5*time.Second, "a master", func() bool { return a.state() == Master && b.state() == Backup })
	delta.Store(-60)
	testenv.Eventually(t, 5*time.Second, "b master after a's delta -60", func() bool {
		return b.state() == Master && a.state() == Backup && a.in.Status().Priority == 90
	})
	delta.Store(-254)
	testenv.Eventually(t, 5*time.Second, "a FAULT below -253", func() bool { return a.state() == Fault && !a.io.vips.Load() })
	delta.Store(0)
	testenv.Eventually(t, 5*time.Second, "a preempts back", func() bool { return a.state() == Master && b.state() == Backup })
}

func TestInstanceLinkDownIsFault(t *testing.T) {
	seg := &fakeSeg{}
	a := startNode(t, seg, "198.18.0.1", instCfg("vi", 200), nil)
	b := startNode(t, seg, "198.18.0.2", instCfg("vi", 100), nil)
	testenv.Eventually(t, 5*time.Second, "a master", func() bool { return a.state() == Master })
	a.io.link <- false
	testenv.Eventually(t, 5*time.Second, "a fault, b master", func() bool {
		return a.state() == Fault && !a.io.vips.Load() && b.state() == Master
	})
	a.io.link <- true
	testenv.Eventually(t, 5*time.Second, "a back to master", func() bool { return a.state() == Master && b.state() == Backup })
}

func TestTrackRiseFall(t *testing.T) {
	s := newTrackRunner([]Track{{Rise: 2, Fall: 3, Weight: 10}}).st[0]
	seq := []struct {
		ok   bool
		want bool
	}{{true, true}, {false, true}, {false, true}, {false, false}, {true, false}, {true, true}}
	for i, step := range seq {
		s.observe(health.Result{OK: step.ok}, i == 0)
		if s.up() != step.want {
			t.Fatalf("step %d: up=%v want %v", i, s.up(), step.want)
		}
	}
	v := verdict([]Track{{Name: "a", Weight: 10}, {Name: "b", Weight: -20}, {Name: "c"}, {Name: "lua"}},
		[]trackState{{tr: tracked(true)}, {tr: tracked(false)}, {tr: tracked(false), reason: "boom"}, {tr: tracked(true), hasD: true, delta: -5}})
	if v.Delta != 10-20-5 || v.Fault != "track c: boom" {
		t.Fatalf("verdict %+v", v)
	}
	// A delta below -253 is FAULT for a track file only; a Lua script's
	// just lowers the priority (clamped to 1 by the instance).
	v = verdict([]Track{{Name: "lua"}, {Name: "file", FaultBelow253: true}},
		[]trackState{{tr: tracked(true), hasD: true, delta: -300}, {tr: tracked(true), hasD: true, delta: -10}})
	if v.Delta != -310 || v.Fault != "" {
		t.Fatalf("lua delta -300: verdict %+v, want a delta and no FAULT", v)
	}
	v = verdict([]Track{{Name: "file", FaultBelow253: true}}, []trackState{{tr: tracked(false), hasD: true, delta: -254, reason: "file holds -254"}})
	if v.Fault != "track file: file holds -254" {
		t.Fatalf("file delta -254: verdict %+v, want FAULT", v)
	}
}

// groupPeers starts a peer router (priority 100) backing up instances
// "one" (VRID 51) and "two" (VRID 52), and waits for x1 and x2 (priority
// 200) to master both.
func groupPeers(t *testing.T, seg *fakeSeg, x1, x2 *node) (*node, *node) {
	t.Helper()
	p1 := startNode(t, seg, "198.18.0.2", instCfg("one", 100), nil)
	c4 := instCfg("two", 100)
	c4.VRID = 52
	p2 := startNode(t, seg, "198.18.0.2", c4, nil)
	testenv.Eventually(t, 5*time.Second, "x masters both", func() bool {
		return x1.state() == Master && x2.state() == Master && p1.state() == Backup && p2.state() == Backup
	})
	return p1, p2
}

func TestSyncGroup(t *testing.T) {
	seg := &fakeSeg{}
	c1, c2 := instCfg("one", 200), instCfg("two", 200)
	c2.VRID = 52
	x1 := startNode(t, seg, "198.18.0.1", c1, nil)
	x2 := startNode(t, seg, "198.18.0.1", c2, nil)
	g := &syncGroup{name: "g", members: []*Instance{x1.in, x2.in}}
	x1.in.group.Store(g)
	x2.in.group.Store(g)
	// A peer router that backs up both instances.
	p1, p2 := groupPeers(t, seg, x1, x2)
	// Only instance one's link fails; the group takes two down with it.
	x1.io.link <- false
	testenv.Eventually(t, 5*time.Second, "both x in FAULT, peer master of both", func() bool {
		return x1.state() == Fault && x2.state() == Fault && p1.state() == Master && p2.state() == Master
	})
	if got := x2.in.Status().LastReason; !strings.HasPrefix(got, "sync group g: one") {
		t.Fatalf("two's reason %q", got)
	}
	x1.io.link <- true
	testenv.Eventually(t, 5*time.Second, "x masters both again", func() bool {
		return x1.state() == Master && x2.state() == Master && p1.state() == Backup && p2.state() == Backup
	})
}

// TestSyncGroupNotify: a sync group's own notify scripts run when the
// group as a whole changes state, the generic one with keepalived's
// arguments (GROUP name STATE 0), once per group transition, not once per
// member.
func TestSyncGroupNotify(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"generic $*\" >> "+out+"\n"), 0o755)
	gcfg := config.VRRPSyncGroup{Name: "g", Instances: config.StringList{"one", "two"},
		NotifyMaster: "echo master >> " + out, NotifyBackup: "echo backup >> " + out,
		NotifyFault: "echo fault >> " + out, NotifyStop: "echo stop >> " + out, Notify: script}
	seg := &fakeSeg{}
	c1, c2 := instCfg("one", 200), instCfg("two", 200)
	c2.VRID = 52
	var xs []*node
	var insts []*Instance
	for _, c := range []config.VRRPInstance{c1, c2} {
		io := seg.port("198.18.0.1")
		in, err := NewInstance(c, InstanceOptions{IO: io, Log: slog.New(slog.NewTextHandler(ioDiscard{}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, &node{in: in, io: io, done: make(chan struct{})})
		insts = append(insts, in)
	}
	g := newSyncGroup(gcfg, insts, nil)
	for _, x := range xs {
		x.in.group.Store(g)
		ctx, cancel := context.WithCancel(context.Background())
		x.cancel = cancel
		go func() { defer close(x.done); x.in.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-x.done })
	}
	x1, x2 := xs[0], xs[1]
	groupPeers(t, seg, x1, x2)
	x1.io.link <- false
	testenv.Eventually(t, 5*time.Second, "both x in FAULT", func() bool { return x1.state() == Fault && x2.state() == Fault })
	x1.io.link <- true
	testenv.Eventually(t, 5*time.Second, "x masters both again", func() bool { return x1.state() == Master && x2.state() == Master })
	x1.cancel()
	x2.cancel()
	<-x1.done
	<-x2.done
	g.wait() // the Manager does this at shutdown
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var states []string
	for i := 0; i+1 < len(lines); i += 2 {
		st := strings.ToUpper(lines[i])
		if lines[i+1] != "generic GROUP g "+st+" 0" {
			t.Fatalf("line %d: %q after %q, want the generic script with GROUP g %s 0\n%s", i+2, lines[i+1], lines[i], st, b)
		}
		if len(states) > 0 && states[len(states)-1] == st {
			t.Fatalf("group state %s notified twice in a row\n%s", st, b)
		}
		states = append(states, st)
	}
	if len(lines)%2 != 0 || len(states) < 5 || strings.Join(states[:3], " ") != "BACKUP MASTER FAULT" ||
		strings.Join(states[len(states)-2:], " ") != "MASTER STOP" {
		t.Fatalf("group transitions %v, want BACKUP MASTER FAULT … MASTER STOP\n%s", states, b)
	}
}

func TestInstanceNotifyScripts(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"generic $*\" >> "+out+"\n"), 0o755)
	cfg := instCfg("vi", 100)
	cfg.NotifyMaster = "echo master >> " + out
	cfg.NotifyBackup = "echo backup >> " + out
	cfg.NotifyStop = "echo stop >> " + out
	cfg.Notify = script
	seg := &fakeSeg{}
	n := startNode(t, seg, "198.18.0.1", cfg, nil)
	testenv.Eventually(t, 5*time.Second, "master", func() bool { return n.state() == Master })
	n.cancel()
	<-n.done
	b, _ := os.ReadFile(out)
	want := "backup\ngeneric INSTANCE vi BACKUP 100\nmaster\ngeneric INSTANCE vi MASTER 100\nstop\ngeneric INSTANCE vi STOP 100\n"
	if string(b) != want {
		t.Fatalf("notify output:\n%s\nwant:\n%s", b, want)
	}
}

func TestInstanceGARPDelayAndRefresh(t *testing.T) {
	cfg := instCfg("vi", 100)
	d := config.Duration(30 * time.Millisecond)
	cfg.GARPMasterDelay = &d
	cfg.GARPMasterRepeat = 2
	cfg.GARPMasterRefresh = config.Duration(30 * time.Millisecond)
	n := startNode(t, &fakeSeg{}, "198.18.0.1", cfg, nil)
	// First burst on takeover, the delayed burst, then refresh bursts.
	testenv.Eventually(t, 5*time.Second, "at least four bursts", func() bool { return n.io.announce.Load() >= 8 })
	n.cancel()
	<-n.done
	if c := n.io.announce.Load(); c%2 != 0 {
		t.Fatalf("%d gratuitous ARPs: bursts are garp_master_repeat=2 packets", c)
	}
}

// BenchmarkInstanceAccept is the receive hot path: validate and decode one
// advertisement against the instance.
func BenchmarkInstanceAccept(b *testing.B) {
	seg := &fakeSeg{}
	cfg := instCfg("vi", 100)
	in, err := NewInstance(cfg, InstanceOptions{IO: seg.port("198.18.0.1"), Log: slog.New(slog.NewTextHandler(ioDiscard{}, nil))})
	if err != nil {
		b.Fatal(err)
	}
	p := in.packet(150)
	data, _ := p.AppendMarshal(nil, netip.MustParseAddr("198.18.0.2"), Group4)
	r := Received{Data: data, Src: netip.MustParseAddr("198.18.0.2"), Dst: Group4, TTL: TTL}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := in.accept(r); !ok {
			b.Fatal("rejected")
		}
	}
}

func TestInstanceStartsInFaultWithLinkDown(t *testing.T) {
	seg := &fakeSeg{}
	io := seg.port("198.18.0.1")
	<-io.link // replace the initial "up"
	io.link <- false
	var ok atomic.Bool
	ok.Store(true)
	in, err := NewInstance(instCfg("vi", 255), InstanceOptions{IO: io, Log: slog.New(slog.NewTextHandler(ioDiscard{}, nil)),
		Tracks: []Track{{Name: "t", Source: TrackFunc(func(context.Context) health.Result { return health.Result{OK: ok.Load()} }), Interval: 10 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1, Weight: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); in.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 5*time.Second, "FAULT at start", func() bool { return in.Status().State == Fault })
	// A track change must not clear the link fault.
	ok.Store(false)
	testenv.Eventually(t, 5*time.Second, "track seen down", func() bool {
		ts := in.Status().Tracks
		return len(ts) == 1 && !ts[0].Up
	})
	if s := in.Status().State; s != Fault || io.vips.Load() {
		t.Fatalf("state %s, vips %v: the link is still down", s, io.vips.Load())
	}
	io.link <- true
	testenv.Eventually(t, 5*time.Second, "owner master once the link is up", func() bool { return in.Status().State == Master && io.vips.Load() })
}

// A resigning master waits for its successor no longer than the node's
// shutdown budget allows, and long enough for a busy backup.
func TestResignWait(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		version int
		iv      time.Duration
		want    time.Duration
	}{
		{2, time.Second, 2100 * ms},
		{2, 10 * time.Second, 2100 * ms}, // v2 Skew_Time is at most 1s whatever the interval
		{3, 10 * ms, 600 * ms},
		{3, 100 * ms, 600 * ms},
		{3, time.Second, 2100 * ms},
		{3, 40 * time.Second, 5100 * ms},
	}
	for _, tt := range tests {
		if got := resignWait(tt.version, tt.iv); got != tt.want {
			t.Errorf("v%d %s: %s, want %s", tt.version, tt.iv, got, tt.want)
		}
	}
}

// tracked is a debouncer already in the given state.
func tracked(up bool) *health.Tracker {
	h := upstream.Down
	if up {
		h = upstream.Up
	}
	return health.NewTracker(h, 1, 1, 0, 0, 0)
}
