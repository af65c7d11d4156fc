// Package dns is vipgate's authoritative DNS server: zones with static
// records from the cluster config, and service names answered with the VIP
// that a client should use now, computed per query from the committed
// decisions (active datacenter, datacenter health) and backend health.
//
// Like every subsystem it reconciles to what is pushed to it: each config
// snapshot (Apply) and each set of committed decisions (Decided.Decide,
// pushed by cluster/state on commit); it reads neither raft nor a timer.
package dns

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
)

// State is what the server needs to know of the cluster. Every node answers
// from its own replicated copy, so any gateway node can be listed as NS.
type State interface {
	// ActiveDatacenter is the datacenter clients should use now ("" = unknown).
	ActiveDatacenter() string
	// DatacenterHealthy reports the roll-up health of a datacenter (VRRP
	// master present, frontends up); known is false when there is no report.
	DatacenterHealthy(dc string) (healthy, known bool)
	// BackendHealthy reports whether backend has a usable server in dc;
	// known is false when this node cannot tell.
	BackendHealthy(backend, dc string) (healthy, known bool)
}

// StaticState is a State set by hand: for tests, and for nodes without a
// cluster view. The zero value knows nothing (everything counts as healthy).
type StaticState struct {
	mu       sync.RWMutex
	active   string
	dcs      map[string]bool
	backends map[[2]string]bool
}

// SetActive sets the active datacenter.
func (s *StaticState) SetActive(dc string) {
	s.mu.Lock()
	s.active = dc
	s.mu.Unlock()
}

// SetDatacenter records a datacenter's health.
func (s *StaticState) SetDatacenter(dc string, healthy bool) {
	s.mu.Lock()
	if s.dcs == nil {
		s.dcs = map[string]bool{}
	}
	s.dcs[dc] = healthy
	s.mu.Unlock()
}

// SetBackend records whether backend has a usable server in dc.
func (s *StaticState) SetBackend(backend, dc string, healthy bool) {
	s.mu.Lock()
	if s.backends == nil {
		s.backends = map[[2]string]bool{}
	}
	s.backends[[2]string{backend, dc}] = healthy
	s.mu.Unlock()
}

// ActiveDatacenter implements State.
func (s *StaticState) ActiveDatacenter() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.active
}

// DatacenterHealthy implements State.
func (s *StaticState) DatacenterHealthy(dc string) (bool, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.dcs[dc]
	return h, ok
}

// BackendHealthy implements State.
func (s *StaticState) BackendHealthy(backend, dc string) (bool, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, ok := s.backends[[2]string{backend, dc}]
	return h, ok
}

// Decided is the State of a node's DNS server: the cluster's committed
// decisions as last pushed to it (Decide, on commit), and backend health
// asked of the live proxy. Queries read the pushed copy, never raft.
type Decided struct {
	// Backends answers BackendHealthy (nil: unknown).
	Backends func(backend, dc string) (healthy, known bool)
	// Local answers DatacenterHealthy for a datacenter the decisions do not
	// judge (nil: unknown): a node without raft judges its own from its
	// gateway, as nothing is committed.
	Local func(dc string) (healthy, known bool)

	d atomic.Pointer[decided]
}

type decided struct {
	active  string
	healthy map[string]bool
}

// Decide takes the committed decisions: the active datacenter and the
// health roll-up (a datacenter missing from healthy is unknown). healthy is
// kept, not copied: the caller must not modify it afterwards.
func (s *Decided) Decide(active string, healthy map[string]bool) {
	s.d.Store(&decided{active: active, healthy: healthy})
}

// ActiveDatacenter implements State.
func (s *Decided) ActiveDatacenter() string {
	if d := s.d.Load(); d != nil {
		return d.active
	}
	return ""
}

// DatacenterHealthy implements State.
func (s *Decided) DatacenterHealthy(dc string) (bool, bool) {
	if d := s.d.Load(); d != nil {
		if h, ok := d.healthy[dc]; ok {
			return h, true
		}
	}
	if s.Local != nil {
		return s.Local(dc)
	}
	return false, false
}

// BackendHealthy implements State.
func (s *Decided) BackendHealthy(backend, dc string) (bool, bool) {
	if s.Backends == nil {
		return false, false
	}
	return s.Backends(backend, dc)
}

// Query is what a hook sees of one question for a service name.
type Query struct {
	// Name is the question name in lower case, with the trailing dot.
	Name string
	// Type is the question type (dns.TypeA or dns.TypeAAAA).
	Type uint16
	// Client is the packet's source address.
	Client netip.Addr
	// Subnet is the EDNS Client Subnet when the query carried one with a
	// non-zero source prefix (the zero Prefix otherwise).
	Subnet netip.Prefix
	// Service is the service's name as configured; Policy its policy.
	Service string
	Policy  string
	// Datacenter is the datacenter the policy chose ("" for several).
	Datacenter string
	// Answer is the policy's answer (both families), which the hook may keep.
	Answer []netip.Addr
}

// Answer is a hook's override: either addresses, or the name of a
// datacenter whose VIPs (for this service) to answer with; TTL 0 keeps the
// service's TTL.
type Answer struct {
	Addrs      []netip.Addr
	Datacenter string
	TTL        uint32
}

// Hook may override the answer for a service name. ok=false keeps the
// policy's answer; so does an error (counted and logged) or a panic.
// Addresses of the other family than the question's are left out of the
// reply.
type Hook func(ctx context.Context, q Query) (a Answer, ok bool, err error)

// HookResolver finds the hook a service names (its `hook:` value); ok is
// false when there is no such hook.
type HookResolver func(name string) (h Hook, ok bool)
