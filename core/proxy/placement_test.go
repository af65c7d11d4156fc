package proxy

import (
	"fmt"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

// TestPlacementPerNode: one document, two nodes with their own servers
// (seed004: exch1/exch2 on node1, exch3/exch4 on node2) and a frontend
// only node2 serves. Each node's proxy connects only to its own servers.
func TestPlacementPerNode(t *testing.T) {
	s1, s2, s3 := newTestServer(t, "s1"), newTestServer(t, "s2"), newTestServer(t, "s3")
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
`, s1.addr(), s2.addr(), s3.addr())
	c, err := config.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		node     string
		want     map[string]bool
		frontend bool
	}{
		{"node1", map[string]bool{"s1": true, "s3": true}, false},
		{"node2", map[string]bool{"s2": true, "s3": true}, true},
	} {
		t.Run(tt.node, func(t *testing.T) {
			h := startProxyOpts(t, c, Options{Node: &config.Node{Name: tt.node, Datacenter: "dc1", Role: config.RoleGateway}}, nil)
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
