package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/cluster/vrrp"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/internal/testenv"
)

const dcHealthDoc = `
datacenters: [{name: dc1, role: primary}, {name: dc2}]
vrrp:
  instances:
    - {name: vi1, datacenter: dc1, interface: eth1, vrid: 51, vips: [198.18.1.100/24]}
    - {name: vi2, datacenter: dc2, interface: eth1, vrid: 52, vips: [198.18.2.100/24]}
%s`

// The static view and the raft reports judge a gateway alike: the proxy
// when frontends are configured, VRRP where it runs, and a datacenter that
// only moves a VIP is not unhealthy for lacking a proxy.
func TestGatewayHealth(t *testing.T) {
	noServer := "frontends: [{name: fe, bind: '127.0.0.1:0', default_backend: be}]\nbackends: [{name: be, servers: [{name: s, address: '127.0.0.1:1', disabled: true}]}]\n"
	tests := []struct {
		name       string
		frontends  string
		states     map[string]vrrp.State // running instances → state
		vrrp       bool
		wantAlone  bool
		wantReport bool // Healthy of the raft report (proxy side only)
	}{
		{"no frontends, master", "", map[string]vrrp.State{"vi1": vrrp.Master}, true, true, true},
		{"no frontends, backup", "", map[string]vrrp.State{"vi1": vrrp.Backup}, true, true, true},
		{"no frontends, fault", "", map[string]vrrp.State{"vi1": vrrp.Fault}, true, false, true},
		{"no frontends, not started", "", nil, true, false, true},
		{"other dc's instance does not count", "", map[string]vrrp.State{"vi1": vrrp.Fault, "vi2": vrrp.Master}, true, false, true},
		{"master but no server up", noServer, map[string]vrrp.State{"vi1": vrrp.Master}, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("c.yaml", []byte(fmt.Sprintf(dcHealthDoc, tt.frontends)))
			if err != nil {
				t.Fatal(err)
			}
			log := slog.New(slog.DiscardHandler)
			px := proxy.New(proxy.Options{Log: log, Bus: events.New("gw1", "dc1"), Datacenter: "dc1"})
			if err := px.Apply(c); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = px.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			e := &env{Node: &config.Node{Name: "gw1", Datacenter: "dc1", Role: config.RoleGateway}, Proxy: px,
				VRRPStatus: func() []vrrp.Status {
					var out []vrrp.Status
					for n, s := range tt.states {
						out = append(out, vrrp.Status{Name: n, State: s})
					}
					return out
				}}
			l := gatewayHealth(e, c)
			if l.VRRP != tt.vrrp || l.Healthy != tt.wantReport {
				t.Fatalf("report %+v, want vrrp=%v healthy=%v", l, tt.vrrp, tt.wantReport)
			}
			v := &staticView{e: e}
			if h, known := v.DatacenterHealthy("dc1"); !known || h != tt.wantAlone {
				t.Fatalf("static view: dc1 healthy=%v known=%v, want %v (report %+v)", h, known, tt.wantAlone, l)
			}
			if _, known := v.DatacenterHealthy("dc2"); known {
				t.Fatal("the static view cannot know another datacenter")
			}
		})
	}
}

// Regression: a standalone node of dc1 without frontends used to call its
// own datacenter unhealthy, and DNS failover then answered dc2's VIP.
func TestStaticDNSWithoutFrontendsAnswersOwnDatacenter(t *testing.T) {
	dir := t.TempDir()
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	doc := `
datacenters: [{name: dc1, role: primary}, {name: dc2}]
dns:
  zones:
    - name: example.com
      ns: [gw1.example.com]
      records: [{name: gw1, type: A, data: 198.18.1.53}]
      services: [{name: mail, policy: failover, vips: {dc1: [198.18.1.100], dc2: [198.18.2.100]}}]
`
	cf := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(cf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := config.ParseNode("node.yaml", []byte(fmt.Sprintf("name: gw1\ndatacenter: dc1\ndata_dir: %s\nadmin: {listen: %q}\ndns: {listen: [%q], sockets: 1}\nconfig: %q\n",
		filepath.Join(dir, "data"), admin, dnsAddr, cf)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runNode(ctx, n, slog.New(slog.NewTextHandler(io.Discard, nil)), new(slog.LevelVar)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	})
	var got string
	testenv.Eventually(t, 10*time.Second, "an answer for mail.example.com", func() bool {
		m := new(mdns.Msg)
		m.SetQuestion("mail.example.com.", mdns.TypeA)
		r, err := mdns.Exchange(m, dnsAddr)
		if err != nil || len(r.Answer) != 1 {
			return false
		}
		got = r.Answer[0].(*mdns.A).A.String()
		return true
	})
	if got != "198.18.1.100" {
		t.Fatalf("mail.example.com = %s, want dc1's VIP 198.18.1.100", got)
	}
}
