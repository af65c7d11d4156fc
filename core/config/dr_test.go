package config

import (
	"net/netip"
	"strings"
	"testing"
)

const drDoc = `vrrp:
  instances:
    - name: vi1
      interface: eth0
      vrid: 51
      vips: ["198.18.40.100/24"]
frontends:
  - name: web
    mode: dr
    bind: "198.18.40.100:80"
    default_backend: web
backends:
  - name: web
    servers:
      - {name: s1, address: "198.18.40.21:80"}
      - {name: s2, address: "198.18.40.22:80"}
`

func TestDRDefaults(t *testing.T) {
	c, err := Parse("dr.yaml", []byte(drDoc))
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Frontend("web"); f.Protocol != ProtoTCP {
		t.Errorf("protocol %q, want tcp", f.Protocol)
	}
	if b := c.Backend("web"); b.Balance.Algorithm != "maglev" {
		t.Errorf("algorithm %q, want maglev (the director's default)", b.Balance.Algorithm)
	}
	if got := c.DRAddrs(); len(got) != 1 || got[0] != netip.MustParseAddr("198.18.40.100") {
		t.Errorf("DRAddrs %v", got)
	}
	v, ok := c.DRFrontendVIP(c.Frontend("web"), "")
	if !ok || v.Interface != "eth0" || v.Instance.Name != "vi1" {
		t.Errorf("DRFrontendVIP %+v %v", v, ok)
	}
	// An explicit algorithm is kept; defaults.balance does not apply to a
	// director's backend that says nothing.
	c, err = Parse("dr.yaml", []byte(strings.Replace(drDoc, "  - name: web\n    servers:", "  - name: web\n    balance: {algorithm: leastconn}\n    servers:", 1)))
	if err != nil || c.Backend("web").Balance.Algorithm != "leastconn" {
		t.Errorf("explicit algorithm: %v", err)
	}
	c, err = Parse("dr.yaml", []byte("defaults: {balance: {algorithm: leastconn}}\n"+drDoc))
	if err != nil || c.Backend("web").Balance.Algorithm != "maglev" {
		t.Errorf("defaults.balance leaked into the director's backend: %v", err)
	}
}

func TestDRValidation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old, new  string
		want      string // "file:line: message" fragment
		wantLines string
	}{
		{"protocol sctp", `    mode: dr`, "    mode: dr\n    protocol: sctp", `protocol "sctp": want tcp or udp`, "dr.yaml:10"},
		{"udp without dr", `    mode: dr`, "    mode: tcp\n    protocol: udp", "protocol udp needs mode dr", "dr.yaml:10"},
		{"vip not in vrrp", `bind: "198.18.40.100:80"`, `bind: "198.18.40.99:80"`, "198.18.40.99 is in no vrrp instance's vips", "dr.yaml:10"},
		{"ipv6 bind", `bind: "198.18.40.100:80"`, `bind: "[2001:db8::1]:80"`, "mode dr needs an IPv4 VIP and a port", "dr.yaml:10"},
		{"two binds", `bind: "198.18.40.100:80"`, `bind: ["198.18.40.100:80", "198.18.40.100:81"]`, "exactly one bind address", "dr.yaml:10"},
		{"server port differs", `198.18.40.22:80`, `198.18.40.22:8080`, "server port 8080 differs from the VIP's 80", "dr.yaml:16"},
		{"server by name", `198.18.40.22:80`, `web2.example.com:80`, "mode dr needs an IPv4 address and port", "dr.yaml:16"},
		{"server off the VIP's network", `198.18.40.22:80`, `198.18.41.22:80`, "not on the VIP's network 198.18.40.0/24", "dr.yaml:16"},
		{"http backend", "  - name: web\n    servers:", "  - name: web\n    mode: http\n    servers:", "use mode tcp", "dr.yaml:14"},
		{"bad algorithm", "  - name: web\n    servers:", "  - name: web\n    balance: {algorithm: first}\n    servers:", "mode dr chooses by maglev, roundrobin, static-rr, leastconn or source", "dr.yaml:14"},
		{"usesrc", "  - name: web\n    servers:", "  - name: web\n    source: {usesrc: clientip}\n    servers:", "source has no meaning in mode dr", "dr.yaml:14"},
		{"send_proxy", "  - name: web\n    servers:", "  - name: web\n    send_proxy: v2\n    servers:", "send_proxy: a director does not open connections", "dr.yaml:14"},
		{"tls on a dr frontend", `    default_backend: web`, "    default_backend: web\n    tls: {cert: /x.pem}", "tls has no meaning in mode dr", "dr.yaml:12"},
		{"inspect_delay", `    default_backend: web`, "    default_backend: web\n    inspect_delay: 5s", "inspect_delay has no meaning in mode dr", "dr.yaml:12"},
		{"use_vmac", `      vrid: 51`, "      vrid: 51\n      use_vmac: true", "use_vmac, which mode dr does not support", "dr.yaml:11"},
		{"proxy listening on the dr VIP", "backends:", "  - {name: p, bind: \"198.18.40.100:443\", default_backend: web}\nbackends:", "it is not a local address of the director", "dr.yaml:12"},
		{"unknown mode", `    mode: dr`, `    mode: lvs`, `mode "lvs": want tcp, http or dr`, "dr.yaml:9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(drDoc, tc.old, tc.new, 1)
			if doc == drDoc {
				t.Fatalf("replacement %q not found", tc.old)
			}
			_, err := Parse("dr.yaml", []byte(doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %q", err, tc.want)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.Contains(line, tc.want) && !strings.Contains(line, tc.wantLines) {
					t.Fatalf("error %q is not at %s", line, tc.wantLines)
				}
			}
		})
	}
}
