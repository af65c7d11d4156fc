package main

import (
	"net/netip"
	"testing"

	"github.com/vipgate/vipgate/cluster/raft"
)

func TestMemberAt(t *testing.T) {
	ms := []raft.MemberInfo{
		{ID: "gw1", Address: "198.18.1.1:9901", Admin: "127.0.0.1:9900"},
		{ID: "gw2", Address: "raft2.example:9901", Admin: "198.18.1.2:9900"},
		{ID: "gw3", Address: "[2001:db8::3]:9901"},
		{ID: "any", Address: "0.0.0.0:9901", Admin: "garbage"},
	}
	for _, tc := range []struct{ addr, want string }{
		{"198.18.1.1", "gw1"},        // raft address
		{"198.18.1.2", "gw2"},        // admin address (raft one is a name)
		{"2001:db8::3", "gw3"},       // IPv6
		{"198.18.1.9", ""},           // nobody's
		{"0.0.0.0", ""},              // a wildcard listener is nobody
		{"::ffff:198.18.1.1", "gw1"}, // mapped form of the same address
	} {
		if got := memberAt(ms, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("memberAt(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
