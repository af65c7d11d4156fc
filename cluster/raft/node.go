package raft

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/vipgate/vipgate/core/config"
)

// Options configure a raft node.
type Options struct {
	ID         string
	Datacenter string
	Role       string // config.RoleGateway or config.RoleWitness
	// Admin is this node's admin API address, recorded in the replicated
	// member list (so operators and tools can find every node's API).
	Admin   string
	DataDir string
	Raft    config.NodeRaft
	// TLS overrides the configuration loaded from Raft.TLS (tests).
	TLS *tls.Config
	// Seed is a cluster document the bootstrap node proposes as version 1;
	// the FSM commits it only if no version was ever committed.
	Seed []byte
	// Faults injects partitions (tests only).
	Faults *Faults
	Log    *slog.Logger
}

// HealthReport is a gateway's view of its own datacenter, sent to the
// leader (not committed: only the leader's roll-up changes are).
type HealthReport struct {
	Node       string    `json:"node"`
	Datacenter string    `json:"datacenter"`
	Healthy    bool      `json:"healthy"`
	Master     bool      `json:"master"` // holds a VRRP master role
	VRRP       bool      `json:"vrrp"`   // VRRP is configured on this node
	Reason     string    `json:"reason,omitempty"`
	Time       time.Time `json:"time"`
	// Interval is the sender's report interval: the leader counts the
	// report stale after three of them, whatever its own setting (the
	// leader may be a witness whose node file never set one).
	Interval time.Duration `json:"interval,omitempty"`
}

// Applied is the result of a committed command.
type Applied struct {
	Index   uint64 `json:"index"`
	Version uint64 `json:"version"`
}

// InvalidError is a command refused by validation (nothing was committed).
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// ErrNoLeader is returned when no leader is known (no quorum).
var ErrNoLeader = errors.New("no raft leader (the cluster has no quorum, or an election is in progress)")

// Node is one raft member.
type Node struct {
	o    Options
	log  *slog.Logger
	fsm  *FSM
	raft *hraft.Raft
	// ready is closed once raft is set: the stream layer accepts RPCs
	// (forwarded writes, joins) before New has finished.
	ready  chan struct{}
	stream *streamLayer
	trans  *hraft.NetworkTransport
	store  *raftboltdb.BoltStore

	reportsMu sync.Mutex
	reportFn  func(HealthReport)

	seedDone bool // the seed was committed or refused (Run's goroutine only)

	// bootIndex is the last entry this node held when it started (log or
	// snapshot): see Replayed.
	bootIndex uint64

	closeOnce sync.Once
}

// raftDir holds the BoltDB log and the snapshots.
func raftDir(dataDir string) string { return filepath.Join(dataDir, "raft") }

func raftConfig(o Options, log *slog.Logger) *hraft.Config {
	c := hraft.DefaultConfig()
	c.LocalID = hraft.ServerID(o.ID)
	r := o.Raft
	c.HeartbeatTimeout = r.HeartbeatTimeout.D()
	c.ElectionTimeout = r.ElectionTimeout.D()
	c.LeaderLeaseTimeout = r.LeaderLeaseTimeout.D()
	c.CommitTimeout = r.CommitTimeout.D()
	if r.SnapshotThreshold > 0 {
		c.SnapshotThreshold = r.SnapshotThreshold
	}
	if r.SnapshotInterval > 0 {
		c.SnapshotInterval = r.SnapshotInterval.D()
	}
	if r.TrailingLogs > 0 {
		c.TrailingLogs = r.TrailingLogs
	}
	c.Logger = hclogAdapter(log)
	return c
}

// New opens (or creates) the node's raft state and starts raft. A node
// with state from a previous run rejoins with it; a new node with
// bootstrap set founds a cluster; a new node with join addresses waits in
// Run until a member adds it.
func New(o Options) (*Node, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ID == "" {
		return nil, errors.New("raft: node has no id")
	}
	log := o.Log.With("sub", "raft")
	tlsCfg := o.TLS
	if tlsCfg == nil {
		var err error
		if tlsCfg, err = LoadTLS(o.Raft.TLS); err != nil {
			return nil, err
		}
	}
	dir := raftDir(o.DataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft data dir: %w", err)
	}
	n := &Node{o: o, log: log, fsm: NewFSM(log), ready: make(chan struct{})}
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("raft log store %s: %w", dir, err)
	}
	n.store = store
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(dir, 3, hclogAdapter(log))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raft snapshot store: %w", err)
	}
	n.stream, err = newStreamLayer(o.Raft.Listen, o.Raft.AdvertiseAddr(), tlsCfg, o.Faults, log, n.serveRPC)
	if err != nil {
		store.Close()
		return nil, err
	}
	n.trans = hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Stream: n.stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hclogAdapter(log),
	})
	n.fsm.since = time.Now()
	if n.bootIndex, err = store.LastIndex(); err != nil {
		n.closeStores()
		return nil, fmt.Errorf("raft log store %s: %w", dir, err)
	}
	if metas, err := snaps.List(); err == nil && len(metas) > 0 {
		n.bootIndex = max(n.bootIndex, metas[0].Index)
	}
	conf := raftConfig(o, log)
	existing, err := hraft.HasExistingState(store, store, snaps)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("raft state: %w", err)
	}
	if !existing && o.Raft.Bootstrap {
		cfg := hraft.Configuration{Servers: []hraft.Server{{
			ID: conf.LocalID, Address: n.trans.LocalAddr(), Suffrage: hraft.Voter,
		}}}
		if err := hraft.BootstrapCluster(conf, store, store, snaps, n.trans, cfg); err != nil {
			n.closeStores()
			return nil, fmt.Errorf("raft bootstrap: %w", err)
		}
		log.Info("bootstrapped a new cluster", "id", o.ID, "addr", n.trans.LocalAddr())
	}
	n.raft, err = hraft.NewRaft(conf, n.fsm, store, store, snaps, n.trans)
	if err != nil {
		n.closeStores()
		return nil, fmt.Errorf("raft: %w", err)
	}
	close(n.ready)
	return n, nil
}

func (n *Node) closeStores() {
	if n.trans != nil {
		n.trans.Close()
	}
	if n.stream != nil {
		n.stream.Close()
	}
	n.store.Close()
}

// Close stops raft and releases the data dir. Run calls it when its
// context ends.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		// Hand leadership over first: a planned restart then costs no
		// election timeout of write unavailability.
		if n.IsLeader() && n.voters() > 1 {
			if terr := n.raft.LeadershipTransfer().Error(); terr != nil {
				n.log.Debug("leadership transfer before shutdown", "err", terr)
			}
		}
		err = n.raft.Shutdown().Error()
		n.closeStores()
	})
	return err
}

// ID is this node's raft id.
func (n *Node) ID() string { return n.o.ID }

// Addr is the raft address peers dial.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// Replayed reports whether the entry at index is history rather than news
// to this node: an entry it already held when it started (its log and
// snapshot are replayed after every restart), or one the leader appended
// before this node started (a new or long-gone member catching up). Their
// events were published when they happened; publishing them again would
// page an operator about the past.
func (n *Node) Replayed(index uint64) bool {
	if index <= n.bootIndex {
		return true
	}
	f := n.fsm.firstNews.Load()
	return f == 0 || index < f
}

// FSM gives access to the replicated state.
func (n *Node) FSM() *FSM { return n.fsm }

// State is the latest applied state.
func (n *Node) State() *State { return n.fsm.State() }

// Raft exposes the underlying raft (stats, tests).
func (n *Node) Raft() *hraft.Raft { return n.raft }

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == hraft.Leader }

// LeaderContact is when this node last heard from a leader (zero if never).
// raft stops updating it once this node leads, so right after an election
// it says when the old leader went silent.
func (n *Node) LeaderContact() time.Time { return n.raft.LastContact() }

// Leader returns the leader's id and raft address ("" when unknown).
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// Watch returns a channel signalled after each committed change of the
// state (FSM.Watch): read State for the latest, bursts coalesce.
func (n *Node) Watch() <-chan struct{} { return n.fsm.Watch() }

// WatchLeader returns a channel signalled whenever this node learns of a
// new leader or of having none (hashicorp/raft's leader observation, so
// no one polls Leader); read Leader for the value. It stops when ctx ends.
func (n *Node) WatchLeader(ctx context.Context) <-chan struct{} {
	obs := make(chan hraft.Observation, 4)
	sig := make(chan struct{}, 1)
	o := hraft.NewObserver(obs, false, func(o *hraft.Observation) bool {
		_, ok := o.Data.(hraft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(o)
	go func() {
		defer n.raft.DeregisterObserver(o)
		for {
			select {
			case <-ctx.Done():
				return
			case <-obs:
				select {
				case sig <- struct{}{}:
				default:
				}
			}
		}
	}()
	return sig
}

// VerifyQuorum reports whether this node is the leader and a quorum still
// acknowledges it right now. A leader cut off from the majority fails this
// (and steps down after leader_lease_timeout).
func (n *Node) VerifyQuorum() bool {
	if !n.IsLeader() {
		return false
	}
	return n.raft.VerifyLeader().Error() == nil
}

// OnReport sets the handler for health reports received while leader.
func (n *Node) OnReport(f func(HealthReport)) {
	n.reportsMu.Lock()
	n.reportFn = f
	n.reportsMu.Unlock()
}

// Run keeps membership up (join, member metadata, seeding) until ctx ends,
// then shuts raft down.
func (n *Node) Run(ctx context.Context) error {
	defer n.Close()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var lastJoin time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !n.isMember() {
			if len(n.o.Raft.Join) > 0 && time.Since(lastJoin) > 2*time.Second {
				lastJoin = time.Now()
				if err := n.joinVia(ctx, n.o.Raft.Join); err != nil {
					n.log.Warn("joining the cluster", "err", err)
				}
			}
			continue
		}
		n.housekeep(ctx)
	}
}

func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	k := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == hraft.Voter {
			k++
		}
	}
	return k
}

func (n *Node) isMember() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.o.ID {
			return true
		}
	}
	return false
}

// housekeep records this node's metadata and seeds the first document.
func (n *Node) housekeep(ctx context.Context) {
	if _, addr := n.Leader(); addr == "" {
		return
	}
	st := n.State()
	want := Member{Datacenter: n.o.Datacenter, Role: n.o.Role, Admin: n.o.Admin}
	if st.Members[n.o.ID] != want {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := n.Propose(cctx, &SetMember{ID: n.o.ID, Datacenter: want.Datacenter, Role: want.Role, Admin: want.Admin})
		cancel()
		if err != nil {
			n.log.Debug("recording member metadata", "err", err)
		}
	}
	if n.IsLeader() && st.Version == 0 && len(n.o.Seed) > 0 && !n.seedDone {
		// Version 0 here may only mean the log is not replayed yet: the
		// FSM commits the seed only if no version was ever committed.
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := n.Propose(cctx, &SeedConfig{Source: n.o.Seed, Author: "seed:" + n.o.ID, Time: time.Now().UTC(), Comment: "initial configuration"})
		cancel()
		var inv *InvalidError
		switch {
		case err == nil:
			n.seedDone = true
			n.log.Info("seeded the cluster configuration")
		case errors.As(err, &inv):
			// Already configured (the usual case after a restart), or a
			// seed the FSM refuses: proposing it again changes nothing.
			n.seedDone = true
			n.log.Info("the seed configuration was not used", "reason", err)
		default:
			n.log.Error("seeding the cluster configuration", "err", err)
		}
	}
}

func (n *Node) joinVia(ctx context.Context, addrs []string) error {
	var errs []error
	for _, a := range addrs {
		if a == n.Addr() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := n.call(cctx, a, &rpcRequest{Op: "join", ID: n.o.ID, Addr: n.Addr(), Voter: !n.o.Raft.Nonvoter})
		cancel()
		if err == nil {
			n.log.Info("asked to join the cluster", "via", a)
			return nil
		}
		errs = append(errs, fmt.Errorf("via %s: %w", a, err))
	}
	return errors.Join(errs...)
}

// Propose validates cmd against the current state and commits it through
// the leader (forwarding when this node is a follower).
func (n *Node) Propose(ctx context.Context, cmd Command) (Applied, error) {
	data, err := Encode(cmd)
	if err != nil {
		return Applied{}, err
	}
	resp, err := n.toLeader(ctx, &rpcRequest{Op: "apply", Data: data})
	if err != nil {
		return Applied{}, err
	}
	return Applied{Index: resp.Index, Version: resp.Version}, nil
}

// Committed returns the committed document and its version as the leader
// has them once every entry committed so far is applied there (a raft
// barrier). This node's own state may lag — a follower cut off from the
// leader, or behind by a commit — and a decision such as "this document
// is already the committed one, nothing to do" must not be taken on it.
func (n *Node) Committed(ctx context.Context) (version uint64, source []byte, err error) {
	resp, err := n.toLeader(ctx, &rpcRequest{Op: "committed"})
	if err != nil {
		return 0, nil, err
	}
	return resp.Version, resp.Data, nil
}

// Join adds a member (voter or nonvoter) through the leader.
func (n *Node) Join(ctx context.Context, id, addr string, voter bool) error {
	_, err := n.toLeader(ctx, &rpcRequest{Op: "join", ID: id, Addr: addr, Voter: voter})
	return err
}

// Remove takes a member out of the cluster through the leader.
func (n *Node) Remove(ctx context.Context, id string) error {
	_, err := n.toLeader(ctx, &rpcRequest{Op: "remove", ID: id})
	return err
}

// Report sends this node's health report to the leader.
func (n *Node) Report(ctx context.Context, r HealthReport) error {
	_, err := n.toLeader(ctx, &rpcRequest{Op: "report", Report: &r})
	return err
}

// toLeader runs req locally when leader, or sends it to the leader,
// retrying while an election is in progress until ctx ends.
func (n *Node) toLeader(ctx context.Context, req *rpcRequest) (*rpcResponse, error) {
	// An election takes about one election timeout; without a leader for
	// several, there is no quorum and waiting longer only hides that.
	patience := LeaderPatience(n.o.Raft)
	var noLeaderSince time.Time
	for {
		var resp *rpcResponse
		var err error
		if n.IsLeader() {
			resp, err = n.handle(ctx, req)
		} else if _, addr := n.Leader(); addr != "" {
			resp, err = n.call(ctx, addr, req)
		} else {
			err = ErrNoLeader
		}
		if err == nil || !retryable(err) {
			return resp, err
		}
		if errors.Is(err, ErrNoLeader) {
			if noLeaderSince.IsZero() {
				noLeaderSince = time.Now()
			} else if time.Since(noLeaderSince) > patience {
				return nil, err
			}
		} else {
			noLeaderSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// transientError is a retryable failure reported by a remote node
// (leadership lost, election in progress).
type transientError struct{ msg string }

func (e *transientError) Error() string { return e.msg }

func retryable(err error) bool {
	var inv *InvalidError
	if errors.As(err, &inv) {
		return false
	}
	var tr *transientError
	return errors.As(err, &tr) || errors.Is(err, ErrNoLeader) ||
		errors.Is(err, hraft.ErrLeadershipTransferInProgress) || errors.Is(err, hraft.ErrEnqueueTimeout) || errors.Is(err, hraft.ErrNotLeader) ||
		errors.Is(err, hraft.ErrLeadershipLost) || strings.Contains(err.Error(), "not the leader") ||
		isNetErr(err)
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "partitioned")
}

// announceCommit makes the followers learn the leader's commit index now,
// so they apply what was just committed within one round trip. hashicorp/raft
// sends the commit index only inside AppendEntries (its heartbeats carry
// none, to stay clear of the followers' disk); with nothing new to replicate
// the leader waits a random CommitTimeout..2×CommitTimeout before sending
// one, which made "committed → applied on every node" 1-2 commit timeouts.
// Appending a barrier (an entry the FSM never sees) wakes replication at
// once, and that AppendEntries carries the new commit index. Lowering
// CommitTimeout instead would cost idle traffic on every link, all the time.
// It does not wait: the barrier's own commit is of no interest.
func (n *Node) announceCommit() {
	n.raft.Barrier(time.Second)
}

// handle runs a request on the leader.
func (n *Node) handle(ctx context.Context, req *rpcRequest) (*rpcResponse, error) {
	if !n.IsLeader() {
		return nil, fmt.Errorf("%w: not the leader", hraft.ErrNotLeader)
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), 10*time.Millisecond)
	}
	switch req.Op {
	case "apply":
		cmd, err := Decode(req.Data)
		if err != nil {
			return nil, &InvalidError{err}
		}
		if err := Validate(n.State(), cmd); err != nil {
			// A new leader applies what was committed before it led only
			// after its election (after a restart: its whole log): refuse
			// only on a state that has caught up.
			if berr := n.raft.Barrier(timeout).Error(); berr != nil {
				return nil, berr
			}
			if err := Validate(n.State(), cmd); err != nil {
				return nil, &InvalidError{err}
			}
		}
		f := n.raft.Apply(req.Data, timeout)
		if err := f.Error(); err != nil {
			return nil, err
		}
		n.announceCommit()
		switch r := f.Response().(type) {
		case error:
			return nil, &InvalidError{r}
		case Applied:
			return &rpcResponse{Index: r.Index, Version: r.Version}, nil
		}
		return &rpcResponse{Index: f.Index(), Version: n.State().Version}, nil
	case "committed":
		if err := n.raft.Barrier(timeout).Error(); err != nil {
			return nil, err
		}
		st := n.State()
		return &rpcResponse{Version: st.Version, Data: st.Source}, nil
	case "join":
		cf := n.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return nil, err
		}
		for _, s := range cf.Configuration().Servers {
			if string(s.ID) == req.ID && string(s.Address) == req.Addr &&
				(s.Suffrage == hraft.Voter) == req.Voter {
				return &rpcResponse{}, nil
			}
			if string(s.ID) != req.ID && string(s.Address) == req.Addr {
				return nil, &InvalidError{fmt.Errorf("address %s is already used by member %s", req.Addr, s.ID)}
			}
		}
		if req.Voter {
			// A voter that cannot be reached (not started yet, a typo in the
			// address) would count towards the quorum at once: in a small
			// cluster that stops every commit until it answers.
			c, err := n.stream.dial(req.Addr, protoRPC, min(timeout, 5*time.Second))
			if err != nil {
				return nil, &InvalidError{fmt.Errorf("%s at %s does not answer on its raft port (%v): start it first (adding an unreachable voter could cost the cluster its quorum)", req.ID, req.Addr, err)}
			}
			c.Close()
		}
		var f hraft.IndexFuture
		if req.Voter {
			f = n.raft.AddVoter(hraft.ServerID(req.ID), hraft.ServerAddress(req.Addr), 0, timeout)
		} else {
			f = n.raft.AddNonvoter(hraft.ServerID(req.ID), hraft.ServerAddress(req.Addr), 0, timeout)
		}
		if err := f.Error(); err != nil {
			return nil, err
		}
		n.log.Info("member added", "id", req.ID, "addr", req.Addr, "voter", req.Voter)
		return &rpcResponse{Index: f.Index()}, nil
	case "remove":
		found := false
		cf := n.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return nil, err
		}
		for _, s := range cf.Configuration().Servers {
			found = found || string(s.ID) == req.ID
		}
		if !found {
			return nil, &InvalidError{fmt.Errorf("no member %q", req.ID)}
		}
		f := n.raft.RemoveServer(hraft.ServerID(req.ID), 0, timeout)
		if err := f.Error(); err != nil {
			return nil, err
		}
		// Unconditionally: this leader's state may not show the member's
		// metadata yet (just elected), and removing nothing is harmless.
		if req.ID != n.o.ID {
			data, _ := Encode(&SetMember{ID: req.ID, Remove: true})
			if n.raft.Apply(data, timeout).Error() == nil {
				n.announceCommit()
			}
		}
		n.log.Info("member removed", "id", req.ID)
		return &rpcResponse{Index: f.Index()}, nil
	case "report":
		if req.Report == nil {
			return nil, &InvalidError{errors.New("empty report")}
		}
		n.reportsMu.Lock()
		fn := n.reportFn
		n.reportsMu.Unlock()
		if fn != nil {
			fn(*req.Report)
		}
		return &rpcResponse{}, nil
	}
	return nil, &InvalidError{fmt.Errorf("unknown operation %q", req.Op)}
}

// MemberInfo describes one member for `vipgate cluster members`.
type MemberInfo struct {
	ID         string `json:"id"`
	Address    string `json:"address"`
	Suffrage   string `json:"suffrage"` // voter, nonvoter
	Leader     bool   `json:"leader"`
	Datacenter string `json:"datacenter,omitempty"`
	Role       string `json:"role,omitempty"`
	Admin      string `json:"admin,omitempty"`
}

// Members lists the raft configuration with each member's metadata.
func (n *Node) Members() ([]MemberInfo, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	leaderID, _ := n.Leader()
	st := n.State()
	var out []MemberInfo
	for _, s := range f.Configuration().Servers {
		m := st.Members[string(s.ID)]
		suf := "voter"
		if s.Suffrage != hraft.Voter {
			suf = "nonvoter"
		}
		out = append(out, MemberInfo{ID: string(s.ID), Address: string(s.Address), Suffrage: suf,
			Leader: string(s.ID) == leaderID, Datacenter: m.Datacenter, Role: m.Role, Admin: m.Admin})
	}
	return out, nil
}

// Status is the raft section of the node status.
func (n *Node) Status() map[string]any {
	id, addr := n.Leader()
	st := n.State()
	return map[string]any{
		"id": n.o.ID, "addr": n.Addr(), "state": n.raft.State().String(),
		"leader": id, "leader_addr": addr, "term": n.raft.CurrentTerm(),
		"commit_index": n.raft.CommitIndex(), "applied_index": n.raft.AppliedIndex(),
		"config_version": st.Version, "last_contact": n.raft.LastContact(),
	}
}

// --- cluster RPC (follower → leader forwarding, join) over the mTLS port ---

type rpcRequest struct {
	Op     string        `json:"op"`
	Data   []byte        `json:"data,omitempty"`
	ID     string        `json:"id,omitempty"`
	Addr   string        `json:"addr,omitempty"`
	Voter  bool          `json:"voter,omitempty"`
	Report *HealthReport `json:"report,omitempty"`
	// Hops bounds forwarding (a member that is not the leader forwards once).
	Hops int `json:"hops,omitempty"`
}

type rpcResponse struct {
	Index   uint64 `json:"index,omitempty"`
	Version uint64 `json:"version,omitempty"`
	Data    []byte `json:"data,omitempty"` // committed: the document
	Error   string `json:"error,omitempty"`
	Invalid bool   `json:"invalid,omitempty"`
	Retry   bool   `json:"retry,omitempty"` // transient: the sender may try again
}

const maxRPC = 16 << 20

func (n *Node) serveRPC(c net.Conn) {
	defer c.Close()
	select {
	case <-n.ready:
	default:
		return // not started: the sender retries (a closed connection is transient)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(c, maxRPC)).Decode(&req); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	var resp *rpcResponse
	var err error
	if n.IsLeader() {
		resp, err = n.handle(ctx, &req)
	} else if req.Hops < 1 {
		// A join or a request sent to a follower goes one hop further.
		req.Hops++
		resp, err = n.toLeader(ctx, &req)
	} else {
		err = ErrNoLeader
	}
	if err != nil {
		var inv *InvalidError
		resp = &rpcResponse{Error: err.Error(), Invalid: errors.As(err, &inv), Retry: retryable(err)}
	}
	_ = json.NewEncoder(c).Encode(resp)
}

func (n *Node) call(ctx context.Context, addr string, req *rpcRequest) (*rpcResponse, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), 10*time.Millisecond)
	}
	c, err := n.stream.dial(addr, protoRPC, min(timeout, 10*time.Second))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var resp rpcResponse
	if err := json.NewDecoder(io.LimitReader(c, maxRPC)).Decode(&resp); err != nil {
		return nil, fmt.Errorf("rpc to %s: %w", addr, err)
	}
	if resp.Error != "" {
		if resp.Invalid {
			return nil, &InvalidError{errors.New(resp.Error)}
		}
		if resp.Retry {
			return nil, &transientError{resp.Error}
		}
		return nil, errors.New(resp.Error)
	}
	return &resp, nil
}

// Recover rewrites the raft configuration of a stopped node to exactly
// servers (id → address, all voters), for when a quorum is permanently
// lost. Every surviving node must be recovered with the same list while all
// are stopped. Entries committed by the lost majority but not replicated
// here are lost; that is why the CLI demands a loud confirmation.
func Recover(o Options, servers map[string]string) error {
	if len(servers) == 0 {
		return errors.New("recover: no servers given")
	}
	dir := raftDir(o.DataDir)
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); err != nil {
		return fmt.Errorf("recover: no raft state in %s: %w", dir, err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		return fmt.Errorf("recover: %w (is the node still running?)", err)
	}
	defer store.Close()
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(dir, 3, hclogAdapter(log))
	if err != nil {
		return err
	}
	_, trans := hraft.NewInmemTransport("")
	var cfg hraft.Configuration
	for id, addr := range servers {
		cfg.Servers = append(cfg.Servers, hraft.Server{ID: hraft.ServerID(id), Address: hraft.ServerAddress(addr), Suffrage: hraft.Voter})
	}
	conf := raftConfig(o, log)
	if err := hraft.RecoverCluster(conf, NewFSM(log), store, store, snaps, trans, cfg); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	return nil
}
