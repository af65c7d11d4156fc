package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testnet"
)

// upgradeVIP is the VRRP address the clients use.
const upgradeVIP = "198.18.0.100"

// ugNode is one member of the upgraded cluster, in its own namespace.
type ugNode struct {
	name, nodeFile string
	host           *testnet.Host
	cmd            *exec.Cmd
	done           chan struct{}
	log            string
}

func (n *ugNode) start(t *testing.T, bin string) {
	t.Helper()
	lf, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(lf, "==== start %s\n", bin)
	n.cmd = n.host.Command(bin, "run", "--node", n.nodeFile)
	n.cmd.Stdout, n.cmd.Stderr = lf, lf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); lf.Close(); close(n.done) }()
}

// stop is systemctl stop: SIGTERM, then wait for the graceful exit.
func (n *ugNode) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(40 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
		t.Fatalf("%s did not stop within 40s of SIGTERM", n.name)
	}
	return time.Since(start)
}

// status is the node's status document (nil when it does not answer).
func (n *ugNode) status() map[string]json.RawMessage {
	out, err := n.host.Run("curl", "-s", "--max-time", "3", "http://127.0.0.1:9900/api/v1/status")
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(out), &m) != nil {
		return nil
	}
	return m
}

// view is what the upgrade waits on: the node's version, its raft state
// and applied index, and its VRRP state ("" on a witness).
type ugView struct {
	version, raftState, leader, vrrp string
	applied                          float64
}

func (n *ugNode) view() ugView {
	var v ugView
	st := n.status()
	if st == nil {
		return v
	}
	var node struct{ Version string }
	_ = json.Unmarshal(st["node"], &node)
	v.version = node.Version
	var r map[string]any
	_ = json.Unmarshal(st["raft"], &r)
	v.raftState, _ = r["state"].(string)
	v.leader, _ = r["leader"].(string)
	v.applied, _ = r["applied_index"].(float64)
	var vr []map[string]any
	if json.Unmarshal(st["vrrp"], &vr) == nil && len(vr) > 0 {
		v.vrrp, _ = vr[0]["state"].(string)
	}
	return v
}

// ugLoad is the clients: one HTTP request at a time on a new connection
// to the VIP, from their own namespace, until stopped.
type ugLoad struct {
	mu       sync.Mutex
	ok       int
	failures []string
	stop     chan struct{}
	done     chan struct{}
}

func startLoad(h *testnet.Host, clients int) *ugLoad {
	l := &ugLoad{stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				err := ugRequest(h, i)
				l.mu.Lock()
				if err == nil {
					l.ok++
				} else {
					l.failures = append(l.failures, fmt.Sprintf("request at %s, client %d: %v", start.Format("15:04:05.000"), i, err))
				}
				l.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

func ugRequest(h *testnet.Host, i int) error {
	c, err := h.Dial("tcp", "", upgradeVIP+":80", 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /?client=%d HTTP/1.1\r\nHost: upgrade.test\r\nConnection: close\r\n\r\n", i); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if line, _, _ := strings.Cut(string(b), "\r\n"); !strings.Contains(line, " 200 ") {
		return fmt.Errorf("answer %q", line)
	}
	return nil
}

func (l *ugLoad) counts() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, append([]string(nil), l.failures...)
}

// TestNetnsRollingUpgrade upgrades a 2+1 cluster (two gateways of one
// datacenter sharing a VRRP VIP, and a witness) node by node, in the order
// docs/operations.md gives (the VRRP backup, the witness, then the VIP's
// master), each stopped with SIGTERM as systemd does and started again from
// a newer binary (the same source, another version stamp: the steps are
// tested, not a skew of code), under a steady HTTP load through the VIP. It
// prints every failed request (the goal is none; no client may be refused)
// and checks that every member runs the new version, agrees on the log and
// that one node holds the VIP.
func TestNetnsRollingUpgrade(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "curl")
	testenv.RequireTool(t, "python3")
	newBin := filepath.Join(t.TempDir(), "vipgate-new")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=e2e-upgraded", "-o", newBin, "./cmd/vipgate")
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the new binary: %v\n%s", err, out)
	}

	nw := testnet.New(t)
	dir := t.TempDir()
	ca, err := rafttest.NewCA(dir, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	web := nw.AddHost("web", "198.18.0.20/24")
	py := web.Command("python3", "-m", "http.server", "8081", "--bind", "198.18.0.20", "--directory", dir)
	py.Stdout, py.Stderr = io.Discard, io.Discard
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = py.Process.Kill(); _ = py.Wait() })
	client := nw.AddHost("client", "198.18.0.30/24")

	seed := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seed, []byte(`datacenters: [{name: dc1}]
vrrp:
  instances:
    - name: vi
      datacenter: dc1
      interface: eth0
      vrid: 61
      version: 3
      advert_interval: 100ms
      preempt: false
      priorities: {g1: 150, g2: 100}
      vips: ["`+upgradeVIP+`/24"]
frontends:
  - {name: web, mode: http, bind: ["`+upgradeVIP+`:80"], default_backend: app}
backends:
  - {name: app, mode: http, servers: [{name: py, address: "198.18.0.20:8081"}]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	type spec struct{ name, role, ip string }
	specs := []spec{{"g1", "gateway", "198.18.0.1"}, {"g2", "gateway", "198.18.0.2"}, {"w", "witness", "198.18.0.3"}}
	nodes := map[string]*ugNode{}
	for i, s := range specs {
		tlsf, err := ca.Issue(s.name)
		if err != nil {
			t.Fatal(err)
		}
		y := fmt.Sprintf("name: %s\nrole: %s\ndata_dir: %s\nadmin: {listen: \"127.0.0.1:9900\"}\nhard_stop_after: 10s\n",
			s.name, s.role, filepath.Join(dir, s.name))
		if s.role == "gateway" {
			y += "datacenter: dc1\n"
		}
		y += fmt.Sprintf("raft:\n  listen: \"%s:9901\"\n  tls: {ca: %q, cert: %q, key: %q}\n", s.ip, tlsf.CA, tlsf.Cert, tlsf.Key)
		y += "  heartbeat_timeout: 1s\n  election_timeout: 1s\n  leader_lease_timeout: 500ms\n"
		if i == 0 {
			y += fmt.Sprintf("  bootstrap: true\nconfig: %q\n", seed)
		} else {
			y += "  join: [\"198.18.0.1:9901\"]\n"
		}
		n := &ugNode{name: s.name, nodeFile: filepath.Join(dir, s.name+".yaml"), log: filepath.Join(dir, s.name+".log"),
			host: nw.AddHost(s.name, s.ip+"/24")}
		if err := os.WriteFile(n.nodeFile, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		n.start(t, binary)
		nodes[s.name] = n
	}
	t.Cleanup(func() {
		for name, n := range nodes {
			_ = n.cmd.Process.Signal(syscall.SIGKILL)
			<-n.done
			if t.Failed() {
				b, _ := os.ReadFile(n.log)
				t.Logf("---- log of %s ----\n%s", name, tail(b, 4000))
			}
		}
	})
	g1, g2, w := nodes["g1"], nodes["g2"], nodes["w"]
	// settled: every member answers with version want, one leader they
	// all name, the same applied index, and the gateways in a VRRP state.
	settled := func(want string) bool {
		var applied float64
		leader := ""
		for i, n := range []*ugNode{g1, g2, w} {
			v := n.view()
			if v.version != want || v.leader == "" || (n != w && v.vrrp != "MASTER" && v.vrrp != "BACKUP") {
				return false
			}
			if i == 0 {
				applied, leader = v.applied, v.leader
			} else if v.applied != applied || v.leader != leader {
				return false
			}
		}
		return g1.host.HasAddr(upgradeVIP) != g2.host.HasAddr(upgradeVIP)
	}
	testenv.Eventually(t, 60*time.Second, "the cluster up, one VIP master", func() bool { return settled("dev") })
	// The load has run before anything is touched.
	load := startLoad(client, 4)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok, f := load.counts()
		if ok >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests through the VIP in 20s; failures: %q", ok, f[:min(len(f), 5)])
		}
	}

	master, backup := g1, g2
	if g2.view().vrrp == "MASTER" {
		master, backup = g2, g1
	}
	for _, n := range []*ugNode{backup, w, master} {
		before := n.view()
		ok0, f0 := load.counts()
		stopAt := time.Now()
		took := n.stop(t)
		n.start(t, newBin)
		testenv.Eventually(t, 60*time.Second, n.name+" back on the new version, in the cluster", func() bool {
			v := n.view()
			return v.version == "e2e-upgraded" && v.leader != "" && (n == w || v.vrrp == "MASTER" || v.vrrp == "BACKUP")
		})
		// Some load on the new member before the next one goes: a number
		// of requests served, not a time, so a slow machine gets as many.
		okBack, _ := load.counts()
		testenv.Eventually(t, 60*time.Second, "200 requests served after "+n.name+"'s upgrade", func() bool {
			ok, _ := load.counts()
			return ok >= okBack+200
		})
		ok1, f1 := load.counts()
		t.Logf("upgraded %s (was %s, raft %s, vrrp %q; SIGTERM at %s, stop took %s): %d requests, %d failed during its step",
			n.name, before.version, before.raftState, before.vrrp, stopAt.Format("15:04:05.000"), took.Round(time.Millisecond), ok1-ok0, len(f1)-len(f0))
	}
	testenv.Eventually(t, 60*time.Second, "every member on the new version, one log, one VIP master", func() bool { return settled("e2e-upgraded") })
	close(load.stop)
	<-load.done
	ok, failures := load.counts()
	for _, f := range failures {
		t.Logf("failed request: %s", f)
	}
	t.Logf("rolling upgrade of g1, g2, w under load: %d requests, %d failed (goal 0)", ok+len(failures), len(failures))
	if ok < 200 {
		t.Errorf("only %d requests succeeded: the load did not run", ok)
	}
	// A stopping master keeps accepting until its VIP has gone to the
	// backup: no client is refused. (What can still fail is a connection
	// it accepted in the instant the VIP moved: its answer leaves from an
	// address this node no longer has.)
	for _, f := range failures {
		if strings.Contains(f, "connection refused") {
			t.Errorf("a client was refused during the upgrade: %s", f)
		}
	}
}
