package dc

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

const holdDown = 2 * time.Second
const reportEvery = 200 * time.Millisecond

func clusterDoc(failback bool) []byte {
	return []byte(fmt.Sprintf(`datacenters:
  - {name: dc1, role: primary}
  - {name: dc2, role: standby}
failover: {mode: auto, hold_down: %s, failback: %v, failback_hold_down: 1s}
`, holdDown, failback))
}

type member struct {
	*raft.Node
	healthy atomic.Bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type site struct {
	t      *testing.T
	faults *raft.Faults
	ca     *rafttest.CA
	dir    string
	m      map[string]*member
}

// newSite starts the named nodes (id → datacenter, "" = witness); the first
// bootstraps with doc.
func newSite(t *testing.T, doc []byte, ids []string, dcs map[string]string) *site {
	dir := t.TempDir()
	ca, err := rafttest.NewCA(dir, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, faults: raft.NewFaults(), ca: ca, dir: dir, m: map[string]*member{}}
	var first string
	for _, id := range ids {
		tlsf, err := ca.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		role := config.RoleGateway
		if dcs[id] == "" {
			role = config.RoleWitness
		}
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		o := raft.Options{ID: id, Datacenter: dcs[id], Role: role, DataDir: filepath.Join(dir, id),
			Faults: s.faults, Log: slog.New(slog.DiscardHandler),
			Raft: config.NodeRaft{Listen: addr, TLS: tlsf,
				HeartbeatTimeout: config.Duration(time.Second), ElectionTimeout: config.Duration(time.Second),
				LeaderLeaseTimeout: config.Duration(500 * time.Millisecond), CommitTimeout: config.Duration(10 * time.Millisecond)}}
		if first == "" {
			o.Raft.Bootstrap, o.Seed, first = true, doc, addr
		} else {
			o.Raft.Join = []string{first}
		}
		n, err := raft.New(o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{Node: n, cancel: cancel}
		m.healthy.Store(true)
		mgr := NewManager(n, reportEvery, slog.New(slog.DiscardHandler))
		run := func(f func(context.Context) error) {
			m.wg.Add(1)
			go func() { defer m.wg.Done(); _ = f(ctx) }()
		}
		run(n.Run)
		run(mgr.Run)
		if role == config.RoleGateway {
			rep := &Reporter{Node: id, Datacenter: dcs[id], Interval: reportEvery, Send: n.Report,
				Local: func() Local { return Local{Healthy: m.healthy.Load(), Reason: "test"} }}
			run(rep.Run)
		}
		s.m[id] = m
	}
	t.Cleanup(func() {
		for _, m := range s.m {
			m.cancel()
		}
		for _, m := range s.m {
			m.wg.Wait()
		}
	})
	testenv.Eventually(t, 30*time.Second, "all members joined with the config", func() bool {
		for _, m := range s.m {
			ms, err := m.Members()
			if err != nil || len(ms) != len(ids) || m.State().Config == nil {
				return false
			}
		}
		return true
	})
	return s
}

func (s *site) addrs(ids ...string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, s.m[id].Addr())
	}
	return out
}

// With a witness, the side holding quorum fails over after the hold-down;
// the minority never promotes itself; after healing there is one history.
func TestPartitionWithWitness(t *testing.T) {
	s := newSite(t, clusterDoc(false), []string{"a1", "b1", "w"}, map[string]string{"a1": "dc1", "b1": "dc2"})
	a1, b1, w := s.m["a1"], s.m["b1"], s.m["w"]
	testenv.Eventually(t, 20*time.Second, "both datacenters reported healthy", func() bool {
		st := b1.State()
		return st.Health["dc1"].Healthy && st.Health["dc2"].Healthy
	})
	if got := a1.State().ActiveDatacenter(); got != "dc1" {
		t.Fatalf("active %q before the partition", got)
	}
	// dc1 (a1) is cut off from dc2 and the witness.
	s.faults.Partition(s.addrs("a1"), s.addrs("b1", "w"))
	cut := time.Now()
	testenv.Eventually(t, 20*time.Second, "majority fails over to dc2", func() bool {
		return b1.State().ActiveDatacenter() == "dc2" && w.State().ActiveDatacenter() == "dc2"
	})
	if el := time.Since(cut); el < holdDown {
		t.Errorf("failover after %v, before the hold-down %v", el, holdDown)
	}
	if got := a1.State().ActiveDatacenter(); got != "dc1" {
		t.Errorf("the minority changed its active datacenter to %q", got)
	}
	if a1.VerifyQuorum() {
		t.Error("the minority believes it holds quorum")
	}
	if d := b1.State().Active; d.Author != "auto" || d.Reason == "" {
		t.Errorf("decision not audited: %+v", d)
	}
	s.faults.Heal()
	testenv.Eventually(t, 20*time.Second, "one history after healing", func() bool {
		a, b, c := a1.State(), b1.State(), w.State()
		return a.ActiveDatacenter() == "dc2" && a.Index == b.Index && b.Index == c.Index &&
			a.Active == b.Active && a.Version == b.Version && reflect.DeepEqual(a.Health, b.Health)
	})
	// The minority's log holds the majority's decision at the same index.
	if a, b := a1.State().Active, b1.State().Active; a.Index != b.Index || a.Index == 0 {
		t.Errorf("decision index %d on a1, %d on b1", a.Index, b.Index)
	}
}

// The minority side (dc2 alone) does nothing; the majority keeps dc1.
func TestPartitionMinorityStandbyDoesNothing(t *testing.T) {
	s := newSite(t, clusterDoc(false), []string{"a1", "b1", "w"}, map[string]string{"a1": "dc1", "b1": "dc2"})
	a1, b1 := s.m["a1"], s.m["b1"]
	testenv.Eventually(t, 20*time.Second, "healthy", func() bool { return a1.State().Health["dc1"].Healthy })
	s.faults.Partition(s.addrs("b1"), s.addrs("a1", "w"))
	// The majority sees dc2 go silent and records it.
	testenv.Eventually(t, 20*time.Second, "dc2 marked unhealthy by the majority", func() bool {
		h, ok := a1.State().Health["dc2"]
		return ok && !h.Healthy
	})
	deadline := time.Now().Add(2 * holdDown)
	for time.Now().Before(deadline) {
		if a1.State().ActiveDatacenter() != "dc1" || b1.State().ActiveDatacenter() != "dc1" {
			t.Fatalf("active datacenter changed: majority %q, minority %q", a1.State().ActiveDatacenter(), b1.State().ActiveDatacenter())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Without a witness, a split between two datacenters leaves no quorum on
// either side: nobody promotes, promotion is manual.
func TestPartitionWithoutWitnessNobodyPromotes(t *testing.T) {
	s := newSite(t, clusterDoc(false), []string{"a1", "b1"}, map[string]string{"a1": "dc1", "b1": "dc2"})
	a1, b1 := s.m["a1"], s.m["b1"]
	testenv.Eventually(t, 20*time.Second, "healthy", func() bool { return a1.State().Health["dc2"].Healthy })
	s.faults.Partition(s.addrs("a1"), s.addrs("b1"))
	testenv.Eventually(t, 10*time.Second, "both sides lose quorum", func() bool { return !a1.VerifyQuorum() && !b1.VerifyQuorum() })
	ia, ib := a1.State().Index, b1.State().Index
	deadline := time.Now().Add(2 * holdDown)
	for time.Now().Before(deadline) {
		if a1.State().Index != ia || b1.State().Index != ib {
			t.Fatalf("something was committed without quorum (index %d/%d, was %d/%d)", a1.State().Index, b1.State().Index, ia, ib)
		}
		if a1.State().ActiveDatacenter() != "dc1" || b1.State().ActiveDatacenter() != "dc1" {
			t.Fatal("a side without quorum changed the active datacenter")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An unhealthy active datacenter fails over; with failback configured the
// primary returns after its own hold-down.
func TestFailoverAndFailback(t *testing.T) {
	s := newSite(t, clusterDoc(true), []string{"a1", "b1", "w"}, map[string]string{"a1": "dc1", "b1": "dc2"})
	a1, b1 := s.m["a1"], s.m["b1"]
	testenv.Eventually(t, 20*time.Second, "healthy", func() bool { return b1.State().Health["dc1"].Healthy })
	a1.healthy.Store(false)
	testenv.Eventually(t, 20*time.Second, "failover to dc2", func() bool { return b1.State().ActiveDatacenter() == "dc2" })
	if h := b1.State().Health["dc1"]; h.Healthy || h.Reason != "a1: test" {
		t.Errorf("dc1 health %+v", h)
	}
	a1.healthy.Store(true)
	testenv.Eventually(t, 20*time.Second, "failback to dc1", func() bool {
		st := a1.State()
		return st.ActiveDatacenter() == "dc1" && st.Active.Author == "auto"
	})
}
