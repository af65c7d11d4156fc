package vrrp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vipgate/vipgate/cluster/vrrp"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testnet"
	"github.com/vipgate/vipgate/plugins/track"
)

// The namespace tests run every node as a real process in its own network
// namespace: the test binary re-executes itself (TestHelperVRRPNode) with
// the cluster document and node name in the environment, and keepalived
// runs beside it from the Debian package for the interop tests.

const echoPort = 7007

// TestHelperVRRPNode is not a test: it is a vipgate VRRP node when the
// harness starts this binary with VIPGATE_VRRP_HELPER set.
func TestHelperVRRPNode(t *testing.T) {
	cfgFile := os.Getenv("VIPGATE_VRRP_HELPER")
	if cfgFile == "" {
		t.Skip("helper process only")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := config.LoadFile(cfgFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	node := &config.Node{Name: os.Getenv("VIPGATE_VRRP_NODE"), Datacenter: "dc1", Role: config.RoleGateway}
	bus := events.New(node.Name, node.Datacenter)
	m := vrrp.NewManager(vrrp.Options{Node: node, Log: log, Bus: bus, Tracks: track.Factory(track.Options{Checks: health.NewRegistry()})})
	if err := m.Apply(c); err != nil {
		fmt.Fprintln(os.Stderr, "apply:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The service outlives the VRRP shutdown, as a draining proxy would:
	// the timing harness measures the VIP handover, not a dead service.
	ectx, ecancel := context.WithCancel(context.Background())
	defer ecancel()
	go echo(ectx)
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestHelperEcho is a UDP echo server for keepalived nodes.
func TestHelperEcho(t *testing.T) {
	if os.Getenv("VIPGATE_ECHO_HELPER") == "" {
		t.Skip("helper process only")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	echo(ctx)
	os.Exit(0)
}

// echo answers UDP probes and TCP connections on every address (so on
// the VIP while held).
func echo(ctx context.Context) {
	if ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", echoPort)); err == nil {
		go func() { <-ctx.Done(); ln.Close() }()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					b := make([]byte, 64)
					c.SetDeadline(time.Now().Add(5 * time.Second))
					if n, err := c.Read(b); err == nil {
						c.Write(b[:n])
					}
				}()
			}
		}()
	}
	pc, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", echoPort))
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		return
	}
	go func() { <-ctx.Done(); pc.Close() }()
	buf := make([]byte, 64)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(buf[:n], from)
	}
}

// proc is one node process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuf
	done chan struct{}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startProc(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, out: &syncBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Its own process group, so that kill reaches keepalived's VRRP child
	// in the same instant as its parent (see kill).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || testing.Verbose() {
			t.Logf("--- output of %s ---\n%s", name, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM (clean shutdown) and waits.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// kill is a crash: SIGKILL to the whole process group, no resignation,
// no cleanup. keepalived runs its VRRP speaker in a child that the parent
// would otherwise stop cleanly (priority 0) or respawn.
func (p *proc) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func selfExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// startVipgate runs a vipgate VRRP node for doc in host h.
func startVipgate(t *testing.T, h *testnet.Host, node, doc string) *proc {
	t.Helper()
	f := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadFile(f); err != nil {
		t.Fatalf("test config: %v", err)
	}
	cmd := h.Command(selfExe(t), "-test.run=^TestHelperVRRPNode$")
	cmd.Env = append(os.Environ(), "VIPGATE_VRRP_HELPER="+f, "VIPGATE_VRRP_NODE="+node)
	return startProc(t, "vipgate "+node, cmd)
}

// startKeepalived runs keepalived (VRRP only, foreground, console log)
// with conf in host h, plus an echo responder.
func startKeepalived(t *testing.T, h *testnet.Host, conf string) *proc {
	t.Helper()
	bin := testenv.RequireTool(t, "keepalived")
	dir := t.TempDir()
	f := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(bin, "-n", "-l", "-D", "-G", "-P", "-f", f,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
	p := startProc(t, "keepalived "+h.Name, cmd)
	ec := h.Command(selfExe(t), "-test.run=^TestHelperEcho$")
	ec.Env = append(os.Environ(), "VIPGATE_ECHO_HELPER=1")
	startProc(t, "echo "+h.Name, ec)
	return p
}

// keepalivedProtocolErrors returns log lines where keepalived complains
// about what it received.
func keepalivedProtocolErrors(log string) []string {
	bad := []string{"invalid", "bad ", "mismatch", "wrong", "error", "not present", "didn't", "unknown", "checksum", "ttl", "auth"}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		l := strings.ToLower(sc.Text())
		for _, b := range bad {
			if strings.Contains(l, b) && !strings.Contains(l, "configuration file") && !strings.Contains(l, "dbus") {
				out = append(out, sc.Text())
				break
			}
		}
	}
	return out
}

// vipWatch follows the VIP on several hosts through netlink, so that a
// moment when two hold it is seen, with its length.
type vipWatch struct {
	mu      sync.Mutex
	vip     net.IP
	holds   map[string]bool
	ignore  map[string]bool
	multi   time.Time // when more than one started holding, zero otherwise
	maxDual time.Duration
	changes int
}

func watchVIP(t *testing.T, vip string, hosts ...*testnet.Host) *vipWatch {
	t.Helper()
	w := &vipWatch{vip: net.ParseIP(vip), holds: map[string]bool{}, ignore: map[string]bool{}}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	for _, h := range hosts {
		ns, err := netns.GetFromName(h.NS)
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan netlink.AddrUpdate, 64)
		if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: &ns, ListExisting: true}); err != nil {
			t.Fatal(err)
		}
		name := h.Name
		go func() {
			defer ns.Close()
			for u := range ch {
				if u.LinkAddress.IP.Equal(w.vip) {
					w.set(name, u.NewAddr)
				}
			}
		}()
	}
	return w
}

func (w *vipWatch) set(host string, has bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holds[host] = has
	w.changes++
	w.update()
}

func (w *vipWatch) update() {
	n := 0
	for h, v := range w.holds {
		if v && !w.ignore[h] {
			n++
		}
	}
	now := time.Now()
	if n > 1 && w.multi.IsZero() {
		w.multi = now
	} else if n <= 1 && !w.multi.IsZero() {
		w.maxDual = max(w.maxDual, now.Sub(w.multi))
		w.multi = time.Time{}
	}
}

// crashed excludes a killed host: a SIGKILLed process cannot remove its
// addresses (nor can keepalived's), its namespace is as good as powered off.
func (w *vipWatch) crashed(host string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ignore[host] = true
	w.update()
}

func (w *vipWatch) revive(host string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.ignore, host)
	w.update()
}

// holder is the one host holding the VIP ("" for none, "a+b" for several).
func (w *vipWatch) holder() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var hs []string
	for h, v := range w.holds {
		if v && !w.ignore[h] {
			hs = append(hs, h)
		}
	}
	if len(hs) > 1 {
		slicesSort(hs)
	}
	return strings.Join(hs, "+")
}

func (w *vipWatch) dual() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.maxDual
	if !w.multi.IsZero() {
		d = max(d, time.Since(w.multi))
	}
	return d
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func waitHolder(t *testing.T, w *vipWatch, want string, d time.Duration) {
	t.Helper()
	testenv.Eventually(t, d, "VIP held by "+want+" only", func() bool { return w.holder() == want })
}

// prober sends a numbered UDP probe to the VIP every interval from the
// client namespace and records when answers come back, to measure the
// client-visible gap of a failover.
type prober struct {
	mu      sync.Mutex
	replies []time.Time
	conn    *net.UDPConn
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startProber(t *testing.T, client *testnet.Host, vip string, every time.Duration) *prober {
	t.Helper()
	conn := udpInNS(t, client.NS, vip)
	p := &prober{conn: conn, stop: make(chan struct{})}
	dst := &net.UDPAddr{IP: net.ParseIP(vip), Port: echoPort}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		tk := time.NewTicker(every)
		defer tk.Stop()
		var seq uint64
		b := make([]byte, 8)
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
			}
			seq++
			binary.BigEndian.PutUint64(b, seq)
			conn.WriteToUDP(b, dst) // errors (no route yet, ICMP) are gaps too
		}
	}()
	go func() {
		defer p.wg.Done()
		b := make([]byte, 64)
		for {
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			_, _, err := conn.ReadFromUDP(b)
			select {
			case <-p.stop:
				return
			default:
			}
			if err == nil {
				p.mu.Lock()
				p.replies = append(p.replies, time.Now())
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *prober) close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.wg.Wait()
	p.conn.Close()
}

func (p *prober) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.replies)
}

// gapAfter is the longest time without a reply after `from`.
func (p *prober) gapAfter(from time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gap time.Duration
	last := from
	for _, r := range p.replies {
		if r.Before(from) {
			continue
		}
		gap = max(gap, r.Sub(last))
		last = r
	}
	return gap
}

// udpInNS opens a UDP socket inside a named namespace; the socket keeps
// belonging to it after the thread returns to the test's namespace.
func udpInNS(t *testing.T, ns, vip string) *net.UDPConn {
	t.Helper()
	type res struct {
		c   *net.UDPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		// This thread's namespace is changed for good: never unlock it,
		// so the runtime retires the thread instead of reusing it.
		target, err := netns.GetFromName(ns)
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- res{err: err}
			return
		}
		// Unconnected: the echo server answers from the node's primary
		// address (it is bound to 0.0.0.0), not from the VIP.
		c, err := net.ListenUDP("udp4", &net.UDPAddr{})
		ch <- res{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("udp socket in %s: %v", ns, r.err)
	}
	return r.c
}

// TestKeepalivedErrorFilter keeps the interop tests' log check honest:
// keepalived's complaints about a peer are caught, its normal chatter not.
func TestKeepalivedErrorFilter(t *testing.T) {
	bad := []string{
		"(VI) received an invalid passwd!",
		"(VI) Invalid checksum",
		"(VI) advertisement interval mismatch mine=1000000 rcv'd=2000000",
		"(VI) ip address associated with VRID 51 not present in MASTER advert : 198.18.0.200",
		"(VI) wrong TTL",
	}
	good := []string{
		"(VI) Entering MASTER STATE",
		"(VI) received lower priority (100) advert from 198.18.0.1 - discarding",
		"(VI) Sending/queueing gratuitous ARPs on eth0 for 198.18.0.200",
		"(VI) Receive advertisement timeout",
	}
	for _, l := range bad {
		if len(keepalivedProtocolErrors(l)) != 1 {
			t.Errorf("not caught: %q", l)
		}
	}
	for _, l := range good {
		if e := keepalivedProtocolErrors(l); len(e) != 0 {
			t.Errorf("false alarm: %q", l)
		}
	}
}

// connProber opens a TCP connection to the VIP every interval from the
// client namespace, sends a byte and waits for the echo; it counts the
// connections that failed and those slower than 200ms (a lost SYN costs
// a 1s retransmission).
type connProber struct {
	stop             chan struct{}
	done             chan struct{}
	mu               sync.Mutex
	ok, failed, slow int
}

func startConnProber(t *testing.T, client *testnet.Host, vip string, every time.Duration) *connProber {
	t.Helper()
	p := &connProber{stop: make(chan struct{}), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer close(p.done)
		err := enterNS(client.NS)
		ready <- err
		if err != nil {
			return
		}
		addr := fmt.Sprintf("%s:%d", vip, echoPort)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
			start := time.Now()
			err := probeTCP(addr)
			d := time.Since(start)
			p.mu.Lock()
			switch {
			case err != nil:
				p.failed++
			case d > 200*time.Millisecond:
				p.slow++
			default:
				p.ok++
			}
			p.mu.Unlock()
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("client namespace: %v", err)
	}
	t.Cleanup(p.close)
	return p
}

// enterNS moves the calling goroutine's thread into namespace ns for
// good: it stays locked, so the runtime retires the thread afterwards
// instead of reusing it in the wrong namespace.
func enterNS(ns string) error {
	runtime.LockOSThread()
	h, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return netns.Set(h)
}

// probeTCP runs on the thread locked into the client namespace: net.Dial
// creates the socket synchronously on the calling thread, and the thread's
// namespace at socket creation is the socket's for good.
func probeTCP(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	b := make([]byte, 1)
	_, err = io.ReadFull(c, b)
	return err
}

func (p *connProber) counts() (ok, failed, slow int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ok, p.failed, p.slow
}

func (p *connProber) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
