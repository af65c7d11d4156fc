package main

import (
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
