// Package state owns a node's copy of the committed cluster state and is
// the one place that passes it on. The rule of the house: every subsystem
// reconciles to a config snapshot and to committed decisions, both pushed
// to it; none reads raft, polls on a timer, or is driven from cmd/vipgate.
//
//   - Config snapshots: each committed document version is handed to the
//     node (Updates), which applies it to every subsystem in order.
//   - Decisions (the active datacenter, the datacenter health roll-up,
//     operators' server overrides): each committed change is pushed to the
//     subscribers (Subscribe) in the same step that sees it commit — DNS
//     answers by them, Overrides enforces the server states on the proxy.
//   - Events: the cluster-wide ones (config.applied, dc.failover,
//     dc.failback, config.files) and this node's view of raft
//     (raft.leader, quorum.lost, quorum.regained) are published here, on
//     the commit or on raft's leader observation; alerts react to them.
//
// Without raft, Static pushes the same from the node's config file.
package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
)

// Decisions are the committed decisions of the cluster at one raft index.
// A pushed value is never modified: subscribers may keep it.
type Decisions struct {
	// Index is the raft index of the state they were read from.
	Index uint64
	// Active is the datacenter clients should use now ("" = unknown).
	Active string
	// ActiveDecided is the time the active datacenter was decided (its
	// command's time; zero when nothing was decided, the primary's).
	ActiveDecided time.Time
	// Health is the committed health roll-up per datacenter; a datacenter
	// missing from it is unknown.
	Health map[string]raft.DCHealth
	// Servers are operators' admin states by "backend/server".
	Servers map[string]raft.ServerOverride
	// Pushed is when this node pushed them to its subscribers;
	// ActivePushed when it last pushed a change of Active (the end of a
	// failover on this node: DNS answers by it from then on).
	Pushed, ActivePushed time.Time
}

// Healthy is Health as DNS reads it: healthy or not, per known datacenter.
func (d *Decisions) Healthy() map[string]bool {
	out := make(map[string]bool, len(d.Health))
	for dc, h := range d.Health {
		out[dc] = h.Healthy
	}
	return out
}

func (d *Decisions) same(o *Decisions) bool {
	return o != nil && d.Active == o.Active && maps.Equal(d.Health, o.Health) && maps.Equal(d.Servers, o.Servers)
}

// Subscriber follows the committed decisions. Decide is called in the
// step that sees them commit, one subscriber after the other: it must take
// them and return, never block.
type Subscriber interface {
	Decide(d *Decisions)
}

// DecideFunc adapts a function to Subscriber.
type DecideFunc func(d *Decisions)

// Decide implements Subscriber.
func (f DecideFunc) Decide(d *Decisions) { f(d) }

// pusher keeps the subscribers and the last decisions pushed to them.
type pusher struct {
	mu   sync.Mutex
	subs []Subscriber
	last atomic.Pointer[Decisions]
}

// Subscribe adds s; it gets the current decisions at once when there are
// some, then every change.
func (p *pusher) Subscribe(s Subscriber) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subs = append(p.subs, s)
	if d := p.last.Load(); d != nil {
		s.Decide(d)
	}
}

// push hands d to every subscriber unless nothing changed; it reports
// whether it pushed.
func (p *pusher) push(d *Decisions) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.last.Load()
	if d.same(prev) {
		return false
	}
	d.Pushed = time.Now()
	d.ActivePushed = d.Pushed
	if prev != nil && prev.Active == d.Active {
		d.ActivePushed = prev.ActivePushed
	}
	p.last.Store(d)
	for _, s := range p.subs {
		s.Decide(d)
	}
	return true
}

// Decisions are the last ones pushed (nil before the first).
func (p *pusher) Decisions() *Decisions { return p.last.Load() }

// ActiveDatacenter is the last pushed active datacenter ("" = unknown).
func (p *pusher) ActiveDatacenter() string {
	if d := p.last.Load(); d != nil {
		return d.Active
	}
	return ""
}

// Node is what Cluster needs of the raft member (*raft.Node).
type Node interface {
	State() *raft.State
	Watch() <-chan struct{}
	Leader() (id, addr string)
	WatchLeader(ctx context.Context) <-chan struct{}
	// Replayed reports whether the entry at index is history to this node
	// (replayed after a restart, or caught up on): its events were
	// published when it happened.
	Replayed(index uint64) bool
}

// Options configure a Cluster.
type Options struct {
	Node Node
	Bus  *events.Bus
	Log  *slog.Logger
	// CheckFiles judges the files a committed document names on this node
	// (nil: not checked); one line per problem.
	CheckFiles func(c *config.Cluster) []string
	// LeaderPatience is how long no leader is an election rather than a
	// lost quorum (raft.LeaderPatience).
	LeaderPatience time.Duration
}

// Cluster owns the node's copy of the committed cluster state: it hands
// each new config snapshot on (Updates), pushes the decisions to the
// subscribers and publishes the cluster events, each when raft tells it.
type Cluster struct {
	pusher
	o       Options
	updates chan *config.Cluster
	recheck chan struct{}

	filesMu sync.Mutex
	files   FileCheck
}

// New makes a Cluster; Run drives it.
func New(o Options) *Cluster {
	return &Cluster{o: o, updates: make(chan *config.Cluster, 1), recheck: make(chan struct{}, 1)}
}

// Updates delivers each committed config snapshot; the first as soon as
// one is known. An unread snapshot is replaced by a newer one.
func (c *Cluster) Updates() <-chan *config.Cluster { return c.updates }

// Reload re-delivers the committed document (SIGHUP on a raft node): after
// an operator put a missing certificate in place, the proxy applies it
// without waiting for the next version.
func (c *Cluster) Reload() {
	select {
	case c.recheck <- struct{}{}:
	default:
	}
}

// DatacenterHealthy is the committed roll-up of dc as last pushed.
func (c *Cluster) DatacenterHealthy(dc string) (healthy, known bool) {
	if d := c.Decisions(); d != nil {
		h, ok := d.Health[dc]
		return h.Healthy, ok
	}
	return false, false
}

// FileCheck is what this node found wrong with the files the committed
// document names (TLS certificates and keys, CA files, error pages). Those
// files are node-local: the cluster commits the document whatever one node
// holds, so each node checks them itself when it applies a version.
type FileCheck struct {
	Version  uint64   `json:"version"`
	Problems []string `json:"problems"`
}

// Files is the last file check.
func (c *Cluster) Files() FileCheck {
	c.filesMu.Lock()
	defer c.filesMu.Unlock()
	return c.files
}

// Run follows the committed state and the raft leader until ctx ends. It
// wakes on a commit, on raft's leader observation, on Reload, and only
// while there is no leader on a timer: a lost quorum is the absence of
// news for longer than an election takes.
func (c *Cluster) Run(ctx context.Context) error {
	if c.o.Node == nil {
		return errors.New("cluster state: no raft node")
	}
	changed := c.o.Node.Watch()
	leaderCh := c.o.Node.WatchLeader(ctx)
	patience := max(c.o.LeaderPatience, time.Second)
	leaders := raft.LeaderEvents{Patience: patience, Grace: 10 * patience}
	var last *raft.State
	reload := false
	for {
		// The leader first: a change it committed comes after it.
		id, _ := c.o.Node.Leader()
		for _, ev := range leaders.Observe(id, time.Now()) {
			c.publish(ev)
		}
		st := c.o.Node.State()
		c.step(last, st, reload)
		last, reload = st, false
		var noLeader *time.Timer
		var wait <-chan time.Time
		if id == "" {
			noLeader = time.NewTimer(patience)
			wait = noLeader.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-leaderCh:
		case <-wait:
		case <-c.recheck:
			reload = true
		}
		if noLeader != nil {
			noLeader.Stop()
		}
	}
}

// logConfig writes the one line each new config version (or a SIGHUP's
// re-application of the committed one) gets in this node's log.
func (c *Cluster) logConfig(last, st *raft.State, reload bool) {
	if c.o.Log == nil {
		return
	}
	attrs := []any{"version", st.Version, "index", st.ConfigIndex()}
	if n := len(st.History); n > 0 {
		attrs = append(attrs, "author", st.History[n-1].Author)
	}
	switch {
	case last == nil:
		c.o.Log.Info("configuration loaded", attrs...)
	case st.Version != last.Version:
		c.o.Log.Info("configuration applied", attrs...)
	case reload:
		c.o.Log.Info("configuration re-applied on reload", attrs...)
	}
}

// step passes on what changed from last to st: decisions first (they are
// the cheap, urgent part: DNS answers by them), then the snapshot and the
// events. What this node replays (its log after a restart, a catch-up from
// the leader) was published when it happened, and is not again.
func (c *Cluster) step(last, st *raft.State, reload bool) {
	d := &Decisions{Index: st.Index, Active: st.ActiveDatacenter(), Health: st.Health, Servers: st.Servers}
	if st.Active.DC == d.Active {
		d.ActiveDecided = st.Active.Time
	}
	c.push(d)
	if st.Config != nil && (last == nil || st.Version != last.Version || reload) {
		c.checkFiles(st.Version, st.Config)
		// Replace a snapshot nobody took yet: only the newest matters.
		select {
		case <-c.updates:
		default:
		}
		c.logConfig(last, st, reload)
		c.updates <- st.Config
		if last != nil && st.Version > 0 && len(st.History) > 0 && !c.o.Node.Replayed(st.ConfigIndex()) {
			r := st.History[len(st.History)-1]
			c.publish(events.Event{Kind: events.ConfigApplied, Level: events.Notice, Scope: events.Cluster,
				Subject: "config", Message: fmt.Sprintf("configuration version %d applied (by %s)", st.Version, r.Author),
				Attrs: map[string]string{"version": strconv.FormatUint(st.Version, 10), "author": r.Author}})
		}
	}
	// A first document makes its primary active: no decision changed.
	if last != nil && last.ActiveDatacenter() != "" && d.Active != last.ActiveDatacenter() && d.Active != "" &&
		!c.o.Node.Replayed(activeCause(last, st)) {
		kind := events.DCFailover
		if st.Config != nil && d.Active == st.Config.PrimaryDatacenter() {
			kind = events.DCFailback
		}
		c.publish(events.Event{Kind: kind, Level: events.Alert, Scope: events.Cluster, Subject: d.Active,
			Message: fmt.Sprintf("active datacenter %s → %s: %s", last.ActiveDatacenter(), d.Active, st.Active.Reason),
			Attrs:   map[string]string{"from": last.ActiveDatacenter(), "to": d.Active, "reason": st.Active.Reason, "author": st.Active.Author}})
	}
}

// activeCause is the index of what changed the active datacenter from
// prev to st: a new decision, or a document without the decided one.
func activeCause(prev, st *raft.State) uint64 {
	if st.Active.Index != prev.Active.Index {
		return st.Active.Index
	}
	return st.ConfigIndex()
}

func (c *Cluster) publish(e events.Event) {
	if c.o.Bus != nil {
		c.o.Bus.Publish(e)
	}
}

// checkFiles runs the file checks for a newly committed version: each
// problem is logged on its own line, kept for the node's status (Files)
// and published as a config.files event (err), and the event is published
// again at notice with count 0 once they are fixed. The subsystems still
// get the document and serve what they can.
func (c *Cluster) checkFiles(version uint64, cfg *config.Cluster) {
	if c.o.CheckFiles == nil {
		return
	}
	probs := c.o.CheckFiles(cfg)
	if probs == nil {
		probs = []string{}
	}
	for _, p := range probs {
		c.o.Log.Error("config names a file this node cannot use", "version", version, "problem", p)
	}
	c.filesMu.Lock()
	prev := c.files
	c.files = FileCheck{Version: version, Problems: probs}
	c.filesMu.Unlock()
	attrs := map[string]string{"version": strconv.FormatUint(version, 10), "count": strconv.Itoa(len(probs))}
	switch {
	case len(probs) > 0:
		attrs["problems"] = strings.Join(probs, "\n")
		msg := fmt.Sprintf("configuration version %d names %d file(s) this node cannot use: %s", version, len(probs), probs[0])
		if len(probs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(probs)-1)
		}
		c.publish(events.Event{Kind: events.ConfigFiles, Level: events.Err, Subject: "config", Message: msg, Attrs: attrs})
	case len(prev.Problems) > 0:
		c.publish(events.Event{Kind: events.ConfigFiles, Level: events.Notice, Subject: "config",
			Message: fmt.Sprintf("configuration version %d: every file it names is usable on this node", version), Attrs: attrs})
	}
}
