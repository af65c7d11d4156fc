package vrrp

import (
	"net/netip"
	"testing"
)

func TestMasterNode(t *testing.T) {
	src := map[string]string{"gw1": "198.18.1.1", "gw2": "198.18.1.2", "bad": "not-an-ip", "v6": "2001:db8::2"}
	for _, tc := range []struct {
		name   string
		st     State
		master string
		src    map[string]string
		want   string
	}{
		{"this node is master", Master, "", src, "me"},
		{"master named by unicast_src_ips", Backup, "198.18.1.2", src, "gw2"},
		{"IPv6 master", Backup, "2001:db8::2", src, "v6"},
		{"address no node sends from", Backup, "198.18.1.9", src, ""},
		{"no unicast_src_ips", Backup, "198.18.1.2", nil, ""},
		{"no master heard", Backup, "", src, ""},
		{"faulted", Fault, "", src, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.master != "" {
				a = netip.MustParseAddr(tc.master)
			}
			if got := masterNode("me", tc.st, a, tc.src); got != tc.want {
				t.Errorf("masterNode = %q, want %q", got, tc.want)
			}
		})
	}
}
