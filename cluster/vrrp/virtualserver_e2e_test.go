package vrrp_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/vrrp"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/stats"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testexch"
	"github.com/vipgate/vipgate/internal/testnet"
)

// vsGateway is the gateway's VRRP instance holding the VIP, one node.
const vsGateway = `global_defs {
    router_id gw1
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 61
    priority 150
    advert_int 1
    virtual_ipaddress {
        198.18.0.200/24
    }
}
`

// vsKeepalived is an LVS-NAT deployment as keepalived runs it: a VRRP
// instance holding the VIP on the client side and two virtual_servers on
// it, one with HTTP_GET checks, one with TCP_CHECK, each in front of the
// same two real servers on the server side, whose default route is the
// director.
const vsKeepalived = vsGateway + `virtual_server 198.18.0.200 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.19.0.31 80 {
        weight 1
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 198.19.0.32 80 {
        weight 1
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
virtual_server 198.18.0.200 8080 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 198.19.0.31 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 198.19.0.32 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

// TestMigrationE2EVirtualServer: `vipgate import` of a keepalived.conf
// with virtual_servers yields frontends and backends that serve the real
// servers, in network namespaces laid out as LVS-NAT needs: a client
// segment (client, gateway with the VIP) and a server segment (gateway,
// two nginx real servers routing through it). The gateway runs vipgate
// from the imported document (it takes the VIP by VRRP). Traffic through
// the VIP reaches both real servers on both virtual servers, which see
// the client's address as under NAT (the import makes lb_kind NAT a
// transparent-source backend); a real server stopped is taken out by the
// imported checks (HTTP_GET, TCP_CHECK), and put back once it answers
// again. keepalived itself checks the file's syntax (this kernel has no
// IPVS to run it for real).
func TestMigrationE2EVirtualServer(t *testing.T) {
	bin := migrationE2E(t)
	dir := t.TempDir()
	b := newBed(t, "gw1")
	servers := testnet.New(t)
	servers.Attach(b.hosts["gw1"], "eth1", "198.19.0.1/24")
	rs := map[string]*testnet.Host{}
	nginx := map[string]*proc{}
	listen := func(name string) []string {
		ip := map[string]string{"rs1": "198.19.0.31", "rs2": "198.19.0.32"}[name]
		return []string{ip + ":80", ip + ":8080"}
	}
	for _, name := range []string{"rs1", "rs2"} {
		rs[name] = servers.AddHost(name, strings.TrimSuffix(listen(name)[0], ":80")+"/24")
		rs[name].MustRun(t, "ip", "route", "add", "default", "via", "198.19.0.1")
		nginx[name] = startWebNginx(t, rs[name], name, listen(name)...)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(vsKeepalived), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("keepalived", "--config-test", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("keepalived --config-test: %v\n%s", err, out)
	}
	doc := importDoc(t, bin, dir, "--keepalived", conf)
	startVipgateNode(t, b.hosts["gw1"], bin, dir, "gw1", doc, "127.0.0.1:9900")
	waitHolder(t, b.w, "gw1", 30*time.Second)

	client := nsDo(t, b.client.NS)
	get := func(addr string) (server string, err error) {
		client(func() { server, _, err = getHTTP(addr, "") })
		return server, err
	}
	const clientAddr = "198.18.0.100"
	for _, port := range []string{"80", "8080"} {
		addr := vip + ":" + port
		// Both servers up: rr/wrr with weight 1 alternates between them,
		// and each sees the client's own address.
		testenv.Eventually(t, 30*time.Second, "both real servers answer through "+addr, func() bool {
			seen := map[string]bool{}
			for i := 0; i < 6; i++ {
				s, err := get(addr)
				if err != nil {
					return false
				}
				seen[s] = true
			}
			return seen["rs1 "+clientAddr] && seen["rs2 "+clientAddr]
		})
	}

	nginx["rs2"].stop()
	for _, port := range []string{"80", "8080"} {
		be := "vs-198.18.0.200-" + port
		testenv.Eventually(t, 30*time.Second, be+"'s check takes rs2 down", func() bool {
			return serverStatus(b.hosts["gw1"], bin, be, "198.19.0.32-"+port) == "DOWN"
		})
	}
	for _, port := range []string{"80", "8080"} {
		for i := 0; i < 10; i++ {
			if s, err := get(vip + ":" + port); err != nil || s != "rs1 "+clientAddr {
				t.Errorf("port %s with rs2 down: answer %q, %v; want rs1", port, s, err)
			}
		}
	}

	nginx["rs2"] = startWebNginx(t, rs["rs2"], "rs2", listen("rs2")...)
	for _, port := range []string{"80", "8080"} {
		be := "vs-198.18.0.200-" + port
		testenv.Eventually(t, 30*time.Second, be+"'s check brings rs2 back", func() bool {
			return serverStatus(b.hosts["gw1"], bin, be, "198.19.0.32-"+port) == "UP"
		})
	}
}

// serverStatus is a server's status (UP, DOWN...) in `vipgate status` on
// h's node, "" while unknown.
func serverStatus(h *testnet.Host, bin, backend, server string) string {
	out, err := h.Command(bin, "status", "--json", "proxy").Output()
	if err != nil {
		return ""
	}
	var s stats.Snapshot
	if json.Unmarshal(out, &s) != nil {
		return ""
	}
	for _, b := range s.Backends {
		if b.Name != backend {
			continue
		}
		for _, sv := range b.Servers {
			if sv.Name == server {
				return sv.Status
			}
		}
	}
	return ""
}

// startWebNginx runs nginx in h answering its name and the client's
// address on every path (and 200 on /health) on each listen address.
// Listens on the VIP are not waited for: the namespace binds them before
// holding the VIP (ip_nonlocal_bind).
func startWebNginx(t *testing.T, h *testnet.Host, name string, listen ...string) *proc {
	t.Helper()
	d := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Join(d, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := testexch.NginxHTTPConf(d, name, listen...)
	f := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "nginx "+name, h.Command("nginx", "-c", f, "-e", filepath.Join(d, "error.log")))
	for _, l := range listen {
		if !strings.HasPrefix(l, vip+":") {
			waitListen(t, h, l)
		}
	}
	return p
}

// nsDo returns a function running f on one thread locked into namespace
// ns (sockets are created in the namespace of the thread that makes them).
func nsDo(t *testing.T, ns string) func(f func()) {
	t.Helper()
	ch := make(chan func())
	errc := make(chan error, 1)
	go func() {
		err := enterNS(ns)
		errc <- err
		if err != nil {
			return
		}
		for f := range ch {
			f()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { close(ch) })
	return func(f func()) {
		done := make(chan struct{})
		ch <- func() { defer close(done); f() }
		<-done
	}
}

// vsDRKeepalived is an LVS-DR deployment: the virtual_server on the VIP,
// the real servers on the director's segment holding the VIP on lo.
const vsDRKeepalived = vsGateway + `virtual_server 198.18.0.200 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.41 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 198.18.0.42 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

// TestMigrationE2EVirtualServerDR: an LVS-DR virtual_server imported and
// served, the real servers set up as LVS-DR wants them (the VIP on lo,
// arp_ignore/arp_announce) on the gateway's segment. The import makes it
// a `mode: dr` frontend (the servers then answer the client directly and
// see its address); both real servers serve through the VIP, and the
// imported TCP_CHECK takes a stopped one out.
func TestMigrationE2EVirtualServerDR(t *testing.T) {
	bin := migrationE2E(t)
	dir := t.TempDir()
	b := newBed(t, "gw1")
	nginx := map[string]*proc{}
	ips := map[string]string{"rs1": "198.18.0.41", "rs2": "198.18.0.42"}
	for _, name := range []string{"rs1", "rs2"} {
		h := b.n.AddHost(name, ips[name]+"/24")
		h.MustRun(t, "ip", "addr", "add", vip+"/32", "dev", "lo")
		h.MustRun(t, "sh", "-c", "for i in all eth0; do echo 1 > /proc/sys/net/ipv4/conf/$i/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/$i/arp_announce; done")
		nginx[name] = startWebNginx(t, h, name, ips[name]+":80", vip+":80")
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(vsDRKeepalived), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("keepalived", "--config-test", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("keepalived --config-test: %v\n%s", err, out)
	}
	docFile := importDoc(t, bin, dir, "--keepalived", conf)
	c, err := config.LoadFile(docFile)
	if err != nil {
		t.Fatal(err)
	}
	fe := c.Frontend("vs-198.18.0.200-80")
	if fe == nil {
		t.Fatalf("no frontend for the virtual_server: %+v", c.Frontends)
	}
	// The VIP is a VRRP VIP and the real servers are on its segment: the
	// import must make it direct routing, not fall back to the proxy.
	if fe.Mode != config.ModeDR {
		t.Fatalf("virtual_server imported as mode %s, want %s", fe.Mode, config.ModeDR)
	}
	// Under direct routing the servers see the client itself.
	seen := "198.18.0.100"
	startVipgateNode(t, b.hosts["gw1"], bin, dir, "gw1", docFile, "127.0.0.1:9900")
	// A director answers ARP for a dr VIP without adding it: VRRP's state
	// says who holds it.
	testenv.Eventually(t, 30*time.Second, "gw1 VRRP master", func() bool {
		st := vrrpStatus(b.hosts["gw1"], bin)
		return len(st) == 1 && st[0].State == vrrp.Master
	})

	client := nsDo(t, b.client.NS)
	get := func() (server string, err error) {
		client(func() { server, _, err = getHTTP(vip+":80", "") })
		return server, err
	}
	testenv.Eventually(t, 30*time.Second, "both real servers answer through the VIP", func() bool {
		got := map[string]bool{}
		for i := 0; i < 6; i++ {
			s, err := get()
			if err != nil {
				return false
			}
			got[s] = true
		}
		return got["rs1 "+seen] && got["rs2 "+seen]
	})
	nginx["rs2"].stop()
	testenv.Eventually(t, 30*time.Second, "the TCP_CHECK takes rs2 down", func() bool {
		return serverStatus(b.hosts["gw1"], bin, "vs-198.18.0.200-80", "198.18.0.42-80") == "DOWN"
	})
	for i := 0; i < 10; i++ {
		if s, err := get(); err != nil || s != "rs1 "+seen {
			t.Errorf("rs2 down: answer %q, %v; want rs1 %s", s, err, seen)
		}
	}
}
