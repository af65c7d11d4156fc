package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/internal/testenv"
)

// dcDoc: every gateway runs a frontend on an ephemeral loopback port (so
// several processes share the host) in front of one HTTP backend, and
// answers mail.example.com with the VIP of the datacenter to use.
func dcDoc(backend string) string {
	return fmt.Sprintf(`datacenters:
  - {name: dc1, role: primary}
  - {name: dc2, role: standby}
failover: {mode: auto, hold_down: 2s}
frontends:
  - {name: web, mode: http, bind: ["127.0.0.1:0"], default_backend: app}
backends:
  - name: app
    mode: http
    servers: [{name: a1, address: %q}]
dns:
  zones:
    - name: example.com
      ns: [ns1.example.com]
      records: [{name: ns1, type: A, data: 198.18.1.53}]
      services: [{name: mail, policy: failover, vips: {dc1: [%s], dc2: [%s]}}]
`, backend, vipDC1, vipDC2)
}

const vipDC1, vipDC2 = "198.18.1.100", "198.18.2.100"

// resolve asks the node's own DNS server for mail.example.com ("" on error).
func (p *proc) resolve() string {
	if a, ok := p.ask("mail.example.com.", mdns.TypeA).(*mdns.A); ok {
		return a.A.String()
	}
	return ""
}

// ask returns the only answer record of the node's DNS server (nil on error).
func (p *proc) ask(name string, qtype uint16) mdns.RR {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	cl := &mdns.Client{Timeout: time.Second}
	r, _, err := cl.Exchange(m, p.dns)
	if err != nil || len(r.Answer) != 1 {
		return nil
	}
	return r.Answer[0]
}

// answersWithin: once cond holds on p (the state change is visible in its
// replicated state), p's DNS answers want within one second.
func answersWithin(t *testing.T, p *proc, what string, cond func(dcView) bool, want string) {
	t.Helper()
	testenv.Eventually(t, 40*time.Second, what+" on "+p.id, func() bool { return cond(p.dcState()) })
	testenv.Eventually(t, time.Second, fmt.Sprintf("%s answering %s within 1s of %s", p.id, want, what), func() bool { return p.resolve() == want })
}

type dcView struct {
	Active      string `json:"active"`
	Datacenters []struct {
		Name    string `json:"name"`
		Healthy *bool  `json:"healthy"`
		Reason  string `json:"reason"`
	} `json:"datacenters"`
	Decision struct {
		DC, Reason, Author string
	} `json:"decision"`
}

func (p *proc) dcState() dcView {
	var v dcView
	_ = get(p.admin, "/api/v1/dc", &v)
	return v
}

func (v dcView) healthy(name string) bool {
	for _, d := range v.Datacenters {
		if d.Name == name {
			return d.Healthy != nil && *d.Healthy
		}
	}
	return false
}

// A gateway whose frontend goes down makes its datacenter unhealthy; the
// leader (with the witness, a quorum) fails over after the hold-down; a
// manual failover back is refused while the target is unhealthy, and is
// audited when done.
func TestProcessesDatacenterFailover(t *testing.T) {
	backend := startHTTPBackends(t, 1)[0]
	c := newCluster(t)
	n1 := c.add("n1", "dc1", "gateway", dcDoc(backend))
	n2 := c.add("n2", "dc2", "gateway", "")
	c.add("w", "", "witness", "")
	c.waitAll("both datacenters healthy", func(p *proc) bool {
		v := p.dcState()
		return p.members() == 3 && v.healthy("dc1") && v.healthy("dc2") && v.Active == "dc1"
	})
	for _, p := range []*proc{n1, n2} {
		if got := p.resolve(); got != vipDC1 {
			t.Fatalf("%s answers mail with %q, want dc1's %s", p.id, got, vipDC1)
		}
	}
	// Take dc1's only gateway out of service. Every gateway's DNS moves
	// clients to dc2 as soon as it knows dc1 is down (before the hold-down),
	// and stays there once dc2 is active.
	post(t, n1, "/api/v1/frontends/web/state", map[string]any{"enabled": false}, 200)
	for _, p := range []*proc{n1, n2} {
		answersWithin(t, p, "dc1 unhealthy", func(v dcView) bool { return !v.healthy("dc1") }, vipDC2)
	}
	testenv.Eventually(t, 30*time.Second, "failover to dc2", func() bool { return n2.dcState().Active == "dc2" })
	var v dcView
	testenv.Eventually(t, 10*time.Second, "the decision replicated to n1", func() bool {
		v = n1.dcState()
		return v.Active == "dc2"
	})
	if v.Decision.Author != "auto" || !strings.Contains(v.Decision.Reason, "frontend web is disabled") {
		t.Errorf("decision %+v", v.Decision)
	}
	out, err := cli(t, n2, "dc", "status")
	if err != nil || !strings.Contains(out, "dc1  ") || !strings.Contains(out, "UNHEALTHY") {
		t.Errorf("dc status: %v\n%s", err, out)
	}
	// Manual failback is refused while dc1 is unhealthy...
	if out, err := cli(t, n2, "dc", "failover", "dc1"); err == nil || !strings.Contains(out, "unhealthy") {
		t.Errorf("failover to an unhealthy datacenter was not refused: %v\n%s", err, out)
	}
	post(t, n1, "/api/v1/frontends/web/state", map[string]any{"enabled": true}, 200)
	testenv.Eventually(t, 30*time.Second, "dc1 healthy again", func() bool { return n2.dcState().healthy("dc1") })
	// ...and no automatic failback (not configured): dc2 stays active.
	if a := n2.dcState().Active; a != "dc2" {
		t.Errorf("active %s without failback configured", a)
	}
	out, err = cli(t, n2, "dc", "failover", "dc1", "--reason", "maintenance over", "--author", "alice")
	if err != nil || !strings.Contains(out, "active datacenter: dc1") {
		t.Fatalf("manual failover: %v\n%s", err, out)
	}
	c.waitAll("dc1 active everywhere", func(p *proc) bool {
		v := p.dcState()
		return v.Active == "dc1" && v.Decision.Author == "alice" && strings.Contains(v.Decision.Reason, "maintenance over")
	})
	for _, p := range []*proc{n1, n2} {
		answersWithin(t, p, "dc1 active again", func(v dcView) bool { return v.Active == "dc1" }, vipDC1)
	}
}

func post(t *testing.T, p *proc, path string, body any, want int) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+p.admin+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d, want %d", path, resp.StatusCode, want)
	}
}

// Losing a whole datacenter and the witness leaves no quorum; the survivor
// is recovered with `vipgate cluster recover` (refused without the
// confirmation flag) and keeps every change it had.
func TestProcessesRecoverWithoutQuorum(t *testing.T) {
	c := newCluster(t)
	n1 := c.add("n1", "dc1", "gateway", backendsDoc(1, 1))
	n2 := c.add("n2", "dc2", "gateway", "")
	w := c.add("w", "", "witness", "")
	c.waitAll("joined", func(p *proc) bool { return p.members() == 3 && p.version() == 1 })
	if _, err := cli(t, n1, "apply", "-f", c.writeDoc("v2.yaml", backendsDoc(1, 2))); err != nil {
		t.Fatal(err)
	}
	c.waitAll("version 2", func(p *proc) bool { return p.version() == 2 })
	c.stop(n2, syscall.SIGKILL)
	c.stop(w, syscall.SIGKILL)
	testenv.Eventually(t, 20*time.Second, "n1 without a leader", func() bool {
		s, l := n1.raftState()
		return s != "Leader" && l == ""
	})
	c.stop(n1, syscall.SIGTERM)
	run := func(args ...string) (string, int) {
		cmd := exec.Command(binary, args...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	peers := "n1=" + n1.raft
	if out, code := run("cluster", "recover", "--node", n1.nodeFile, "--peers", peers); code != 2 || !strings.Contains(out, "REFUSED") {
		t.Fatalf("recover without confirmation: exit %d\n%s", code, out)
	}
	if out, code := run("cluster", "recover", "--node", n1.nodeFile, "--peers", peers, "--i-understand-this-may-lose-data"); code != 0 {
		t.Fatalf("recover: exit %d\n%s", code, out)
	}
	delete(c.procs, "n2")
	delete(c.procs, "w")
	c.start(n1)
	testenv.Eventually(t, 30*time.Second, "n1 leads alone", func() bool { s, _ := n1.raftState(); return s == "Leader" })
	if v := n1.version(); v != 2 {
		t.Errorf("version %d after recovery, want 2", v)
	}
	if out, err := cli(t, n1, "apply", "-f", c.writeDoc("v3.yaml", backendsDoc(1, 3))); err != nil || !strings.Contains(out, "committed version 3") {
		t.Fatalf("apply after recovery: %v\n%s", err, out)
	}
}

// serial asks the node's own DNS server for example.com's SOA serial (0 on error).
func (p *proc) serial() uint32 {
	if soa, ok := p.ask("example.com.", mdns.TypeSOA).(*mdns.SOA); ok {
		return soa.Serial
	}
	return 0
}

// Every gateway serves the same automatic SOA serial (decided in the raft
// state, not by each node's clock), a restarted one too, and a change to
// the zone moves it on all of them together.
func TestProcessesSameSerialEverywhere(t *testing.T) {
	c := newCluster(t)
	n1 := c.add("n1", "dc1", "gateway", dcDoc("127.0.0.1:1"))
	n2 := c.add("n2", "dc2", "gateway", "")
	c.add("w", "", "witness", "")
	c.waitAll("joined", func(p *proc) bool { return p.members() == 3 && p.version() == 1 })
	same := func(what string) uint32 {
		t.Helper()
		var s uint32
		testenv.Eventually(t, 20*time.Second, what, func() bool {
			s = n1.serial()
			return s != 0 && n2.serial() == s
		})
		return s
	}
	s1 := same("both gateways serve one serial")
	c.stop(n2, syscall.SIGTERM)
	c.start(n2)
	c.waitAll("n2 back", func(p *proc) bool { return p.members() == 3 && p.version() == 1 })
	if s := same("the restarted gateway serves the same serial"); s != s1 {
		t.Fatalf("serial moved from %d to %d across a restart without a change", s1, s)
	}
	if _, err := cli(t, n2, "apply", "-f", c.writeDoc("v2.yaml", strings.Replace(dcDoc("127.0.0.1:1"), "198.18.1.53", "198.18.1.54", 1))); err != nil {
		t.Fatal(err)
	}
	c.waitAll("version 2", func(p *proc) bool { return p.version() == 2 })
	if s := same("both gateways serve the new serial"); s == s1 {
		t.Fatalf("serial %d did not move with the zone", s)
	}
}
