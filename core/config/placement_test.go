package config

import (
	"reflect"
	"strings"
	"testing"
)

const placedDoc = `
frontends:
  - {name: fe, bind: ":443", default_backend: be}
  - {name: fe2, bind: ":8443", default_backend: be2, nodes: [n2]}
  - {name: fe2b, bind: ":8443", default_backend: be2, nodes: [n1]}
datacenters: [{name: dc1}, {name: dc2}]
backends:
  - name: be
    servers:
      - {name: a, address: "198.18.1.1:443", nodes: [n1]}
      - {name: b, address: "198.18.1.2:443", nodes: [n2]}
      - {name: c, address: "198.18.1.3:443"}
      - {name: e, address: "198.18.2.1:443", datacenter: dc2, local_only: true}
      - {name: f, address: "198.18.2.2:443", datacenter: dc2}
  - name: be2
    nodes: [n1, n2]
    servers: [{name: d, address: "198.18.1.4:443"}]
vrrp:
  instances:
    - name: VI_1
      nodes: [n1, n2]
      interface: ens160
      interfaces: {n2: ens192}
      unicast_src_ips: {n1: 198.18.0.1, n2: 198.18.0.2}
      vip_devs: {n2: ens192}
      vrid: 101
      vips: ["198.18.0.100/24 dev ens160", 198.18.0.101]
`

func TestForNode(t *testing.T) {
	c, err := Parse("placed.yaml", []byte(placedDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		node      string
		dc        string
		frontends []string
		servers   []string
		iface     string
		src       string
		vips      []string
	}{
		{"n1", "dc1", []string{"fe", "fe2b"}, []string{"a", "c", "f"}, "ens160", "198.18.0.1", []string{"198.18.0.100/24 dev ens160", "198.18.0.101"}},
		{"n2", "dc1", []string{"fe", "fe2"}, []string{"b", "c", "f"}, "ens192", "198.18.0.2", []string{"198.18.0.100/24 dev ens192", "198.18.0.101"}},
		{"n3", "dc1", []string{"fe"}, []string{"c", "f"}, "ens160", "", []string{"198.18.0.100/24 dev ens160", "198.18.0.101"}},
		// local_only: only dc2's nodes use e; f is dc2's too, but a
		// preference only, so every node has it.
		{"n4", "dc2", []string{"fe"}, []string{"c", "e", "f"}, "ens160", "", []string{"198.18.0.100/24 dev ens160", "198.18.0.101"}},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			v := c.ForNode(&Node{Name: tt.node, Datacenter: tt.dc, Role: RoleGateway})
			var fes, srvs []string
			for _, f := range v.Frontends {
				fes = append(fes, f.Name)
			}
			for _, s := range v.Backend("be").Servers {
				srvs = append(srvs, s.Name)
			}
			if !reflect.DeepEqual(fes, tt.frontends) || !reflect.DeepEqual(srvs, tt.servers) {
				t.Errorf("frontends %v servers %v, want %v %v", fes, srvs, tt.frontends, tt.servers)
			}
			if (v.Backend("be2") != nil) != (tt.node == "n1" || tt.node == "n2") {
				t.Errorf("backend be2 on %s: %v", tt.node, v.Backend("be2") != nil)
			}
			in := c.VRRP.Instances[0].ForNode(tt.node)
			if in.Interface != tt.iface || in.UnicastSrcIP != tt.src || !reflect.DeepEqual([]string(in.VIPs), tt.vips) {
				t.Errorf("instance on %s: interface %s src %q vips %v", tt.node, in.Interface, in.UnicastSrcIP, in.VIPs)
			}
		})
	}
	if len(c.Backend("be").Servers) != 5 {
		t.Error("ForNode changed the shared document")
	}
	if flat, _ := Parse("flat.yaml", []byte("frontends: [{name: fe, bind: \":443\", default_backend: be}]\nbackends: [{name: be, servers: [{name: a, address: \"198.18.1.1:443\"}]}]\n")); flat.ForNode(&Node{Name: "n1", Role: RoleGateway}) != flat {
		t.Error("a document without placements is shared as is")
	}
}

func TestPlacementValidation(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{"frontend on more nodes than its backend", "  - {name: fe2, bind: \":8443\", default_backend: be2, nodes: [n2]}", ""},
		{"frontend everywhere, backend on nodes", "  - {name: fe2, bind: \":8443\", default_backend: be2}", `frontends.1.default_backend: backend "be2" does not run everywhere frontend "fe2" does`},
		{"server on a node its backend does not run on", `    servers: [{name: d, address: "198.18.1.4:443", nodes: [n3]}]`, `backends.1.servers.0.nodes.0: node "n3": backend "be2" does not run there`},
		{"server local to its datacenter", `      - {name: e, address: "198.18.2.1:443", datacenter: dc1, local_only: true}`, ""},
		{"local_only without a datacenter", `      - {name: e, address: "198.18.2.1:443", local_only: true}`, `placed.yaml:13:58: backends.0.servers.3.local_only: server "e": local_only needs the server's datacenter`},
		{"local_only and nodes", `      - {name: e, address: "198.18.2.1:443", datacenter: dc2, local_only: true, nodes: [n1]}`, `placed.yaml:13:75: backends.0.servers.3.local_only: server "e": local_only and nodes both say where`},
		{"server local to an unknown datacenter", `      - {name: e, address: "198.18.2.1:443", datacenter: dc3, local_only: true}`, `placed.yaml:13:58: backends.0.servers.3.datacenter: datacenter "dc3" is not defined`},
		{"local server of another datacenter than its backend", "  - name: be\n    datacenter: dc1", `backends.0.servers.3.local_only: server "e": backend "be" runs only in datacenter "dc1", the server only in "dc2": no node would use it`},
		{"per-node key not in nodes", "      interfaces: {n3: ens192}", `vrrp.instances.0.interfaces.n3: node "n3" is not in the instance's nodes`},
		{"bad per-node interface", "      interfaces: {n2: \"a b\"}", `interface "a b" is not a valid interface name`},
		{"bad per-node source", "      unicast_src_ips: {n1: nope}", `unicast_src_ip "nope": not an IP address`},
		{"same bind on shared nodes", "  - {name: fe2b, bind: \":8443\", default_backend: be2, nodes: [n2]}", `bind ":8443" is already used by frontend "fe2"`},
	}
	lines := strings.Split(placedDoc, "\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The line to replace starts like the edit, up to its second
			// field (or first ':').
			key := strings.SplitN(strings.TrimSpace(tt.edit), ":", 2)[0]
			if strings.HasPrefix(key, "- {name") || key == "servers" {
				key = strings.SplitN(strings.TrimSpace(tt.edit), ",", 2)[0]
			}
			var out []string
			done := false
			for _, l := range lines {
				if !done && strings.HasPrefix(strings.TrimSpace(l), key) {
					l, done = tt.edit, true
				}
				out = append(out, l)
			}
			if !done {
				t.Fatalf("no line starts with %q", key)
			}
			_, err := Parse("placed.yaml", []byte(strings.Join(out, "\n")))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
