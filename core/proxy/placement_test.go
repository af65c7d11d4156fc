package proxy

import (
	"fmt"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

// TestPlacementPerNode: one document, two nodes with their own servers
// (seed004: exch1/exch2 on node1, exch3/exch4 on node2) and a frontend
// only node2 serves. Each node's proxy connects only to its own servers.
// s4 is local_only to dc2: only node3, in dc2, uses it.
func TestPlacementPerNode(t *testing.T) {
	s1, s2, s3, s4 := newTestServer(t, "s1"), newTestServer(t, "s2"), newTestServer(t, "s3"), newTestServer(t, "s4")
	doc := fmt.Sprintf(`
frontends:
  - {name: fe, bind: "127.0.0.1:0", default_backend: be}
  - {name: only2, bind: "127.0.0.2:0", default_backend: be, nodes: [node2]}
backends:
  - name: be
    servers:
      - {name: s1, address: %q, nodes: [node1]}
      - {name: s2, address: %q, nodes: [node2]}
      - {name: s3, address: %q}
      - {name: s4, address: %q, datacenter: dc2, local_only: true}
datacenters: [{name: dc1}, {name: dc2}]
`, s1.addr(), s2.addr(), s3.addr(), s4.addr())
	c, err := config.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		node, dc string
		want     map[string]bool
		frontend bool
	}{
		{"node1", "dc1", map[string]bool{"s1": true, "s3": true}, false},
		{"node2", "dc1", map[string]bool{"s2": true, "s3": true}, true},
		{"node3", "dc2", map[string]bool{"s3": true, "s4": true}, false},
	} {
		t.Run(tt.node, func(t *testing.T) {
			h := startProxyOpts(t, c, Options{Node: &config.Node{Name: tt.node, Datacenter: tt.dc, Role: config.RoleGateway}, Datacenter: tt.dc}, nil)
			got := map[string]bool{}
			for i := 0; i < 20; i++ {
				name, err := greet(t, h.addr("fe"))
				if err != nil {
					t.Fatal(err)
				}
				got[name] = true
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("servers used: %v, want %v", got, tt.want)
			}
			if _, ok := h.p.ListenAddrs()["only2"]; ok != tt.frontend {
				t.Errorf("frontend only2 served: %v, want %v", ok, tt.frontend)
			}
		})
	}
}

// TestFrontendOnVIP: a frontend bound to a VIP this node does not hold
// (a backup node, or before VRRP has elected) listens at once and takes
// the VIP's traffic when the address arrives, as keepalived's IPVS did
// for an imported virtual_server; a bind on another absent address is
// still an error (a typo does not listen on nothing).
func TestFrontendOnVIP(t *testing.T) {
	s1 := newTestServer(t, "s1")
	doc := func(vip string) *config.Cluster {
		c, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
frontends: [{name: fe, bind: "198.18.0.250:0", default_backend: be}]
backends: [{name: be, servers: [{name: s1, address: %q}]}]
vrrp: {instances: [{name: vi, interface: eth0, vrid: 51, vips: [%s]}]}
`, s1.addr(), vip)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p := New(Options{})
	if err := p.Apply(doc("198.18.0.250/24")); err != nil {
		t.Fatalf("a frontend on a VIP not held yet: %v", err)
	}
	if a := p.ListenAddrs()["fe"]; len(a) != 1 {
		t.Errorf("listening on %v", a)
	}
	if err := New(Options{}).Apply(doc("198.18.0.251")); err == nil {
		t.Error("a bind on an address that is neither local nor a VIP opened")
	}
}
