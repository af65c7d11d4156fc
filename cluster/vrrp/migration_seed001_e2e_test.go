package vrrp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// TestMigrationE2ESeed001 is seed001's rolling migration (the compose
// pair: unicast VRRP with PASS authentication, a vrrp_script `pidof
// nginx`, HAProxy on :6301 in front of the web server that answers on
// the VIP, and a virtual_server in LVS direct-routing mode on the
// master's own address), as TestMigrationE2ESeed004.
//
// The nodes are what seed001's files describe: each runs nginx (the web
// server on VIP:80 that the track script and HAProxy's server
// `ngxin_master VIP:80` point at; the namespace may bind the VIP before
// holding it, ip_nonlocal_bind), HAProxy with seed001's haproxy.cfg and
// keepalived with its node's file. Adapted: the addresses (172.20.128.x
// → 198.18.0.x), `nbproc 4` left out (HAProxy 2.5+ refuses it) and
// `pidof nginx` written `pgrep nginx`: Debian's keepalived runs pidof's
// file, /sbin/killall5, which exits 1, so as written the check never
// passes and both nodes sit in FAULT without the VIP (the import warns).
// keepalived runs VRRP only: this kernel has no IPVS, so the original
// virtual_server never ran here; after the migration vipgate serves it
// (a proxy until direct routing lands), which the test checks at the end.
//
// The clients: one polling http://VIP:6301 with a new connection each
// time, and one keeping a single HTTP keep-alive connection through the
// VIP (its session): kept while the node holding the VIP keeps running,
// as it did with HAProxy.
func TestMigrationE2ESeed001(t *testing.T) {
	bin := migrationE2E(t)
	seed := filepath.Join(testenv.MigrationInputs(t), "seed001-compose-unicast")
	dir := t.TempDir()
	b := newBed(t, "node1", "node2")
	for i, name := range []string{"rs1", "rs2"} { // the virtual_server's real servers
		ip := fmt.Sprintf("198.18.0.%d", 31+i)
		startWebNginx(t, b.n.AddHost(name, ip+"/24"), name, ip+":80")
	}
	r := strings.NewReplacer("172.20.128.2", b.addrs["node1"], "172.20.128.3", b.addrs["node2"], "172.20.128.4", vip,
		"172.16.16.177", "198.18.0.31", "172.16.16.178", "198.18.0.32", "    nbproc 4\n", "", `"pidof nginx"`, `"pgrep nginx"`)
	adapt := func(name, as string) string {
		data, err := os.ReadFile(filepath.Join(seed, name))
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, as)
		if err := os.WriteFile(f, []byte(r.Replace(string(data))), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	hcfg := adapt("haproxy.cfg", "haproxy.cfg")
	kconf := map[string]string{"node1": adapt("keepalived-master.conf", "node1-keepalived.conf"), "node2": adapt("keepalived-slave.conf", "node2-keepalived.conf")}
	haproxy, keepalived := map[string]*proc{}, map[string]*proc{}
	for _, n := range []string{"node1", "node2"} {
		h := b.hosts[n]
		h.MustRun(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind")
		startWebNginx(t, h, n, vip+":80")
		haproxy[n] = startHAProxy(t, h, hcfg, "127.0.0.1:6301")
		data, _ := os.ReadFile(kconf[n])
		keepalived[n] = startKeepalived(t, h, string(data))
	}
	waitHolder(t, b.w, "node1", 60*time.Second) // priority 200 over 100
	// HAProxy's check of VIP:80 (inter 2s, rise 2) needs the VIP first:
	// the original serves once it is up.
	client := nsDo(t, b.client.NS)
	testenv.Eventually(t, 30*time.Second, "the original pair serving through the VIP", func() bool {
		var err error
		client(func() { _, _, err = getHTTP(vip+":6301", "") })
		return err == nil
	})

	doc := importDoc(t, bin, dir, "--haproxy", hcfg, "--keepalived", "node1="+kconf["node1"], "--keepalived", "node2="+kconf["node2"])
	mig := startMigrationWatch(t, "seed001", b, keepAliveClients(vip+":6301"))
	migrate(t, b, mig, bin, dir, doc, "127.0.0.1:6301", haproxy, keepalived, true)

	// The virtual_server on node1's address, IPVS in the original, now
	// vipgate's: both real servers checked and up, and the client kept on
	// one of them (persistence_timeout 50: stick on its source address).
	vs := "vs-" + b.addrs["node1"] + "-80"
	for _, s := range []string{"198.18.0.31-80", "198.18.0.32-80"} {
		testenv.Eventually(t, 30*time.Second, vs+": "+s+" up", func() bool { return serverStatus(b.hosts["node1"], bin, vs, s) == "UP" })
	}
	first := ""
	for i := 0; i < 10; i++ {
		var s string
		var err error
		client(func() { s, _, err = getHTTP(b.addrs["node1"]+":80", "") })
		if first == "" {
			first = s
		}
		if err != nil || s != first || !strings.HasPrefix(s, "rs") {
			t.Errorf("virtual_server %s, request %d: answer %q, %v; want one real server all along (persistence)", vs, i, s, err)
		}
	}
}

// keepAliveClients are seed001's: plain HTTP polls (a new connection
// each), and a client sending every request on one keep-alive connection
// (kept: answered on the connection it already had; it reconnects when
// the connection breaks, which is starting over).
func keepAliveClients(addr string) migClients {
	var c net.Conn
	var rd *bufio.Reader
	return migClients{
		what: "HTTP keep-alive connection",
		poll: func() error { _, _, err := getHTTP(addr, ""); return err },
		stick: func(context.Context) (string, bool, error) {
			kept := c != nil
			if c == nil {
				var err error
				if c, err = net.DialTimeout("tcp4", addr, time.Second); err != nil {
					c = nil
					return "", false, err
				}
				rd = bufio.NewReader(c)
			}
			server, err := keepAliveGet(c, rd)
			if err != nil {
				c.Close()
				c = nil
				return "", false, err
			}
			return server, kept, nil
		},
	}
}

// keepAliveGet is one GET /who on the open connection c.
func keepAliveGet(c net.Conn, rd *bufio.Reader) (string, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET /who HTTP/1.1\r\nHost: seed001\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return "", fmt.Errorf("answer %d %q: %v", resp.StatusCode, body, err)
	}
	if resp.Close {
		return "", fmt.Errorf("the server closes the keep-alive connection")
	}
	return strings.TrimSpace(string(body)), nil
}
