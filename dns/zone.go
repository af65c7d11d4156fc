package dns

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/core/config"
)

// snapshot is one compiled configuration; queries read it without locks.
type snapshot struct {
	zones []*zone // longest apex first, so the first suffix match wins
	rrl   *rrl
	// intern maps every owner name to itself, so that the fast parser can
	// use a stored string instead of allocating one per query.
	intern map[string]string
}

type zone struct {
	apex     string
	soa      *mdns.SOA // TTL = zone TTL
	negSOA   *mdns.SOA // TTL = min(zone TTL, minimum): RFC 2308
	ns       []mdns.RR
	nodes    map[string]*node
	transfer []netip.Prefix
	notify   []netip.AddrPort
	hash     [32]byte
	// other counts questions for names that do not exist.
	other   *nameStats
	hasCuts bool
	hasWild bool
}

// node is one owner name. A node with nothing is an empty non-terminal.
type node struct {
	name   string
	rrsets map[uint16][]mdns.RR
	types  []uint16 // in configuration order, for ANY
	svc    *service
	// cut is true at a delegation (NS below the apex).
	cut   bool
	stats *nameStats
	// wild is this node's "*" child, if any.
	wild *node
}

// service is a compiled service record.
type service struct {
	name    string
	cfgName string
	policy  string
	ttl     uint32
	dcs     []svcDC // in datacenter (failover) order
	// byNet maps client networks to indexes in dcs, longest prefix first.
	byNet    []netDC
	backends []string
	hook     string
}

type svcDC struct {
	name   string
	weight int
	addrs  []netip.Addr
	a      []mdns.RR // ready-made A records for addrs (no per-query allocation)
	aaaa   []mdns.RR
}

type netDC struct {
	pfx netip.Prefix
	dc  int
}

// zoneFor returns the zone name is inside (name in lower case, absolute).
func (s *snapshot) zoneFor(name string) *zone {
	for _, z := range s.zones {
		if z.apex == "." || name == z.apex || (strings.HasSuffix(name, z.apex) && name[len(name)-len(z.apex)-1] == '.') {
			return z
		}
	}
	return nil
}

// compile builds a snapshot. stats keeps counters across applies.
func compile(c *config.Cluster, st *Stats) (*snapshot, error) {
	snap := &snapshot{}
	for i := range c.DNS.Zones {
		z, err := compileZone(c, &c.DNS.Zones[i], st)
		if err != nil {
			return nil, fmt.Errorf("zone %q: %w", c.DNS.Zones[i].Name, err)
		}
		snap.zones = append(snap.zones, z)
	}
	sort.SliceStable(snap.zones, func(i, j int) bool { return len(snap.zones[i].apex) > len(snap.zones[j].apex) })
	snap.intern = map[string]string{}
	for _, z := range snap.zones {
		for n := range z.nodes {
			snap.intern[n] = n
		}
	}
	return snap, nil
}

func compileZone(c *config.Cluster, zc *config.DNSZone, st *Stats) (*zone, error) {
	apex := config.DNSFQDN("@", zc.Name)
	z := &zone{apex: apex, nodes: map[string]*node{}, other: st.name("<nonexistent>." + apex)}
	// The hash covers what the zone serves, so that the serial moves with it.
	z.hash = c.ZoneDigest(zc)

	get := func(name string) *node {
		n := z.nodes[name]
		if n == nil {
			n = &node{name: name, stats: st.name(name)}
			z.nodes[name] = n
		}
		// Ancestors up to the apex exist as empty non-terminals.
		for p := name; p != apex; {
			i := strings.IndexByte(p, '.')
			if i < 0 || i == len(p)-1 {
				break
			}
			p = p[i+1:]
			if _, ok := z.nodes[p]; ok {
				break
			}
			z.nodes[p] = &node{name: p, stats: st.name(p)}
		}
		return n
	}
	add := func(n *node, rr mdns.RR) {
		t := rr.Header().Rrtype
		if n.rrsets == nil {
			n.rrsets = map[uint16][]mdns.RR{}
		}
		if _, ok := n.rrsets[t]; !ok {
			n.types = append(n.types, t)
		}
		n.rrsets[t] = append(n.rrsets[t], rr)
	}

	soa := &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: apex, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: zc.TTL},
		Ns:      mdns.Fqdn(strings.ToLower(zc.SOA.MName)),
		Mbox:    mdns.Fqdn(strings.ToLower(zc.SOA.RName)),
		Serial:  zc.SOA.Serial,
		Refresh: zc.SOA.Refresh, Retry: zc.SOA.Retry, Expire: zc.SOA.Expire, Minttl: zc.SOA.Minimum,
	}
	z.soa = soa
	apexNode := get(apex)
	add(apexNode, soa)
	for _, ns := range zc.NS {
		// Name servers are absolute names (a trailing dot is optional).
		rr := &mdns.NS{Hdr: mdns.RR_Header{Name: apex, Rrtype: mdns.TypeNS, Class: mdns.ClassINET, Ttl: zc.TTL}, Ns: mdns.Fqdn(strings.ToLower(ns))}
		add(apexNode, rr)
		z.ns = append(z.ns, rr)
	}
	for i := range zc.Records {
		r := &zc.Records[i]
		owner := config.DNSFQDN(r.Name, zc.Name)
		ttl := r.TTL
		if ttl == 0 {
			ttl = zc.TTL
		}
		n := get(owner)
		for _, d := range r.Data {
			rr, err := config.ParseDNSRecord(owner, ttl, r.Type, d, apex)
			if err != nil {
				return nil, fmt.Errorf("record %s %s %q: %v", r.Name, r.Type, d, err)
			}
			lowerTargets(rr, apex)
			add(n, rr)
			if rr.Header().Rrtype == mdns.TypeNS && owner != apex {
				n.cut = true
			}
		}
	}
	for i := range zc.Services {
		sc := &zc.Services[i]
		owner := config.DNSFQDN(sc.Name, zc.Name)
		svc := &service{name: owner, cfgName: sc.Name, policy: sc.Policy, ttl: sc.TTL, backends: sc.Backends, hook: sc.Hook}
		for _, d := range c.Datacenters {
			vips, ok := sc.VIPs[d.Name]
			if !ok {
				continue
			}
			sd := svcDC{name: d.Name, weight: d.Weight}
			for _, v := range vips {
				a, err := netip.ParseAddr(v)
				if err != nil {
					return nil, fmt.Errorf("service %s: VIP %q: %w", sc.Name, v, err)
				}
				a = a.Unmap()
				sd.addrs = append(sd.addrs, a)
				if rr := addrRR(owner, sc.TTL, a); a.Is4() {
					sd.a = append(sd.a, rr)
				} else {
					sd.aaaa = append(sd.aaaa, rr)
				}
			}
			for _, n := range d.Networks {
				if p, err := config.ParsePrefix(n); err == nil {
					svc.byNet = append(svc.byNet, netDC{pfx: p, dc: len(svc.dcs)})
				}
			}
			svc.dcs = append(svc.dcs, sd)
		}
		sort.SliceStable(svc.byNet, func(i, j int) bool { return svc.byNet[i].pfx.Bits() > svc.byNet[j].pfx.Bits() })
		get(owner).svc = svc
	}
	for name, n := range z.nodes {
		if n.cut {
			z.hasCuts = true
		}
		if strings.HasPrefix(name, "*.") {
			if parent := z.nodes[name[2:]]; parent != nil {
				parent.wild = n
				z.hasWild = true
			}
		}
	}
	for _, n := range zc.Notify {
		if ap, err := config.ParseDNSNotify(n); err == nil {
			z.notify = append(z.notify, ap)
		}
	}
	for _, t := range zc.Transfer {
		if p, err := config.ParsePrefix(t); err == nil {
			z.transfer = append(z.transfer, p)
		}
	}
	return z, nil
}

// lowerTargets puts in-zone target names in lower case so that lookups of
// CNAME chains and additional records match the node map.
func lowerTargets(rr mdns.RR, apex string) {
	switch r := rr.(type) {
	case *mdns.CNAME:
		r.Target = strings.ToLower(r.Target)
	case *mdns.MX:
		r.Mx = strings.ToLower(r.Mx)
	case *mdns.SRV:
		r.Target = strings.ToLower(r.Target)
	case *mdns.NS:
		r.Ns = strings.ToLower(r.Ns)
	}
}

func addrRR(owner string, ttl uint32, a netip.Addr) mdns.RR {
	if a.Is4() {
		return &mdns.A{Hdr: mdns.RR_Header{Name: owner, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: ttl}, A: a.AsSlice()}
	}
	return &mdns.AAAA{Hdr: mdns.RR_Header{Name: owner, Rrtype: mdns.TypeAAAA, Class: mdns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()}
}

// serialGreater is RFC 1982 comparison: a > b.
func serialGreater(a, b uint32) bool { return config.SerialGreater(a, b) }
