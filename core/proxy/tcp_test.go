package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// testServer is a real TCP backend on loopback: it greets with its name,
// then echoes; on the client's FIN it finishes echoing and closes.
type testServer struct {
	name  string
	ln    net.Listener
	conns atomic.Int64
	// silent servers neither greet nor echo (for timeout tests).
	silent bool
	mu     sync.Mutex
	open   []net.Conn
}

func newTestServer(t testing.TB, name string) *testServer {
	t.Helper()
	return startTestServer(t, name, false)
}

func startTestServer(t testing.TB, name string, silent bool) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{name: name, ln: ln, silent: silent}
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) addr() string { return s.ln.Addr().String() }

func (s *testServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.open = append(s.open, c)
		s.mu.Unlock()
		go func() {
			defer c.Close()
			if s.silent {
				_, _ = io.Copy(io.Discard, c)
				return
			}
			fmt.Fprintf(c, "%s\n", s.name)
			_, _ = io.Copy(c, c)
			c.(*net.TCPConn).CloseWrite()
		}()
	}
}

// close stops the server and resets its connections (a killed backend).
func (s *testServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
}

// testNoEventLoop: this run keeps every tcp session on goroutines (make
// test runs the tcp tests a second time so, for the path that serves what
// the event loop cannot).
func testNoEventLoop() bool { return os.Getenv("VIPGATE_TEST_NO_EVENT_LOOP") != "" }

type harness struct {
	t   testing.TB
	p   *Proxy
	bus *events.Bus
	ctx context.Context
}

func startProxy(t testing.TB, doc string) *harness {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return startProxyWith(t, c, nil)
}

// startProxyWith runs a proxy on c; setup, when given, runs before the
// first Apply (hook resolvers, persistence).
func startProxyWith(t testing.TB, c *config.Cluster, setup func(*Proxy)) *harness {
	t.Helper()
	return startProxyOpts(t, c, Options{}, setup)
}

// startProxyOpts is startProxyWith with options (a logger to read the
// access log from).
func startProxyOpts(t testing.TB, c *config.Cluster, opts Options, setup func(*Proxy)) *harness {
	t.Helper()
	bus := events.New("test", "dc1")
	opts.Bus = bus
	opts.NoEventLoop = opts.NoEventLoop || testNoEventLoop()
	p := New(opts)
	if setup != nil {
		setup(p)
	}
	if err := p.Apply(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &harness{t: t, p: p, bus: bus, ctx: ctx}
}

func (h *harness) addr(fe string) string {
	h.t.Helper()
	a := h.p.ListenAddrs()[fe]
	if len(a) == 0 {
		h.t.Fatalf("frontend %s not listening", fe)
	}
	return a[0]
}

func (h *harness) apply(doc string) error {
	c, err := config.Parse("test.yaml", []byte(doc))
	if err != nil {
		h.t.Fatalf("config:\n%v", err)
	}
	return h.p.Apply(c)
}

// greet connects through the proxy and returns the backend's name.
func greet(t testing.TB, addr string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func TestTCPWeightedDistribution(t *testing.T) {
	a, b, c := newTestServer(t, "a"), newTestServer(t, "b"), newTestServer(t, "c")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    servers:
      - {name: a, address: "%s", weight: 1}
      - {name: b, address: "%s", weight: 2}
      - {name: c, address: "%s", weight: 3}
`, a.addr(), b.addr(), c.addr()))
	counts := map[string]int{}
	for i := 0; i < 600; i++ {
		name, err := greet(t, h.addr("fe"))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		counts[name]++
	}
	if counts["a"] != 100 || counts["b"] != 200 || counts["c"] != 300 {
		t.Fatalf("distribution %v, want a:100 b:200 c:300", counts)
	}
	if got := h.p.Server("be", "c").Counters.TotalSessions.Load(); got != 300 {
		t.Fatalf("server c counted %d sessions", got)
	}
}

func TestTCPBackupOnlyWhenNoNormalServer(t *testing.T) {
	n1, bk := newTestServer(t, "normal"), newTestServer(t, "backup")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    servers:
      - {name: n1, address: "%s"}
      - {name: bk, address: "%s", backup: true}
`, n1.addr(), bk.addr()))
	for i := 0; i < 10; i++ {
		if name, _ := greet(t, h.addr("fe")); name != "normal" {
			t.Fatalf("got %q while the normal server is up", name)
		}
	}
	sub := h.bus.Subscribe("t", 16, nil)
	h.p.Server("be", "n1").SetHealth(upstream.Down, "test")
	for i := 0; i < 10; i++ {
		if name, _ := greet(t, h.addr("fe")); name != "backup" {
			t.Fatalf("got %q with the normal server down", name)
		}
	}
	h.p.Server("be", "bk").SetHealth(upstream.Down, "test")
	select {
	case e := <-sub.C:
		if e.Kind != events.BackendEmpty || e.Attr("backend") != "be" {
			t.Fatalf("event %+v, want backend.empty for be", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no backend.empty event")
	}
	if _, err := greet(t, h.addr("fe")); err == nil {
		t.Fatal("connection served with every server down")
	}
	h.p.Server("be", "n1").SetHealth(upstream.Up, "test")
	if name, _ := greet(t, h.addr("fe")); name != "normal" {
		t.Fatalf("got %q after the normal server came back", name)
	}
}

// TestTCPRetriesRedispatch: a dead server is invisible to clients when
// retries and redispatch are on.
func TestTCPRetriesRedispatch(t *testing.T) {
	live := newTestServer(t, "live")
	dead := newTestServer(t, "dead")
	dead.close()
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    retries: 1
    redispatch: true
    servers:
      - {name: dead, address: "%s"}
      - {name: live, address: "%s"}
`, dead.addr(), live.addr()))
	for i := 0; i < 50; i++ {
		name, err := greet(t, h.addr("fe"))
		if err != nil || name != "live" {
			t.Fatalf("connection %d: %q, %v", i, name, err)
		}
	}
	s := h.p.Server("be", "dead")
	if s.Counters.ConnErrors.Load() == 0 || s.Counters.Redispatches.Load() == 0 {
		t.Fatalf("dead server: conn errors %d, redispatches %d", s.Counters.ConnErrors.Load(), s.Counters.Redispatches.Load())
	}
	// Without redispatch the client sees the failure.
	if err := h.apply(fmt.Sprintf(`
frontends: [{name: fe, bind: "%s", default_backend: be}]
backends:
  - name: be
    retries: 1
    redispatch: false
    balance: {algorithm: first}
    servers:
      - {name: dead, address: "%s"}
      - {name: live, address: "%s"}
`, h.addr("fe"), dead.addr(), live.addr())); err != nil {
		t.Fatal(err)
	}
	if name, err := greet(t, h.addr("fe")); err == nil {
		t.Fatalf("without redispatch, a connection to the dead first server succeeded (served by %q)", name)
	}
}

func TestTCPQueueAtMaxConn(t *testing.T) {
	srv := newTestServer(t, "s")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    timeouts: {queue: 10s}
    servers: [{name: s, address: "%s", maxconn: 1}]
`, srv.addr()))
	c1, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	r1 := bufio.NewReader(c1)
	if l, _ := r1.ReadString('\n'); l != "s\n" {
		t.Fatalf("first: %q", l)
	}
	c2, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	b := h.p.Backend("be")
	testenv.Eventually(t, 5*time.Second, "second connection queued", func() bool { return b.Counters.Queued.Load() == 1 })
	if srv.conns.Load() != 1 {
		t.Fatalf("server has %d connections while maxconn is 1", srv.conns.Load())
	}
	c1.Close()
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	if l, err := bufio.NewReader(c2).ReadString('\n'); l != "s\n" {
		t.Fatalf("queued connection after release: %q, %v", l, err)
	}
}

func TestTCPQueueTimeout(t *testing.T) {
	srv := newTestServer(t, "s")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    timeouts: {queue: 100ms}
    servers: [{name: s, address: "%s", maxconn: 1}]
`, srv.addr()))
	c1, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	bufio.NewReader(c1).ReadString('\n')
	_, err = greet(t, h.addr("fe"))
	if err == nil {
		t.Fatal("second connection served past maxconn")
	}
	if n := h.p.Backend("be").Counters.QueueTimeouts.Load(); n != 1 {
		t.Fatalf("queue timeouts %d, want 1", n)
	}
}

// expectClosedBy asserts that the proxy closes c within limit (the timeout
// under test fired) and not before min (it did not fire early).
func expectClosedBy(t *testing.T, c net.Conn, min, limit time.Duration) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %s", limit)
		}
		if el := time.Since(start); el < min {
			t.Fatalf("closed after %s, before the %s timeout", el, min)
		}
		return
	}
}

func TestTCPTimeouts(t *testing.T) {
	t.Run("client and server idle", func(t *testing.T) {
		srv := startTestServer(t, "s", true)
		h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, timeouts: {client: 200ms}}]
backends: [{name: be, timeouts: {server: 200ms}, servers: [{name: s, address: "%s"}]}]
`, srv.addr()))
		c, err := net.Dial("tcp", h.addr("fe"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		expectClosedBy(t, c, 150*time.Millisecond, 10*time.Second)
	})
	t.Run("tunnel overrides client and server", func(t *testing.T) {
		srv := newTestServer(t, "s")
		h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, timeouts: {client: 1h}}]
backends: [{name: be, timeouts: {server: 1h, tunnel: 300ms}, servers: [{name: s, address: "%s"}]}]
`, srv.addr()))
		c, err := net.Dial("tcp", h.addr("fe"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		r.ReadString('\n')
		// Traffic keeps the tunnel open past its timeout...
		for i := 0; i < 6; i++ {
			if i > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Fprintf(c, "ping%d\n", i)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if l, err := r.ReadString('\n'); err != nil || l != fmt.Sprintf("ping%d\n", i) {
				t.Fatalf("echo %d: %q %v", i, l, err)
			}
		}
		// ...then silence closes it, a tunnel timeout after the last
		// traffic (less a margin for the echo's way back).
		expectClosedBy(t, c, 250*time.Millisecond, 10*time.Second)
	})
	t.Run("connect", func(t *testing.T) {
		// A listener whose accept queue is full drops SYNs: the connect hangs.
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Listen(fd, 0); err != nil {
			t.Fatal(err)
		}
		sa, _ := syscall.Getsockname(fd)
		port := sa.(*syscall.SockaddrInet4).Port
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		// Fill the queue.
		for i := 0; i < 4; i++ {
			d := net.Dialer{Timeout: 200 * time.Millisecond}
			if c, err := d.Dial("tcp", addr); err == nil {
				defer c.Close()
			}
		}
		h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, retries: 0, timeouts: {connect: 200ms}, servers: [{name: s, address: "%s"}]}]
`, addr))
		c, err := net.Dial("tcp", h.addr("fe"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		expectClosedBy(t, c, 150*time.Millisecond, 10*time.Second)
		if n := h.p.Server("be", "s").Counters.ConnErrors.Load(); n != 1 {
			t.Fatalf("connect errors %d, want 1", n)
		}
	})
}

// TestTCPHalfClose: the client's FIN reaches the server, and the server's
// answer still reaches the client afterwards.
func TestTCPHalfClose(t *testing.T) {
	srv := newTestServer(t, "s")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, srv.addr()))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := strings.Repeat("x", 3<<20) // several splice chunks
	go func() {
		io.WriteString(c, payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "s\n"+payload {
		t.Fatalf("got %d bytes, want %d", len(got), len("s\n")+len(payload))
	}
	fe := h.p.Frontends()[0]
	testenv.Eventually(t, 5*time.Second, "byte counters", func() bool {
		return fe.Counters.BytesIn.Load() == uint64(len(payload)) && fe.Counters.BytesOut.Load() == uint64(len(got))
	})
}

func TestTCPShutdownSessions(t *testing.T) {
	srv := newTestServer(t, "s")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, srv.addr()))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bufio.NewReader(c).ReadString('\n')
	if n := h.p.Server("be", "s").KillSessions(); n != 1 {
		t.Fatalf("killed %d sessions, want 1", n)
	}
	expectClosedBy(t, c, 0, 5*time.Second)
}

// withProcs runs the test with GOMAXPROCS n, so that on Linux a bind gets
// n sockets (listenShards) whatever the machine's core count.
func withProcs(t *testing.T, n int) {
	old := runtime.GOMAXPROCS(n)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// TestTCPReloadKeepsConnections: an established connection survives a
// reload that changes its backend, the listener is never closed, and a
// removed frontend stops accepting.
func TestTCPReloadKeepsConnections(t *testing.T) {
	withProcs(t, 4)
	a, b := newTestServer(t, "a"), newTestServer(t, "b")
	doc := func(fe, srv string, extra string) string {
		return fmt.Sprintf(`
frontends:
  - {name: fe, bind: "%s", default_backend: be}
%s
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, fe, extra, srv)
	}
	h := startProxy(t, doc("127.0.0.1:0", a.addr(), ""))
	addr := h.addr("fe")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	r.ReadString('\n')

	// Clients connecting during 20 reloads are never refused.
	stop := make(chan struct{})
	var failures atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := greet(t, addr); err != nil {
				failures.Add(1)
				t.Logf("connection during reload: %v", err)
			}
		}
	}()
	for i := 0; i < 20; i++ {
		srv := a.addr()
		if i%2 == 0 {
			srv = b.addr()
		}
		if err := h.apply(doc(addr, srv, "")); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d connections failed during reloads", n)
	}
	fmt.Fprintln(c, "still here")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := r.ReadString('\n'); l != "still here\n" {
		t.Fatalf("established connection after reloads: %q %v", l, err)
	}

	// A second frontend added then removed.
	if err := h.apply(doc(addr, b.addr(), `  - {name: extra, bind: "127.0.0.1:0", default_backend: be}`)); err != nil {
		t.Fatal(err)
	}
	extra := h.addr("extra")
	if name, err := greet(t, extra); err != nil || name != "b" {
		t.Fatalf("new frontend: %q %v", name, err)
	}
	if err := h.apply(doc(addr, b.addr(), "")); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", extra, time.Second); err == nil {
		t.Fatal("removed frontend still accepts")
	}
}

func TestTCPPortInUseIsSurvived(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	srv := newTestServer(t, "s")
	c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
frontends:
  - {name: busy, bind: "%s", default_backend: be}
  - {name: ok, bind: "127.0.0.1:0", default_backend: be}
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, busy.Addr(), srv.addr())))
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{})
	err = p.Apply(c)
	if err == nil || !strings.Contains(err.Error(), `frontend "busy"`) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("want an address-in-use error naming the frontend, got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	addrs := p.ListenAddrs()["ok"]
	if len(addrs) != 1 {
		t.Fatalf("healthy frontend not listening: %v", p.ListenAddrs())
	}
	if name, err := greet(t, addrs[0]); err != nil || name != "s" {
		t.Fatalf("healthy frontend: %q %v", name, err)
	}
	if ok, why := p.LocalHealthy(nil); ok {
		t.Fatalf("LocalHealthy true with a frontend not listening (%s)", why)
	}
}

func TestTCPFrontendMaxConn(t *testing.T) {
	srv := newTestServer(t, "s")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, maxconn: 1}]
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, srv.addr()))
	c1, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(c1).ReadString('\n')
	// The second client waits in the accept queue: no greeting yet.
	c2, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := bufio.NewReader(c2).ReadString('\n'); err == nil {
		t.Fatal("second client served beyond frontend maxconn 1")
	}
	c1.Close()
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := bufio.NewReader(c2).ReadString('\n'); l != "s\n" {
		t.Fatalf("after the first left: %q %v", l, err)
	}
}

func TestTCPRulesBySource(t *testing.T) {
	a, b := newTestServer(t, "a"), newTestServer(t, "b")
	h := startProxy(t, fmt.Sprintf(`
frontends:
  - name: fe
    bind: "127.0.0.1:0"
    default_backend: other
    rules:
      - {backend: local, src: [127.0.0.0/8]}
backends:
  - {name: local, servers: [{name: a, address: "%s"}]}
  - {name: other, servers: [{name: b, address: "%s"}]}
`, a.addr(), b.addr()))
	if name, _ := greet(t, h.addr("fe")); name != "a" {
		t.Fatalf("loopback client routed to %q, want a (src rule)", name)
	}
}

func TestProxyProtocolRoundTrip(t *testing.T) {
	srcs := []string{"192.0.2.1:1234", "[2001:db8::1]:443"}
	for _, v := range []string{"v1", "v2"} {
		for _, s := range srcs {
			src, _ := net.ResolveTCPAddr("tcp", s)
			dst, _ := net.ResolveTCPAddr("tcp", strings.Replace(s, "1234", "80", 1))
			a, b := net.Pipe()
			go func() {
				writeProxyHeader(a, v, src, dst)
				a.Write([]byte("payload"))
				a.Close()
			}()
			c, err := readProxyHeader(b)
			if err != nil {
				t.Fatalf("%s %s: %v", v, s, err)
			}
			if c.RemoteAddr().String() != src.String() {
				t.Fatalf("%s: source %s, want %s", v, c.RemoteAddr(), src)
			}
			rest, _ := io.ReadAll(c)
			if string(rest) != "payload" {
				t.Fatalf("%s: payload %q", v, rest)
			}
		}
	}
	for _, bad := range []string{"GET / HTTP/1.1\r\n\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n", "PROXY TCP4 1.2.3.4\r\n"} {
		a, b := net.Pipe()
		go func() { a.Write([]byte(bad + strings.Repeat(" ", 20))); a.Close() }()
		if _, err := readProxyHeader(b); err == nil {
			t.Fatalf("accepted bad header %q", bad)
		}
	}
}

// benchPaths runs bench once per way of serving tcp sessions: the event
// loop and goroutines (proxy.event_loop: false), each on a proxy with one
// frontend, fe, in front of the server at addr.
func benchPaths(b *testing.B, addr string, bench func(b *testing.B, h *harness)) {
	doc := fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, addr)
	for _, path := range []struct {
		name   string
		noLoop bool
	}{{"loop", false}, {"goroutines", true}} {
		b.Run(path.name, func(b *testing.B) {
			c, err := config.Parse("bench.yaml", []byte(doc))
			if err != nil {
				b.Fatal(err)
			}
			bench(b, startProxyOpts(b, c, Options{NoEventLoop: path.noLoop}, nil))
		})
	}
}

// BenchmarkTCPRelay measures bulk throughput through the proxy (splice).
func BenchmarkTCPRelay(b *testing.B) {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	benchPaths(b, sink.Addr().String(), func(b *testing.B, h *harness) {
		c, err := net.Dial("tcp", h.addr("fe"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		b.SetBytes(int64(len(buf)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTCPRoundTrip measures small request/response exchanges on an
// established session (the keep-alive case: one read and one write per
// direction and message).
func BenchmarkTCPRoundTrip(b *testing.B) {
	srv := newTestServer(b, "s")
	benchPaths(b, srv.addr(), func(b *testing.B, h *harness) {
		c, err := net.Dial("tcp", h.addr("fe"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		msg := []byte("0123456789abcdef0123456789abcdef\n")
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil { // the greeting
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTCPConnect measures connections per second through the proxy
// (accept, pick, dial, greet, close).
func BenchmarkTCPConnect(b *testing.B) {
	srv := newTestServer(b, "s")
	benchPaths(b, srv.addr(), func(b *testing.B, h *harness) {
		addr := h.addr("fe")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := greet(b, addr); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTCPLocalDatacenterFirst: servers of the node's datacenter take the
// traffic; the other datacenter's only when no local one is usable, and
// backups last.
func TestTCPLocalDatacenterFirst(t *testing.T) {
	l, r, bk := newTestServer(t, "local"), newTestServer(t, "remote"), newTestServer(t, "backup")
	c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
datacenters: [{name: dc1}, {name: dc2}]
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    servers:
      - {name: r, address: "%s", datacenter: dc2}
      - {name: l, address: "%s", datacenter: dc1}
      - {name: bk, address: "%s", backup: true}
`, r.addr(), l.addr(), bk.addr())))
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{Datacenter: "dc1"})
	if err := p.Apply(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	addr := p.ListenAddrs()["fe"][0]
	expect := func(want string) {
		t.Helper()
		for i := 0; i < 5; i++ {
			if name, err := greet(t, addr); name != want {
				t.Fatalf("got %q (%v), want %q", name, err, want)
			}
		}
	}
	expect("local")
	p.Server("be", "l").SetHealth(upstream.Down, "test")
	expect("remote")
	p.Server("be", "r").SetAdmin(upstream.Maint)
	expect("backup")
}

// A client that gave up (reset) while its session waited in the queue: once
// a server slot frees, the relay finds the client gone and ends at once,
// rather than holding the slot until timeout server while it waits for a
// server that has nothing to say (the aborted direction's deadline used to
// be overwritten by the other direction's first one).
func TestTCPClientGoneWhileQueued(t *testing.T) {
	srv := startTestServer(t, "s", true)
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    timeouts: {queue: 30s, server: 1h}
    servers: [{name: s, address: "%s", maxconn: 1}]
`, srv.addr()))
	c1, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	testenv.Eventually(t, 5*time.Second, "the first session at the server", func() bool { return srv.conns.Load() == 1 })
	c2, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	b := h.p.Backend("be")
	testenv.Eventually(t, 5*time.Second, "second connection queued", func() bool { return b.Counters.Queued.Load() == 1 })
	_ = c2.(*net.TCPConn).SetLinger(0)
	c2.Close() // a reset: the client gave up
	c1.Close()
	testenv.Eventually(t, 5*time.Second, "the dequeued session at the server", func() bool { return srv.conns.Load() == 2 })
	testenv.Eventually(t, 10*time.Second, "both sessions over", func() bool { return h.p.Conns() == 0 })
	if n := h.p.Server("be", "s").Counters.CurSessions.Load(); n != 0 {
		t.Fatalf("the server still counts %d sessions", n)
	}
}
