package raft

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

var restartCycles = flag.Int("restarts", 8, "restart cycles per cluster size in TestRestartsNeverUndoACommit (make test-restarts runs 50)")

// crash stops a node the way SIGKILL does, as far as one process can: no
// leadership transfer, its connections cut at once; what raft-boltdb
// synced so far is all the restarted node finds.
func (c *tcluster) crash(id string) {
	tn := c.take(id)
	if tn == nil {
		return
	}
	tn.closeOnce.Do(func() {
		tn.stream.Close()
		tn.trans.Close()
		_ = tn.raft.Shutdown().Error()
		tn.store.Close()
	})
	tn.cancel()
	<-tn.done
}

// restart stops ids (crash or graceful), then starts them again from their
// data dirs, with the options they had: the bootstrap node still carries
// its seed, as a node file that keeps `config:` does.
func (c *tcluster) restart(ids []string, kill bool) {
	c.t.Helper()
	opts := make([]Options, 0, len(ids))
	for _, id := range ids {
		opts = append(opts, c.node(id).opts)
		if kill {
			c.crash(id)
		} else {
			c.stop(id)
		}
	}
	for _, o := range opts {
		c.start(o)
	}
}

// fastElections shortens the timeouts: restart tests are about what
// survives a restart, and elections are most of their time.
func fastElections(o *Options) {
	o.Raft.HeartbeatTimeout = config.Duration(300 * time.Millisecond)
	o.Raft.ElectionTimeout = config.Duration(300 * time.Millisecond)
	o.Raft.LeaderLeaseTimeout = config.Duration(150 * time.Millisecond)
}

func (c *tcluster) all() []*tnode {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*tnode, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

// Restarting after an apply must never bring back an older document: the
// seed in the bootstrap node's options is proposed whenever that node
// leads with an FSM at version 0, which a restarted node has until its log
// is replayed. Every cycle applies a new version through a random node,
// then restarts the whole cluster or one node (the leader or the seed
// holder), by crash or graceful stop; afterwards every node must have
// exactly that version, that document, and one seed in its history.
func TestRestartsNeverUndoACommit(t *testing.T) {
	cycles := *restartCycles
	if testing.Short() {
		cycles = min(cycles, 3)
	}
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("random seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, seed))
			c := newTCluster(t)
			c.tune = fastElections
			nodes := c.boot(size)
			ids := make([]string, 0, size)
			for _, n := range nodes {
				ids = append(ids, n.ID())
			}
			version, weight := uint64(1), 1
			for cycle := 0; cycle < cycles; cycle++ {
				live := c.all()
				via := live[rng.IntN(len(live))]
				weight = 100 + cycle
				a := propose(t, via, putDoc(weight))
				if a.Version != version+1 {
					t.Fatalf("cycle %d: apply committed version %d, want %d (a restart added or lost a version)", cycle, a.Version, version+1)
				}
				version = a.Version

				kill := rng.IntN(2) == 0
				which := ids
				if size > 1 && rng.IntN(3) > 0 {
					which = []string{"n1"} // the seed holder
					if rng.IntN(2) == 0 {
						which = []string{c.leader(live).ID()}
					}
				}
				c.restart(which, kill)
				t.Logf("cycle %d: version %d, restarted %v (kill %v)", cycle, version, which, kill)

				nodes := c.all()
				c.waitVersion(nodes, version)
				c.leader(nodes)
				for _, n := range nodes {
					st := n.State()
					if st.Version != version || weightOf(st) != weight {
						t.Fatalf("cycle %d: %s has version %d (weight %d), want version %d (weight %d): a committed document was undone",
							cycle, n.ID(), st.Version, weightOf(st), version, weight)
					}
					seeds := 0
					for _, r := range st.History {
						if strings.HasPrefix(r.Author, "seed:") {
							seeds++
						}
					}
					if seeds != 1 {
						t.Fatalf("cycle %d: %s: %d seeds in the history, want 1", cycle, n.ID(), seeds)
					}
				}
			}
			// The next apply still lands right on top of the last one.
			if a := propose(t, c.all()[0], putDoc(7)); a.Version != version+1 {
				t.Fatalf("last apply committed version %d, want %d", a.Version, version+1)
			}
		})
	}
}

// What a node replays after a restart, or receives as a newcomer catching
// up, is history (Replayed); what is committed after it started is news.
func TestReplayedIsHistoryNotNews(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(1)
	propose(t, nodes[0], putDoc(2))
	if nodes[0].Replayed(nodes[0].State().ConfigIndex()) {
		t.Fatal("a version committed while the node runs counts as replayed")
	}
	for _, kill := range []bool{true, false} {
		c.restart([]string{"n1"}, kill)
		n := c.node("n1")
		c.waitVersion([]*tnode{n}, 2)
		if !n.Replayed(n.State().ConfigIndex()) {
			t.Fatalf("kill %v: version 2 replayed from the log counts as news", kill)
		}
	}
	n := c.node("n1")
	a := propose(t, n, putDoc(3))
	if st := n.State(); st.Version != a.Version || n.Replayed(st.ConfigIndex()) {
		t.Fatalf("version %d committed after the restart: replayed %v", a.Version, n.Replayed(st.ConfigIndex()))
	}
	// A newcomer catches up on versions 1..3: history to it.
	o := c.options("n2", "dc2", config.RoleGateway, []string{n.Addr()})
	n2 := c.start(o)
	c.waitVersion([]*tnode{n2}, a.Version)
	if !n2.Replayed(n2.State().ConfigIndex()) {
		t.Fatal("a newcomer's catch-up counts as news")
	}
	b := propose(t, n2, putDoc(4))
	c.waitVersion([]*tnode{n2}, b.Version)
	if n2.Replayed(n2.State().ConfigIndex()) {
		t.Fatal("a version committed after the newcomer started counts as replayed")
	}
}

// A leader refuses a command only on a state that has applied everything
// committed: right after a restart, a node leads before its log is
// replayed, and an apply with the right if_version must not be refused as
// "changed meanwhile" on the version 0 it shows then.
func TestLeaderRefusesOnlyOnACaughtUpState(t *testing.T) {
	c := newTCluster(t)
	c.tune = fastElections
	c.boot(1)
	version := uint64(1)
	for i := 0; i < 6; i++ {
		c.restart([]string{"n1"}, i%2 == 0)
		n := c.node("n1")
		testenv.Eventually(t, 20*time.Second, "n1 leads", n.IsLeader)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		a, err := n.Propose(ctx, &PutConfig{Source: doc(10 + i), Author: "test", IfVersion: version})
		cancel()
		if err != nil || a.Version != version+1 {
			t.Fatalf("restart %d: apply with if_version %d: version %d, %v", i, version, a.Version, err)
		}
		version = a.Version
	}
}
