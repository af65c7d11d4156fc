// Package raft replicates the cluster configuration document and the
// cluster's decisions (active datacenter, datacenter health roll-up, server
// admin overrides, membership metadata) with hashicorp/raft over mutual TLS,
// stored in raft-boltdb.
//
// The FSM follows Consul's pattern: typed commands, one message type byte
// each (Decode's switch is the whole set; a type flagged IgnoreUnknown is
// skipped by an older node instead of stopping it), deterministic Apply
// (the proposer stamps author and time into the command), validation both
// before proposing and when
// applying — a command that fails validation returns its error as the apply
// response and changes nothing — and an immutable, copy-on-write State.
//
// Nothing outside the cluster packages reads the State to act on it:
// cluster/state pushes each committed snapshot and decision to the node's
// subsystems.
package raft

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/vipgate/vipgate/core/config"
)

// MsgType is the first byte of every log entry.
type MsgType uint8

// IgnoreUnknown marks a command that an older node may skip (Consul's
// IgnoreUnknownTypeFlag): new optional commands set it so a mixed-version
// cluster keeps running; commands that change shared state must not.
const IgnoreUnknown MsgType = 0x80

// Command types. Never renumber.
const (
	MsgPutConfig      MsgType = 1
	MsgSetActiveDC    MsgType = 2
	MsgSetDCHealth    MsgType = 3
	MsgSetServerAdmin MsgType = 4
	MsgSetMember      MsgType = 5
	MsgSeedConfig     MsgType = 6
	// MsgSetActiveDCHeld is a SetActiveDC with a hold, an if_decision or
	// if_healthy:
	// its own type so that a node too old to honour them stops at it
	// rather than apply decisions the others refuse (and diverge).
	MsgSetActiveDCHeld MsgType = 7
)

// PutConfig replaces the cluster document.
type PutConfig struct {
	Source  []byte    `json:"source"`
	Author  string    `json:"author"`
	Time    time.Time `json:"time"`
	Comment string    `json:"comment,omitempty"`
	// IfVersion, when not zero, commits only if the current version is
	// still IfVersion (optimistic concurrency for apply after a diff).
	IfVersion uint64 `json:"if_version,omitempty"`
}

// SeedConfig is the bootstrap node's document (its node file's config:).
// It commits only while no document was ever committed: a compare-and-set
// decided when the entry is applied, not by the proposer, because a
// restarted node's FSM shows version 0 until its log is replayed, and a
// seed it proposed then must never overwrite a committed version.
type SeedConfig struct {
	Source  []byte    `json:"source"`
	Author  string    `json:"author"`
	Time    time.Time `json:"time"`
	Comment string    `json:"comment,omitempty"`
}

// ErrConfigured refuses a SeedConfig once a document was committed.
var ErrConfigured = errors.New("a configuration was already committed: the seed is not used")

// AutoAuthor is the author of the leader's automatic decisions.
const AutoAuthor = "auto"

// SetActiveDC records the active-datacenter decision.
type SetActiveDC struct {
	DC     string    `json:"dc"`
	Reason string    `json:"reason"`
	Author string    `json:"author"` // AutoAuthor for the leader's decision
	Time   time.Time `json:"time"`
	// IfActive, when not empty, commits only if the active datacenter is
	// still IfActive: a stale automatic decision never overrides a newer one.
	IfActive string `json:"if_active,omitempty"`
	// IfDecision, when not zero, commits only if the current decision is
	// still the one committed at that raft index (an automatic failback
	// judged "the current choice was automatic" on its own state).
	IfDecision uint64 `json:"if_decision,omitempty"`
	// Hold keeps the decision for that long from Time: an automatic
	// decision dated before the end is refused (an operator's failover).
	Hold time.Duration `json:"hold,omitempty"`
	// IfHealthy commits only if the committed roll-up does not call DC
	// unhealthy (an operator's failover without force: the node that took
	// the request may lag behind the roll-up).
	IfHealthy bool `json:"if_healthy,omitempty"`
}

// SetDCHealth records a change of a datacenter's health roll-up.
type SetDCHealth struct {
	DC      string    `json:"dc"`
	Healthy bool      `json:"healthy"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
}

// SetServerAdmin records an operator override (ready/drain/maint) of one
// server, applied on every node.
type SetServerAdmin struct {
	Backend string    `json:"backend"`
	Server  string    `json:"server"`
	State   string    `json:"state"` // ready clears the override
	Author  string    `json:"author"`
	Time    time.Time `json:"time"`
}

// SetMember records a member's metadata (so any node can find a peer's
// admin API and datacenter).
type SetMember struct {
	ID         string `json:"id"`
	Datacenter string `json:"datacenter"`
	Role       string `json:"role"`
	Admin      string `json:"admin"`
	Remove     bool   `json:"remove,omitempty"`
}

// Command is one of the command types above.
type Command interface{ msgType() MsgType }

func (PutConfig) msgType() MsgType { return MsgPutConfig }
func (c SetActiveDC) msgType() MsgType {
	if c.Hold != 0 || c.IfDecision != 0 || c.IfHealthy {
		return MsgSetActiveDCHeld
	}
	return MsgSetActiveDC
}
func (SetDCHealth) msgType() MsgType    { return MsgSetDCHealth }
func (SetServerAdmin) msgType() MsgType { return MsgSetServerAdmin }
func (SetMember) msgType() MsgType      { return MsgSetMember }
func (SeedConfig) msgType() MsgType     { return MsgSeedConfig }

// Encode serialises a command as a log entry.
func Encode(c Command) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(c.msgType())}, b...), nil
}

// Decode parses a log entry (the inverse of Encode).
func Decode(data []byte) (Command, error) {
	if len(data) == 0 {
		return nil, errors.New("empty command")
	}
	var c Command
	switch MsgType(data[0]) &^ IgnoreUnknown {
	case MsgPutConfig:
		c = &PutConfig{}
	case MsgSetActiveDC, MsgSetActiveDCHeld:
		c = &SetActiveDC{}
	case MsgSetDCHealth:
		c = &SetDCHealth{}
	case MsgSetServerAdmin:
		c = &SetServerAdmin{}
	case MsgSetMember:
		c = &SetMember{}
	case MsgSeedConfig:
		c = &SeedConfig{}
	default:
		return nil, fmt.Errorf("unknown command type %d", data[0])
	}
	if err := json.Unmarshal(data[1:], c); err != nil {
		return nil, fmt.Errorf("command type %d: %w", data[0], err)
	}
	return c, nil
}

// DCDecision is the committed active datacenter.
type DCDecision struct {
	DC     string    `json:"dc"`
	Reason string    `json:"reason"`
	Author string    `json:"author"`
	Time   time.Time `json:"time"`
	Index  uint64    `json:"index"`
	// HoldUntil: no automatic decision replaces this one before then.
	HoldUntil time.Time `json:"hold_until,omitzero"`
}

// DCHealth is a committed datacenter health roll-up.
type DCHealth struct {
	Healthy bool      `json:"healthy"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
}

// ServerOverride is an operator's admin state for a server.
type ServerOverride struct {
	State  string    `json:"state"`
	Author string    `json:"author"`
	Time   time.Time `json:"time"`
}

// Member is what the cluster knows about a node besides its raft address.
type Member struct {
	Datacenter string `json:"datacenter"`
	Role       string `json:"role"`
	Admin      string `json:"admin"`
}

// ZoneSerial is a zone's automatic serial and the digest of the content it
// was given for.
type ZoneSerial struct {
	Digest [32]byte `json:"digest"`
	Serial uint32   `json:"serial"`
}

// zoneSerials moves the serial of every zone of cfg whose content changed
// (config.ZoneDigest) to the command's time, strictly increasing (RFC
// 1982); zones whose operator pins soa.serial are not tracked.
// Deterministic: every node computes the same from the same log.
func zoneSerials(prev map[string]ZoneSerial, cfg *config.Cluster, t time.Time) map[string]ZoneSerial {
	out := map[string]ZoneSerial{}
	for i := range cfg.DNS.Zones {
		z := &cfg.DNS.Zones[i]
		if z.SOA.Serial != 0 {
			continue
		}
		apex := config.DNSFQDN("@", z.Name)
		d := cfg.ZoneDigest(z)
		p, had := prev[apex]
		if had && p.Digest == d {
			out[apex] = p
			continue
		}
		out[apex] = ZoneSerial{Digest: d, Serial: config.NextSerial(p.Serial, had, t)}
	}
	return out
}

// attachSerials gives the parsed config the replicated serials.
func attachSerials(cfg *config.Cluster, zones map[string]ZoneSerial) {
	if cfg == nil || len(zones) == 0 {
		return
	}
	cfg.ZoneSerials = make(map[string]uint32, len(zones))
	for apex, z := range zones {
		cfg.ZoneSerials[apex] = z.Serial
	}
}

// State is the replicated state. It is immutable once published: Apply
// makes a modified copy.
type State struct {
	// Version counts committed config documents (0 = none yet).
	Version uint64                    `json:"version"`
	Source  []byte                    `json:"source,omitempty"`
	History []config.Revision         `json:"history,omitempty"`
	Active  DCDecision                `json:"active"`
	Health  map[string]DCHealth       `json:"health,omitempty"`
	Servers map[string]ServerOverride `json:"servers,omitempty"` // "backend/server"
	Members map[string]Member         `json:"members,omitempty"`
	// Zones holds the automatic SOA serial of each DNS zone (by apex), so
	// that every node serves the same one and a restarted node too.
	Zones map[string]ZoneSerial `json:"zones,omitempty"`
	// Index is the raft index of the last applied entry.
	Index uint64 `json:"index"`

	// Config is Source parsed (not serialised; re-parsed on restore).
	Config *config.Cluster `json:"-"`
}

// ActiveDatacenter is the committed active datacenter, or the config's
// primary when nothing was decided yet (or the decided one was removed).
func (s *State) ActiveDatacenter() string {
	if s == nil {
		return ""
	}
	if s.Active.DC != "" && (s.Config == nil || s.Config.Datacenter(s.Active.DC) != nil) {
		return s.Active.DC
	}
	if s.Config != nil {
		return s.Config.PrimaryDatacenter()
	}
	return ""
}

// ConfigIndex is the raft index of the current document (0: none).
func (s *State) ConfigIndex() uint64 {
	if len(s.History) == 0 {
		return 0
	}
	return s.History[len(s.History)-1].Index
}

// Revision returns a history entry by version.
func (s *State) Revision(v uint64) (config.Revision, bool) {
	for _, r := range s.History {
		if r.Version == v {
			return r, true
		}
	}
	return config.Revision{}, false
}

func (s *State) clone() *State {
	n := *s
	n.History = slices.Clone(s.History)
	n.Health = maps.Clone(s.Health)
	n.Servers = maps.Clone(s.Servers)
	n.Members = maps.Clone(s.Members)
	n.Zones = maps.Clone(s.Zones)
	if n.Health == nil {
		n.Health = map[string]DCHealth{}
	}
	if n.Servers == nil {
		n.Servers = map[string]ServerOverride{}
	}
	if n.Members == nil {
		n.Members = map[string]Member{}
	}
	return &n
}

// docName is the name config.Parse reports problems against.
const docName = "cluster.yaml"

// Validate checks cmd against state s without changing anything. The
// proposer calls it before proposing, and Apply calls it again on every node.
func Validate(s *State, cmd Command) error {
	_, err := validate(s, cmd)
	return err
}

// validate is Validate, also returning the document a config command
// carries, parsed: apply uses it instead of parsing it a second time (the
// parse is most of an apply's CPU, on every node).
func validate(s *State, cmd Command) (doc *config.Cluster, err error) {
	err = func() error {
		switch c := cmd.(type) {
		case *PutConfig:
			if c.IfVersion != 0 && c.IfVersion != s.Version {
				return fmt.Errorf("the configuration changed meanwhile (now version %d, expected %d): review the diff again", s.Version, c.IfVersion)
			}
			var err error
			doc, err = validDocument(c.Source)
			return err
		case *SeedConfig:
			// Version only grows, and it is in every snapshot: 0 means no
			// document was ever committed, on every node at the same index.
			if s.Version != 0 {
				return fmt.Errorf("%w (version %d)", ErrConfigured, s.Version)
			}
			var err error
			doc, err = validDocument(c.Source)
			return err
		case *SetActiveDC:
			if s.Config == nil {
				return errors.New("no configuration yet")
			}
			if s.Config.Datacenter(c.DC) == nil {
				return fmt.Errorf("datacenter %q is not defined (have: %s)", c.DC, dcNames(s.Config))
			}
			if c.IfActive != "" && c.IfActive != s.ActiveDatacenter() {
				return fmt.Errorf("active datacenter is now %q, not %q", s.ActiveDatacenter(), c.IfActive)
			}
			if c.IfDecision != 0 && c.IfDecision != s.Active.Index {
				return fmt.Errorf("the active-datacenter decision changed meanwhile (now the one at index %d, not %d)", s.Active.Index, c.IfDecision)
			}
			if c.Author == AutoAuthor && c.Time.Before(s.Active.HoldUntil) {
				return fmt.Errorf("datacenter %s is held active by %s's decision until %s", s.Active.DC, s.Active.Author, s.Active.HoldUntil.Format(time.RFC3339))
			}
			if c.Hold < 0 {
				return fmt.Errorf("hold %s is negative", c.Hold)
			}
			if h, ok := s.Health[c.DC]; ok && c.IfHealthy && !h.Healthy {
				return fmt.Errorf("datacenter %s is unhealthy (%s); force to fail over anyway", c.DC, h.Reason)
			}
		case *SetDCHealth:
			if s.Config == nil || s.Config.Datacenter(c.DC) == nil {
				return fmt.Errorf("datacenter %q is not defined", c.DC)
			}
		case *SetServerAdmin:
			if s.Config == nil {
				return errors.New("no configuration yet")
			}
			b := s.Config.Backend(c.Backend)
			if b == nil {
				return fmt.Errorf("backend %q is not defined", c.Backend)
			}
			found := false
			for _, sv := range b.Servers {
				found = found || sv.Name == c.Server
			}
			if !found {
				return fmt.Errorf("backend %q has no server %q", c.Backend, c.Server)
			}
			switch c.State {
			case "ready", "drain", "maint":
			default:
				return fmt.Errorf("state %q: want ready, drain or maint", c.State)
			}
		case *SetMember:
			if c.ID == "" {
				return errors.New("member has no id")
			}
		default:
			return fmt.Errorf("unknown command %T", cmd)
		}
		return nil
	}()
	return doc, err
}

func validDocument(src []byte) (*config.Cluster, error) {
	if err := SelfContained(src); err != nil {
		return nil, err
	}
	return config.Parse(docName, src)
}

func dcNames(c *config.Cluster) string {
	var n []string
	for _, d := range c.Datacenters {
		n = append(n, d.Name)
	}
	if len(n) == 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

// apply returns the new state (or s unchanged and an error).
func apply(s *State, cmd Command, index uint64) (*State, error) {
	doc, err := validate(s, cmd)
	if err != nil {
		return s, err
	}
	n := s.clone()
	n.Index = index
	switch c := cmd.(type) {
	case *PutConfig:
		putConfig(n, s, doc, config.Revision{Author: c.Author, Time: c.Time, Comment: c.Comment, Source: c.Source})
	case *SeedConfig:
		putConfig(n, s, doc, config.Revision{Author: c.Author, Time: c.Time, Comment: c.Comment, Source: c.Source})
	case *SetActiveDC:
		n.Active = DCDecision{DC: c.DC, Reason: c.Reason, Author: c.Author, Time: c.Time, Index: index}
		if c.Hold > 0 {
			n.Active.HoldUntil = c.Time.Add(c.Hold)
		}
	case *SetDCHealth:
		h := DCHealth{Healthy: c.Healthy, Reason: c.Reason, Since: c.Time}
		// Since is when the roll-up last changed, decided here: a leader
		// whose state lags (just elected, not caught up) may propose the
		// value already committed, which must not restart the clock.
		if old, ok := s.Health[c.DC]; ok && old.Healthy == c.Healthy {
			h.Since = old.Since
		}
		n.Health[c.DC] = h
	case *SetServerAdmin:
		key := c.Backend + "/" + c.Server
		if c.State == "ready" {
			delete(n.Servers, key)
		} else {
			n.Servers[key] = ServerOverride{State: c.State, Author: c.Author, Time: c.Time}
		}
	case *SetMember:
		if c.Remove {
			delete(n.Members, c.ID)
		} else {
			n.Members[c.ID] = Member{Datacenter: c.Datacenter, Role: c.Role, Admin: c.Admin}
		}
	}
	return n, nil
}

// putConfig makes rev.Source (validated, parsed as cfg) the next version in
// n, a clone of s whose Index is already the entry's.
func putConfig(n, s *State, cfg *config.Cluster, rev config.Revision) {
	n.Version++
	n.Source = rev.Source
	n.Zones = zoneSerials(s.Zones, cfg, rev.Time)
	attachSerials(cfg, n.Zones)
	n.Config = cfg
	rev.Version, rev.Index = n.Version, n.Index
	n.History = append(n.History, rev)
	if len(n.History) > config.HistoryMax {
		n.History = slices.Clone(n.History[len(n.History)-config.HistoryMax:])
	}
	for i := 0; i < len(n.History)-config.HistoryKeep; i++ {
		n.History[i].Source = nil
	}
	// Drop decisions about things the new document no longer has.
	for dc := range n.Health {
		if cfg.Datacenter(dc) == nil {
			delete(n.Health, dc)
		}
	}
	for key := range n.Servers {
		if !hasServer(cfg, key) {
			delete(n.Servers, key)
		}
	}
}

func hasServer(c *config.Cluster, key string) bool {
	for _, b := range c.Backends {
		for _, s := range b.Servers {
			if b.Name+"/"+s.Name == key {
				return true
			}
		}
	}
	return false
}

// FSM is the raft state machine.
type FSM struct {
	log   *slog.Logger
	state atomic.Pointer[State]

	mu    sync.Mutex
	watch []chan struct{} // signalled (non-blocking) on every change

	// since is when this node started; firstNews is the first entry
	// applied that the leader appended after that (0: none yet). Entries
	// before it are history to this node (Node.Replayed).
	since     time.Time
	firstNews atomic.Uint64
}

// NewFSM makes an empty state machine.
func NewFSM(log *slog.Logger) *FSM {
	f := &FSM{log: log}
	f.state.Store((&State{}).clone())
	return f
}

// State is the current state (never nil; do not modify).
func (f *FSM) State() *State { return f.state.Load() }

// Watch returns a channel signalled after each change; the receiver reads
// State() for the latest value, so bursts coalesce.
func (f *FSM) Watch() <-chan struct{} {
	c := make(chan struct{}, 1)
	f.mu.Lock()
	f.watch = append(f.watch, c)
	f.mu.Unlock()
	return c
}

func (f *FSM) set(s *State) {
	f.state.Store(s)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.watch {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *hraft.Log) any {
	if l.Type != hraft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	t := MsgType(l.Data[0])
	cmd, err := Decode(l.Data)
	if err != nil {
		if t&IgnoreUnknown != 0 {
			f.log.Warn("ignoring unknown raft command", "type", t, "index", l.Index)
			return nil
		}
		// Diverging from the other nodes is worse than stopping.
		panic(fmt.Errorf("raft fsm: index %d: %w", l.Index, err))
	}
	n, err := apply(f.State(), cmd, l.Index)
	if err != nil {
		return err
	}
	if f.firstNews.Load() == 0 && !l.AppendedAt.Before(f.since) {
		f.firstNews.Store(l.Index)
	}
	f.set(n)
	return Applied{Index: l.Index, Version: n.Version}
}

// snapshotFormat is bumped when the encoding changes; Restore refuses
// versions it does not know.
const snapshotFormat = 1

type snapshotHeader struct {
	Format int `json:"format"`
}

// Snapshot implements raft.FSM: a pointer grab, serialised in Persist.
func (f *FSM) Snapshot() (hraft.FSMSnapshot, error) { return &fsmSnapshot{s: f.State()}, nil }

// Restore implements raft.FSM: replaces the whole state.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("raft fsm restore: %w", err)
	}
	f.set(s)
	return nil
}

func readSnapshot(r io.Reader) (*State, error) {
	dec := json.NewDecoder(r)
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("snapshot format %d is not supported (want %d)", h.Format, snapshotFormat)
	}
	s := &State{}
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	s = s.clone()
	if len(s.Source) > 0 {
		cfg, err := config.Parse(docName, s.Source)
		if err != nil {
			return nil, fmt.Errorf("config version %d in snapshot: %w", s.Version, err)
		}
		attachSerials(cfg, s.Zones)
		s.Config = cfg
	}
	return s, nil
}

type fsmSnapshot struct{ s *State }

func (s *fsmSnapshot) Persist(sink hraft.SnapshotSink) error {
	enc := json.NewEncoder(sink)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat}); err != nil {
		sink.Cancel()
		return fmt.Errorf("raft fsm persist: %w", err)
	}
	if err := enc.Encode(s.s); err != nil {
		sink.Cancel()
		return fmt.Errorf("raft fsm persist: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
