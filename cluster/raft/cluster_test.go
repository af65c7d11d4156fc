package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

func TestReplicatesToAllNodes(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			c := newTCluster(t)
			nodes := c.boot(size)
			l := c.leader(nodes)
			// Propose through a follower: it forwards to the leader.
			var f *tnode
			for _, n := range nodes {
				if n != l {
					f = n
					break
				}
			}
			a := propose(t, f, putDoc(7))
			if a.Version != 2 {
				t.Fatalf("committed version %d, want 2", a.Version)
			}
			c.waitVersion(nodes, 2)
			for _, n := range nodes {
				if w := weightOf(n.State()); w != 7 {
					t.Errorf("%s: weight %d, want 7", n.ID(), w)
				}
				if got := n.State().History[1].Author; got != "test" {
					t.Errorf("%s: author %q", n.ID(), got)
				}
			}
			ms, _ := l.Members()
			for _, m := range ms {
				if m.Suffrage != "voter" {
					t.Errorf("member %s is %s", m.ID, m.Suffrage)
				}
			}
		})
	}
}

func TestInvalidCommandIsNotCommitted(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(3)
	before := nodes[1].Raft().LastIndex()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := nodes[1].Propose(ctx, &PutConfig{Source: []byte("backends:\n  - name: web\n    servers:\n      - {name: s1, address: nowhere}\n"), Author: "t"})
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("want an InvalidError, got %v", err)
	}
	if !contains(err.Error(), "cluster.yaml:4") {
		t.Errorf("error does not point at the line: %v", err)
	}
	_, err = nodes[2].Propose(ctx, &SetActiveDC{DC: "nowhere", Author: "t"})
	if !errors.As(err, &inv) {
		t.Fatalf("want an InvalidError for an unknown datacenter, got %v", err)
	}
	// Other entries (member metadata, an election's no-op) may appear
	// meanwhile; none of them may be one of the refused commands.
	for i := before + 1; i <= nodes[1].Raft().LastIndex(); i++ {
		var l hraft.Log
		if err := nodes[1].store.GetLog(i, &l); err != nil || l.Type != hraft.LogCommand {
			continue
		}
		if cmd, err := Decode(l.Data); err == nil {
			switch cmd.(type) {
			case *PutConfig, *SetActiveDC:
				t.Errorf("log index %d holds a refused command %T", i, cmd)
			}
		}
	}
	for _, n := range nodes {
		if v := n.State().Version; v != 1 {
			t.Errorf("%s: version %d, want 1", n.ID(), v)
		}
	}
}

func TestLeaderKilledNothingLost(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(3)
	for w := 2; w <= 4; w++ {
		propose(t, nodes[0], putDoc(w))
	}
	old := c.leader(nodes)
	oldOpts := old.opts
	c.stop(old.ID())
	var rest []*tnode
	for _, n := range nodes {
		if n != old {
			rest = append(rest, n)
		}
	}
	nl := c.leader(rest)
	if nl == old {
		t.Fatal("old leader still leader")
	}
	// Every committed version survives (the new leader learns the commit
	// index of the old one's last entries with its first entry).
	c.waitVersion(rest, 4)
	a := propose(t, rest[0], putDoc(9))
	if a.Version != 5 {
		t.Errorf("version after failover %d, want 5", a.Version)
	}
	// The old leader restarts from its BoltDB log and catches up.
	oldOpts.Raft.Bootstrap = false
	back := c.start(oldOpts)
	c.waitVersion([]*tnode{back}, 5)
	if w := weightOf(back.State()); w != 9 {
		t.Errorf("restarted node has weight %d, want 9", w)
	}
	if len(back.State().History) != 5 {
		t.Errorf("restarted node history has %d entries, want 5", len(back.State().History))
	}
}

func TestSnapshotInstallAndRestore(t *testing.T) {
	c := newTCluster(t)
	c.tune = func(o *Options) {
		o.Raft.SnapshotThreshold = 4
		o.Raft.TrailingLogs = 2
	}
	nodes := c.boot(3)
	for w := 2; w <= 20; w++ {
		propose(t, nodes[w%3], putDoc(w))
	}
	propose(t, nodes[0], &SetServerAdmin{Backend: "web", Server: "s2", State: "drain", Author: "ops"})
	l := c.leader(nodes)
	if err := l.Raft().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	// A new member is far behind the compacted log: it gets the snapshot.
	o := c.options("n4", "dc2", config.RoleGateway, []string{nodes[1].Addr()})
	n4 := c.start(o)
	c.waitVersion([]*tnode{n4}, 20)
	if w := weightOf(n4.State()); w != 20 {
		t.Errorf("n4 weight %d, want 20", w)
	}
	if s := n4.State().Servers["web/s2"].State; s != "drain" {
		t.Errorf("n4 lost the drain decision: %q", s)
	}
	// A restarted member restores its own snapshot.
	testenv.Eventually(t, 10*time.Second, "snapshot on n3", func() bool {
		return nodes[2].Raft().Snapshot().Error() == nil
	})
	o3 := nodes[2].opts
	c.stop(nodes[2].ID())
	o3.Raft.Bootstrap = false
	n3 := c.start(o3)
	c.waitVersion([]*tnode{n3}, 20)
	if got := len(n3.State().History); got != 20 {
		t.Errorf("restored history %d entries, want 20", got)
	}
}

func TestMutualTLSRefusesForeignCertificate(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(3)
	rogueCA, err := rafttest.NewCA(t.TempDir(), "rogue")
	if err != nil {
		t.Fatal(err)
	}
	o := c.options("rogue", "dc1", config.RoleGateway, []string{nodes[0].Addr(), nodes[1].Addr()})
	if o.Raft.TLS, err = rogueCA.Issue("rogue"); err != nil {
		t.Fatal(err)
	}
	o.Raft.TLS.CA = c.ca.CAFile // it trusts the cluster, the cluster does not trust it
	rogue := c.start(o)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rogue.joinVia(ctx, o.Raft.Join); err == nil {
		t.Fatal("a node with a foreign certificate was allowed to join")
	}
	// Nor can it forward writes.
	if _, err := rogue.call(ctx, nodes[0].Addr(), &rpcRequest{Op: "apply"}); err == nil {
		t.Fatal("a node with a foreign certificate reached the RPC endpoint")
	}
	ms, _ := nodes[0].Members()
	if len(ms) != 3 {
		t.Errorf("members %v", ms)
	}
}

func TestRecoverAfterLosingQuorum(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(3)
	propose(t, nodes[0], putDoc(5))
	c.waitVersion(nodes, 2)
	c.stop("n2")
	c.stop("n3")
	// Alone, n1 has no quorum.
	testenv.Eventually(t, 10*time.Second, "n1 without quorum", func() bool { return !nodes[0].VerifyQuorum() })
	o := nodes[0].opts
	c.stop("n1")
	if err := Recover(o, map[string]string{"n1": o.Raft.Listen}); err != nil {
		t.Fatal(err)
	}
	o.Raft.Bootstrap = false
	n1 := c.start(o)
	l := c.leader([]*tnode{n1})
	if weightOf(l.State()) != 5 {
		t.Errorf("recovered node lost its state: weight %d", weightOf(l.State()))
	}
	if a := propose(t, n1, putDoc(6)); a.Version != 3 {
		t.Errorf("version %d after recovery, want 3", a.Version)
	}
}

func TestLeaveAndRemove(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[1].Remove(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "n3 removed", func() bool {
		ms, _ := nodes[0].Members()
		_, meta := nodes[0].State().Members["n3"]
		return len(ms) == 2 && !meta
	})
	if err := nodes[0].Remove(ctx, "nobody"); err == nil {
		t.Error("removing an unknown member succeeded")
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestNonvoterReplicatesWithoutVoting(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(3)
	o := c.options("nv", "dc2", config.RoleGateway, []string{nodes[2].Addr()})
	o.Raft.Nonvoter = true
	nv := c.start(o)
	all := append(nodes, nv)
	c.waitMembers(all, 4)
	propose(t, nv, putDoc(11))
	c.waitVersion(all, 2)
	ms, _ := nodes[0].Members()
	for _, m := range ms {
		if want := map[bool]string{true: "nonvoter", false: "voter"}[m.ID == "nv"]; m.Suffrage != want {
			t.Errorf("%s is %s, want %s", m.ID, m.Suffrage, want)
		}
	}
	// Two voters down of three: the nonvoter does not make a quorum.
	c.stop("n2")
	c.stop("n3")
	testenv.Eventually(t, 10*time.Second, "no quorum", func() bool { return !nodes[0].VerifyQuorum() && !nv.IsLeader() })
}

// The raft port speaks only to holders of a cluster certificate: plaintext,
// TLS without a client certificate, and a certificate of another CA are
// all cut off before a byte of raft or RPC is read, and the cluster stays
// as it was.
func TestRaftPortRefusesUnauthenticated(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(1)
	addr := nodes[0].Addr()
	rogue, err := rafttest.NewCA(t.TempDir(), "rogue")
	if err != nil {
		t.Fatal(err)
	}
	rf, err := rogue.Issue("rogue")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := tls.LoadX509KeyPair(rf.Cert, rf.Key)
	if err != nil {
		t.Fatal(err)
	}
	// What a raft peer sends first (the RPC type byte) then some payload.
	probe := []byte{0, 1, 2, 3, 4, 5, 6, 7}
	tests := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"plaintext", func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 3*time.Second) }},
		{"tls without a client certificate", func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		}},
		{"certificate of another CA", func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{foreign}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tt.dial()
			if err != nil {
				return // refused during the handshake
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Write(probe)
			b := make([]byte, 64)
			n, err := conn.Read(b)
			if err == nil {
				t.Fatalf("the raft port answered %d bytes: %x", n, b[:n])
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the connection was left open instead of refused")
			}
		})
	}
	if ms, _ := nodes[0].Members(); len(ms) != 1 {
		t.Errorf("members %v", ms)
	}
}

// `cluster join` of a voter that does not answer on its raft port (not
// started, a wrong address) is refused: with one node, that voter would
// have stopped every commit. A reachable nonvoter is promoted by joining
// it as a voter.
func TestJoinRefusesUnreachableVoter(t *testing.T) {
	c := newTCluster(t)
	nodes := c.boot(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ghost := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	err := nodes[0].Join(ctx, "ghost", ghost, true)
	var inv *InvalidError
	if !errors.As(err, &inv) || !contains(err.Error(), "does not answer on its raft port") {
		t.Fatalf("join of an unreachable voter: %v", err)
	}
	if ms, _ := nodes[0].Members(); len(ms) != 1 {
		t.Fatalf("members %v after a refused join", ms)
	}
	if a := propose(t, nodes[0], putDoc(7)); a.Version != 2 {
		t.Fatalf("version %d after the refused join", a.Version)
	}

	o := c.options("nv", "dc2", config.RoleGateway, []string{nodes[0].Addr()})
	o.Raft.Nonvoter = true
	nv := c.start(o)
	c.waitMembers([]*tnode{nodes[0], nv}, 2)
	if err := nodes[0].Join(ctx, "nv", nv.Addr(), true); err != nil {
		t.Fatalf("promoting the nonvoter: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "nv is a voter", func() bool {
		ms, _ := nodes[0].Members()
		for _, m := range ms {
			if m.ID == "nv" {
				return m.Suffrage == "voter"
			}
		}
		return false
	})
}

// Committed is the leader's view after a barrier, whichever node asks: a
// follower cut off from the leader gets an error (never its own stale
// document), and once back, the document committed meanwhile.
func TestCommittedIsTheLeadersView(t *testing.T) {
	c := newTCluster(t)
	c.faults = NewFaults()
	nodes := c.boot(3)
	l := c.leader(nodes)
	var cut *tnode
	var others []string
	for _, n := range nodes {
		if n != l && cut == nil {
			cut = n
		} else {
			others = append(others, n.Addr())
		}
	}
	c.faults.Partition([]string{cut.Addr()}, others)
	propose(t, l, putDoc(5))
	if v := cut.State().Version; v != 1 {
		t.Fatalf("the cut follower has version %d", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	v, src, err := cut.Committed(ctx)
	cancel()
	if err == nil {
		t.Fatalf("a follower cut off from the leader answered version %d:\n%s", v, src)
	}
	c.faults.Heal()
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		v, src, err := n.Committed(ctx)
		cancel()
		if err != nil || v != 2 || string(src) != string(doc(5)) {
			t.Fatalf("via %s: version %d, %v, document:\n%s", n.ID(), v, err, src)
		}
	}
}
