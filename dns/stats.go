package dns

import (
	"sort"
	"sync"
	"sync/atomic"

	mdns "github.com/miekg/dns"
)

// Counted question types and response codes; the rest fall into "other".
var (
	statTypes  = []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeCNAME, mdns.TypeMX, mdns.TypeTXT, mdns.TypeSRV, mdns.TypeCAA, mdns.TypeNS, mdns.TypeSOA, mdns.TypeANY, mdns.TypeAXFR}
	statRcodes = []int{mdns.RcodeSuccess, mdns.RcodeFormatError, mdns.RcodeServerFailure, mdns.RcodeNameError, mdns.RcodeNotImplemented, mdns.RcodeRefused, mdns.RcodeBadVers}
)

const (
	nTypes  = 12 // statTypes + other
	nRcodes = 8  // statRcodes + other
)

func typeIndex(t uint16) int {
	switch t {
	case mdns.TypeA:
		return 0
	case mdns.TypeAAAA:
		return 1
	case mdns.TypeCNAME:
		return 2
	case mdns.TypeMX:
		return 3
	case mdns.TypeTXT:
		return 4
	case mdns.TypeSRV:
		return 5
	case mdns.TypeCAA:
		return 6
	case mdns.TypeNS:
		return 7
	case mdns.TypeSOA:
		return 8
	case mdns.TypeANY:
		return 9
	case mdns.TypeAXFR:
		return 10
	}
	return 11
}

func rcodeIndex(r int) int {
	for i, c := range statRcodes {
		if c == r {
			return i
		}
	}
	return nRcodes - 1
}

// nameStats counts questions for one owner name by type and rcode. Counting
// is one atomic add: no allocation on the query path.
type nameStats struct {
	c [nTypes][nRcodes]atomic.Uint64
}

func (n *nameStats) count(qtype uint16, rcode int) {
	if n != nil {
		n.c[typeIndex(qtype)][rcodeIndex(rcode)].Add(1)
	}
}

// Stats are the server's counters. Per-name counters survive config
// changes (a name keeps its counters while it exists in some zone).
type Stats struct {
	mu    sync.Mutex
	names map[string]*nameStats

	UDP, TCP      atomic.Uint64 // queries received
	Refused       atomic.Uint64 // names outside our zones
	FormErr       atomic.Uint64 // malformed queries answered FORMERR
	Dropped       atomic.Uint64 // packets not answered (too short, responses)
	Truncated     atomic.Uint64 // answers sent with TC=1
	RRLDropped    atomic.Uint64
	RRLSlipped    atomic.Uint64
	HookErrors    atomic.Uint64
	Transfers     atomic.Uint64
	TransfersDeny atomic.Uint64
	Notifies      atomic.Uint64 // NOTIFY messages acknowledged by secondaries
	// TCPRefused are TCP connections closed at once: the client or the
	// listener was at its connection limit (dns.tcp).
	TCPRefused atomic.Uint64
}

func newStats() *Stats { return &Stats{names: map[string]*nameStats{}} }

func (s *Stats) name(n string) *nameStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := s.names[n]
	if ns == nil {
		ns = &nameStats{}
		s.names[n] = ns
	}
	return ns
}

// retain forgets counters of names no longer served.
func (s *Stats) retain(snap *snapshot) {
	keep := map[*nameStats]bool{}
	for _, z := range snap.zones {
		keep[z.other] = true
		for _, n := range z.nodes {
			keep[n.stats] = true
		}
	}
	s.mu.Lock()
	for k, v := range s.names {
		if !keep[v] {
			delete(s.names, k)
		}
	}
	s.mu.Unlock()
}

// NameCount is one non-zero counter.
type NameCount struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Rcode string `json:"rcode"`
	Count uint64 `json:"count"`
}

// Count returns the counter for name/type/rcode (for tests and the status page).
func (s *Stats) Count(name string, qtype uint16, rcode int) uint64 {
	s.mu.Lock()
	ns := s.names[name]
	s.mu.Unlock()
	if ns == nil {
		return 0
	}
	return ns.c[typeIndex(qtype)][rcodeIndex(rcode)].Load()
}

// Names lists the non-zero per-name counters, sorted.
func (s *Stats) Names() []NameCount {
	s.mu.Lock()
	names := make(map[string]*nameStats, len(s.names))
	for k, v := range s.names {
		names[k] = v
	}
	s.mu.Unlock()
	var out []NameCount
	for n, ns := range names {
		for ti := 0; ti < nTypes; ti++ {
			for ri := 0; ri < nRcodes; ri++ {
				v := ns.c[ti][ri].Load()
				if v == 0 {
					continue
				}
				t, r := "OTHER", "OTHER"
				if ti < len(statTypes) {
					t = mdns.TypeToString[statTypes[ti]]
				}
				if ri < len(statRcodes) {
					r = mdns.RcodeToString[statRcodes[ri]]
				}
				out = append(out, NameCount{Name: n, Type: t, Rcode: r, Count: v})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Rcode < b.Rcode
	})
	return out
}

// Snapshot is the status-page view.
func (s *Stats) Snapshot() map[string]any {
	return map[string]any{
		"queries_udp": s.UDP.Load(), "queries_tcp": s.TCP.Load(),
		"refused": s.Refused.Load(), "formerr": s.FormErr.Load(), "dropped": s.Dropped.Load(),
		"truncated": s.Truncated.Load(), "rrl_dropped": s.RRLDropped.Load(), "rrl_slipped": s.RRLSlipped.Load(),
		"hook_errors": s.HookErrors.Load(), "transfers": s.Transfers.Load(), "transfers_refused": s.TransfersDeny.Load(), "notifies": s.Notifies.Load(),
		"tcp_refused": s.TCPRefused.Load(), "names": s.Names(),
	}
}
