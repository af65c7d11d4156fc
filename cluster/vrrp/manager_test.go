package vrrp

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

func TestManagerReconcile(t *testing.T) {
	seg := &fakeSeg{}
	opened := map[string]int{}
	node := &config.Node{Name: "gw1", Datacenter: "dc1", Role: config.RoleGateway}
	m := NewManager(Options{Node: node, Log: slog.New(slog.NewTextHandler(ioDiscard{}, nil)), Open: func(c *config.VRRPInstance, _ *slog.Logger) (NetIO, error) {
		opened[c.Name]++
		return seg.port("198.18.0.1"), nil
	}})
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
	// a changes, b goes away.
	if err := m.Apply(doc(150, false)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "only a, restarted with priority 150", func() bool {
		s := m.Status()
		return len(s) == 1 && s[0].Name == "a" && s[0].BasePriority == 150 && s[0].State == Master
	})
	if opened["a"] != 2 {
		t.Fatalf("a opened %d times, want 2", opened["a"])
	}
	cancel()
	<-done
}
