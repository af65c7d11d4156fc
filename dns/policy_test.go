package dns

import (
	"slices"
	"testing"

	mdns "github.com/miekg/dns"
)

func testSnapshot(t *testing.T) *snapshot {
	t.Helper()
	snap, err := compile(loadTestConfig(t), newStats())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func svcOf(t *testing.T, snap *snapshot, name string) *service {
	t.Helper()
	n := snap.zoneFor(name).nodes[name]
	if n == nil || n.svc == nil {
		t.Fatalf("no service %s", name)
	}
	return n.svc
}

type stateSpec struct {
	active   string
	down     []string // datacenters known unhealthy
	up       []string // datacenters known healthy
	backDown []string // datacenters where backend exchange has no usable server
}

func (s stateSpec) build() *StaticState {
	st := &StaticState{}
	st.SetActive(s.active)
	for _, d := range s.down {
		st.SetDatacenter(d, false)
	}
	for _, d := range s.up {
		st.SetDatacenter(d, true)
	}
	for _, d := range s.backDown {
		st.SetBackend("exchange", d, false)
	}
	return st
}

// TestPolicies is the (client, state) → answer table for the single-answer
// policies.
func TestPolicies(t *testing.T) {
	snap := testSnapshot(t)
	none := clientInfo{}
	host := func(a string) clientInfo { ad := mustAddr(a); return clientInfo{addr: ad, bits: ad.BitLen()} }
	ecs := func(a string, bits int) clientInfo { return clientInfo{addr: mustAddr(a), bits: bits} }
	tests := []struct {
		name   string
		svc    string
		client clientInfo
		state  stateSpec
		qtype  uint16
		want   []string
		scope  int
	}{
		{"failover: active dc1", "mail.example.com.", none, stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.1.100"}, 0},
		{"failover: active dc2", "mail.example.com.", none, stateSpec{active: "dc2"}, mdns.TypeA, []string{"198.18.2.100"}, 0},
		{"failover: no active known → first dc", "mail.example.com.", none, stateSpec{}, mdns.TypeA, []string{"198.18.1.100"}, 0},
		{"failover: active dc1 down → dc2", "mail.example.com.", none, stateSpec{active: "dc1", down: []string{"dc1"}}, mdns.TypeA, []string{"198.18.2.100"}, 0},
		{"failover: dc1 backend down → dc2", "mail.example.com.", none, stateSpec{active: "dc1", backDown: []string{"dc1"}}, mdns.TypeA, []string{"198.18.2.100"}, 0},
		{"failover: active dc2 down → dc1", "mail.example.com.", none, stateSpec{active: "dc2", down: []string{"dc2"}}, mdns.TypeA, []string{"198.18.1.100"}, 0},
		{"failover: all down → active anyway", "mail.example.com.", none, stateSpec{active: "dc2", down: []string{"dc1", "dc2"}}, mdns.TypeA, []string{"198.18.2.100"}, 0},
		{"failover: AAAA of dc1", "mail.example.com.", none, stateSpec{active: "dc1"}, mdns.TypeAAAA, []string{"2001:db8:1::100"}, 0},
		{"failover: AAAA when dc2 has none", "mail.example.com.", none, stateSpec{active: "dc2"}, mdns.TypeAAAA, nil, 0},
		{"failover: client ignored", "mail.example.com.", host("198.18.20.5"), stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.1.100"}, 0},
		{"topology: dc2 client gets dc2", "vdi.example.com.", host("198.18.20.5"), stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.2.101"}, 24},
		{"topology: dc1 client gets dc1", "vdi.example.com.", host("198.18.10.7"), stateSpec{active: "dc2"}, mdns.TypeA, []string{"198.18.1.101"}, 24},
		{"topology: dc1 v6 client", "vdi.example.com.", host("2001:db8:10::1"), stateSpec{active: "dc2"}, mdns.TypeA, []string{"198.18.1.101"}, 48},
		{"topology: outsider gets active", "vdi.example.com.", host("192.0.2.1"), stateSpec{active: "dc2"}, mdns.TypeA, []string{"198.18.2.101"}, -1},
		{"topology: dc2 client, dc2 down → active", "vdi.example.com.", host("198.18.20.5"), stateSpec{active: "dc1", down: []string{"dc2"}}, mdns.TypeA, []string{"198.18.1.101"}, 24},
		{"topology: dc2 client, dc2 down, active dc2 → dc1", "vdi.example.com.", host("198.18.20.5"), stateSpec{active: "dc2", down: []string{"dc2"}}, mdns.TypeA, []string{"198.18.1.101"}, 24},
		{"topology: ECS /24 inside dc2", "vdi.example.com.", ecs("198.18.20.0", 24), stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.2.101"}, 24},
		// A source prefix that holds a datacenter network it cannot tell
		// apart gets the failover answer with that network's length as
		// scope (RFC 7871 §7.2.1: "not specific enough"), never a scope
		// that would cache the answer for the network's clients too.
		{"topology: ECS /16 too wide for dc2's /24", "vdi.example.com.", ecs("198.18.0.0", 16), stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.1.101"}, 24},
		{"topology: ECS /21 holding dc2's /24", "vdi.example.com.", ecs("198.18.16.0", 21), stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.1.101"}, 24},
		{"topology: ECS v6 /32 holding dc1's /48", "vdi.example.com.", ecs("2001:db8::", 32), stateSpec{active: "dc2"}, mdns.TypeA, []string{"198.18.2.101"}, 48},
		{"topology: ECS /24 holding a dc2 host", "vdi.example.com.", ecs("127.0.0.0", 24), stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.1.101"}, 32},
		{"topology: ECS /22 beside every network", "vdi.example.com.", ecs("198.18.24.0", 22), stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.1.101"}, -1},
		{"topology: no client → active", "vdi.example.com.", none, stateSpec{active: "dc2"}, mdns.TypeA, []string{"198.18.2.101"}, 0},
		{"weighted: dc2 down → only dc1", "web.example.com.", none, stateSpec{active: "dc1", down: []string{"dc2"}}, mdns.TypeA, []string{"198.18.1.102", "198.18.1.103"}, 0},
		{"weighted: all healthy → every VIP", "web.example.com.", none, stateSpec{active: "dc1"}, mdns.TypeA, []string{"198.18.1.102", "198.18.1.103", "198.18.2.102"}, 0},
		{"all-healthy: dc1 down → dc2", "all.example.com.", none, stateSpec{active: "dc1", down: []string{"dc1"}}, mdns.TypeA, []string{"198.18.2.104"}, 0},
		{"all-healthy: both", "all.example.com.", none, stateSpec{active: "dc1", up: []string{"dc1", "dc2"}}, mdns.TypeA, []string{"198.18.1.104", "198.18.2.104"}, 0},
		{"all-healthy: none healthy → active", "all.example.com.", none, stateSpec{active: "dc2", down: []string{"dc1", "dc2"}}, mdns.TypeA, []string{"198.18.2.104"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := svcOf(t, snap, tt.svc)
			idx, scope := svc.choose(tt.state.build(), tt.client, nil)
			got := addrsOf(svc.appendRRs(nil, idx, tt.qtype))
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("answer %v, want %v", got, want)
			}
			if scope != tt.scope {
				t.Errorf("scope %d, want %d", scope, tt.scope)
			}
		})
	}
}

// TestTopologyScopeNested: with a datacenter network inside another
// (dc1 198.18.0.0/16 holding dc2's 198.18.20.0/24), an answer chosen by
// the wide network is scoped so that it does not cover the narrow one.
func TestTopologyScopeNested(t *testing.T) {
	c := loadTestConfig(t)
	c.Datacenters[0].Networks = append(c.Datacenters[0].Networks, "198.18.0.0/16")
	snap, err := compile(c, newStats())
	if err != nil {
		t.Fatal(err)
	}
	svc := svcOf(t, snap, "vdi.example.com.")
	ecs := func(a string, bits int) clientInfo { return clientInfo{addr: mustAddr(a), bits: bits} }
	tests := []struct {
		name   string
		client clientInfo
		want   string
		scope  int
	}{
		// 198.18.24.0/21 (24-31) holds neither 198.18.10.0/24 nor .20.0/24.
		{"wide network, narrow ones excluded", ecs("198.18.30.0", 24), "198.18.1.101", 21},
		{"wide network, narrow ones not told apart", ecs("198.18.0.0", 16), "198.18.1.101", 24},
		{"narrow network inside the wide one", ecs("198.18.20.0", 24), "198.18.2.101", 24},
		{"host in the wide network", clientInfo{addr: mustAddr("198.18.200.1"), bits: 32}, "198.18.1.101", 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, scope := svc.choose(stateSpec{active: "dc2"}.build(), tt.client, nil)
			got := addrsOf(svc.appendRRs(nil, idx, mdns.TypeA))
			if len(got) != 1 || got[0] != tt.want || scope != tt.scope {
				t.Errorf("answer %v scope %d, want [%s] scope %d", got, scope, tt.want, tt.scope)
			}
		})
	}
}

// TestWeightedOrder checks the draw follows datacenter weights (3:1): the
// first answer is dc1's about three times as often as dc2's.
func TestWeightedOrder(t *testing.T) {
	snap := testSnapshot(t)
	svc := svcOf(t, snap, "web.example.com.")
	st := stateSpec{active: "dc1"}.build()
	first := map[string]int{}
	const n = 4000
	for i := 0; i < n; i++ {
		idx, _ := svc.choose(st, clientInfo{}, nil)
		first[svc.dcs[idx[0]].name]++
	}
	// 3:1 → dc1 first with p=0.75; ±6 sigma is ±0.041.
	if p := float64(first["dc1"]) / n; p < 0.70 || p > 0.80 {
		t.Errorf("dc1 first in %.2f of answers, want ~0.75 (%v)", p, first)
	}
}

// TestAllHealthyShuffles checks every order of the VIPs shows up.
func TestAllHealthyShuffles(t *testing.T) {
	snap := testSnapshot(t)
	svc := svcOf(t, snap, "all.example.com.")
	st := stateSpec{active: "dc1"}.build()
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		idx, _ := svc.choose(st, clientInfo{}, nil)
		seen[addrsOf(svc.appendRRs(nil, idx, mdns.TypeA))[0]] = true
	}
	if len(seen) != 2 {
		t.Errorf("first answer was always %v; want both VIPs to lead sometimes", seen)
	}
}
