package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testnet"
)

// forwardInto listens on the host's loopback and relays every connection
// to addr dialled inside h's namespace: Chromium runs in the test's own
// namespace and reaches a node's admin address through it.
func forwardInto(t *testing.T, h *testnet.Host, addr string) string {
	t.Helper()
	return testenv.Serve(t, func(c net.Conn) {
		u, err := h.Dial("tcp", "", addr, 5*time.Second)
		if err != nil {
			return
		}
		defer u.Close()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		_, _ = io.Copy(c, u)
	})
}

// authReq is a request to a node's admin API with the write token.
func authReq(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+writeTok)
	return req
}

// TestClusterViewInNetnsLab is TestClusterViewInBrowser on a lab of
// network namespaces running the built binary: raft gateways gw1 (dc1)
// and gw2 (dc2) and a witness on one segment, a VRRP instance both
// gateways run (gw1 preferred) and one of dc2's own (a datacenter is
// healthy only with a VRRP master in it), DNS on each gateway. Chromium loads gw2's
// stats page, the cluster is failed over to dc2, and the first refresh
// after the commit must show dc2 active, mail's new answer (which gw2's
// DNS server gives too) and gw1 named as the VIP's master.
func TestClusterViewInNetnsLab(t *testing.T) {
	testenv.Short(t)
	n := testnet.New(t)
	hosts := map[string]*testnet.Host{
		"gw1": n.AddHost("gw1", "198.18.97.1/24"),
		"gw2": n.AddHost("gw2", "198.18.97.2/24"),
		"w":   n.AddHost("w", "198.18.97.3/24"),
	}
	dir := t.TempDir()
	bin := buildVipgate(t, dir)
	ca, err := rafttest.NewCA(dir, "raft")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) string { return writeFile(t, dir, name, s) }
	cluster := write("cluster.yaml", `
datacenters:
  - {name: dc1, role: primary, networks: [198.18.10.0/24]}
  - {name: dc2, networks: [198.18.20.0/24]}
failover: {mode: manual}
vrrp:
  instances:
    - {name: vi1, nodes: [gw1, gw2], interface: eth0, vrid: 61, priority: 100, priorities: {gw1: 150}, vips: [198.18.97.100/24]}
    - {name: dc2, datacenter: dc2, interface: eth0, vrid: 62, vips: [198.18.97.200/24]}
frontends: [{name: web, mode: http, bind: "0.0.0.0:8080", default_backend: app}]
backends:
  - name: app
    mode: http
    check: {kind: http, inter: 200ms, http: {path: /health}}
    servers: [{name: demo, address: "127.0.0.1:18081"}]
dns:
  zones:
    - name: example.com
      ns: [ns1.example.com]
      records: [{name: ns1, type: A, data: 198.18.1.53}]
      services:
        - {name: mail, policy: failover, vips: {dc1: [198.18.1.100], dc2: [198.18.2.100]}}
`)
	for i, name := range []string{"gw1", "gw2", "w"} {
		tf, err := ca.Issue(name)
		if err != nil {
			t.Fatal(err)
		}
		ip := fmt.Sprintf("198.18.97.%d", i+1)
		how := "bootstrap: true"
		if i > 0 {
			how = `join: ["198.18.97.1:9901"]`
		}
		kind := fmt.Sprintf("datacenter: dc%d\ndns: {listen: [%q]}", i+1, ip+":5353")
		if name == "w" {
			kind = "role: witness"
		}
		node := write(name+".yaml", fmt.Sprintf(`name: %s
%s
data_dir: %s
config: %s
admin: {listen: "%s:9900", tokens: [%s]}
raft:
  listen: "%s:9901"
  %s
  tls: {ca: %q, cert: %q, key: %q}
`, name, kind, filepath.Join(dir, name+"-data"), cluster, ip, writeTok, ip, how, tf.CA, tf.Cert, tf.Key))
		args := []string{"run", "--node", node}
		if name != "w" {
			args = append(args, "--demo-backends", "127.0.0.1:18081")
		}
		runInNS(t, hosts[name], bin, args...)
	}
	gw2 := hosts["gw2"]
	admin := forwardInto(t, gw2, "198.18.97.2:9900")

	ctx := newBrowser(t)
	loginSteps(ctx, t, "http://"+admin+"/stats", writeTok, `#banner [data-active]`)
	waitText := func(css, want string) { t.Helper(); waitFor(ctx, t, 60*time.Second, css, want) }
	waitText(`#banner [data-active]`, "dc1")
	waitText(`tr[data-dns="mail.example.com."] td[data-answer]`, "198.18.1.100")
	waitText(`[data-card="Raft"]`, "gw1")
	waitText(`[data-card="Raft"]`, "witness")
	waitText(`[data-dc="dc2"] .pill.good`, "healthy")
	// gw1's adverts come from 198.18.97.1, its raft address: named.
	waitText(`tr[data-vrrp="vi1"] td[data-master]`, "gw1")
	waitText(`tr[data-vrrp="dc2"] td[data-master]`, "gw2 (this node)")
	checkNoRawValues(ctx, t)

	hc := nsClient(gw2)
	testenv.Eventually(t, 30*time.Second, "the failover committed", func() bool {
		resp, err := hc.Do(authReq(t, "POST", "http://198.18.97.2:9900/api/v1/dc/failover", `{"datacenter": "dc2", "reason": "netns browser test"}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 && resp.StatusCode != 503 {
			t.Fatalf("failover: HTTP %d %s", resp.StatusCode, b)
		}
		return resp.StatusCode == 200
	})
	testenv.Eventually(t, 20*time.Second, "dc2 pushed to gw2's subsystems", func() bool {
		resp, err := hc.Do(authReq(t, "GET", "http://198.18.97.2:9900/api/v1/dc", ""))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var d struct {
			Active string `json:"active"`
			Pushed struct {
				Active string `json:"active"`
			} `json:"pushed"`
		}
		return json.NewDecoder(resp.Body).Decode(&d) == nil && d.Active == "dc2" && d.Pushed.Active == "dc2"
	})
	checkFirstRefresh(ctx, t)
	if got := text(ctx, t, `tr[data-vrrp="vi1"] td[data-master]`); !strings.Contains(got, "gw1") {
		t.Errorf("after one refresh the VIP's master shows %q, want gw1", got)
	}
	checkNoRawValues(ctx, t)

	// What the page says is what gw2's DNS server answers.
	c, err := gw2.Dial("udp", "", "198.18.97.2:5353", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(mdns.Msg)
	m.SetQuestion("mail.example.com.", mdns.TypeA)
	dc := &mdns.Conn{Conn: c}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if err := dc.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	r, err := dc.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "198.18.2.100") {
		t.Errorf("gw2's DNS answers %v, want 198.18.2.100", r.Answer)
	}
}
