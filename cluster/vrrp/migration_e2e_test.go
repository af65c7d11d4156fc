package vrrp_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/vrrp"
	"github.com/vipgate/vipgate/internal/testcert"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testexch"
	"github.com/vipgate/vipgate/internal/testnet"
)

// TestMigrationE2ESeed004 is the rolling migration of seed004 (Exchange
// over two datacenters) against the real tools: a pair running Debian's
// HAProxy and keepalived with seed004's files, nginx backends standing in
// for the Exchange servers, a client polling the VIP and a client resuming
// its TLS session by ID (what seed004 sticks on). Node 2 is then replaced
// by vipgate run from `vipgate import` of both nodes' files, then node 1.
// A sampler reads the VIP holders every 25ms all along.
//
// The files are adapted only in addresses and paths; the nodes' NICs are
// named as in the inputs (ens160, ens192). Long (about a minute) and
// needs root and the daemons: `make migration-e2e` runs it.
func TestMigrationE2ESeed004(t *testing.T) {
	bin := migrationE2E(t)
	seed := filepath.Join(testenv.MigrationInputs(t), "seed004-exchange-2dc")
	dir := t.TempDir()
	b := newBed(t, "node1", "node2")
	nics := map[string]string{"node1": "ens160", "node2": "ens192"}
	for n, nic := range nics {
		renameNIC(t, b.hosts[n], nic)
	}
	certFile, keyFile := filepath.Join(dir, "exch.pem"), filepath.Join(dir, "exch-key.pem")
	testcert.Write(t, testcert.Cert{CN: "exch2016.domain.com", DNS: []string{"exch2016.domain.com"}}, certFile, keyFile)
	repl := []string{"172.30.129.131", vip, "smtp.domain.com", "198.18.0.250"}
	for i := 1; i <= 4; i++ {
		name, ip := fmt.Sprintf("exch%d", i), fmt.Sprintf("198.18.0.%d", 10+i)
		repl = append(repl, name+".domain.com", ip)
		startExchange(t, b.n.AddHost(name, ip+"/24"), ip, name, certFile, keyFile)
	}

	// The original pair.
	files := map[string]map[string]string{"node1": {}, "node2": {}}
	orig := map[string]map[string]string{
		"node1": {"haproxy": "haproxy-node1.cfg", "keepalived": "keepalived-master.conf"},
		"node2": {"haproxy": "haproxy-node2.cfg", "keepalived": "keepalived-slave.conf"},
	}
	haproxy := map[string]*proc{}
	keepalived := map[string]*proc{}
	for _, n := range []string{"node1", "node2"} {
		// Two HAProxies on one machine: each its own stats socket.
		r := strings.NewReplacer(append(repl, "/run/haproxy/admin.sock", filepath.Join(dir, n+".sock"))...)
		for kind, f := range orig[n] {
			data, err := os.ReadFile(filepath.Join(seed, f))
			if err != nil {
				t.Fatal(err)
			}
			files[n][kind] = filepath.Join(dir, n+"-"+f)
			if err := os.WriteFile(files[n][kind], []byte(r.Replace(string(data))), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		haproxy[n] = startHAProxy(t, b.hosts[n], files[n]["haproxy"], "127.0.0.1:443")
		data, _ := os.ReadFile(files[n]["keepalived"])
		keepalived[n] = startKeepalived(t, b.hosts[n], string(data))
	}
	long := 60 * time.Second
	// node1 has priority 101, node2 100; the track script never passes
	// under keepalived (no shell: killall gets "&& curl ..." as names).
	waitHolder(t, b.w, "node1", long)

	doc := importDoc(t, bin, dir,
		"--haproxy", "node1="+files["node1"]["haproxy"], "--haproxy", "node2="+files["node2"]["haproxy"],
		"--keepalived", "node1="+files["node1"]["keepalived"], "--keepalived", "node2="+files["node2"]["keepalived"],
		"--datacenter", "node1=dc1", "--datacenter", "node2=dc2")
	mig := startMigrationWatch(t, "seed004", b, tlsSessionClients(t, b))

	migrate(t, b, mig, bin, dir, doc, "127.0.0.1:443", haproxy, keepalived, true)
}

// migrate replaces node2 (the backup), then node1 by vipgate and checks
// what is deterministic.
//
// node2 joins as backup and stays so: it has the lower priority (a
// preempting backup would take over once its master-down timer, about
// 3.6s, expires). Then node1's keepalived resigns (priority 0), node2
// takes over, and vipgate on node1 preempts it (keepalived's default
// preempt).
//
// origServes false: the original pair does not serve through the VIP
// (seed000: keepalived's vrrp_strict drops traffic to it, no_accept).
//
// listen is an address inside a node that vipgate accepts on once it runs.
func migrate(t *testing.T, b *bed, mig *migrationWatch, bin, dir, doc, listen string, haproxy, keepalived map[string]*proc, origServes bool) {
	t.Helper()
	long := 60 * time.Second
	mig.step(t, "original pair (HAProxy + keepalived on both nodes)", "node1", long, origServes)
	for _, n := range []string{"node2", "node1"} {
		mig.begin(n + ": HAProxy + keepalived replaced by vipgate")
		keepalived[n].stop()
		haproxy[n].stop()
		startVipgateNode(t, b.hosts[n], bin, dir, n, doc, listen)
		if n == "node2" {
			testenv.Eventually(t, long, "vipgate on node2 backup of node1 for 5s", func() bool {
				st := vrrpStatus(b.hosts[n], bin)
				return len(st) == 1 && st[0].State == vrrp.Backup && st[0].Master == b.addrs["node1"] &&
					time.Since(st[0].LastTransition) > 5*time.Second
			})
			if h := mig.heldBy("node2"); h {
				t.Errorf("vipgate on node2 took the VIP from keepalived on node1 (higher priority)")
			}
		}
		// Until node1 is replaced, its keepalived holds the VIP.
		mig.step(t, "", "node1", long, n == "node1" || origServes)
	}
	mig.stop()
	mig.report(t)
	if d := b.w.dual(); d > time.Second {
		t.Fatalf("VIP held by both nodes for %s (advert interval 1s): the VRRP group split", d)
	}
	mig.checkSingleHolder(t)
	mig.checkSessions(t, origServes)
}

// checkSingleHolder: no sample sees two holders while a keepalived node
// is in the group (the original pair, then vipgate beside keepalived:
// the interoperation under test). The last step ends with vipgate on
// node1 preempting vipgate on node2, where VRRP itself leaves both holding
// for the moment the old master takes to read the new master's first
// advert (milliseconds; a 25ms sample sometimes falls in it): there the
// bound is the duration, checked above.
func (m *migrationWatch) checkSingleHolder(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.steps[1 : len(m.steps)-1] {
		if s.dual > 0 {
			t.Errorf("%s: %d of %d samples saw the VIP on both nodes (%s)", s.name, s.dual, s.samples, strings.Join(s.holders, " → "))
		}
	}
}

// vrrpStatus is the VRRP section of `vipgate status` on h's node (nil
// until the node answers).
func vrrpStatus(h *testnet.Host, bin string) []vrrp.Status {
	out, err := h.Command(bin, "status", "--json", "vrrp").Output()
	if err != nil {
		return nil
	}
	var st []vrrp.Status
	if json.Unmarshal(out, &st) != nil {
		return nil
	}
	return st
}

// renameNIC gives h's segment interface the name the inputs use.
func renameNIC(t *testing.T, h *testnet.Host, nic string) {
	t.Helper()
	h.MustRun(t, "ip", "link", "set", h.Iface, "down")
	h.MustRun(t, "ip", "link", "set", h.Iface, "name", nic)
	h.MustRun(t, "ip", "link", "set", nic, "up")
	h.Iface = nic
}

// startExchange runs an "Exchange server" (testexch.NginxConf).
func startExchange(t *testing.T, h *testnet.Host, ip, name, cert, key string) {
	t.Helper()
	d := filepath.Join(t.TempDir(), name)
	for _, sub := range []string{"ews", "tmp"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d, "ews", "healthcheck.htm"), []byte("200 OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := testexch.NginxConf(d, ip, cert, key, name)
	f := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProc(t, "nginx "+name, h.Command("nginx", "-c", f, "-e", filepath.Join(d, "error.log")))
	waitListen(t, h, ip+":443")
}

// startHAProxy runs HAProxy in the foreground (-db: the file's `daemon`
// would detach it from the test).
func startHAProxy(t *testing.T, h *testnet.Host, cfg, listen string) *proc {
	t.Helper()
	if out, err := exec.Command("haproxy", "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c %s: %v\n%s", cfg, err, out)
	}
	p := startProc(t, "haproxy "+h.Name, h.Command("haproxy", "-db", "-f", cfg))
	waitListen(t, h, listen)
	return p
}

// startVipgateNode runs `vipgate run` for node with the imported document
// and its own node file (datacenter dc2 for node2, else dc1).
// It returns once the node accepts on listen (inside h).
func startVipgateNode(t *testing.T, h *testnet.Host, bin, dir, node, doc, listen string) *proc {
	t.Helper()
	dc := "dc1"
	if node == "node2" {
		dc = "dc2"
	}
	nf := filepath.Join(dir, node+".yaml")
	data := filepath.Join(dir, node+"-data")
	nodeFile := fmt.Sprintf("name: %s\ndatacenter: %s\ndata_dir: %s\nadmin:\n  listen: 127.0.0.1:9900\n", node, dc, data)
	if err := os.WriteFile(nf, []byte(nodeFile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", doc}, {"check", "--node", nf}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("vipgate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	p := startProc(t, "vipgate "+node, h.Command(bin, "run", "--node", nf, "--config", doc))
	waitListen(t, h, listen)
	return p
}

// waitListen waits until addr accepts TCP connections from inside h.
func waitListen(t *testing.T, h *testnet.Host, addr string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	testenv.Eventually(t, 30*time.Second, h.Name+" listening on "+addr, func() bool {
		_, err := h.Run("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port))
		return err == nil
	})
}

// migrationWatch samples the VIP holders, polls the service through the
// VIP and resumes one TLS session over and over, recording everything
// per step.
type migrationWatch struct {
	seed      string
	stickName string // what the sticky client sticks with
	b         *bed
	mu        sync.Mutex
	steps     []*migStep
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

type migStep struct {
	name       string
	start, end time.Time
	samples    int
	dual       int
	holders    []string // each change of holder, with its time
	last       string
	polls      []poll
	resumes    []resume
}

type poll struct {
	at time.Time
	ok bool
}

type resume struct {
	at             time.Time
	reused         bool
	server, origin string
	err            error
}

// migClients are a seed's two clients. poll is one request through the
// VIP; it runs on a thread in the client's namespace. stick is one request
// of the client that should keep its server: it returns the server and
// whether it is the one that client started on (a new start when not).
type migClients struct {
	poll  func() error
	stick func(ctx context.Context) (server string, kept bool, err error)
	// what is the stick client's session, for the report.
	what string
}

// tlsSessionClients are seed004's: HTTPS polls, and openssl s_client
// resuming one TLS session (kept: resumed, so on the server that issued it).
func tlsSessionClients(t *testing.T, b *bed) migClients {
	sess := filepath.Join(t.TempDir(), "session.pem")
	started := false
	return migClients{
		what: "TLS session by ID",
		poll: func() error { return getWho(vip + ":443") },
		stick: func(ctx context.Context) (string, bool, error) {
			in := ""
			if started {
				in = sess
			}
			server, reused, _, err := testexch.SClient(ctx, b.client, vip+":443", "", in, sess)
			started = started || err == nil
			return server, reused, err
		},
	}
}

func startMigrationWatch(t *testing.T, seed string, b *bed, cl migClients) *migrationWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &migrationWatch{seed: seed, stickName: cl.what, b: b, cancel: cancel}
	m.begin("start")
	t.Cleanup(m.stop)
	m.wg.Add(3)
	go func() {
		defer m.wg.Done()
		tk := time.NewTicker(25 * time.Millisecond)
		defer tk.Stop()
		for ctx.Err() == nil {
			<-tk.C
			h := b.w.holder()
			m.record(func(s *migStep) {
				s.samples++
				if strings.Contains(h, "+") {
					s.dual++
				}
				// Each step starts with its holder, then each change.
				if len(s.holders) == 0 || h != s.last {
					s.holders = append(s.holders, fmt.Sprintf("%s@%s", orNone(h), time.Since(s.start).Round(time.Millisecond)))
					s.last = h
				}
			})
		}
	}()
	ready := make(chan error, 1)
	go func() {
		defer m.wg.Done()
		err := enterNS(b.client.NS)
		ready <- err
		if err != nil {
			return
		}
		for ctx.Err() == nil {
			at := time.Now()
			ok := cl.poll() == nil
			m.record(func(s *migStep) { s.polls = append(s.polls, poll{at, ok}) })
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("client namespace: %v", err)
	}
	go func() {
		defer m.wg.Done()
		if err := enterNS(b.client.NS); err != nil {
			return
		}
		origin := ""
		for ctx.Err() == nil {
			at := time.Now()
			server, reused, err := cl.stick(ctx)
			if err == nil && !reused {
				origin = server
			}
			r := resume{at: at, reused: reused, server: server, origin: origin, err: err}
			m.record(func(s *migStep) { s.resumes = append(s.resumes, r) })
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return m
}

func orNone(h string) string {
	if h == "" {
		return "none"
	}
	return h
}

func (m *migrationWatch) record(f func(*migStep)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.steps[len(m.steps)-1])
}

func (m *migrationWatch) begin(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if n := len(m.steps); n > 0 {
		m.steps[n-1].end = now
	}
	m.steps = append(m.steps, &migStep{name: name, start: now})
}

// step waits until want holds the VIP, the polls succeed again and the
// TLS session resumes, each for a while, then closes the step.
// With serves false (the original does not serve through the VIP) it
// waits for 5 polls and 3 sticky requests, failed or not.
func (m *migrationWatch) step(t *testing.T, name, want string, d time.Duration, serves bool) {
	t.Helper()
	if name != "" {
		m.begin(name)
	}
	waitHolder(t, m.b.w, want, d)
	since := time.Now()
	testenv.Eventually(t, d, "service back through the VIP held by "+want, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		s := m.steps[len(m.steps)-1]
		okPolls, resumed := 0, 0
		for _, p := range s.polls {
			if p.at.After(since) && (p.ok || !serves) {
				okPolls++
			}
		}
		for _, r := range s.resumes {
			if r.at.After(since) && (r.reused || !serves) {
				resumed++
			}
		}
		if !serves { // failed polls take their timeout: fewer
			return okPolls >= 5 && resumed >= 3
		}
		return okPolls >= 20 && resumed >= 3
	})
}

// heldBy reports whether host held the VIP at a sample of the current step.
func (m *migrationWatch) heldBy(host string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.steps[len(m.steps)-1].holders {
		if who, _, _ := strings.Cut(h, "@"); slices.Contains(strings.Split(who, "+"), host) {
			return true
		}
	}
	return false
}

// checkSessions: while one node keeps the VIP, a resumed TLS session
// lands on the server that issued it (seed004's stick on the SSL session
// ID); in the first step (HAProxy), while node2 is replaced (the VIP stays
// on node1) and in the last (vipgate), each resumption after the first
// handshake must succeed. A move to the other node is a new handshake
// there (its servers are others).
func (m *migrationWatch) checkSessions(t *testing.T, origServes bool) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	steps := []*migStep{m.steps[len(m.steps)-1]}
	if origServes {
		steps = append(steps, m.steps[1], m.steps[2])
	}
	for _, s := range steps {
		var rs []resume
		for _, r := range s.resumes {
			if r.err == nil {
				rs = append(rs, r)
			}
		}
		// The step's last resumes: the VIP settled on one node by then.
		if len(rs) > 3 {
			rs = rs[len(rs)-3:]
		}
		for _, r := range rs {
			if !r.reused {
				t.Errorf("%s: the %s did not keep its server %s: went to %s", s.name, m.stickName, r.origin, r.server)
			}
		}
	}
}

func (m *migrationWatch) stop() {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.steps); n > 0 && m.steps[n-1].end.IsZero() {
		m.steps[n-1].end = time.Now()
	}
}

// report prints each step's VIP holders, service gap (the longest run of
// failed polls) and TLS session persistence; timing decides nothing.
func (m *migrationWatch) report(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, s := range m.steps[1:] {
		fail, gap := 0, time.Duration(0)
		var runStart time.Time
		for _, p := range s.polls {
			switch {
			case !p.ok:
				fail++
				if runStart.IsZero() {
					runStart = p.at
				}
			case !runStart.IsZero():
				gap = max(gap, p.at.Sub(runStart))
				runStart = time.Time{}
			}
		}
		if !runStart.IsZero() { // still failing when the step ended
			gap = max(gap, s.end.Sub(runStart))
		}
		reused, fresh, errs := 0, 0, 0
		for _, r := range s.resumes {
			switch {
			case r.err != nil:
				errs++
			case r.reused:
				reused++
			default:
				fresh++
			}
		}
		fmt.Fprintf(&b, "%s (%s)\n  VIP holders: %s; %d samples, %d with two holders\n  service gap %s (%d of %d polls failed)\n  sticky client: %d kept its server, %d started over on another (%s), %d failed\n",
			s.name, s.end.Sub(s.start).Round(time.Millisecond), strings.Join(s.holders, " → "), s.samples, s.dual,
			gap.Round(time.Millisecond), fail, len(s.polls), reused, fresh, m.stickName, errs)
	}
	t.Logf("rolling migration of %s:\n%s", m.seed, b.String())
}

// getWho is one HTTPS request through addr; it runs on a thread locked
// into the client's namespace (the socket is created on it).
func getWho(addr string) error {
	d := &net.Dialer{Timeout: time.Second}
	c, err := tls.DialWithDialer(d, "tcp4", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test servers
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET /who HTTP/1.0\r\n\r\n"); err != nil {
		return err
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 200 ") {
		return fmt.Errorf("answer %q", resp)
	}
	return nil
}

// TestMigrationE2ESeed000 is seed000's rolling migration (the lab pair:
// vrrp_strict with an authentication block keepalived ignores, multicast,
// HTTP with cookie persistence, SSL offload, a track script checking
// haproxy), as TestMigrationE2ESeed004. The cookie client keeps its
// cookie all along: HAProxy's cookie and vipgate's are the same, so it
// keeps its server across the whole migration.
func TestMigrationE2ESeed000(t *testing.T) {
	bin := migrationE2E(t)
	seed := filepath.Join(testenv.MigrationInputs(t), "seed000-lab")
	dir := t.TempDir()
	b := newBed(t, "node1", "node2")
	for _, n := range []string{"node1", "node2"} {
		renameNIC(t, b.hosts[n], "ens160")
	}
	cert, key := testcert.PEM(t, testcert.Cert{CN: "test.aaa.com", DNS: []string{"test.aaa.com"}})
	pemFile := filepath.Join(dir, "test.aaa.com.server.pem")
	if err := os.WriteFile(pemFile, append(cert, key...), 0o600); err != nil {
		t.Fatal(err)
	}
	check := filepath.Join(dir, "haproxy_check.sh")
	if data, err := os.ReadFile(filepath.Join(seed, "haproxy_check.sh")); err != nil || os.WriteFile(check, data, 0o755) != nil {
		t.Fatalf("haproxy_check.sh: %v", err)
	}
	for i, name := range []string{"web01", "web02"} {
		ip := fmt.Sprintf("198.18.0.%d", 21+i)
		serveWho(t, b.n.AddHost(name, ip+"/24"), ip+":80", name)
	}
	r := strings.NewReplacer("10.1.1.254", vip, "10.1.1.201", "198.18.0.21", "10.1.1.202", "198.18.0.22",
		"/home/certs/test.aaa.com.server.pem", pemFile, "/etc/keepalived/haproxy_check.sh", check)
	adapt := func(name, as string) string {
		data, err := os.ReadFile(filepath.Join(seed, name))
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, as)
		// Two HAProxies on one machine: each its own pid file.
		s := strings.ReplaceAll(r.Replace(string(data)), "/usr/local/haproxy/haproxy.pid", filepath.Join(dir, as+".pid"))
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	files := map[string]map[string]string{
		"node1": {"haproxy": adapt("haproxy.cfg", "node1-haproxy.cfg"), "keepalived": adapt("keepalived-lb01.conf", "node1-keepalived.conf")},
		"node2": {"haproxy": adapt("haproxy.cfg", "node2-haproxy.cfg"), "keepalived": adapt("keepalived-lb02.conf", "node2-keepalived.conf")},
	}
	haproxy, keepalived := map[string]*proc{}, map[string]*proc{}
	for _, n := range []string{"node1", "node2"} {
		haproxy[n] = startHAProxy(t, b.hosts[n], files[n]["haproxy"], "127.0.0.1:80")
		data, _ := os.ReadFile(files[n]["keepalived"])
		keepalived[n] = startKeepalived(t, b.hosts[n], string(data))
	}
	waitHolder(t, b.w, "node1", 60*time.Second) // HA-01: 150, HA-02: 100

	doc := importDoc(t, bin, dir, "--haproxy", files["node1"]["haproxy"],
		"--keepalived", "node1="+files["node1"]["keepalived"], "--keepalived", "node2="+files["node2"]["keepalived"])
	mig := startMigrationWatch(t, "seed000", b, cookieClients(vip+":80"))
	migrate(t, b, mig, bin, dir, doc, "127.0.0.1:443", haproxy, keepalived, false)
}

// migrationE2E skips unless make migration-e2e runs the test, and
// returns the vipgate binary to migrate to.
func migrationE2E(t *testing.T) string {
	t.Helper()
	if os.Getenv("VIPGATE_MIGRATION_E2E") == "" {
		t.Skip("make migration-e2e runs it (VIPGATE_MIGRATION_E2E=1 VIPGATE_BIN=vipgate)")
	}
	bin := os.Getenv("VIPGATE_BIN")
	if bin == "" {
		t.Fatal("VIPGATE_BIN: the vipgate binary to migrate to")
	}
	for _, tool := range []string{"haproxy", "keepalived", "nginx", "openssl"} {
		testenv.RequireTool(t, tool)
	}
	return bin
}

// importDoc runs `vipgate import` with args and returns the document.
func importDoc(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	doc := filepath.Join(dir, "cluster.yaml")
	out, err := exec.Command(bin, append(append([]string{"import"}, args...), "-o", doc)...).CombinedOutput()
	if err != nil {
		t.Fatalf("vipgate import: %v\n%s", err, out)
	}
	t.Logf("vipgate import:\n%s", out)
	return doc
}

// serveWho serves HTTP on addr inside h: /who answers name.
func serveWho(t *testing.T, h *testnet.Host, addr, name string) {
	t.Helper()
	ch := make(chan net.Listener, 1)
	errc := make(chan error, 1)
	go func() {
		if err := enterNS(h.NS); err != nil {
			errc <- err
			return
		}
		ln, err := net.Listen("tcp4", addr)
		if err != nil {
			errc <- err
			return
		}
		ch <- ln
	}()
	var ln net.Listener
	select {
	case err := <-errc:
		t.Fatalf("%s: listen %s: %v", name, addr, err)
	case ln = <-ch:
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name+"\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// cookieClients are seed000's: HTTP polls, and a client that keeps the
// SERVER-COOKIE its first answer set (kept: the server is the cookie's).
func cookieClients(addr string) migClients {
	cookie := ""
	return migClients{
		what: "HTTP client keeping its cookie",
		poll: func() error { _, _, err := getHTTP(addr, ""); return err },
		stick: func(context.Context) (string, bool, error) {
			server, set, err := getHTTP(addr, cookie)
			if err != nil {
				return "", false, err
			}
			kept := cookie != "" && "SERVER-COOKIE="+server == cookie
			if set != "" {
				cookie = set
			}
			return server, kept, nil
		},
	}
}

// getHTTP is GET /who through addr with cookie (NAME=VALUE, or none): the
// server's name and the cookie the answer sets. It runs on a thread in the
// client's namespace.
func getHTTP(addr, cookie string) (server, set string, err error) {
	c, err := net.DialTimeout("tcp4", addr, time.Second)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	req := "GET /who HTTP/1.0\r\nHost: test.aaa.com\r\n"
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return "", "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return "", "", fmt.Errorf("answer %d %q: %v", resp.StatusCode, body, err)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "SERVER-COOKIE" {
			set = ck.Name + "=" + ck.Value
		}
	}
	return strings.TrimSpace(string(body)), set, nil
}
