package exchange2dc

// The lab: network namespaces, processes, and the ways the driver looks
// into them. The driver itself stays in the root namespace; it reaches an
// address inside the lab by creating the socket from a thread switched into
// the right namespace (inNS), so probes are in-process and timed precisely.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netns"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/internal/testexch"
	"github.com/vipgate/vipgate/internal/testnet"
)

// Addresses of the lab (cluster.yaml's comment has the same plan).
var (
	vip     = map[string]string{"dc1": "198.18.1.100", "dc2": "198.18.2.100"}
	segment = map[string]string{"dc1": "198.18.1", "dc2": "198.18.2", "site3": "198.18.3", "inet": "198.18.4"}
)

const (
	zone    = "example.com"
	service = "mail." + zone
	mtaAddr = "198.18.4.25"
)

// inNS runs f on a thread switched into the named namespace. Sockets f
// creates stay in that namespace for their whole life, whichever thread
// uses them later. If the thread cannot be switched back it is discarded
// (the goroutine ends locked), never reused in the wrong namespace.
func inNS(ns string, f func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- nil
	}()
	return <-errc
}

func dialIn(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	var derr error
	if err := inNS(ns, func() { c, derr = net.DialTimeout(network, addr, timeout) }); err != nil {
		return nil, err
	}
	return c, derr
}

// proc is one process the lab started in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop signals the process and waits for it (SIGKILL after 10s).
func (p *proc) stop(sig syscall.Signal) {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

type gateway struct {
	name, dc, ip string
	host         *testnet.Host
	nodeFile     string
	p            *proc
	api          *http.Client
}

type backendSrv struct {
	name, dc, ip string
	host         *testnet.Host
	dir          string
	p            *proc
}

type lab struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	bin   string
	nets  map[string]*testnet.Net
	legs  map[string]*testnet.Host // the router's leg in each segment
	hosts map[string]*testnet.Host
	gws   map[string]*gateway // gw-a1, gw-a2, gw-b1, gw-b2, witness
	bes   map[string]*backendSrv
	cert  [2]string
	mail  string // the relay's maildir
	mu    sync.Mutex
	procs []*proc
	wan   string // how the inter-datacenter delay is made
	// lines are the delay lines by router interface (kernels without netem).
	lines map[string]*delayLine
}

// newLab builds the networks: four isolated segments (dc1, dc2, site 3,
// internet) joined by a router namespace with netem delay on the
// datacenter legs.
func newLab(ctx context.Context, t *testing.T, bin string) *lab {
	l := &lab{t: t, ctx: ctx, bin: bin, nets: map[string]*testnet.Net{}, legs: map[string]*testnet.Host{},
		hosts: map[string]*testnet.Host{}, gws: map[string]*gateway{}, bes: map[string]*backendSrv{}, lines: map[string]*delayLine{}}
	// exim's delivery processes are not root: a directory they can enter.
	dir, err := os.MkdirTemp("/tmp", "vipgate-exchange-2dc-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	l.dir = dir
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("E2E_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			fmt.Printf("logs and files kept in %s\n", dir)
		}
	})
	state := os.Getenv("E2E_STATE") // run.sh removes what an interrupted run leaves
	for _, seg := range []string{"dc1", "dc2", "site3", "inet"} {
		n := testnet.New(t)
		l.nets[seg] = n
		if state != "" {
			f, err := os.OpenFile(state, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err == nil {
				fmt.Fprintln(f, n.ID)
				f.Close()
			}
		}
	}
	// Processes stop before the namespaces go (cleanups run last-in first-out).
	t.Cleanup(l.stopAll)
	// The router: undelayed into the internet segment; 10 ms on its way
	// into each datacenter (20 ms RTT between them), 5 ms into site 3.
	r := l.nets["inet"].AddHost("router", segment["inet"]+".1/24")
	l.legs["inet"] = r
	r.MustRun(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
	delays := map[string]time.Duration{"dc1": 10 * time.Millisecond, "dc2": 10 * time.Millisecond, "site3": 5 * time.Millisecond}
	netem := netemWorks(r)
	if netem {
		l.wan = "tc netem delay: 10ms on each datacenter uplink, 5ms to site 3"
	} else {
		l.wan = "no sch_netem in this kernel: delay lines in the driver, 10ms per datacenter uplink, 5ms to site 3"
	}
	for i, seg := range []string{"dc1", "dc2", "site3"} {
		iface, addr := fmt.Sprintf("eth%d", i+1), segment[seg]+".1/24"
		if netem {
			l.legs[seg] = l.nets[seg].Attach(r, iface, addr)
			r.MustRun(t, "tc", "qdisc", "add", "dev", iface, "root", "netem", "delay", delays[seg].String())
		} else {
			l.legs[seg] = l.delayedLeg(l.nets[seg], r, iface, addr, delays[seg])
		}
	}
	add := func(seg, name, last string) *testnet.Host {
		h := l.nets[seg].AddHost(name, segment[seg]+"."+last+"/24")
		h.MustRun(t, "ip", "route", "add", "default", "via", segment[seg]+".1")
		l.hosts[name] = h
		return h
	}
	for _, dc := range []string{"dc1", "dc2"} {
		s := map[string]string{"dc1": "a", "dc2": "b"}[dc]
		for i, last := range []string{"11", "12"} {
			name := fmt.Sprintf("gw-%s%d", s, i+1)
			l.gws[name] = &gateway{name: name, dc: dc, ip: segment[dc] + "." + last, host: add(dc, name, last)}
		}
		for i, last := range []string{"21", "22", "23"} {
			name := fmt.Sprintf("ex-%s%d", s, i+1)
			l.bes[name] = &backendSrv{name: name, dc: dc, ip: segment[dc] + "." + last, host: add(dc, name, last)}
		}
		add(dc, "vdi-"+dc, "50")
	}
	l.gws["witness"] = &gateway{name: "witness", ip: "198.18.3.10", host: add("site3", "witness", "10")}
	add("inet", "client", "50")
	add("inet", "relay", "25")
	return l
}

func (l *lab) stopAll() {
	l.mu.Lock()
	ps := append([]*proc(nil), l.procs...)
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(syscall.SIGTERM) }()
	}
	wg.Wait()
}

// start runs a command inside h's namespace, output to dir/logs/name.log.
func (l *lab) start(h *testnet.Host, name, cwd string, args ...string) *proc {
	l.t.Helper()
	_ = os.MkdirAll(filepath.Join(l.dir, "logs"), 0o755)
	p := &proc{name: name, log: filepath.Join(l.dir, "logs", name+".log"), done: make(chan struct{})}
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	p.cmd = h.Command(args[0], args[1:]...)
	p.cmd.Dir = cwd
	p.cmd.Stdout, p.cmd.Stderr = lf, lf
	if err := p.cmd.Start(); err != nil {
		l.t.Fatalf("%s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); lf.Close(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// writeCert makes the "Exchange" certificate (self-signed, mail.example.com).
func (l *lab) writeCert() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		l.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: service},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		DNSNames: []string{service, "autodiscover." + zone}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		l.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	l.cert = [2]string{filepath.Join(l.dir, "exchange.pem"), filepath.Join(l.dir, "exchange-key.pem")}
	_ = os.WriteFile(l.cert[0], pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(l.cert[1], pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

// startBackend runs an "Exchange" server (testexch.NginxConf), serving
// /ews/healthcheck.htm and /who (its name).
func (l *lab) startBackend(b *backendSrv) {
	l.t.Helper()
	if b.dir == "" {
		b.dir = filepath.Join(l.dir, "www", b.name)
		for _, d := range []string{"ews", "tmp"} {
			_ = os.MkdirAll(filepath.Join(b.dir, d), 0o755)
		}
		_ = os.WriteFile(filepath.Join(b.dir, "ews", "healthcheck.htm"), []byte("200 OK<br/>"+b.name+"."+zone+"\n"), 0o644)
		conf := testexch.NginxConf(b.dir, b.ip, l.cert[0], l.cert[1], b.name)
		if err := os.WriteFile(filepath.Join(b.dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			l.t.Fatal(err)
		}
	}
	b.p = l.start(b.host, b.name, b.dir, nginxBin(), "-c", filepath.Join(b.dir, "nginx.conf"), "-e", filepath.Join(b.dir, "error.log"))
	l.waitDial(b.host.NS, b.ip+":443", b.name+" listening")
}

func nginxBin() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return "/usr/sbin/nginx"
}

func (l *lab) waitDial(ns, addr, what string) {
	l.t.Helper()
	l.must(10*time.Second, what, func() bool {
		c, err := dialIn(ns, "tcp", addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// startRelay runs exim as the SMTP relay receiving the alerts, delivering
// every mail into one maildir.
func (l *lab) startRelay() {
	l.t.Helper()
	bin, err := exec.LookPath("exim4")
	if err != nil {
		bin = "/usr/sbin/exim4"
	}
	dir := filepath.Join(l.dir, "relay")
	for _, d := range []string{"spool", "log", "Maildir"} {
		_ = os.MkdirAll(filepath.Join(dir, d), 0o777)
		_ = os.Chmod(filepath.Join(dir, d), 0o777)
	}
	_ = os.Chmod(dir, 0o755)
	l.mail = filepath.Join(dir, "Maildir")
	conf := fmt.Sprintf(`primary_hostname = relay.%[2]s
exim_user = Debian-exim
exim_group = Debian-exim
spool_directory = %[1]s/spool
log_file_path = %[1]s/log/%%slog
local_interfaces = %[3]s
host_lookup =
rfc1413_hosts =
keep_environment =
tls_advertise_hosts =
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  accept
begin routers
all:
  driver = accept
  transport = maildir
begin transports
maildir:
  driver = appendfile
  directory = %[1]s/Maildir
  maildir_format
  create_directory
  user = Debian-exim
  group = Debian-exim
  envelope_to_add
`, dir, zone, mtaAddr)
	if err := os.WriteFile(filepath.Join(dir, "exim.conf"), []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.start(l.hosts["relay"], "relay-exim", dir, bin, "-C", filepath.Join(dir, "exim.conf"), "-bdf", "-oX", "25")
	l.waitDial(l.hosts["relay"].NS, mtaAddr+":25", "the SMTP relay listening")
}

type alertMail struct {
	file, subject, kinds, node string
	at                         time.Time
}

// mails reads the relay's maildir, one entry per mail: the relay
// delivers a copy per recipient into the one maildir, so copies are
// recognised by their Message-ID.
func (l *lab) mails() []alertMail {
	var out []alertMail
	seen := map[string]bool{}
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(l.mail, sub, "*"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			m, err := mail.ReadMessage(bytes.NewReader(data))
			if err != nil {
				continue
			}
			if id := m.Header.Get("Message-Id"); id != "" {
				if seen[id] {
					continue
				}
				seen[id] = true
			}
			st, _ := os.Stat(f)
			subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			if err != nil {
				subject = m.Header.Get("Subject")
			}
			out = append(out, alertMail{file: filepath.Base(f), subject: subject,
				kinds: m.Header.Get("X-Vipgate-Events"), node: m.Header.Get("X-Vipgate-Node"), at: st.ModTime()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// mailsSince counts mails delivered at or after t whose kinds contain kind
// and whose subject contains every one of words.
func (l *lab) mailsSince(t time.Time, kind string, words ...string) []alertMail {
	var out []alertMail
next:
	for _, m := range l.mails() {
		if m.at.Before(t.Add(-time.Second)) || !strings.Contains(m.kinds, kind) { // maildir mtimes are whole seconds on some filesystems
			continue
		}
		for _, w := range words {
			if !strings.Contains(m.subject, w) {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// --- vipgate nodes -------------------------------------------------------

// writeNodeFiles copies the example's node files, pointing their
// /etc/vipgate and /var/lib/vipgate paths into the lab directory, and
// issues the raft certificates (the cluster's own CA).
func (l *lab) writeNodeFiles(exampleDir string) {
	l.t.Helper()
	etc := filepath.Join(l.dir, "etc")
	_ = os.MkdirAll(filepath.Join(etc, "raft"), 0o700)
	ca, err := rafttest.NewCA(filepath.Join(etc, "raft"), "cluster")
	if err != nil {
		l.t.Fatal(err)
	}
	for name, g := range l.gws {
		tlsf, err := ca.Issue(name)
		if err != nil {
			l.t.Fatal(err)
		}
		src, err := os.ReadFile(filepath.Join(exampleDir, "nodes", name+".yaml"))
		if err != nil {
			l.t.Fatal(err)
		}
		s := strings.NewReplacer(
			"/etc/vipgate/raft/ca.pem", tlsf.CA,
			"/etc/vipgate/raft/"+name+".pem", tlsf.Cert,
			"/etc/vipgate/raft/"+name+"-key.pem", tlsf.Key,
			"/var/lib/vipgate", filepath.Join(l.dir, "data", name),
		).Replace(string(src))
		g.nodeFile = filepath.Join(etc, name+".yaml")
		if err := os.WriteFile(g.nodeFile, []byte(s), 0o600); err != nil {
			l.t.Fatal(err)
		}
		ns := g.host.NS
		g.api = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialIn(ns, network, addr, 2*time.Second)
			}}}
	}
}

func (l *lab) startNode(g *gateway) {
	g.p = l.start(g.host, g.name, l.dir, l.bin, "run", "--node", g.nodeFile)
}

func (g *gateway) get(path string, out any) error {
	resp, err := g.api.Get("http://127.0.0.1:9900" + path)
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

func (g *gateway) post(path string, body any) error {
	b, _ := json.Marshal(body)
	resp, err := g.api.Post("http://127.0.0.1:9900"+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	return nil
}

// cli runs the vipgate command line inside the node's namespace (its admin
// API is on the namespace's loopback).
func (l *lab) cli(g *gateway, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", g.host.NS, l.bin}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type raftStatus struct {
	State        string `json:"state"`
	Leader       string `json:"leader"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	Version      uint64 `json:"config_version"`
	Term         uint64 `json:"term"`
}

func (g *gateway) raft() (raftStatus, bool) {
	var s raftStatus
	err := g.get("/api/v1/status/raft", &s)
	return s, err == nil
}

type dcView struct {
	Active   string `json:"active"`
	Decision struct {
		DC     string    `json:"dc"`
		Reason string    `json:"reason"`
		Author string    `json:"author"`
		Time   time.Time `json:"time"`
		Index  uint64    `json:"index"`
	} `json:"decision"`
	Datacenters []struct {
		Name    string `json:"name"`
		Healthy *bool  `json:"healthy"`
		Reason  string `json:"reason"`
	} `json:"datacenters"`
	// Pushed is what the node's subsystems follow (cluster/state).
	Pushed struct {
		Active   string    `json:"active"`
		ActiveAt time.Time `json:"active_at"`
	} `json:"pushed"`
}

func (g *gateway) dcState() (dcView, bool) {
	var v dcView
	err := g.get("/api/v1/dc", &v)
	return v, err == nil
}

func (v dcView) healthy(name string) bool {
	for _, d := range v.Datacenters {
		if d.Name == name {
			return d.Healthy != nil && *d.Healthy
		}
	}
	return false
}

// serverStatus is the server's status as the node's proxy sees it.
func (g *gateway) serverStatus(backend, server string) string {
	var snap struct {
		Backends []struct {
			Name    string `json:"name"`
			Servers []struct {
				Name   string `json:"name"`
				Status string `json:"status"`
			} `json:"servers"`
		} `json:"backends"`
	}
	if err := g.get("/api/v1/stats", &snap); err != nil {
		return "?"
	}
	for _, b := range snap.Backends {
		if b.Name == backend {
			for _, s := range b.Servers {
				if s.Name == server {
					return s.Status
				}
			}
			return "absent"
		}
	}
	return "absent"
}

// vrrp returns (state, effective priority) of an instance on the node.
func (g *gateway) vrrp(instance string) (string, int) {
	var st []struct {
		Name     string `json:"name"`
		State    any    `json:"state"`
		Priority int    `json:"priority"`
	}
	if err := g.get("/api/v1/status/vrrp", &st); err != nil {
		return "?", 0
	}
	for _, s := range st {
		if s.Name == instance {
			return fmt.Sprint(s.State), s.Priority
		}
	}
	return "absent", 0
}

// stickHas reports whether the node's table holds the key (hex session ID).
func (g *gateway) stickHas(table, key string) bool {
	var out struct {
		Entries []struct {
			Key string `json:"key"`
		} `json:"entries"`
	}
	if err := g.get("/api/v1/stick/"+table+"?limit=1000000", &out); err != nil {
		return false
	}
	for _, e := range out.Entries {
		if strings.EqualFold(e.Key, key) {
			return true
		}
	}
	return false
}

// holder names the gateways whose namespace carries the datacenter's VIP.
func (l *lab) holder(dc string) string {
	var hs []string
	for _, name := range []string{"gw-a1", "gw-a2", "gw-b1", "gw-b2"} {
		if g := l.gws[name]; g.dc == dc && g.host.HasAddr(vip[dc]) {
			hs = append(hs, name)
		}
	}
	return strings.Join(hs, "+")
}

// dnsA asks server (from host h) for the A records of name.
func dnsA(h *testnet.Host, server, name string) ([]string, error) {
	c, err := dialIn(h.NS, "udp", server+":53", time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(400 * time.Millisecond))
	co := &mdns.Conn{Conn: c}
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	r, err := co.ReadMsg()
	if err != nil {
		return nil, err
	}
	if r.Rcode != mdns.RcodeSuccess {
		return nil, fmt.Errorf("rcode %s", mdns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*mdns.A); ok {
			out = append(out, a.A.String())
		}
	}
	sort.Strings(out)
	return out, nil
}

// answer is dnsA as one comma-separated string ("" on error).
func answer(h *testnet.Host, server string) string {
	a, err := dnsA(h, server, service)
	if err != nil {
		return ""
	}
	return strings.Join(a, ",")
}

// netemWorks reports whether the kernel has sch_netem (some VM kernels do
// not), trying it on the router's loopback.
func netemWorks(r *testnet.Host) bool {
	if _, err := r.Run("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"); err != nil {
		return false
	}
	_, _ = r.Run("tc", "qdisc", "del", "dev", "lo", "root")
	return true
}
