package dr_test

// End to end in network namespaces: a client, two vipgate directors (a
// VRRP pair) and two real servers running nginx with the VIP on lo and
// the ARP sysctls, all on one segment (198.18.40.0/24).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testnet"
)

const (
	seg = "198.18.40."
	vip = seg + "100"
)

type lab struct {
	t       *testing.T
	dir     string
	bin     string
	client  *testnet.Host
	dirs    map[string]*testnet.Host // d1, d2
	srvs    map[string]*testnet.Host // s1, s2
	mu      sync.Mutex
	procs   map[string]*exec.Cmd
	done    map[string]chan struct{}
	cluster string
	// datapath is the directors' dr.datapath (xdp or af_packet).
	datapath string
}

// datapaths: every netns test runs once with each datapath forced.
var datapaths = []string{"xdp", "af_packet"}

// eachDatapath runs test as a subtest per datapath.
func eachDatapath(t *testing.T, test func(t *testing.T, datapath string)) {
	for _, dp := range datapaths {
		t.Run(dp, func(t *testing.T) { test(t, dp) })
	}
}

func buildVipgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vipgate")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/vipgate/vipgate/cmd/vipgate")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// clusterDoc is the directors' configuration: a VRRPv3 pair (d1 master)
// holding the VIP, a tcp and a udp service forwarded in mode dr.
const clusterDoc = `
vrrp:
  instances:
    - name: vi1
      interface: eth0
      vrid: 51
      version: 3
      advert_interval: 100ms
      priority: 100
      priorities: {d1: 200, d2: 100}
      vips: ["198.18.40.100/24"]
frontends:
  - name: web
    mode: dr
    bind: "198.18.40.100:80"
    default_backend: web
  - name: dns
    mode: dr
    protocol: udp
    bind: "198.18.40.100:53"
    default_backend: dns
backends:
  - name: web
    check: {inter: 200ms, rise: 1, fall: 2}
    servers:
      - {name: s1, address: "198.18.40.21:80"}
      - {name: s2, address: "198.18.40.22:80"}
  - name: dns
    check: {kind: tcp, port: 80, inter: 200ms, rise: 1, fall: 2}
    servers:
      - {name: s1, address: "198.18.40.21:53"}
      - {name: s2, address: "198.18.40.22:53"}
`

func newLab(t *testing.T, datapath string) *lab {
	testenv.RequireRoot(t)
	for _, tool := range []string{"nginx", "curl", "nsd", "dig", "ethtool"} {
		testenv.RequireTool(t, tool)
	}
	n := testnet.New(t)
	dir, err := os.MkdirTemp("/tmp", "vipgate-dr-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	l := &lab{t: t, dir: dir, bin: buildVipgate(t), dirs: map[string]*testnet.Host{}, srvs: map[string]*testnet.Host{},
		procs: map[string]*exec.Cmd{}, done: map[string]chan struct{}{}, datapath: datapath}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("DR_KEEP") != "" {
			fmt.Printf("logs kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	t.Cleanup(l.stopAll)
	l.client = n.AddHost("client", seg+"50/24")
	for i, name := range []string{"d1", "d2"} {
		l.dirs[name] = n.AddHost(name, fmt.Sprintf("%s%d/24", seg, 11+i))
		// The kernel must not route the VIP's packets itself: d1 does not
		// route at all, d2 does (a router too), and vipgate gives the VIP
		// a blackhole route there.
		l.dirs[name].MustRun(t, "sh", "-c", fmt.Sprintf("echo %d > /proc/sys/net/ipv4/conf/all/forwarding", i))
		// As a NIC does by default: received segments are aggregated
		// (GRO), so the director gets frames above the MTU to send on.
		l.dirs[name].MustRun(t, "ethtool", "-K", "eth0", "gro", "on")
	}
	for i, name := range []string{"s1", "s2"} {
		h := n.AddHost(name, fmt.Sprintf("%s%d/24", seg, 21+i))
		l.srvs[name] = h
		// What every real server of a DR service needs (docs/forwarding.md).
		h.MustRun(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore && echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce && "+
			"echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_ignore && echo 2 > /proc/sys/net/ipv4/conf/eth0/arp_announce")
		h.MustRun(t, "ip", "addr", "add", vip+"/32", "dev", "lo")
		l.startNginx(name)
		l.startNSD(name)
	}
	l.cluster = filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(l.cluster, []byte(clusterDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"d1", "d2"} {
		l.startDirector(name)
	}
	return l
}

func (l *lab) start(h *testnet.Host, name string, args ...string) {
	l.t.Helper()
	lf, err := os.OpenFile(filepath.Join(l.dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := h.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(done) }()
	l.mu.Lock()
	l.procs[name], l.done[name] = cmd, done
	l.mu.Unlock()
}

// kill stops a process with sig and waits for it.
func (l *lab) kill(name string, sig syscall.Signal) {
	l.mu.Lock()
	cmd, done := l.procs[name], l.done[name]
	l.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (l *lab) stopAll() {
	l.mu.Lock()
	names := make([]string, 0, len(l.procs))
	for n := range l.procs {
		names = append(names, n)
	}
	l.mu.Unlock()
	for _, n := range names {
		l.kill(n, syscall.SIGTERM)
	}
}

func (l *lab) startNginx(name string) {
	d := filepath.Join(l.dir, name)
	_ = os.MkdirAll(filepath.Join(d, "tmp"), 0o755)
	// A large file for the downloads (4 MiB).
	big := strings.Repeat(strings.Repeat("x", 1023)+"\n", 4096)
	if err := os.WriteFile(filepath.Join(d, "big"), []byte(big), 0o644); err != nil {
		l.t.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  log_format who '$remote_addr $request';
  access_log %[1]s/access.log who;
  default_type text/plain;
  client_max_body_size 0;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  server {
    listen 80;
    root %[1]s;
    location = /who { return 200 "%[2]s\n"; }
    location = /slow { alias %[1]s/big; limit_rate 512k; }
  }
}
`, d, name)
	if err := os.WriteFile(filepath.Join(d, "nginx.conf"), []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.start(l.srvs[name], "nginx-"+name, "nginx", "-c", filepath.Join(d, "nginx.conf"), "-e", filepath.Join(d, "error.log"))
	l.eventually(10*time.Second, "nginx on "+name, func() bool {
		_, err := l.srvs[name].Run("curl", "-sf", "-m", "1", "http://"+l.srvIP(name)+"/who")
		return err == nil
	})
}

// startNSD runs an authoritative server for dr.test on the VIP: each
// answers TXT who.dr.test with its own name.
func (l *lab) startNSD(name string) {
	d := filepath.Join(l.dir, "nsd-"+name)
	_ = os.MkdirAll(d, 0o755)
	zone := fmt.Sprintf("$ORIGIN dr.test.\n$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\nns IN A %s\nwho IN TXT \"%s\"\n", vip, name)
	conf := fmt.Sprintf(`server:
  ip-address: %[2]s
  port: 53
  username: ""
  chroot: ""
  zonesdir: "%[1]s"
  database: ""
  pidfile: "%[1]s/nsd.pid"
  xfrdfile: "%[1]s/xfrd.state"
  zonelistfile: "%[1]s/zone.list"
  logfile: "%[1]s/nsd.log"
  server-count: 1
  verbosity: 2
remote-control:
  control-enable: no
zone:
  name: dr.test
  zonefile: "%[1]s/dr.test.zone"
`, d, vip)
	_ = os.WriteFile(filepath.Join(d, "dr.test.zone"), []byte(zone), 0o644)
	_ = os.WriteFile(filepath.Join(d, "nsd.conf"), []byte(conf), 0o644)
	l.start(l.srvs[name], "nsd-"+name, "nsd", "-d", "-c", filepath.Join(d, "nsd.conf"))
	l.eventually(10*time.Second, "nsd on "+name, func() bool {
		out, err := l.srvs[name].Run("dig", "+short", "+time=1", "+tries=1", "@"+vip, "who.dr.test", "TXT")
		return err == nil && strings.Contains(out, name)
	})
}

func (l *lab) srvIP(name string) string {
	return map[string]string{"s1": seg + "21", "s2": seg + "22"}[name]
}

func (l *lab) startDirector(name string) {
	d := filepath.Join(l.dir, name)
	_ = os.MkdirAll(d, 0o755)
	node := fmt.Sprintf("name: %s\ndatacenter: dc1\ndata_dir: %s\nadmin: {listen: \"127.0.0.1:9900\"}\nlog: {level: debug}\ndr: {datapath: %s}\n", name, d, l.datapath)
	nf := filepath.Join(d, "node.yaml")
	if err := os.WriteFile(nf, []byte(node), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.start(l.dirs[name], name, l.bin, "run", "--node", nf, "--config", l.cluster)
}

func (l *lab) eventually(d time.Duration, what string, f func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			if os.Getenv("DR_HOLD") != "" {
				fmt.Println("HOLDING", l.dir)
				time.Sleep(120 * time.Second)
			}
			l.t.Fatalf("timed out after %s waiting for %s (logs in %s)", d, what, l.dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get fetches path through the VIP from the client; body and error.
func (l *lab) get(path string) (string, error) {
	out, err := l.client.Command("curl", "-sf", "-m", "3", "http://"+vip+path).Output()
	return string(out), err
}

type serverStats struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	BytesIn   uint64 `json:"bin"`
	BytesOut  uint64 `json:"bout"`
	PacketsIn uint64 `json:"pin"`
	TotalSess uint64 `json:"stot"`
}

// stats reads a director's counters of one backend's servers.
func (l *lab) stats(director, backend string) (map[string]serverStats, error) {
	out, err := l.dirs[director].Command("curl", "-sf", "-m", "2", "http://127.0.0.1:9900/api/v1/stats").Output()
	if err != nil {
		return nil, err
	}
	var snap struct {
		Backends []struct {
			Name    string        `json:"name"`
			Servers []serverStats `json:"servers"`
		} `json:"backends"`
	}
	if err := json.Unmarshal(out, &snap); err != nil {
		return nil, err
	}
	m := map[string]serverStats{}
	for _, b := range snap.Backends {
		if b.Name == backend {
			for _, s := range b.Servers {
				m[s.Name] = s
			}
		}
	}
	return m, nil
}

func (l *lab) vrrpState(director string) string {
	out, err := l.dirs[director].Command("curl", "-sf", "-m", "2", "http://127.0.0.1:9900/api/v1/status").Output()
	if err != nil {
		return ""
	}
	var st struct {
		VRRP []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"vrrp"`
	}
	if json.Unmarshal(out, &st) != nil || len(st.VRRP) == 0 {
		return ""
	}
	return st.VRRP[0].State
}

func (l *lab) waitMaster(director string) {
	l.t.Helper()
	l.eventually(15*time.Second, director+" VRRP master", func() bool { return strings.EqualFold(l.vrrpState(director), "MASTER") })
}

// rxBytes is what a host's eth0 received so far.
func rxBytes(t *testing.T, h *testnet.Host) uint64 {
	out := h.MustRun(t, "cat", "/sys/class/net/eth0/statistics/rx_bytes")
	n, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// drLink is a director's status section dr, one interface.
type drLink struct {
	Interface, Datapath string
	Services            []string
	Forwarded           uint64 `json:"forwarded_frames"`
	XDPForwarded        uint64 `json:"xdp_forwarded_frames"`
	XDPMode             string `json:"xdp_mode"`
}

func (l *lab) drStatus(director string) []drLink {
	out, err := l.dirs[director].Command("curl", "-sf", "-m", "2", "http://127.0.0.1:9900/api/v1/status/dr").Output()
	var links []drLink
	if err != nil || json.Unmarshal(out, &links) != nil {
		return nil
	}
	return links
}

// xdpAttached: an XDP program is on the director's eth0.
func (l *lab) xdpAttached(director string) bool {
	return strings.Contains(l.dirs[director].MustRun(l.t, "ip", "link", "show", "eth0"), "xdp")
}

func TestDirectRoutingTCP(t *testing.T) { eachDatapath(t, testDirectRoutingTCP) }

func testDirectRoutingTCP(t *testing.T, datapath string) {
	l := newLab(t, datapath)
	l.waitMaster("d1")
	l.eventually(10*time.Second, "the backup director", func() bool { return strings.EqualFold(l.vrrpState("d2"), "BACKUP") })
	// The kernel of the master does not own the VIP.
	if l.dirs["d1"].HasAddr(vip) {
		t.Fatalf("the VIP %s is a local address of the director: the kernel would answer for it", vip)
	}
	// The director that forwards IPv4 (d2) routes the VIP to a blackhole;
	// the other needs none.
	for name, want := range map[string]bool{"d1": false, "d2": true} {
		out := l.dirs[name].MustRun(t, "ip", "route", "show", "type", "blackhole")
		if strings.Contains(out, vip) != want {
			t.Fatalf("%s: blackhole routes %q, want the VIP's: %v", name, out, want)
		}
	}

	// Both servers answer through the VIP (maglev spreads the flows).
	seen := map[string]int{}
	l.eventually(20*time.Second, "answers from both servers through the VIP", func() bool {
		body, err := l.get("/who")
		if err == nil {
			seen[strings.TrimSpace(body)]++
		}
		return seen["s1"] > 0 && seen["s2"] > 0
	})
	for name := range seen {
		if name != "s1" && name != "s2" {
			t.Fatalf("unexpected answer %q", name)
		}
	}

	// The servers see the client's own address.
	for _, s := range []string{"s1", "s2"} {
		b, err := os.ReadFile(filepath.Join(l.dir, s, "access.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), seg+"50 GET /who") {
			t.Fatalf("%s's access log does not show the client's address:\n%s", s, b)
		}
	}

	// The reply does not cross the director: a 4 MiB download moves the
	// director's received bytes and its per-server counters by the
	// client's ACKs only.
	before, err := l.stats("d1", "web")
	if err != nil {
		t.Fatal(err)
	}
	rx0 := rxBytes(t, l.dirs["d1"])
	out, err := l.client.Command("curl", "-sf", "-m", "20", "-o", "/dev/null", "-w", "%{size_download}", "http://"+vip+"/big").Output()
	if err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(4096*1024) {
		t.Fatalf("download through the VIP: %v, %q bytes", err, out)
	}
	rx := rxBytes(t, l.dirs["d1"]) - rx0
	after, err := l.stats("d1", "web")
	if err != nil {
		t.Fatal(err)
	}
	var fwd, pkts uint64
	for _, s := range []string{"s1", "s2"} {
		fwd += after[s].BytesIn - before[s].BytesIn
		pkts += after[s].PacketsIn - before[s].PacketsIn
	}
	if pkts == 0 || fwd == 0 {
		t.Fatalf("the director's counters did not move: %+v -> %+v", before, after)
	}
	if rx > 1<<20 || fwd > 1<<20 {
		t.Fatalf("the director received %d bytes and forwarded %d for a 4 MiB download: the reply crossed it", rx, fwd)
	}
	t.Logf("4 MiB download: the director received %d bytes, forwarded %d bytes in %d packets", rx, fwd, pkts)
	// The status section says which datapath forwards, where, and with
	// XDP that the kernel forwarded the download's ACKs (the counters are
	// read from the program's map each second).
	var last []drLink
	l.eventually(5*time.Second, "status dr naming the "+datapath+" datapath", func() bool {
		last = l.drStatus("d1")
		return len(last) == 1 && last[0].Interface == "eth0" && last[0].Datapath == datapath && len(last[0].Services) == 2 &&
			last[0].Forwarded >= pkts && (datapath != "xdp" || last[0].XDPForwarded > 0) &&
			// veth: the generic hook (docs/forwarding.md).
			last[0].XDPMode == map[string]string{"xdp": "generic", "af_packet": ""}[datapath]
	})
	if got := l.xdpAttached("d1"); got != (datapath == "xdp") {
		t.Fatalf("an XDP program on d1's eth0: %v, with datapath %s", got, datapath)
	}
	t.Logf("status dr on d1: %+v", last)

	// An upload (the client's direction, aggregated by GRO on the
	// director) reaches the server whole.
	up := filepath.Join(l.dir, "upload")
	if err := os.WriteFile(up, []byte(strings.Repeat("u", 4<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ = l.stats("d1", "web")
	body, err := l.client.Command("curl", "-sf", "-m", "20", "--data-binary", "@"+up, "http://"+vip+"/who").Output()
	if err != nil || (strings.TrimSpace(string(body)) != "s1" && strings.TrimSpace(string(body)) != "s2") {
		t.Fatalf("a 4 MiB upload through the VIP: %v, %q", err, body)
	}
	l.eventually(5*time.Second, "the upload's bytes in d1's counters", func() bool {
		after, _ = l.stats("d1", "web")
		return after["s1"].BytesIn+after["s2"].BytesIn-before["s1"].BytesIn-before["s2"].BytesIn >= 4<<20
	})

	// A server killed is taken out by its check: every new flow goes to
	// the other one.
	l.kill("nginx-s1", syscall.SIGKILL)
	l.eventually(10*time.Second, "s1 marked down on d1", func() bool {
		st, err := l.stats("d1", "web")
		return err == nil && st["s1"].Health == "DOWN"
	})
	for i := 0; i < 10; i++ {
		body, err := l.get("/who")
		if err != nil || strings.TrimSpace(body) != "s2" {
			t.Fatalf("request %d with s1 down: %q, %v", i, body, err)
		}
	}
	l.startNginx("s1")
	l.eventually(10*time.Second, "s1 back up on both directors", func() bool {
		a, err1 := l.stats("d1", "web")
		b, err2 := l.stats("d2", "web")
		return err1 == nil && err2 == nil && a["s1"].Health == "UP" && b["s1"].Health == "UP"
	})

	// A long download survives the master's death: the backup takes the
	// VIP and places the flow where the master did (maglev, same servers).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dl := exec.CommandContext(ctx, "ip", "netns", "exec", l.client.NS, "curl", "-sf", "-m", "50", "-o", "/dev/null", "-w", "%{size_download}", "http://"+vip+"/slow")
	type res struct {
		out []byte
		err error
	}
	resc := make(chan res, 1)
	go func() { o, err := dl.Output(); resc <- res{o, err} }()
	// Let the download run on d1 for a while (its flow counted there).
	l.eventually(10*time.Second, "the download's flow on d1", func() bool {
		st, err := l.stats("d1", "web")
		return err == nil && st["s1"].PacketsIn+st["s2"].PacketsIn > after["s1"].PacketsIn+after["s2"].PacketsIn+50
	})
	select {
	case r := <-resc:
		t.Fatalf("the download ended before the failover: %v, %q", r.err, r.out)
	default:
	}
	l.kill("d1", syscall.SIGKILL)
	// The program goes with the process, however it ended.
	if l.xdpAttached("d1") {
		t.Fatal("an XDP program is still on d1's eth0 after vipgate was killed")
	}
	l.waitMaster("d2")
	select {
	case r := <-resc:
		if r.err != nil || strings.TrimSpace(string(r.out)) != strconv.Itoa(4096*1024) {
			t.Fatalf("the download across the failover: %v, %q bytes of %d", r.err, r.out, 4096*1024)
		}
	case <-ctx.Done():
		t.Fatal("the download did not finish")
	}
	st, err := l.stats("d2", "web")
	if err != nil || st["s1"].PacketsIn+st["s2"].PacketsIn == 0 {
		t.Fatalf("d2 forwarded nothing after the failover: %+v %v", st, err)
	}
	// And new requests work through the new master.
	if _, err := l.get("/who"); err != nil {
		t.Fatalf("a request after the failover: %v", err)
	}
}

func TestDirectRoutingUDP(t *testing.T) { eachDatapath(t, testDirectRoutingUDP) }

func testDirectRoutingUDP(t *testing.T, datapath string) {
	l := newLab(t, datapath)
	l.waitMaster("d1")
	// Each query has a source port of its own, and the phases below never
	// share one: a UDP flow lives 5 minutes on the server it was placed on
	// (LVS's udp timeout), so a later query from a port an earlier one
	// used would follow that flow, even to a server since marked down.
	seen := map[string]int{}
	port := 41000
	l.eventually(20*time.Second, "DNS answers from both servers through the VIP", func() bool {
		port++
		out, err := l.client.Run("dig", "-b", seg+"50#"+strconv.Itoa(port), "+short", "+time=1", "+tries=1", "@"+vip, "who.dr.test", "TXT")
		if err == nil {
			seen[strings.Trim(strings.TrimSpace(out), `"`)]++
		}
		return seen["s1"] > 0 && seen["s2"] > 0
	})
	st, err := l.stats("d1", "dns")
	if err != nil || st["s1"].PacketsIn == 0 || st["s2"].PacketsIn == 0 {
		t.Fatalf("d1's dns counters: %+v %v", st, err)
	}
	// A server whose check fails gets no more queries.
	l.kill("nginx-s2", syscall.SIGKILL) // the dns backend's check is s2's port 80
	l.eventually(10*time.Second, "s2 marked down", func() bool {
		st, err := l.stats("d1", "dns")
		return err == nil && st["s2"].Health == "DOWN"
	})
	for i := 0; i < 10; i++ {
		out, err := l.client.Run("dig", "-b", seg+"50#"+strconv.Itoa(43000+i), "+short", "+time=2", "+tries=1", "@"+vip, "who.dr.test", "TXT")
		if err != nil || strings.Trim(strings.TrimSpace(out), `"`) != "s1" {
			t.Fatalf("query %d with s2 down: %q, %v", i, out, err)
		}
	}
	// Queries from one source port are one flow: its first packet is
	// placed in user space, the next ones (with XDP) stay in the kernel.
	for i := 0; i < 5; i++ {
		out, err := l.client.Run("dig", "-b", seg+"50#40053", "+short", "+time=2", "+tries=1", "@"+vip, "who.dr.test", "TXT")
		if err != nil || strings.Trim(strings.TrimSpace(out), `"`) != "s1" {
			t.Fatalf("query %d from port 40053: %q, %v", i, out, err)
		}
	}
	if datapath == "xdp" {
		l.eventually(5*time.Second, "queries forwarded by the XDP program", func() bool {
			st := l.drStatus("d1")
			return len(st) == 1 && st[0].Datapath == "xdp" && st[0].XDPForwarded > 0
		})
	}
	if datapath == "xdp" {
		l.reloadDetaches()
	}
	// A graceful stop detaches the program.
	l.kill("d1", syscall.SIGTERM)
	if l.xdpAttached("d1") {
		t.Fatal("an XDP program is still on d1's eth0 after vipgate stopped")
	}
}

// xdpPrograms counts the XDP programs a director holds (its BPF program
// descriptors of type XDP: `ip netns exec` execs vipgate, so the pid is
// vipgate's).
func (l *lab) xdpPrograms(director string) int {
	l.mu.Lock()
	pid := l.procs[director].Process.Pid
	l.mu.Unlock()
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		l.t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "prog_type" && strings.TrimSpace(v) == strconv.Itoa(int(ebpf.XDP)) {
				n++
			}
		}
	}
	return n
}

// reloadDetaches: a reload that takes the last mode dr frontend off d1's
// interface detaches and unloads its program; one that brings them back
// loads one again, and reloads leak none.
func (l *lab) reloadDetaches() {
	t := l.t
	if n := l.xdpPrograms("d1"); n != 1 {
		t.Fatalf("d1 holds %d XDP programs, want 1", n)
	}
	hup := func(doc string) {
		if err := os.WriteFile(l.cluster, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		p := l.procs["d1"].Process
		l.mu.Unlock()
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	noDR := clusterDoc[:strings.Index(clusterDoc, "frontends:")] + "frontends: []\n" + clusterDoc[strings.Index(clusterDoc, "backends:"):]
	hup(noDR)
	l.eventually(10*time.Second, "d1 without mode dr frontends", func() bool {
		st := l.drStatus("d1")
		return st != nil && len(st) == 0 && !l.xdpAttached("d1")
	})
	if n := l.xdpPrograms("d1"); n != 0 {
		t.Fatalf("d1 holds %d XDP programs after it dropped its frontends, want none", n)
	}
	hup(clusterDoc)
	l.eventually(10*time.Second, "d1 forwarding with XDP again", func() bool {
		st := l.drStatus("d1")
		return len(st) == 1 && st[0].Datapath == "xdp" && l.xdpAttached("d1")
	})
	if n := l.xdpPrograms("d1"); n != 1 {
		t.Fatalf("d1 holds %d XDP programs after the frontends came back, want 1", n)
	}
	l.eventually(10*time.Second, "a query through the VIP after the reloads", func() bool {
		out, err := l.client.Run("dig", "+short", "+time=1", "+tries=1", "@"+vip, "who.dr.test", "TXT")
		return err == nil && strings.Contains(out, "s1")
	})
}
