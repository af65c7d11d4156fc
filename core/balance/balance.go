// Package balance picks a server among a backend's usable ones, with
// HAProxy's algorithms and meanings: roundrobin (smooth, weighted, dynamic
// weights), static-rr, leastconn, first, source, random (power of two
// choices), and the request-hashing ones (uri, url_param, hdr) which the HTTP
// mode feeds through Request.Key; and maglev, a consistent hash of the flow
// for mode dr. The hashing algorithms take
// hash_type map-based (HAProxy's default: fast, but most keys move when a
// server goes down) or consistent (a ring: only the dead server's keys move).
//
// A Policy is rebuilt-in-place by Update whenever the backend's server set,
// health, admin state or weights change; Pick then works from that snapshot
// and re-checks the live state of its candidate, so a server that went down a
// moment ago is never picked.
package balance

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// Request is what an algorithm may look at.
type Request struct {
	// Client is the client address (source hashing).
	Client netip.Addr
	// Key is the request-derived hash input (uri, url_param value, header
	// value); HasKey false means it was absent and HAProxy falls back to
	// round robin.
	Key    string
	HasKey bool
	// Exclude is a server not to pick (the one that just failed: redispatch).
	Exclude *upstream.Server
	// Flow is a hash of the flow (mode dr: its 5-tuple) that maglev picks
	// by; 0 means none, and maglev hashes Client instead.
	Flow uint64
}

// Policy picks a server. Pick returns nil when no server is usable (or all
// are full). Implementations are safe for concurrent use, never block and
// do no I/O.
type Policy interface {
	Pick(r *Request) *upstream.Server
	// Update replaces the candidate set. servers is the whole group (usable
	// or not), in configuration order; the policy keeps what it needs.
	Update(servers []*upstream.Server)
}

// algorithms maps each name (HAProxy's `balance`) to its policy; it is
// never written after start, and Algorithms hands validation its names.
var algorithms = map[string]func(b config.Balance) Policy{
	"roundrobin": func(config.Balance) Policy { return &roundRobin{} },
	"static-rr":  func(config.Balance) Policy { return &staticRR{} },
	"leastconn":  func(config.Balance) Policy { return &leastConn{} },
	"first":      func(config.Balance) Policy { return &first{} },
	"source":     func(b config.Balance) Policy { return newHashed(sourceKey, b.HashType == "consistent") },
	// maglev is a consistent (Maglev) hash of the flow: every node with the
	// same servers up picks the same server for a flow, so a direct-routing
	// director's successor keeps established flows where they were.
	"maglev":    func(config.Balance) Policy { return newHashed(flowKey, true) },
	"uri":       func(b config.Balance) Policy { return newHashed(requestKey, b.HashType == "consistent") },
	"url_param": func(b config.Balance) Policy { return newHashed(requestKey, b.HashType == "consistent") },
	"hdr":       func(b config.Balance) Policy { return newHashed(requestKey, b.HashType == "consistent") },
	"random": func(b config.Balance) Policy {
		draws := b.Draws
		if draws < 1 {
			draws = config.DefaultRandomDraws
		}
		return newRandom(draws)
	},
}

// Algorithms lists the algorithm names New knows, sorted.
func Algorithms() []string {
	out := make([]string, 0, len(algorithms))
	for name := range algorithms {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// New builds the policy for a backend's balance settings.
func New(b config.Balance) (Policy, error) {
	alg := b.Algorithm
	if alg == "" {
		alg = "roundrobin"
	}
	mk, ok := algorithms[alg]
	if !ok {
		return nil, fmt.Errorf("unknown balance algorithm %q", b.Algorithm)
	}
	return mk(b), nil
}

// candidate reports whether s may take a new session now.
func candidate(s *upstream.Server, ex *upstream.Server) bool {
	return s != ex && s.Usable() && !s.Full()
}

// usable filters the servers that take new sessions (ignoring maxconn, which
// changes per connection and is checked at pick time).
func usable(servers []*upstream.Server) []*upstream.Server {
	out := make([]*upstream.Server, 0, len(servers))
	for _, s := range servers {
		if s.Usable() {
			out = append(out, s)
		}
	}
	return out
}
