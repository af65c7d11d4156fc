package raft

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// doc is a valid cluster document whose backend has weight w (so each
// version differs).
func doc(w int) []byte {
	return []byte(fmt.Sprintf(`datacenters:
  - {name: dc1, role: primary}
  - {name: dc2, role: standby}
failover: {mode: auto, hold_down: 1s}
backends:
  - name: web
    servers:
      - {name: s1, address: "127.0.0.1:1", weight: %d, datacenter: dc1}
      - {name: s2, address: "127.0.0.1:2", datacenter: dc2}
`, w))
}

// tcluster runs in-process raft nodes over real TCP + mutual TLS on loopback.
type tcluster struct {
	t      testing.TB
	ca     *rafttest.CA
	dir    string
	faults *Faults
	mu     sync.Mutex
	nodes  map[string]*tnode
	// tune adjusts every node's options before start.
	tune func(*Options)
}

type tnode struct {
	*Node
	opts   Options
	cancel context.CancelFunc
	done   chan struct{}
}

func newTCluster(t testing.TB) *tcluster {
	t.Helper()
	dir := t.TempDir()
	ca, err := rafttest.NewCA(dir, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	c := &tcluster{t: t, ca: ca, dir: dir, nodes: map[string]*tnode{}}
	t.Cleanup(c.stopAll)
	return c
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("RAFT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// options makes a node's options; join is empty for the bootstrap node.
func (c *tcluster) options(id, dc, role string, join []string) Options {
	c.t.Helper()
	tlsf, err := c.ca.Issue(id)
	if err != nil {
		c.t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(c.t))
	o := Options{
		ID: id, Datacenter: dc, Role: role, Admin: "127.0.0.1:1",
		DataDir: filepath.Join(c.dir, id), Faults: c.faults, Log: testLogger(c.t).With("node", id),
		Raft: config.NodeRaft{
			Listen: addr, Bootstrap: len(join) == 0, Join: join, TLS: tlsf,
			HeartbeatTimeout: config.Duration(time.Second), ElectionTimeout: config.Duration(time.Second),
			LeaderLeaseTimeout: config.Duration(500 * time.Millisecond), CommitTimeout: config.Duration(10 * time.Millisecond),
			SnapshotThreshold: 1024, SnapshotInterval: config.Duration(time.Hour), TrailingLogs: 1024,
		},
	}
	if c.tune != nil {
		c.tune(&o)
	}
	return o
}

func (c *tcluster) start(o Options) *tnode {
	c.t.Helper()
	n, err := New(o)
	if err != nil {
		c.t.Fatalf("node %s: %v", o.ID, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn := &tnode{Node: n, opts: o, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(tn.done); _ = n.Run(ctx) }()
	c.mu.Lock()
	c.nodes[o.ID] = tn
	c.mu.Unlock()
	return tn
}

// take removes a node from the running set (nil if it is not running).
func (c *tcluster) take(id string) *tnode {
	c.mu.Lock()
	defer c.mu.Unlock()
	tn := c.nodes[id]
	delete(c.nodes, id)
	return tn
}

func (c *tcluster) stop(id string) {
	if tn := c.take(id); tn != nil {
		tn.cancel()
		<-tn.done
	}
}

func (c *tcluster) stopAll() {
	c.mu.Lock()
	var ids []string
	for id := range c.nodes {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(id) }()
	}
	wg.Wait()
}

func (c *tcluster) node(id string) *tnode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// boot starts n gateway nodes n1..nN (dc1, dc2 alternating; all voters)
// and waits until every one is a member and the seed document is applied.
func (c *tcluster) boot(n int) []*tnode {
	c.t.Helper()
	var out []*tnode
	var first string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		dc := "dc1"
		if i%2 == 0 {
			dc = "dc2"
		}
		var join []string
		if first != "" {
			join = []string{first}
		}
		o := c.options(id, dc, config.RoleGateway, join)
		if first == "" {
			o.Seed = doc(1)
			first = o.Raft.Listen
		}
		out = append(out, c.start(o))
	}
	c.waitMembers(out, n)
	c.waitVersion(out, 1)
	return out
}

func (c *tcluster) waitMembers(nodes []*tnode, want int) {
	c.t.Helper()
	testenv.Eventually(c.t, 30*time.Second, fmt.Sprintf("%d raft members", want), func() bool {
		for _, n := range nodes {
			m, err := n.Members()
			if err != nil || len(m) != want {
				return false
			}
		}
		return true
	})
}

func (c *tcluster) waitVersion(nodes []*tnode, v uint64) {
	c.t.Helper()
	testenv.Eventually(c.t, 20*time.Second, fmt.Sprintf("config version %d on every node", v), func() bool {
		for _, n := range nodes {
			if n.State().Version < v {
				return false
			}
		}
		return true
	})
}

func (c *tcluster) leader(nodes []*tnode) *tnode {
	c.t.Helper()
	var l *tnode
	testenv.Eventually(c.t, 20*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func propose(t *testing.T, n *tnode, cmd Command) Applied {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := n.Propose(ctx, cmd)
	if err != nil {
		t.Fatalf("propose via %s: %v", n.ID(), err)
	}
	return a
}

func putDoc(w int) *PutConfig {
	return &PutConfig{Source: doc(w), Author: "test", Time: time.Unix(1700000000, 0).UTC()}
}

func weightOf(s *State) int {
	if s.Config == nil {
		return -1
	}
	return *s.Config.Backend("web").Servers[0].Weight
}
