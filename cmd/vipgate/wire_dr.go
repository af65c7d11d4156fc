package main

import (
	"github.com/vipgate/vipgate/core/dr"
)

// newDR wires the direct-routing datapath (mode dr frontends) into a node.
// Its backends are the proxy's: the same servers, health checks, admin
// states and counters (stats, Prometheus) as proxied backends; the
// "dr" status section lists the interfaces it forwards on.
func newDR(e *env) (subsystem, error) {
	if e.Proxy == nil {
		return nil, nil
	}
	p := e.Proxy
	d := dr.New(dr.Options{
		Log:  e.Log,
		Node: e.Node,
		Backend: func(name string) (dr.Pool, bool) {
			b := p.Backend(name)
			if b == nil {
				return dr.Pool{}, false
			}
			return dr.Pool{Pick: b.Pick, Servers: b.Servers, Counters: b.Counters}, true
		},
	})
	if e.Admin != nil {
		e.Admin.Section("dr", func() any { return d.Status() })
	}
	return d, nil
}
