package dns

import (
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
					if s.healthy(st, n.dc) {
						return append(dst, n.dc), n.pfx.Bits()
					}
					return append(dst, s.failover(st)), n.pfx.Bits()
				}
			}
			return append(dst, s.failover(st)), -1
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
