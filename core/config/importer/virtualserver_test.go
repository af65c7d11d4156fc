package importer

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	coreproxy "github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/internal/testenv"
)

func TestVirtualServerTranslation(t *testing.T) {
	tests := []struct {
		name  string
		conf  string
		check func(t *testing.T, c *config.Cluster)
		warns []string
	}{
		{
			name: "http check, sorry server, wlc, NAT",
			conf: `virtual_server 198.18.0.10 443 {
  delay_loop 6
  lb_algo wlc
  lb_kind NAT
  protocol TCP
  virtualhost www.example.com
  sorry_server 198.18.1.9 8443
  real_server 198.18.1.1 443 {
    weight 3
    inhibit_on_failure
    SSL_GET {
      url {
        path /health
        status_code 200
      }
      connect_timeout 2
      retry 2
      delay_before_retry 1
    }
  }
  real_server 198.18.1.2 443 {
    weight 300
    SSL_GET {
      url {
        path /health
        status_code 200
      }
      connect_timeout 2
      retry 2
      delay_before_retry 1
    }
  }
}
`,
			check: func(t *testing.T, c *config.Cluster) {
				b := c.Backend("vs-198.18.0.10-443")
				if b == nil || c.Frontend("vs-198.18.0.10-443") == nil || c.Frontend("vs-198.18.0.10-443").Bind[0] != "198.18.0.10:443" {
					t.Fatalf("frontends %+v backends %+v", c.Frontends, c.Backends)
				}
				d := func(s string) config.Duration { v, _ := config.ParseDuration(s); return v }
				want := config.Check{Kind: "http", Inter: d("6s"), FastInter: d("1s"), Rise: 1, Fall: 3, Timeout: d("2s"), SSL: true, Verify: "none",
					HTTP: &config.HTTPCheck{Method: "GET", Path: "/health", ExpectStatus: []int{200}}}
				got := *b.Check
				got.ConnectTimeout, got.DownInter, got.HTTP.Headers = 0, 0, nil // defaulted
				want.HTTP.Host = "www.example.com"
				if !reflect.DeepEqual(got, want) {
					t.Errorf("check:\n got %+v %+v\nwant %+v %+v", got, got.HTTP, want, want.HTTP)
				}
				if b.Balance.Algorithm != "leastconn" || len(b.Servers) != 3 || !b.Servers[0].Backup || b.Servers[2].EffectiveWeight() != 256 {
					t.Errorf("backend %+v", b)
				}
				// NAT: the servers keep seeing the clients.
				if src := b.Source; !src.ClientIP() || !src.SetupRouting {
					t.Errorf("lb_kind NAT: source %+v, want usesrc clientip with setup_routing", src)
				}
			},
			warns: []string{"k1.conf:22: weight: 300: vipgate weights are 0..256"},
		},
		{
			name: "UDP is skipped",
			conf: "virtual_server 198.18.0.10 53 {\n protocol UDP\n real_server 198.18.1.1 53 {\n }\n}\n",
			check: func(t *testing.T, c *config.Cluster) {
				if len(c.Frontends) != 0 {
					t.Errorf("frontends %+v", c.Frontends)
				}
			},
			warns: []string{"k1.conf:2: protocol UDP: vipgate proxies TCP only"},
		},
		{
			name: "smtp and misc checks, approximate schedulers",
			conf: "virtual_server 198.18.0.10 25 {\n lb_algo sed\n lb_kind DR\n real_server 198.18.1.1 25 {\n SMTP_CHECK {\n connect_timeout 4\n }\n }\n}\n" +
				"virtual_server 198.18.0.10 3306 {\n lb_algo fo\n real_server 198.18.1.1 3306 {\n MISC_CHECK {\n misc_path \"/usr/local/bin/chk-sql 198.18.1.1\"\n misc_timeout 3\n }\n }\n}\n",
			check: func(t *testing.T, c *config.Cluster) {
				if ck := c.Backend("vs-198.18.0.10-25").Check; ck.Kind != "tcp" || ck.ExpectRegex != "^220" {
					t.Errorf("smtp check %+v", ck)
				}
				if ck := c.Backend("vs-198.18.0.10-3306").Check; ck.Kind != "exec" || !reflect.DeepEqual(ck.Command, []string{"/usr/local/bin/chk-sql", "198.18.1.1"}) {
					t.Errorf("misc check %+v", ck)
				}
				if c.Backend("vs-198.18.0.10-3306").Balance.Algorithm != "first" {
					t.Errorf("fo: %+v", c.Backend("vs-198.18.0.10-3306").Balance)
				}
			},
			warns: []string{"k1.conf:2: lb_algo sed: shortest expected delay becomes leastconn", "k1.conf:3: lb_kind DR", "k1.conf:14: misc_path: runs as a vipgate exec check", "k1.conf:11: lb_algo fo"},
		},
		{
			name: "DR on a VRRP VIP becomes mode dr, UDP kept",
			conf: drVRRP + `virtual_server 198.18.0.10 80 {
  delay_loop 3
  lb_algo wlc
  lb_kind DR
  persistence_timeout 50
  protocol TCP
  real_server 198.18.0.21 80 {
    TCP_CHECK {
      connect_timeout 2
    }
  }
  real_server 198.18.0.22 80 {
    TCP_CHECK {
      connect_timeout 2
    }
  }
}
virtual_server 198.18.0.10 53 {
  lb_algo mh
  lb_kind DR
  protocol UDP
  real_server 198.18.0.21 53 {
  }
  real_server 198.18.0.22 53 {
  }
}
`,
			check: func(t *testing.T, c *config.Cluster) {
				f, b := c.Frontend("vs-198.18.0.10-80"), c.Backend("vs-198.18.0.10-80")
				if f == nil || f.Mode != config.ModeDR || f.Protocol != config.ProtoTCP || b == nil {
					t.Fatalf("frontend %+v", f)
				}
				if b.Balance.Algorithm != "leastconn" || b.Stick == nil || b.Stick.On != config.StickOnSrc || b.Check == nil || b.Check.Inter.D() != 3*time.Second {
					t.Errorf("backend %+v", b)
				}
				if tb := c.StickTable(b.Stick.Table); tb == nil || tb.Expire.D() != 50*time.Second {
					t.Errorf("persistence_timeout: table %+v", tb)
				}
				u, ub := c.Frontend("vs-198.18.0.10-53"), c.Backend("vs-198.18.0.10-53")
				if u == nil || u.Mode != config.ModeDR || u.Protocol != config.ProtoUDP {
					t.Fatalf("udp frontend %+v", u)
				}
				if ub.Balance.Algorithm != "source" || ub.Balance.HashType != "consistent" {
					t.Errorf("mh: %+v", ub.Balance)
				}
				if got := c.DRAddrs(); len(got) != 1 || got[0].String() != "198.18.0.10" {
					t.Errorf("DR VIPs %v", got)
				}
			},
		},
		{
			name:  "DR on an address that is no VIP stays a proxy",
			conf:  drVRRP + "virtual_server 198.18.0.11 80 {\n lb_kind DR\n real_server 198.18.0.21 80 {\n }\n}\n",
			check: func(t *testing.T, c *config.Cluster) { wantMode(t, c, "vs-198.18.0.11-80", config.ModeTCP) },
			warns: []string{"k1.conf:8: lb_kind DR: not forwarded in mode dr (198.18.0.11 is no vrrp_instance's virtual_ipaddress"},
		},
		{
			name:  "DR to a server off the VIP's network stays a proxy",
			conf:  drVRRP + "virtual_server 198.18.0.10 80 {\n lb_kind DR\n real_server 198.18.9.21 80 {\n }\n}\n",
			check: func(t *testing.T, c *config.Cluster) { wantMode(t, c, "vs-198.18.0.10-80", config.ModeTCP) },
			warns: []string{"k1.conf:8: lb_kind DR: not forwarded in mode dr (real_server 198.18.9.21 is not on the VIP's network 198.18.0.0/24)"},
		},
		{
			name:  "DR with a port change stays a proxy, its UDP twin is skipped",
			conf:  drVRRP + "virtual_server 198.18.0.10 53 {\n lb_kind DR\n protocol UDP\n real_server 198.18.0.21 5353 {\n }\n}\n",
			check: func(t *testing.T, c *config.Cluster) { wantMode(t, c, "vs-198.18.0.10-53", "") },
			warns: []string{"k1.conf:8: lb_kind DR: not forwarded in mode dr (real_server 198.18.0.21:5353: a port other than the virtual_server's)", "k1.conf:9: protocol UDP: vipgate proxies TCP only (UDP is forwarded in direct routing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Import(Options{Keepalived: []*Input{{Name: "k1.conf", Data: []byte(tt.conf)}}, FS: mapFS{}})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r.Cluster)
			wantWarnings(t, r, tt.warns, false)
			for _, w := range r.Warnings {
				if strings.Contains(w.Directive, "lb_kind NAT") {
					t.Errorf("lb_kind NAT translates without loss, yet: %s", w.Why)
				}
			}
		})
	}
}

// TestVirtualServerNATNote: the imported document says, at the backend,
// what the servers' route must stay.
func TestVirtualServerNATNote(t *testing.T) {
	conf := "virtual_server 198.18.0.10 25 {\n lb_kind NAT\n real_server 198.18.1.1 25 {\n }\n}\n"
	r, err := Import(Options{Keepalived: []*Input{{Name: "k1.conf", Data: []byte(conf)}}, FS: mapFS{}})
	if err != nil {
		t.Fatal(err)
	}
	y := string(r.YAML)
	for _, want := range []string{"lb_kind NAT (k1.conf:2)", "default route must still point to the director", "usesrc: clientip", "setup_routing: true"} {
		if !strings.Contains(y, want) {
			t.Errorf("%q not in the imported document:\n%s", want, y)
		}
	}
	if _, err := config.Parse("cluster.yaml", r.YAML); err != nil {
		t.Errorf("the imported document does not load: %v", err)
	}
}

// TestVirtualServerServes: a keepalived.conf with a virtual_server,
// imported, serves clients through vipgate's proxy to its real servers
// (over loopback: the virtual address and the real servers are local).
func TestVirtualServerServes(t *testing.T) {
	var real []string
	for _, name := range []string{"rs1", "rs2"} {
		addr := testenv.Serve(t, func(c net.Conn) {
			defer c.Close()
			fmt.Fprintln(c, name)
		})
		real = append(real, addr)
	}
	port := testenv.FreePort(t)
	conf := fmt.Sprintf("virtual_server 127.0.0.1 %d {\n  delay_loop 1\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n", port)
	for _, a := range real {
		host, p, _ := net.SplitHostPort(a)
		conf += fmt.Sprintf("  real_server %s %s {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 3\n    }\n  }\n", host, p)
	}
	conf += "}\n"
	r, err := Import(Options{Keepalived: []*Input{{Name: "keepalived.conf", Data: []byte(conf)}}, FS: mapFS{}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("cluster.yaml", r.YAML)
	if err != nil {
		t.Fatalf("%v\n%s", err, r.YAML)
	}
	p := coreproxy.New(coreproxy.Options{Bus: events.New("n1", "dc1")})
	if err := p.Apply(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	got := map[string]int{}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testenv.Eventually(t, 10*time.Second, "the virtual server answers", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
	for i := 0; i < 10; i++ {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[strings.TrimSpace(line)]++
	}
	// Round robin over both (the probe above took a turn too, and a
	// probe closed before the server answered may be retried: ±1).
	if got["rs1"]+got["rs2"] != 10 || got["rs1"] < 4 || got["rs2"] < 4 {
		t.Errorf("round robin over the real servers: %v, want about 5 each", got)
	}
}

// drVRRP is a vrrp_instance holding 198.18.0.10/24 (lines 1-6).
const drVRRP = `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  virtual_ipaddress { 198.18.0.10/24 }
}
`

func wantMode(t *testing.T, c *config.Cluster, name, mode string) {
	t.Helper()
	f := c.Frontend(name)
	if mode == "" {
		if f != nil {
			t.Fatalf("frontend %s made: %+v", name, f)
		}
		return
	}
	if f == nil || f.Mode != mode {
		t.Fatalf("frontend %s: %+v, want mode %s", name, f, mode)
	}
}
