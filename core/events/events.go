// Package events is the one typed event stream of a vipgate node: server and
// backend transitions, VRRP state changes, datacenter failover, raft leadership,
// config applies. Producers Publish; consumers (alerts, Lua handlers, the stats
// page) Subscribe with a bounded buffer.
//
// Publish never blocks: a slow consumer must not stall a health check or the
// VRRP state machine. A subscriber that falls behind loses events, and every
// such loss is counted on the subscription (Dropped) so that it is never
// silent; consumers that must not lose anything (the e-mail alerter) take a
// large buffer and persist each event as soon as it arrives.
package events

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Kind names what happened. The string form is stable: alert rules and Lua
// handlers match on it.
type Kind string

// The event kinds. Subsystems publish only these; add new kinds here so that
// alert rules can name them.
const (
	ServerUp         Kind = "server.up"         // attrs: backend, server, reason
	ServerDown       Kind = "server.down"       // attrs: backend, server, reason
	BackendEmpty     Kind = "backend.empty"     // attrs: backend — no usable server left
	BackendAvailable Kind = "backend.available" // attrs: backend — servers again
	VRRPTransition   Kind = "vrrp.transition"   // attrs: instance, from, to, reason
	DCFailover       Kind = "dc.failover"       // attrs: from, to, reason, author
	DCFailback       Kind = "dc.failback"       // attrs: from, to, reason, author
	RaftLeader       Kind = "raft.leader"       // attrs: leader
	QuorumLost       Kind = "raft.quorum_lost"
	QuorumRegained   Kind = "raft.quorum_regained"
	ConfigApplied    Kind = "config.applied" // attrs: version, author
	ConfigFiles      Kind = "config.files"   // attrs: version, count, problems — files named by the config this node cannot use (count 0: usable again)
	CertExpiring     Kind = "cert.expiring"  // attrs: file, subject, not_after
	LuaErrors        Kind = "lua.errors"     // attrs: script, count, last_error
	FrontendState    Kind = "frontend.state" // attrs: frontend, state
	AlertTest        Kind = "alert.test"
	AlertDropped     Kind = "alert.dropped"  // attrs: count, reason
	AlertRejected    Kind = "alert.rejected" // attrs: to, reason, subject — refused for good (5xx)
)

// Level is a syslog severity (RFC 5424): smaller is more severe.
type Level int

// Syslog severities.
const (
	Emerg Level = iota
	Alert
	Crit
	Err
	Warning
	Notice
	Info
	Debug
)

var levelNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// ParseLevel accepts the syslog names (and "error", "warn" as aliases).
func ParseLevel(s string) (Level, error) {
	switch s {
	case "error":
		return Err, nil
	case "warn":
		return Warning, nil
	}
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("unknown level %q (want one of emerg, alert, crit, err, warning, notice, info, debug)", s)
}

// Scope says who reports an event when several nodes see it.
type Scope int

const (
	// Local events are about this node (it became VRRP master, its health
	// check saw a server go down) and are reported by this node.
	Local Scope = iota
	// Cluster events are about the whole cluster (datacenter failover, config
	// applied) and are reported once, by the raft leader.
	Cluster
)

func (s Scope) String() string {
	if s == Cluster {
		return "cluster"
	}
	return "local"
}

// Event is one thing that happened. Events are values: consumers may keep
// them, and must not modify Attrs.
type Event struct {
	Kind    Kind              `json:"kind"`
	Level   Level             `json:"level"`
	Scope   Scope             `json:"scope"`
	Time    time.Time         `json:"time"`
	Node    string            `json:"node"`
	DC      string            `json:"datacenter"`
	Subject string            `json:"subject"` // what it is about, e.g. "exchange/ex1"
	Message string            `json:"message"` // one human sentence
	Attrs   map[string]string `json:"attrs,omitempty"`
	Seq     uint64            `json:"seq"` // per-node publication order
}

// Attr returns an attribute or "".
func (e Event) Attr(k string) string { return e.Attrs[k] }

// Bus fans events out to subscribers. The zero value is not usable; use New.
type Bus struct {
	node, dc string
	now      func() time.Time
	seq      atomic.Uint64

	mu   sync.RWMutex
	subs map[*Subscription]struct{}

	// recent keeps the last events for the stats page and `vipgate status`.
	recentMu sync.Mutex
	recent   []Event
	next     int
}

const recentSize = 256

// New makes a bus that stamps events with this node's name and datacenter.
func New(node, dc string) *Bus {
	return &Bus{node: node, dc: dc, now: time.Now, subs: map[*Subscription]struct{}{}}
}

// Subscription receives events on C until Close.
type Subscription struct {
	Name    string
	C       <-chan Event
	c       chan Event
	dropped atomic.Uint64
	bus     *Bus
	filter  func(Event) bool
	once    sync.Once
}

// Dropped is how many events this subscriber lost because its buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close stops delivery and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		close(s.c)
		s.bus.mu.Unlock()
	})
}

// Subscribe registers a consumer with a buffer of buf events. filter may be
// nil (everything).
func (b *Bus) Subscribe(name string, buf int, filter func(Event) bool) *Subscription {
	if buf < 1 {
		buf = 1
	}
	c := make(chan Event, buf)
	s := &Subscription{Name: name, C: c, c: c, bus: b, filter: filter}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Publish stamps e (time, node, datacenter, sequence) and hands it to every
// subscriber without blocking.
func (b *Bus) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	if e.Node == "" {
		e.Node = b.node
	}
	if e.DC == "" {
		e.DC = b.dc
	}
	e.Seq = b.seq.Add(1)

	b.recentMu.Lock()
	if len(b.recent) < recentSize {
		b.recent = append(b.recent, e)
	} else {
		b.recent[b.next] = e
		b.next = (b.next + 1) % recentSize
	}
	b.recentMu.Unlock()

	b.mu.RLock()
	for s := range b.subs {
		if s.filter != nil && !s.filter(e) {
			continue
		}
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
	b.mu.RUnlock()
}

// Recent returns up to n of the latest events, oldest first.
func (b *Bus) Recent(n int) []Event {
	b.recentMu.Lock()
	defer b.recentMu.Unlock()
	out := make([]Event, 0, len(b.recent))
	out = append(out, b.recent[b.next:]...)
	out = append(out, b.recent[:b.next]...)
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// SubscriberStats reports each subscriber's name and drop count.
func (b *Bus) SubscriberStats() map[string]uint64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	m := make(map[string]uint64, len(b.subs))
	for s := range b.subs {
		m[s.Name] += s.Dropped()
	}
	return m
}

// ServerAdmin is an operator's runtime action on a server (drain, maint,
// ready, weight). attrs: backend, server, state.
const ServerAdmin Kind = "server.admin"

// Kinds lists every kind in the order of the constants above, for alert
// rule validation and documentation.
func Kinds() []Kind {
	return []Kind{
		ServerUp, ServerDown, ServerAdmin, BackendEmpty, BackendAvailable, VRRPTransition,
		DCFailover, DCFailback, RaftLeader, QuorumLost, QuorumRegained,
		ConfigApplied, ConfigFiles, CertExpiring, LuaErrors, FrontendState, AlertTest, AlertDropped, AlertRejected,
	}
}

// DefaultScope is the scope an event of this kind has by nature: the
// cluster-wide decisions (datacenter failover and failback, config applied,
// a new raft leader) are reported once, by the leader, even when a producer
// forgot to set Scope.
func (k Kind) DefaultScope() Scope {
	switch k {
	case DCFailover, DCFailback, ConfigApplied, RaftLeader:
		return Cluster
	}
	return Local
}

// EffectiveScope is the scope that decides who reports e.
func (e Event) EffectiveScope() Scope {
	if e.Scope == Cluster || e.Kind.DefaultScope() == Cluster {
		return Cluster
	}
	return Local
}
