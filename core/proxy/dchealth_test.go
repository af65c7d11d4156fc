package proxy

import (
	"context"
	"fmt"
	"testing"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// TestDatacenterHealthyCountsOwnServers: the VRRP track question
// (LocalHealthy) accepts another datacenter's servers, the active-datacenter
// question (DatacenterHealthy) does not.
func TestDatacenterHealthyCountsOwnServers(t *testing.T) {
	const doc = `
datacenters: [{name: dc1}, {name: dc2}]
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}, {name: far, bind: "127.0.0.2:0", default_backend: remote}]
backends:
  - name: be
    servers:
      - {name: l1, address: "127.0.0.1:1", datacenter: dc1}
      - {name: l2, address: "127.0.0.1:1", datacenter: dc1}
      - {name: r1, address: "127.0.0.1:1", datacenter: dc2}
      - {name: any, address: "127.0.0.1:1", backup: true}
  - name: remote
    servers: [{name: x, address: "127.0.0.1:1", datacenter: dc2}]
`
	for _, tc := range []struct {
		name     string
		down     []string // servers of backend be put in maintenance
		node     string   // the node's datacenter
		local    bool     // LocalHealthy
		dcHealth bool     // DatacenterHealthy
	}{
		{"all up", nil, "dc1", true, true},
		{"one local down", []string{"l1"}, "dc1", true, true},
		{"locals down, untagged backup up", []string{"l1", "l2"}, "dc1", true, true},
		{"only the other datacenter's server", []string{"l1", "l2", "any"}, "dc1", true, false},
		{"nothing up", []string{"l1", "l2", "any", "r1"}, "dc1", false, false},
		{"seen from dc2: its own server is up", []string{"l1", "l2", "any"}, "dc2", true, true},
		{"node without a datacenter counts any server", []string{"l1", "l2", "any"}, "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("t.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			p := New(Options{Datacenter: tc.node})
			if err := p.Apply(c); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go p.Run(ctx)
			for _, s := range tc.down {
				p.Server("be", s).SetAdmin(upstream.Maint)
			}
			if ok, why := p.LocalHealthy(nil); ok != tc.local {
				t.Errorf("LocalHealthy = %v (%s), want %v", ok, why, tc.local)
			}
			ok, why := p.DatacenterHealthy()
			if ok != tc.dcHealth {
				t.Errorf("DatacenterHealthy = %v (%s), want %v", ok, why, tc.dcHealth)
			}
			if !ok && tc.local && why != fmt.Sprintf("backend be of frontend fe has no server of datacenter %s up", tc.node) {
				t.Errorf("reason %q does not name the backend and datacenter", why)
			}
		})
	}
}
