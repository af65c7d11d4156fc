// Package e2e runs real `vipgate run` processes on loopback: raft over
// mutual TLS between separate processes, config applied through the CLI,
// leader crashes, restarts, and reloads under load.
package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
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
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Separate processes, real timeouts: the full run covers these.
		fmt.Println("skipping the multi-process tests in -short mode")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "vipgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "vipgate")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/vipgate")
	cmd.Dir = "../../.."
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building vipgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one `vipgate run` process.
type proc struct {
	id, dc, role string
	nodeFile     string
	admin        string // host:port
	raft         string
	dns          string // host:port of its DNS server (gateways only)
	logFile      string
	cmd          *exec.Cmd
	done         chan struct{}
	stopped      bool // stopped by the test (not a crash)
}

type cluster struct {
	t     *testing.T
	dir   string
	ca    *rafttest.CA
	mu    sync.Mutex
	procs map[string]*proc
	first string // raft address of the bootstrap node
	// nonvoter: nodes added from now on join as nonvoters.
	nonvoter bool
}

func newCluster(t *testing.T) *cluster {
	dir := t.TempDir()
	ca, err := rafttest.NewCA(dir, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, ca: ca, procs: map[string]*proc{}}
	t.Cleanup(func() {
		for _, p := range c.procs {
			c.stop(p, syscall.SIGTERM)
		}
		if t.Failed() {
			for id, p := range c.procs {
				b, _ := os.ReadFile(p.logFile)
				t.Logf("---- log of %s (last 3000 bytes) ----\n%s", id, tail(b, 3000))
			}
		}
	})
	return c
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// add writes a node file; seed is the cluster document for the bootstrap
// node (the first one added).
func (c *cluster) add(id, dc, role string, seed string) *proc {
	c.t.Helper()
	tlsf, err := c.ca.Issue(id)
	if err != nil {
		c.t.Fatal(err)
	}
	p := &proc{id: id, dc: dc, role: role,
		admin: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(c.t)),
		raft:  fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(c.t))}
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ndata_dir: %s\nadmin: {listen: %q}\nlog: {level: debug}\n", id, filepath.Join(c.dir, id), p.admin)
	// A witness's file says nothing about its role or datacenter: it
	// runs with --witness, the way docs/operations.md starts one.
	if role != "witness" {
		fmt.Fprintf(&b, "role: %s\n", role)
	}
	if dc != "" {
		fmt.Fprintf(&b, "datacenter: %s\n", dc)
	}
	if role == "gateway" {
		p.dns = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(c.t))
		fmt.Fprintf(&b, "dns: {listen: [%q], sockets: 1}\n", p.dns)
	}
	fmt.Fprintf(&b, "raft:\n  listen: %q\n  tls: {ca: %q, cert: %q, key: %q}\n", p.raft, tlsf.CA, tlsf.Cert, tlsf.Key)
	b.WriteString("  heartbeat_timeout: 1s\n  election_timeout: 1s\n  leader_lease_timeout: 500ms\n  report_interval: 250ms\n")
	if c.first == "" {
		seedFile := filepath.Join(c.dir, "seed.yaml")
		if err := os.WriteFile(seedFile, []byte(seed), 0o600); err != nil {
			c.t.Fatal(err)
		}
		fmt.Fprintf(&b, "  bootstrap: true\nconfig: %q\n", seedFile)
		c.first = p.raft
	} else {
		fmt.Fprintf(&b, "  join: [%q]\n", c.first)
		if c.nonvoter {
			b.WriteString("  nonvoter: true\n")
		}
	}
	p.nodeFile = filepath.Join(c.dir, id+".yaml")
	p.logFile = filepath.Join(c.dir, id+".log")
	if err := os.WriteFile(p.nodeFile, []byte(b.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.start(p)
	return p
}

func (c *cluster) start(p *proc) {
	c.t.Helper()
	lf, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	args := []string{"run", "--node", p.nodeFile}
	if p.role == "witness" {
		args = append(args, "--witness")
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.done = make(chan struct{})
	p.stopped = false
	go func() { _ = p.cmd.Wait(); lf.Close(); close(p.done) }()
	c.mu.Lock()
	c.procs[p.id] = p
	c.mu.Unlock()
}

func (c *cluster) stop(p *proc, sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	c.mu.Lock()
	p.stopped = true
	c.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func get(addr, path string, out any) error {
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

func (p *proc) version() uint64 {
	var out struct {
		Version uint64 `json:"version"`
	}
	if err := get(p.admin, "/api/v1/config", &out); err != nil {
		return 0
	}
	return out.Version
}

func (p *proc) members() int {
	var out struct {
		Members []json.RawMessage `json:"members"`
	}
	if err := get(p.admin, "/api/v1/cluster/members", &out); err != nil {
		return -1
	}
	return len(out.Members)
}

func (p *proc) raftState() (state, leader string) {
	var out map[string]any
	if err := get(p.admin, "/api/v1/status/raft", &out); err != nil {
		return "", ""
	}
	s, _ := out["state"].(string)
	l, _ := out["leader"].(string)
	return s, l
}

// cli runs the vipgate binary against a node's admin API.
func cli(t *testing.T, p *proc, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "VIPGATE_ADMIN="+p.admin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("vipgate %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (c *cluster) waitAll(what string, cond func(p *proc) bool) {
	c.t.Helper()
	testenv.Eventually(c.t, 30*time.Second, what, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.procs {
			select {
			case <-p.done:
				if !p.stopped {
					b, _ := os.ReadFile(p.logFile)
					c.t.Fatalf("%s exited on its own (%v):\n%s", p.id, p.cmd.ProcessState, tail(b, 3000))
				}
				continue
			default:
			}
			if !cond(p) {
				return false
			}
		}
		return true
	})
}

// backendsDoc is a document without frontends (so several gateway
// processes can share one host) whose backend has n servers. Its DNS zone
// keeps it from looking like a truncated file (which apply refuses
// without --allow-empty); each gateway serves it on its own DNS port.
func backendsDoc(n int, weight int) string {
	var b strings.Builder
	b.WriteString("datacenters:\n  - {name: dc1, role: primary}\n  - {name: dc2, role: standby}\nfailover: {mode: manual}\n")
	b.WriteString("dns:\n  zones:\n    - {name: example.com, ns: [ns1.example.com], records: [{name: ns1, type: A, data: 198.18.1.53}]}\n")
	b.WriteString("backends:\n  - name: app\n    servers:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "      - {name: s%d, address: \"127.0.0.1:%d\", weight: %d}\n", i, 20000+i, weight)
	}
	return b.String()
}

func (c *cluster) writeDoc(name, doc string) string {
	f := filepath.Join(c.dir, name)
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return f
}

func (c *cluster) leader() *proc {
	var l *proc
	testenv.Eventually(c.t, 30*time.Second, "a raft leader", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range c.procs {
			select {
			case <-p.done:
				continue
			default:
			}
			if s, _ := p.raftState(); s == "Leader" {
				l = p
				return true
			}
		}
		return false
	})
	return l
}

func TestProcessesApplyEverywhere(t *testing.T) {
	for _, size := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			c := newCluster(t)
			var ps []*proc
			for i := 1; i <= size; i++ {
				dc, role := "dc1", "gateway"
				if i%2 == 0 {
					dc = "dc2"
				}
				if i == size && size%2 == 1 {
					dc, role = "", "witness"
				}
				ps = append(ps, c.add(fmt.Sprintf("n%d", i), dc, role, backendsDoc(1, 1)))
			}
			c.waitAll("every node joined and has version 1", func(p *proc) bool { return p.members() == size && p.version() == 1 })

			// Dry run: a diff, nothing committed.
			f := c.writeDoc("v2.yaml", backendsDoc(2, 5))
			out, err := cli(t, ps[1], "apply", "-f", f, "--dry-run")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, `+      - {name: s2, address: "127.0.0.1:20002", weight: 5}`) || !strings.Contains(out, "dry run") {
				t.Fatalf("dry-run output:\n%s", out)
			}
			// Applied through a follower (or whichever node ps[1] is).
			out, err = cli(t, ps[1], "apply", "-f", f, "-m", "add s2")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "committed version 2") {
				t.Fatalf("apply output:\n%s", out)
			}
			// live: the node runs version and (witnesses aside, which
			// have no proxy) serves s2 or not.
			live := func(version uint64, s2 bool) func(p *proc) bool {
				return func(p *proc) bool {
					if p.version() != version {
						return false
					}
					if p.role == "witness" {
						return true
					}
					var st map[string]any
					if err := get(p.admin, "/api/v1/stats", &st); err != nil {
						return false
					}
					b, _ := json.Marshal(st)
					return strings.Contains(string(b), `"s2"`) == s2
				}
			}
			c.waitAll("version 2 live on every node", live(2, true))
			// A refused document names the line, and changes nothing.
			bad := c.writeDoc("bad.yaml", "backends:\n  - name: app\n    servers:\n      - {name: s1, address: nowhere}\n")
			out, err = cli(t, ps[0], "apply", "-f", bad)
			if err == nil || !strings.Contains(out, bad+":4") {
				t.Fatalf("bad config: err %v, output:\n%s", err, out)
			}
			out, err = cli(t, ps[size-1], "config", "history")
			if err != nil || !strings.Contains(out, "add s2") {
				t.Fatalf("history: %v\n%s", err, out)
			}
			out, err = cli(t, ps[0], "config", "rollback", "1")
			if err != nil || !strings.Contains(out, "committed version 3") {
				t.Fatalf("rollback: %v\n%s", err, out)
			}
			// Version 3 is version 1's document again: s2 is gone everywhere.
			c.waitAll("rollback live everywhere", live(3, false))
			if out, err := cli(t, ps[0], "config", "show"); err != nil || strings.Contains(out, "s2") || !strings.Contains(out, "s1") {
				t.Fatalf("config show after rollback: %v\n%s", err, out)
			}
			out, err = cli(t, ps[0], "cluster", "members")
			if err != nil || strings.Count(out, "voter") != size {
				t.Fatalf("members: %v\n%s", err, out)
			}
		})
	}
}

func TestProcessesLeaderKilledAndRestarted(t *testing.T) {
	c := newCluster(t)
	ps := []*proc{
		c.add("n1", "dc1", "gateway", backendsDoc(1, 1)),
		c.add("n2", "dc2", "gateway", ""),
		c.add("w", "", "witness", ""),
	}
	c.waitAll("joined", func(p *proc) bool { return p.members() == 3 && p.version() == 1 })
	for w := 2; w <= 3; w++ {
		if _, err := cli(t, ps[w-2], "apply", "-f", c.writeDoc("v.yaml", backendsDoc(1, w))); err != nil {
			t.Fatal(err)
		}
	}
	c.waitAll("version 3", func(p *proc) bool { return p.version() == 3 })
	old := c.leader()
	c.stop(old, syscall.SIGKILL)
	nl := c.leader()
	if nl == old {
		t.Fatal("killed node still leader")
	}
	c.waitAll("no committed change lost", func(p *proc) bool { return p.version() == 3 })
	if out, err := cli(t, nl, "apply", "-f", c.writeDoc("v4.yaml", backendsDoc(1, 4))); err != nil || !strings.Contains(out, "committed version 4") {
		t.Fatalf("apply after failover: %v\n%s", err, out)
	}
	// The killed node restarts from its BoltDB log and catches up.
	c.start(old)
	c.waitAll("restarted node caught up", func(p *proc) bool { return p.version() == 4 && p.members() == 3 })
}

func TestProcessesRefuseForeignCertificate(t *testing.T) {
	c := newCluster(t)
	c.add("n1", "dc1", "gateway", backendsDoc(1, 1))
	c.add("n2", "dc2", "gateway", "")
	c.waitAll("joined", func(p *proc) bool { return p.members() == 2 })
	// A node whose certificate comes from another CA.
	c.ca, _ = rafttest.NewCA(t.TempDir(), "rogue")
	rogue := c.add("rogue", "dc1", "gateway", "")
	testenv.Eventually(t, 30*time.Second, "the cluster logged the refusal", func() bool {
		b, _ := os.ReadFile(c.procs["n1"].logFile)
		return strings.Contains(string(b), "refused raft peer")
	})
	if n := c.procs["n1"].members(); n != 2 {
		t.Errorf("members %d, want 2", n)
	}
	if v := rogue.version(); v != 0 {
		t.Errorf("the rogue node received config version %d", v)
	}
}

// `vipgate cluster remove` takes a member out through any node; `vipgate
// cluster leave` takes the node it talks to out. The cluster keeps
// committing with the members left, and a removed node that still runs
// receives nothing more.
func TestProcessesLeaveAndRemove(t *testing.T) {
	c := newCluster(t)
	n1 := c.add("n1", "dc1", "gateway", backendsDoc(1, 1))
	n2 := c.add("n2", "dc2", "gateway", "")
	n3 := c.add("n3", "dc1", "gateway", "")
	n4 := c.add("n4", "dc2", "gateway", "")
	c.waitAll("four members", func(p *proc) bool { return p.members() == 4 && p.version() == 1 })

	if out, err := cli(t, n1, "cluster", "remove", "n4"); err != nil || !strings.Contains(out, "n4 removed") {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	rest := []*proc{n1, n2, n3}
	waitSome := func(what string, ps []*proc, cond func(*proc) bool) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, what, func() bool {
			for _, p := range ps {
				if !cond(p) {
					return false
				}
			}
			return true
		})
	}
	waitSome("three members", rest, func(p *proc) bool { return p.members() == 3 })

	if out, err := cli(t, n3, "cluster", "leave"); err != nil || !strings.Contains(out, "left the cluster") {
		t.Fatalf("leave: %v\n%s", err, out)
	}
	rest = []*proc{n1, n2}
	waitSome("two members", rest, func(p *proc) bool { return p.members() == 2 })
	c.stop(n3, syscall.SIGTERM)

	if out, err := cli(t, n2, "apply", "-f", c.writeDoc("v2.yaml", backendsDoc(1, 2))); err != nil || !strings.Contains(out, "committed version 2") {
		t.Fatalf("apply with two members: %v\n%s", err, out)
	}
	waitSome("version 2 on the members", rest, func(p *proc) bool { return p.version() == 2 })
	// n4 still runs but is no member: it did not get version 2 (the
	// members already have it, so a replication would have happened).
	if v := n4.version(); v != 1 {
		t.Errorf("the removed node has version %d", v)
	}
}

// `vipgate cluster join ID ADDR` through any member: a voter that does not
// answer on its raft port is refused with the reason (it would count
// towards the quorum at once), and joining a running nonvoter as a voter
// promotes it.
func TestProcessesJoinByCLI(t *testing.T) {
	c := newCluster(t)
	n1 := c.add("n1", "dc1", "gateway", backendsDoc(1, 1))
	c.nonvoter = true
	n2 := c.add("n2", "dc2", "gateway", "")
	c.waitAll("two members, version 1 everywhere", func(p *proc) bool { return p.members() == 2 && p.version() == 1 })
	if out, err := cli(t, n1, "cluster", "members"); err != nil || strings.Count(out, "nonvoter") != 1 {
		t.Fatalf("members: %v\n%s", err, out)
	}
	ghost := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if out, err := cli(t, n2, "cluster", "join", "n9", ghost); err == nil || !strings.Contains(out, "does not answer on its raft port") {
		t.Fatalf("join of a node that is not running: %v\n%s", err, out)
	}
	if out, err := cli(t, n2, "cluster", "join", "n2", n2.raft); err != nil || !strings.Contains(out, "n2 added") {
		t.Fatalf("promoting n2: %v\n%s", err, out)
	}
	c.waitAll("two voters", func(p *proc) bool {
		out, err := cli(t, p, "cluster", "members")
		return err == nil && p.members() == 2 && !strings.Contains(out, "nonvoter")
	})
	if out, err := cli(t, n2, "apply", "-f", c.writeDoc("v2.yaml", backendsDoc(1, 2))); err != nil || !strings.Contains(out, "committed version 2") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	c.waitAll("version 2 everywhere", func(p *proc) bool { return p.version() == 2 })
}
