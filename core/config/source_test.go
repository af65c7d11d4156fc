package config

import (
	"strings"
	"testing"
)

func TestSourceParsed(t *testing.T) {
	doc := `
backends:
  - name: smtp
    source: {usesrc: clientip, setup_routing: true}
    servers:
      - {name: a, address: "198.18.2.10:25"}
      - {name: b, address: "198.18.2.11:25", source: {address: 198.18.1.1}}
  - name: web
    source: {address: "2001:db8::1"}
    servers:
      - {name: a, address: "[2001:db8::10]:80"}
`
	c, err := Parse("src.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Backend("smtp")
	if src := b.ServerSource(&b.Servers[0]); !src.ClientIP() || !src.SetupRouting {
		t.Errorf("server a inherits the backend's source: %+v", src)
	}
	if src := b.ServerSource(&b.Servers[1]); src.ClientIP() || src.Address != "198.18.1.1" {
		t.Errorf("server b has its own source: %+v", src)
	}
	if !c.TransparentRouting(nil) {
		t.Error("setup_routing on a backend: the node needs the routing")
	}
	n := &Node{Name: "gw2", Datacenter: "dc1", Role: RoleGateway}
	c.Backends[0].Nodes = StringList{"gw1"}
	if c.TransparentRouting(n) {
		t.Error("the backend does not run on gw2: no routing there")
	}
}

func TestSourceProblems(t *testing.T) {
	be := func(src, addr string) string {
		return "backends:\n  - name: b\n    source: " + src + "\n    servers:\n      - {name: s, address: '" + addr + "'}\n"
	}
	cases := []struct{ name, doc, want string }{
		{"empty", be("{}", "198.18.2.10:25"), "bad.yaml:3:5: backends.0.source: source needs an address or usesrc clientip"},
		{"usesrc client", be("{usesrc: client}", "198.18.2.10:25"), `bad.yaml:3:22: backends.0.source.usesrc: usesrc "client": want clientip`},
		{"both", be("{usesrc: clientip, address: 198.18.0.1}", "198.18.2.10:25"), "backends.0.source.address: address and usesrc clientip exclude each other"},
		{"routing without clientip", be("{address: 198.18.0.1, setup_routing: true}", "198.18.2.10:25"), "backends.0.source.setup_routing: setup_routing is for usesrc clientip"},
		{"not an ip", be("{address: '198.18.0.1:5000'}", "198.18.2.10:25"), `backends.0.source.address: address "198.18.0.1:5000": want an IP address (no port)`},
		{"unspecified", be("{address: 0.0.0.0}", "198.18.2.10:25"), "address 0.0.0.0: want a unicast address of this node"},
		{"family", be("{address: 198.18.0.1}", "[2001:db8::10]:25"), `bad.yaml:3:23: backends.0.source.address: address 198.18.0.1 cannot reach server "s" at [2001:db8::10]:25 (another address family)`},
		{"unknown key", be("{usesrc: clientip, routing: true}", "198.18.2.10:25"), `backends.0.source.routing: unknown key "routing"`},
		{"server level", "backends:\n  - name: b\n    servers:\n      - {name: s, address: '198.18.2.10:25', source: {usesrc: clientp}}\n",
			`bad.yaml:4:63: backends.0.servers.0.source.usesrc: usesrc "clientp": want clientip`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want %q in:\n%v", tc.want, err)
			}
		})
	}
}
