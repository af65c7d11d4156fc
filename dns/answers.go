package dns

import (
	"net/netip"
	"sort"
)

// ServiceAnswer is what a service name answers now, for the status page:
// the datacenters the policy picks and their addresses, for clients in no
// configured network (Default) and for each client network (topology).
type ServiceAnswer struct {
	Name     string          `json:"name"`
	Policy   string          `json:"policy"`
	Hook     string          `json:"hook,omitempty"` // a Lua hook may answer otherwise
	Default  Pick            `json:"default"`
	Networks []NetworkAnswer `json:"networks,omitempty"`
}

// Pick is the datacenters chosen and the addresses they answer with.
type Pick struct {
	Datacenters []string     `json:"datacenters"`
	Addrs       []netip.Addr `json:"addrs"`
}

// NetworkAnswer is the answer for clients in one network.
type NetworkAnswer struct {
	Network string `json:"network"`
	Pick
}

// Answers lists every service name of the applied zones with what it
// answers now, computed as a query would (the same policy code, the same
// committed state), sorted by name.
func (s *Server) Answers() []ServiceAnswer {
	snap := s.snap.Load()
	out := []ServiceAnswer{}
	if snap == nil {
		return out
	}
	pick := func(svc *service, cl clientInfo) Pick {
		idx, _ := svc.choose(s.state, cl, nil)
		p := Pick{Datacenters: []string{}, Addrs: svc.addrs(idx)}
		for _, i := range idx {
			p.Datacenters = append(p.Datacenters, svc.dcs[i].name)
		}
		if p.Addrs == nil {
			p.Addrs = []netip.Addr{}
		}
		return p
	}
	for _, z := range snap.zones {
		for _, n := range z.nodes {
			svc := n.svc
			if svc == nil {
				continue
			}
			a := ServiceAnswer{Name: n.name, Policy: svc.policy, Hook: svc.hook, Default: pick(svc, clientInfo{})}
			for _, bn := range svc.byNet {
				a.Networks = append(a.Networks, NetworkAnswer{Network: bn.pfx.String(),
					Pick: pick(svc, clientInfo{addr: bn.pfx.Addr(), bits: bn.pfx.Bits()})})
			}
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
