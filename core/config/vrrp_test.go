package config

import (
	"strings"
	"testing"
	"time"
)

const vrrpDoc = `
datacenters:
  - name: dc1
  - name: dc2
vrrp:
  instances:
    - name: vi-dc1
      datacenter: dc1
      interface: eth1
      vrid: 51
      priorities: {gw1: 150, gw2: 100}
      auth_pass: secret
      vips: ["198.18.1.100/24 dev eth1 label eth1:vip", "198.18.1.101"]
      track:
        - {kind: process, process: haproxy, weight: -60}
        - {kind: exec, command: [/usr/local/bin/check], interval: 2s, fall: 3}
    - name: vi6
      nodes: [gw1, gw2]
      interface: eth1
      vrid: 51
      version: 3
      advert_interval: 30ms
      preempt: false
      unicast_peers: ["2001:db8::1", "2001:db8::2"]
      vips: ["2001:db8::100/64"]
    - name: vi-dc1-b
      datacenter: dc1
      interface: eth1
      vrid: 52
      vips: [198.18.1.102/24]
  sync_groups:
    - {name: g, instances: [vi-dc1, vi-dc1-b]}
`

func TestVRRPParseAndDefaults(t *testing.T) {
	c, err := Parse("vrrp.yaml", []byte(vrrpDoc))
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	in := &c.VRRP.Instances[0]
	if in.Version != 2 || in.Priority != 100 || in.AdvertInterval.D() != time.Second || !in.PreemptOn() {
		t.Errorf("keepalived defaults not applied: %+v", in)
	}
	if in.GARPMasterDelay.D() != 5*time.Second || in.GARPMasterRepeat != 5 {
		t.Errorf("garp defaults: %v %d", in.GARPMasterDelay.D(), in.GARPMasterRepeat)
	}
	if tr := in.Track[1]; tr.Interval.D() != 2*time.Second || tr.Timeout != tr.Interval || tr.Rise != 1 || tr.Fall != 3 || tr.Name != "exec-1" {
		t.Errorf("track defaults: %+v", tr)
	}
	if in.PriorityFor("gw1") != 150 || in.PriorityFor("gw9") != 100 {
		t.Errorf("per-node priority")
	}
	if c.VRRP.Instances[1].PreemptOn() {
		t.Errorf("preempt: false ignored")
	}
	gw1 := &Node{Name: "gw1", Datacenter: "dc1", Role: RoleGateway}
	gw3 := &Node{Name: "gw3", Datacenter: "dc2", Role: RoleGateway}
	wit := &Node{Name: "w", Datacenter: "dc1", Role: RoleWitness}
	for _, tc := range []struct {
		inst int
		node *Node
		want bool
	}{{0, gw1, true}, {0, gw3, false}, {0, wit, false}, {1, gw1, true}, {1, gw3, false}} {
		if got := c.VRRP.Instances[tc.inst].Runs(tc.node); got != tc.want {
			t.Errorf("instance %d runs on %s: %v, want %v", tc.inst, tc.node.Name, got, tc.want)
		}
	}
}

func TestParseVIP(t *testing.T) {
	tests := []struct {
		in, prefix, dev, label, err string
	}{
		{in: "198.18.1.100/24 dev eth1 label eth1:vip", prefix: "198.18.1.100/24", dev: "eth1", label: "eth1:vip"},
		{in: "198.18.1.100", prefix: "198.18.1.100/32"},
		{in: "2001:db8::1", prefix: "2001:db8::1/128"},
		{in: "198.18.1.100/33", err: "address"},
		{in: "198.18.1.100 dev", err: "needs a value"},
		{in: "198.18.1.100 scope link", err: "unknown option"},
		{in: "", err: "empty"},
	}
	for _, tc := range tests {
		v, err := ParseVIP(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || v.Prefix.String() != tc.prefix || v.Dev != tc.dev || v.Label != tc.label {
			t.Errorf("%q: %+v %v", tc.in, v, err)
		}
	}
}

// TestVRRPValidation checks each mistake is reported at its line:column.
func TestVRRPValidation(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"vrid range", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 256, vips: [198.18.0.9]}\n", "x.yaml:3:40: vrrp.instances.0.vrid: vrid 256: must be 1..255"},
		{"no vips", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n", "x.yaml:3:7: vrrp.instances.0.vips: instance \"a\" has no vips"},
		{"v2 sub-second", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n      advert_interval: 100ms\n      vips: [198.18.0.9]\n", "x.yaml:6:24: vrrp.instances.0.advert_interval: advert_interval 100ms: VRRPv2 needs whole seconds"},
		{"v3 not centiseconds", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n      version: 3\n      advert_interval: 15ms\n      vips: [198.18.0.9]\n", "advert_interval 15ms: VRRPv3 needs whole centiseconds"},
		{"auth in v3", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, version: 3, auth_pass: x, vips: [198.18.0.9]}\n", "auth_pass only exists in VRRPv2"},
		{"auth too long", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, auth_pass: 123456789, vips: [198.18.0.9]}\n", "at most 8"},
		{"ipv6 needs v3", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, vips: [\"2001:db8::1\"]}\n", "IPv6 needs version: 3"},
		{"mixed families", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, version: 3, vips: [198.18.0.9, \"2001:db8::1\"]}\n", "IPv4 or IPv6, not both"},
		{"bad vip", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, vips: [nope]}\n", "x.yaml:3:50: vrrp.instances.0.vips.0: vip \"nope\""},
		{"dup vrid same nodes", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, vips: [198.18.0.9]}\n    - {name: b, interface: eth0, vrid: 1, vips: [198.18.0.8]}\n", "x.yaml:4:40: vrrp.instances.1.vrid: vrid 1 on eth0 is already used by instance \"a\""},
		{"dup name", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, vips: [198.18.0.9]}\n    - {name: a, interface: eth0, vrid: 2, vips: [198.18.0.8]}\n", "duplicate instance name \"a\""},
		{"unknown datacenter", "datacenters: [{name: dc1}]\nvrrp:\n  instances:\n    - {name: a, datacenter: dcx, interface: eth0, vrid: 1, vips: [198.18.0.9]}\n", "unknown datacenter \"dcx\""},
		{"unicast peer family", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, unicast_peers: [\"2001:db8::1\"], vips: [198.18.0.9]}\n", "not of the VIPs' address family"},
		{"track kind", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n      vips: [198.18.0.9]\n      track:\n        - {kind: ping}\n", "x.yaml:8:18: vrrp.instances.0.track.0.kind: track kind \"ping\""},
		{"track file relative", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n      vips: [198.18.0.9]\n      track:\n        - {kind: file, file: maint}\n", "x.yaml:8:30: vrrp.instances.0.track.0.file: file track needs file: an absolute path, got \"maint\""},
		{"track file missing", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n      vips: [198.18.0.9]\n      track:\n        - {kind: file}\n", "file track needs file: an absolute path"},
		{"track exec without command", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n      vips: [198.18.0.9]\n      track:\n        - {kind: exec}\n", "exec track needs a command"},
		{"track proxy unknown frontend", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n      vips: [198.18.0.9]\n      track:\n        - {kind: proxy, frontends: [web]}\n", "unknown frontend \"web\""},
		{"sync group empty notify", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, vips: [198.18.0.9]}\n    - {name: b, interface: eth0, vrid: 2, vips: [198.18.0.8]}\n  sync_groups:\n    - {name: g, instances: [a, b], notify: \" \"}\n", "vrrp.sync_groups.0.notify: empty notify command"},
		{"sync group unknown", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, vips: [198.18.0.9]}\n  sync_groups:\n    - {name: g, instances: [a, zz]}\n", "unknown instance \"zz\""},
		{"unknown key", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, vips: [198.18.0.9], virtual_router_id: 3}\n", "virtual_router_id"},
		{"use_vmac ipv6", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, version: 3, use_vmac: true, vips: [\"2001:db8::1\"]}\n", "use_vmac is IPv4 only"},
		{"priority range", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, priority: 300, vips: [198.18.0.9]}\n", "priority 300: must be 1..255"},
		{"track proxy without frontends", "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 1\n      vips: [198.18.0.9]\n      track:\n        - {kind: proxy}\n", "x.yaml:8:18: vrrp.instances.0.track.0.kind: proxy track: the configuration has no frontends to track"},
		{"auth_type AH", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, auth_type: AH, vips: [198.18.0.9]}\n", "x.yaml:3:54: vrrp.instances.0.auth_type: auth_type AH is not supported"},
		{"auth_type PASS without a password", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, auth_type: PASS, vips: [198.18.0.9]}\n", "auth_type PASS needs auth_pass"},
		{"auth_type unknown", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, auth_type: md5, vips: [198.18.0.9]}\n", "auth_type \"md5\": want PASS"},
		{"accept_mode false", "vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, accept_mode: false, vips: [198.18.0.9]}\n", "x.yaml:3:56: vrrp.instances.0.accept_mode: accept_mode: false is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

// What is accepted of accept_mode and auth_type: keepalived's spellings.
func TestVRRPAcceptAndAuthType(t *testing.T) {
	for _, doc := range []string{
		"vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, accept_mode: true, vips: [198.18.0.9]}\n",
		"vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, auth_type: PASS, auth_pass: s3cret, vips: [198.18.0.9]}\n",
		"vrrp:\n  instances:\n    - {name: a, interface: eth0, vrid: 1, auth_type: pass, auth_pass: s3cret, vips: [198.18.0.9]}\n",
	} {
		if _, err := Parse("x.yaml", []byte(doc)); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
}
