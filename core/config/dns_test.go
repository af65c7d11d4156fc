package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const dnsBase = `datacenters:
  - {name: dc1, networks: [198.18.10.0/24]}
  - {name: dc2}
backends:
  - name: exchange
    servers: [{name: ex1, address: "198.18.1.11:443", datacenter: dc1}]
`

func TestDNSGoodAndDefaults(t *testing.T) {
	doc := dnsBase + `dns:
  zones:
    - name: Example.COM
      ns: [ns1.example.com]
      records:
        - {name: www, type: a, data: 198.18.0.10}
        - {name: mail.example.com, type: MX, data: "10 mx"}
        - {name: "@", type: TXT, data: "v=spf1 mx -all"}
      services:
        - {name: vdi, vips: {dc1: [198.18.1.1], dc2: ["2001:db8::1"]}, backends: [exchange]}
`
	c, err := Parse("dns.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	z := c.DNS.Zones[0]
	if z.TTL != 300 || z.SOA.MName != "ns1.example.com." || z.SOA.RName != "hostmaster.Example.COM." || z.SOA.Minimum != 60 {
		t.Errorf("zone defaults: ttl=%d soa=%+v", z.TTL, z.SOA)
	}
	if s := z.Services[0]; s.Policy != DNSFailover || s.TTL != 10 {
		t.Errorf("service defaults: %+v", s)
	}
	if r := c.DNS.RRL; r.ResponsesPerSecond != 0 || *r.Slip != 2 || r.IPv4Prefix != 24 || r.IPv6Prefix != 56 {
		t.Errorf("rrl defaults: %+v", r)
	}
	if tc := c.DNS.TCP; tc.PerClient != 16 || tc.MaxConnections != 1024 || tc.IdleTimeout.D() != 10*time.Second {
		t.Errorf("tcp defaults: %+v", tc)
	}
	rr, err := ParseDNSRecord("example.com.", 1, "TXT", "v=spf1 mx -all", "example.com.")
	if err != nil || !strings.Contains(rr.String(), `"v=spf1 mx -all"`) {
		t.Errorf("TXT without quotes is one string: %v %v", rr, err)
	}
	rr, err = ParseDNSRecord("example.com.", 1, "MX", "10 mx", "example.com.")
	if err != nil || !strings.HasSuffix(rr.String(), "mx.example.com.") {
		t.Errorf("relative names in data are relative to the zone: %v %v", rr, err)
	}
}

func TestDNSFQDN(t *testing.T) {
	tests := []struct{ name, zone, want string }{
		{"@", "example.com", "example.com."},
		{"", "example.com.", "example.com."},
		{"WWW", "Example.com", "www.example.com."},
		{"www.example.com", "example.com", "www.example.com."},
		{"example.com", "example.com", "example.com."},
		{"www.other.org.", "example.com", "www.other.org."},
		{"www.notexample.com", "example.com", "www.notexample.com.example.com."},
		{"*.dev", "example.com", "*.dev.example.com."},
	}
	for _, tt := range tests {
		if got := DNSFQDN(tt.name, tt.zone); got != tt.want {
			t.Errorf("DNSFQDN(%q, %q) = %q, want %q", tt.name, tt.zone, got, tt.want)
		}
	}
}

// TestDNSProblemsArePositioned: each mistake is reported at its line.
func TestDNSProblemsArePositioned(t *testing.T) {
	tests := []struct {
		name, dns, want string
	}{
		{"zone without ns", `  zones:
    - name: example.com
`, "dns.yaml:9:7: dns.zones.0: zone \"example.com\" needs at least one ns"},
		{"bad zone name", `  zones:
    - {name: "exa mple.com", ns: [a.b]}
`, "dns.zones.0.name: zone name"},
		{"unknown type", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      records:
        - {name: www, type: HINFO, data: x}
`, "dns.yaml:12:29: dns.zones.0.records.0.type: record type \"HINFO\""},
		{"bad A data", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      records:
        - name: www
          type: A
          data: [198.18.0.1, not-an-ip]
`, "dns.yaml:14:30: dns.zones.0.records.0.data.1: A data \"not-an-ip\""},
		{"record outside the zone", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      records: [{name: www.example.net., type: A, data: 198.18.0.1}]
`, "not inside zone"},
		{"CNAME and other data", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      records:
        - {name: www, type: A, data: 198.18.0.1}
        - {name: www, type: CNAME, data: other}
`, "dns.yaml:13:11: dns.zones.0.records.1: www.example.com. CNAME conflicts with the A"},
		{"CNAME at apex", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      records: [{name: "@", type: CNAME, data: other}]
`, "a CNAME cannot be at the zone apex"},
		{"service and A at one name", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      records: [{name: mail, type: A, data: 198.18.0.1}]
      services: [{name: mail, vips: {dc1: [198.18.1.1]}}]
`, "conflicts with the A"},
		{"unknown datacenter", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      services:
        - name: mail
          vips: {dc1: [198.18.1.1], dc3: [198.18.3.1]}
`, "dns.yaml:13:37: dns.zones.0.services.0.vips.dc3: datacenter \"dc3\" is not defined (did you mean \"dc1\"?)"},
		{"bad VIP", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      services: [{name: mail, vips: {dc1: [198.18.1.300]}}]
`, "VIP \"198.18.1.300\" is not an IP address"},
		{"bad policy", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      services: [{name: mail, policy: nearest, vips: {dc1: [198.18.1.1]}}]
`, "policy \"nearest\": want failover, topology, weighted or all-healthy"},
		{"unknown backend", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      services: [{name: mail, backends: [owa], vips: {dc1: [198.18.1.1]}}]
`, "backend \"owa\" is not defined"},
		{"hook of an unknown plugin", `  zones:
    - name: example.com
      ns: [ns1.example.com]
      services: [{name: mail, hook: geo.pick, vips: {dc1: [198.18.1.1]}}]
`, "dns.zones.0.services.0.hook: hook \"geo.pick\": no lua plugin \"geo\""},
		{"duplicate zone", `  zones:
    - {name: example.com, ns: [a.example.com]}
    - {name: EXAMPLE.com., ns: [a.example.com]}
`, "duplicate zone"},
		{"nested zone", `  zones:
    - {name: example.com, ns: [a.example.com]}
    - {name: sub.example.com, ns: [a.example.com]}
`, "is inside zone"},
		{"bad transfer network", `  zones:
    - {name: example.com, ns: [a.example.com], transfer: [10.0.0.0/33]}
`, "network \"10.0.0.0/33\""},
		{"bad notify target", `  zones:
    - {name: example.com, ns: [a.example.com], notify: [198.18.5.53, "secondary:53"]}
`, "dns.zones.0.notify.1: notify \"secondary:53\": want an IP address or address:port"},
		{"rrl slip", `  rrl: {responses_per_second: 10, slip: 20}
`, "dns.rrl.slip: slip 20: want 0 to 10"},
		{"tcp per_client", `  tcp: {per_client: -1}
`, "dns.tcp.per_client: must not be negative"},
		{"tcp idle_timeout", `  tcp: {idle_timeout: -1s}
`, "dns.yaml:8:23: negative duration \"-1s\""},
		{"unknown key", `  zones:
    - {name: example.com, ns: [a.example.com], recrods: []}
`, "unknown key \"recrods\" (did you mean \"records\"?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("dns.yaml", []byte(dnsBase+"dns:\n"+tt.dns))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want a config error, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestNodeDNS(t *testing.T) {
	n, err := ParseNode("node.yaml", []byte("name: a\ndatacenter: dc1\ndns: {listen: [\"127.0.0.1:5353\", \"[::1]:5353\"]}\n"))
	if err != nil || len(n.DNS.Listen) != 2 {
		t.Fatalf("%v %+v", err, n)
	}
	_, err = ParseNode("node.yaml", []byte("name: a\ndatacenter: dc1\ndns: {listen: [\"127.0.0.1\"], sockets: -1}\n"))
	if err == nil || !strings.Contains(err.Error(), "dns.listen.0") || !strings.Contains(err.Error(), "dns.sockets") {
		t.Errorf("want dns.listen.0 and dns.sockets problems, got %v", err)
	}
}

// FuzzDNSSection: any dns section is either accepted or rejected with
// problems; validation never panics.
func FuzzDNSSection(f *testing.F) {
	f.Add(`  zones:
    - name: example.com
      ns: [ns1.example.com]
      records:
        - {name: www, type: A, data: [198.18.0.1]}
        - {name: "*.dev", type: CNAME, data: www}
        - {name: "@", type: MX, data: "10 mx"}
      services: [{name: mail, policy: topology, vips: {dc1: [198.18.1.1]}, backends: [exchange]}]
  rrl: {responses_per_second: 5, slip: 0}
`)
	f.Add("  zones: [{name: ., ns: [a.]}]\n")
	f.Add("  zones: [{name: \"a..b\", ns: [\"\"], records: [{name: \"@\", type: TXT, data: \"\\\"\"}]}]\n")
	f.Fuzz(func(t *testing.T, dns string) {
		_, _ = Parse("dns.yaml", []byte(dnsBase+"dns:\n"+dns))
	})
}
