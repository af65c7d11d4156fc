package dns

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/core/config"
)

// healthy reports whether datacenter i may serve this service: its roll-up
// is not known to be down and every listed backend is not known to lack a
// usable server there. Unknown counts as healthy: a node that has no report
// must not steer clients away on its own.
func (s *service) healthy(st State, i int) bool {
	dc := s.dcs[i].name
	if h, known := st.DatacenterHealthy(dc); known && !h {
		return false
	}
	for _, b := range s.backends {
		if h, known := st.BackendHealthy(b, dc); known && !h {
			return false
		}
	}
	return true
}

// failover is the active datacenter when healthy, else the first healthy
// one in datacenter order; when none is healthy, the active one anyway
// (an answer that may work beats none).
func (s *service) failover(st State) int {
	active := st.ActiveDatacenter()
	ai := -1
	for i := range s.dcs {
		if s.dcs[i].name == active {
			ai = i
			break
		}
	}
	if ai >= 0 && s.healthy(st, ai) {
		return ai
	}
	for i := range s.dcs {
		if i != ai && s.healthy(st, i) {
			return i
		}
	}
	if ai >= 0 {
		return ai
	}
	return 0
}

// clientInfo is who the answer is for.
type clientInfo struct {
	addr netip.Addr
	// bits is the number of significant bits of addr: the ECS source
	// prefix length, or the full length for a packet's source address.
	bits int
}

// choose puts in dst the datacenters to answer from, in answer order, and
// returns the ECS scope: how many bits of the client address the choice
// depended on (0: none; -1: as many as were given).
func (s *service) choose(st State, cl clientInfo, dst []int) ([]int, int) {
	dst = dst[:0]
	if len(s.dcs) == 0 {
		return dst, 0
	}
	switch s.policy {
	case config.DNSTopology:
		if cl.addr.IsValid() {
			for _, n := range s.byNet {
				if n.pfx.Bits() <= cl.bits && n.pfx.Contains(cl.addr) {
					scope := s.scope(cl, n.pfx.Bits())
					if s.healthy(st, n.dc) {
						return append(dst, n.dc), scope
					}
					return append(dst, s.failover(st)), scope
				}
			}
			scope := s.scope(cl, cl.bits)
			if scope == cl.bits {
				scope = -1
			}
			return append(dst, s.failover(st)), scope
		}
		return append(dst, s.failover(st)), 0
	case config.DNSWeighted, config.DNSAllHealthy:
		for i := range s.dcs {
			if s.healthy(st, i) {
				dst = append(dst, i)
			}
		}
		if len(dst) == 0 {
			return append(dst, s.failover(st)), 0
		}
		if s.policy == config.DNSWeighted {
			s.weightedOrder(dst)
		}
		return dst, 0
	}
	return append(dst, s.failover(st)), 0
}

// scope is the ECS scope (RFC 7871 §7.2.1) of a topology answer chosen
// from the first bits of the client's address: the answer holds for every
// address of client/scope only if no other, more specific network lies
// inside that prefix. Each such network raises the scope just past the
// first bit where it and the client differ; one the client's source prefix
// cannot tell apart (a /64 inside the /56 a resolver sent) raises it to
// that network's length, which tells the resolver that its prefix was not
// specific enough, instead of letting it cache one answer for the whole
// /56, clients of the /64 included.
func (s *service) scope(cl clientInfo, bits int) int {
	scope := bits
	for _, n := range s.byNet {
		nb := n.pfx.Bits()
		if nb <= bits || n.pfx.Addr().Is4() != cl.addr.Is4() {
			continue
		}
		p, err := cl.addr.Prefix(bits)
		if err != nil || !p.Contains(n.pfx.Addr()) {
			continue // does not overlap client/bits
		}
		common := commonBits(cl.addr, n.pfx.Addr())
		need := nb
		if common < min(cl.bits, nb) {
			need = common + 1
		}
		scope = max(scope, need)
	}
	return scope
}

// commonBits is the length of the common prefix of a and b (same family).
func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	for i := range x {
		if d := x[i] ^ y[i]; d != 0 {
			n += bits.LeadingZeros8(d)
			break
		}
		n += 8
	}
	// IPv4 addresses share the 96 bits of their ::ffff: mapping.
	return n - (128 - a.BitLen())
}

// weightedOrder permutes dcs so that each position is drawn with
// probability proportional to datacenter weight among those left.
func (s *service) weightedOrder(dcs []int) {
	for i := 0; i < len(dcs)-1; i++ {
		total := 0
		for _, d := range dcs[i:] {
			total += max(s.dcs[d].weight, 0)
		}
		if total == 0 {
			j := i + rand.IntN(len(dcs)-i)
			dcs[i], dcs[j] = dcs[j], dcs[i]
			continue
		}
		r := rand.IntN(total)
		for j := i; j < len(dcs); j++ {
			r -= max(s.dcs[dcs[j]].weight, 0)
			if r < 0 {
				dcs[i], dcs[j] = dcs[j], dcs[i]
				break
			}
		}
	}
}

// appendRRs appends the ready-made records of the chosen datacenters for
// the address family of qtype. Several datacenters (weighted, all-healthy)
// are shuffled per answer so that clients spread.
func (s *service) appendRRs(dst []mdns.RR, dcs []int, qtype uint16) []mdns.RR {
	start := len(dst)
	for _, d := range dcs {
		rrs := s.dcs[d].a
		if qtype == mdns.TypeAAAA {
			rrs = s.dcs[d].aaaa
		}
		if len(dcs) == 1 || s.policy != config.DNSWeighted {
			dst = append(dst, rrs...)
			continue
		}
		// Weighted: datacenter order is the draw; rotate inside one.
		off := 0
		if len(rrs) > 1 {
			off = rand.IntN(len(rrs))
		}
		dst = append(dst, rrs[off:]...)
		dst = append(dst, rrs[:off]...)
	}
	if s.policy == config.DNSAllHealthy || (s.policy == config.DNSWeighted && len(dcs) == 1) {
		out := dst[start:]
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return dst
}

// addrs lists the chosen datacenters' VIPs (for hooks).
func (s *service) addrs(dcs []int) []netip.Addr {
	var out []netip.Addr
	for _, d := range dcs {
		out = append(out, s.dcs[d].addrs...)
	}
	return out
}
