package vrrp

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/internal/testenv"
)

// countingManager is a manager for node gw1 on a fake segment; opened
// counts the opens of each instance.
func countingManager() (*Manager, map[string]int) {
	seg := &fakeSeg{}
	opened := map[string]int{}
	node := &config.Node{Name: "gw1", Datacenter: "dc1", Role: config.RoleGateway}
	m := NewManager(Options{Node: node, Log: slog.New(slog.NewTextHandler(ioDiscard{}, nil)), Open: func(c *config.VRRPInstance, _ *slog.Logger) (NetIO, error) {
		opened[c.Name]++
		return seg.port("198.18.0.1"), nil
	}})
	return m, opened
}

func TestManagerReconcile(t *testing.T) {
	m, opened := countingManager()
	doc := func(prio int, withB bool) *config.Cluster {
		a := instCfg("a", prio)
		other := instCfg("elsewhere", 100)
		other.Nodes = config.StringList{"gw2"} // not this node
		c := &config.Cluster{VRRP: config.VRRP{Instances: []config.VRRPInstance{a, other}}}
		if withB {
			b := instCfg("b", 100)
			b.VRID = 52
			c.VRRP.Instances = append(c.VRRP.Instances, b)
		}
		return c
	}
	if err := m.Apply(doc(100, true)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	names := func() []string {
		var out []string
		for _, s := range m.Status() {
			out = append(out, s.Name+":"+s.State.String())
		}
		return out
	}
	testenv.Eventually(t, 5*time.Second, "a and b master", func() bool {
		n := names()
		return len(n) == 2 && n[0] == "a:MASTER" && n[1] == "b:MASTER"
	})
	// Unchanged document: nothing restarts.
	if err := m.Apply(doc(100, true)); err != nil {
		t.Fatal(err)
	}
	if opened["a"] != 1 || opened["b"] != 1 || opened["elsewhere"] != 0 {
		t.Fatalf("opens after a no-op apply: %v", opened)
	}
	// a's priority changes (in place), b goes away.
	if err := m.Apply(doc(150, false)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "only a, priority 150", func() bool {
		s := m.Status()
		return len(s) == 1 && s[0].Name == "a" && s[0].BasePriority == 150 && s[0].Priority == 150 && s[0].State == Master
	})
	if opened["a"] != 1 {
		t.Fatalf("a reopened (%d) for a priority change", opened["a"])
	}
	// Another address is another virtual router: a restarts.
	c := doc(150, false)
	c.VRRP.Instances[0].VIPs = config.StringList{"198.18.1.101/24"}
	if err := m.Apply(c); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "a restarted with the new VIP", func() bool {
		s := m.Status()
		return len(s) == 1 && s[0].VIPs[0] == "198.18.1.101/24" && s[0].State == Master
	})
	if opened["a"] != 2 {
		t.Fatalf("a opened %d times, want 2", opened["a"])
	}
	cancel()
	<-done
}

// A config change that keeps the virtual router and its addresses is
// applied in place: the master stays master and keeps its VIPs (and so the
// connections to them) through a new priority, tracks added and removed,
// preemption, interval and notify changes — no transition, no reopen.
func TestManagerUpdatesInPlace(t *testing.T) {
	seg := &fakeSeg{}
	var ports []*fakeIO
	opened := 0
	var trackOK atomic.Bool
	node := &config.Node{Name: "gw1", Datacenter: "dc1", Role: config.RoleGateway}
	bus := events.New("gw1", "dc1")
	sub := bus.Subscribe("t", 64, func(e events.Event) bool { return e.Kind == events.VRRPTransition })
	defer sub.Close()
	m := NewManager(Options{Node: node, Bus: bus, Log: slog.New(slog.NewTextHandler(ioDiscard{}, nil)),
		Open: func(c *config.VRRPInstance, _ *slog.Logger) (NetIO, error) {
			opened++
			p := seg.port("198.18.0.1")
			ports = append(ports, p)
			return p, nil
		},
		Tracks: func(*config.VRRPTrack) (TrackSource, error) {
			return TrackFunc(func(context.Context) health.Result {
				return health.Result{OK: trackOK.Load(), Reason: "switched off"}
			}), nil
		}})
	base := instCfg("a", 100)
	apply := func(mod func(*config.VRRPInstance)) {
		t.Helper()
		in := base
		mod(&in)
		if err := m.Apply(&config.Cluster{VRRP: config.VRRP{Instances: []config.VRRPInstance{in}}}); err != nil {
			t.Fatal(err)
		}
	}
	apply(func(*config.VRRPInstance) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	st := func() Status { return m.Status()[0] }
	testenv.Eventually(t, 5*time.Second, "a master", func() bool { return len(m.Status()) == 1 && st().State == Master })
	for len(sub.C) > 0 {
		<-sub.C // INIT → BACKUP → MASTER
	}

	steps := []struct {
		name string
		mod  func(*config.VRRPInstance)
		ok   func(Status) bool
	}{
		{"priority", func(c *config.VRRPInstance) { c.Priorities = map[string]int{"gw1": 180} }, func(s Status) bool { return s.Priority == 180 }},
		{"tracks added (weight -30, failing)", func(c *config.VRRPInstance) {
			c.Priorities = map[string]int{"gw1": 180}
			c.Track = []config.VRRPTrack{{Kind: "exec", Name: "t", Command: []string{"x"}, Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(20 * time.Millisecond), Rise: 1, Fall: 1, Weight: -30}}
		}, func(s Status) bool { return s.Priority == 150 && len(s.Tracks) == 1 && !s.Tracks[0].Up }},
		{"preempt, interval, notify, garp", func(c *config.VRRPInstance) {
			f := false
			c.Priorities = map[string]int{"gw1": 180}
			c.Preempt, c.AdvertInterval, c.Notify, c.GARPMasterRepeat = &f, config.Duration(40*time.Millisecond), "true", 1
		}, func(s Status) bool { return s.Priority == 180 && len(s.Tracks) == 0 }},
	}
	for _, step := range steps {
		apply(step.mod)
		testenv.Eventually(t, 5*time.Second, step.name+" applied", func() bool { return step.ok(st()) })
		if s := st(); s.State != Master || !ports[0].vips.Load() {
			t.Fatalf("after %s: state %s, VIPs held %v", step.name, s.State, ports[0].vips.Load())
		}
	}
	if opened != 1 {
		t.Fatalf("opened %d times, want 1: every change was in place", opened)
	}
	select {
	case e := <-sub.C:
		t.Fatalf("transition during in-place changes: %s", e.Message)
	default:
	}
	// The new interval is what the master advertises now.
	sent := ports[0].sentInterval.Load()
	if time.Duration(sent) != 40*time.Millisecond {
		t.Fatalf("advertised interval %s, want 40ms", time.Duration(sent))
	}
}

// A sync group's notify scripts change in place (no instance restarts, so
// no failover), and the group's next transition runs the new script.
func TestManagerSyncGroupNotifyInPlace(t *testing.T) {
	m, opened := countingManager()
	out := filepath.Join(t.TempDir(), "out")
	doc := func(notify string) *config.Cluster {
		a, b := instCfg("a", 100), instCfg("b", 100)
		b.VRID = 52
		return &config.Cluster{VRRP: config.VRRP{Instances: []config.VRRPInstance{a, b},
			SyncGroups: []config.VRRPSyncGroup{{Name: "g", Instances: config.StringList{"a", "b"}, Notify: notify}}}}
	}
	if err := m.Apply(doc("echo old >> " + out)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	testenv.Eventually(t, 5*time.Second, "a and b master", func() bool {
		s := m.Status()
		return len(s) == 2 && s[0].State == Master && s[1].State == Master
	})
	testenv.Eventually(t, 5*time.Second, "the old script ran for MASTER", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "old GROUP g MASTER 0")
	})
	if err := m.Apply(doc("echo new >> " + out)); err != nil {
		t.Fatal(err)
	}
	if opened["a"] != 1 || opened["b"] != 1 {
		t.Fatalf("instances reopened for a group notify change: %v", opened)
	}
	cancel()
	<-done
	b, _ := os.ReadFile(out)
	if !strings.HasSuffix(string(b), "new GROUP g STOP 0\n") || strings.Contains(string(b), "old GROUP g STOP") {
		t.Fatalf("notify output:\n%s\nwant the new script for STOP", b)
	}
}

// TestManagerOpensTheNodesOwnInterface: one instance in the document, the
// node's own NIC, unicast source and VIP device from the per-node maps.
func TestManagerOpensTheNodesOwnInterface(t *testing.T) {
	seg := &fakeSeg{}
	var opened []config.VRRPInstance
	node := &config.Node{Name: "gw2", Datacenter: "dc1", Role: config.RoleGateway}
	m := NewManager(Options{Node: node, Log: slog.New(slog.NewTextHandler(ioDiscard{}, nil)), Open: func(c *config.VRRPInstance, _ *slog.Logger) (NetIO, error) {
		opened = append(opened, *c)
		return seg.port("198.18.0.2"), nil
	}})
	in := instCfg("vi", 100)
	in.Nodes = config.StringList{"gw1", "gw2"}
	in.Interface = "ens160"
	in.Interfaces = map[string]string{"gw2": "ens192"}
	in.UnicastSrcIPs = map[string]string{"gw1": "198.18.0.1", "gw2": "198.18.0.2"}
	in.VIPDevs = map[string]string{"gw2": "ens192"}
	in.VIPs = config.StringList{"198.18.1.100/24 dev ens160"}
	if err := m.Apply(&config.Cluster{VRRP: config.VRRP{Instances: []config.VRRPInstance{in}}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 5*time.Second, "the instance running", func() bool { return len(m.Status()) == 1 })
	if len(opened) != 1 || opened[0].Interface != "ens192" || opened[0].UnicastSrcIP != "198.18.0.2" || opened[0].VIPs[0] != "198.18.1.100/24 dev ens192" {
		t.Fatalf("opened %+v", opened)
	}
}
