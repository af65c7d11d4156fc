package state

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// fakeNode is a raft member whose committed state the test sets.
type fakeNode struct {
	st      atomic.Pointer[raft.State]
	changed chan struct{}
	leader  atomic.Value // string
	leaderC chan struct{}
}

func newFakeNode(st *raft.State) *fakeNode {
	n := &fakeNode{changed: make(chan struct{}, 1), leaderC: make(chan struct{}, 1)}
	n.st.Store(st)
	n.leader.Store("n1")
	return n
}

func (n *fakeNode) State() *raft.State     { return n.st.Load() }
func (n *fakeNode) Watch() <-chan struct{} { return n.changed }
func (n *fakeNode) Leader() (string, string) {
	id := n.leader.Load().(string)
	return id, id
}
func (n *fakeNode) WatchLeader(context.Context) <-chan struct{} { return n.leaderC }
func (n *fakeNode) Replayed(uint64) bool                        { return false }

// commit publishes st as the new committed state.
func (n *fakeNode) commit(st *raft.State) {
	n.st.Store(st)
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

const doc = `datacenters:
  - {name: dc1, role: primary}
  - {name: dc2, role: standby}
backends:
  - name: web
    servers:
      - {name: s1, address: "127.0.0.1:1", datacenter: dc1}
`

// recorder keeps what was pushed to it.
type recorder struct {
	mu  sync.Mutex
	got []*Decisions
}

func (r *recorder) Decide(d *Decisions) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
}

func (r *recorder) last() *Decisions {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		return nil
	}
	return r.got[len(r.got)-1]
}

// lookup is a proxy with one server.
type lookup struct{ s *upstream.Server }

func (l lookup) Server(backend, name string) *upstream.Server {
	if backend == "web" && name == "s1" {
		return l.s
	}
	return nil
}

// TestClusterPushesOnCommit: each commit reaches the subscribers, the
// snapshot channel and the bus in the step that sees it, without a timer.
func TestClusterPushesOnCommit(t *testing.T) {
	cfg, err := config.Parse("cluster.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	v1 := &raft.State{Version: 1, Config: cfg, History: []config.Revision{{Version: 1, Author: "op", Index: 3}}, Index: 3}
	n := newFakeNode(v1)
	bus := events.New("n1", "dc1")
	sub := bus.Subscribe("test", 64, nil)
	defer sub.Close()
	c := New(Options{Node: n, Bus: bus, Log: slog.New(slog.DiscardHandler), LeaderPatience: time.Hour})
	rec := &recorder{}
	c.Subscribe(rec)
	srv := upstream.NewServer("web", "s1", "127.0.0.1:1", 1)
	ov := NewOverrides(lookup{srv})
	c.Subscribe(ov)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	select {
	case got := <-c.Updates():
		if got != cfg {
			t.Fatal("first snapshot is not the committed config")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no first snapshot")
	}
	testenv.Eventually(t, 10*time.Second, "first decisions pushed", func() bool {
		d := rec.last()
		return d != nil && d.Active == "dc1"
	})

	steps := []struct {
		name  string
		state func(prev *raft.State) *raft.State
		check func(d *Decisions) bool
		event events.Kind
	}{
		{"failover", func(p *raft.State) *raft.State {
			s := *p
			s.Index, s.Active = 4, raft.DCDecision{DC: "dc2", Reason: "test", Index: 4, Time: time.Now()}
			return &s
		}, func(d *Decisions) bool { return d.Active == "dc2" && !d.ActiveDecided.IsZero() }, events.DCFailover},
		{"drain", func(p *raft.State) *raft.State {
			s := *p
			s.Index, s.Servers = 5, map[string]raft.ServerOverride{"web/s1": {State: "drain", Time: time.Now()}}
			return &s
		}, func(d *Decisions) bool { return d.Servers["web/s1"].State == "drain" && srv.Admin() == upstream.Drain }, ""},
		{"failback", func(p *raft.State) *raft.State {
			s := *p
			s.Index, s.Active = 6, raft.DCDecision{DC: "dc1", Reason: "test", Index: 6, Time: time.Now()}
			return &s
		}, func(d *Decisions) bool { return d.Active == "dc1" }, events.DCFailback},
		{"override cleared", func(p *raft.State) *raft.State {
			s := *p
			s.Index, s.Servers = 7, nil
			return &s
		}, func(d *Decisions) bool { return len(d.Servers) == 0 && srv.Admin() == upstream.Ready }, ""},
	}
	st := v1
	for _, step := range steps {
		st = step.state(st)
		n.commit(st)
		testenv.Eventually(t, 10*time.Second, step.name+" pushed", func() bool {
			d := rec.last()
			return d != nil && d.Index == st.Index && step.check(d)
		})
		if step.event == "" {
			continue
		}
		testenv.Eventually(t, 10*time.Second, step.name+" event", func() bool {
			for {
				select {
				case e := <-sub.C:
					if e.Kind == step.event {
						return true
					}
				default:
					return false
				}
			}
		})
	}
}

// TestConfigVersionLogLines: the first document, each committed version
// and a SIGHUP's re-application each give one log line with the version.
func TestConfigVersionLogLines(t *testing.T) {
	cfg, err := config.Parse("cluster.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	v1 := &raft.State{Version: 1, Config: cfg, History: []config.Revision{{Version: 1, Author: "op", Index: 3}}, Index: 3}
	n := newFakeNode(v1)
	var out testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	c := New(Options{Node: n, Bus: events.New("n1", "dc1"), Log: log, LeaderPatience: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-c.Updates()

	v2 := *v1
	v2.Version, v2.Index = 2, 4
	v2.History = append(append([]config.Revision(nil), v1.History...), config.Revision{Version: 2, Author: "alice", Index: 4})
	n.commit(&v2)
	<-c.Updates()
	c.Reload()
	<-c.Updates()

	want := []string{
		`level=INFO msg="configuration loaded" version=1 index=3 author=op`,
		`level=INFO msg="configuration applied" version=2 index=4 author=alice`,
		`level=INFO msg="configuration re-applied on reload" version=2 index=4 author=alice`,
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(l, "configuration") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("config lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
