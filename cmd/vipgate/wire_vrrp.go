package main

import (
	"net"
	"net/netip"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/cluster/vrrp"
	"github.com/vipgate/vipgate/plugins/track"
)

// newVRRP wires the vrrp subsystem into a node: the instances of the
// cluster document that name this node (or its datacenter), their track
// sources (process, interface, exec and the local proxy here; lua and http
// through the health-check registry), and the "vrrp" status section.
func newVRRP(e *env) (subsystem, error) {
	to := track.Options{Checks: e.Checks}
	if e.Proxy != nil { // a typed nil would pass as a proxy
		to.Proxy = e.Proxy
	}
	m := vrrp.NewManager(vrrp.Options{
		Node:     e.Node,
		Log:      e.Log,
		Bus:      e.Bus,
		Tracks:   track.Factory(to),
		StateDir: e.Node.DataDir,
		NodeOf:   raftNodeOf(e.Source),
	})
	if e.Admin != nil {
		e.Admin.Section("vrrp", func() any { return m.Status() })
	}
	e.VRRPStatus = m.Status
	if e.Metrics != nil {
		_ = e.Metrics.Register(vrrp.NewCollector(m.Status)) // a second node on one registry (tests) keeps the first's
	}
	return m, nil
}

// raftNodeOf names a VRRP master from the raft members' advertised raft
// and admin addresses (nil without raft). Those are addresses the nodes
// bind, so one that matches an advert's source is that node's; a master
// advertising from another address stays unnamed rather than guessed.
func raftNodeOf(src configSource) func(netip.Addr) string {
	s, ok := src.(*raftSource)
	if !ok {
		return nil
	}
	return func(a netip.Addr) string {
		ms, err := s.n.Members()
		if err != nil {
			return ""
		}
		return memberAt(ms, a)
	}
}

// memberAt is the member whose raft or admin address is on host a.
func memberAt(ms []raft.MemberInfo, a netip.Addr) string {
	for _, m := range ms {
		for _, hp := range []string{m.Address, m.Admin} {
			host, _, err := net.SplitHostPort(hp)
			if err != nil {
				continue
			}
			if h, err := netip.ParseAddr(host); err == nil && !h.IsUnspecified() && h.Unmap() == a.Unmap() {
				return m.ID
			}
		}
	}
	return ""
}
