//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy/evloop"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// loopRegs is the number of descriptors registered on the proxy's event
// loops (listening sockets and session sockets), read on each loop.
func loopRegs(t *testing.T, p *Proxy) int {
	t.Helper()
	p.loops.mu.Lock()
	loops := p.loops.loops
	p.loops.mu.Unlock()
	n := 0
	for _, tl := range loops {
		ch := make(chan int, 1)
		tl.lp.Post(func() { ch <- tl.lp.Len() })
		select {
		case k := <-ch:
			n += k
		case <-time.After(10 * time.Second):
			t.Fatal("an event loop does not run posted work")
		}
	}
	return n
}

// echoLine writes a line through c and reads it back.
func echoLine(t *testing.T, c net.Conn, r *bufio.Reader, s string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s\n", s)
	if l, err := r.ReadString('\n'); err != nil || l != s+"\n" {
		t.Fatalf("echo of %q: %q %v", s, l, err)
	}
}

// dialGreeted connects through the proxy and reads the server's greeting.
func dialGreeted(t *testing.T, addr, want string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if l, err := r.ReadString('\n'); err != nil || l != want+"\n" {
		t.Fatalf("greeting: %q %v, want %q", l, err, want)
	}
	return c, r
}

// A plain tcp frontend's sessions live on the event loops (two descriptors
// each, gone when the session ends); a frontend the loop cannot serve (a
// PROXY header to send) keeps its sessions on goroutines.
func TestLoopServesPlainSessions(t *testing.T) {
	if testNoEventLoop() {
		t.Skip("event loop disabled for this run")
	}
	s := newTestServer(t, "s")
	pp := proxyHeaderServer(t)
	h := startProxy(t, fmt.Sprintf(`
frontends:
  - {name: plain, bind: "127.0.0.1:0", default_backend: be}
  - {name: proxied, bind: "127.0.0.2:0", default_backend: pp}
backends:
  - {name: be, servers: [{name: s, address: %q}]}
  - {name: pp, send_proxy: v1, servers: [{name: p, address: %q}]}
`, s.addr(), pp))
	plain := h.p.Frontend("plain")
	if !plain.loopable() || h.p.Frontend("proxied").loopable() {
		t.Fatalf("loopable: plain %v, proxied %v; want true, false", plain.loopable(), h.p.Frontend("proxied").loopable())
	}
	c, r := dialGreeted(t, h.addr("plain"), "s")
	echoLine(t, c, r, "hello")
	base := loopRegs(t, h.p)
	if base < 3 { // the plain listener, and this session's two sockets
		t.Fatalf("%d descriptors on the loops with a session open, want at least 3", base)
	}
	c2, r2 := dialGreeted(t, h.addr("proxied"), "PROXY TCP4")
	echoLine(t, c2, r2, "through a goroutine")
	if n := loopRegs(t, h.p); n != base {
		t.Fatalf("a goroutine-path session changed the loops' registrations: %d, want %d", n, base)
	}
	c.Close()
	testenv.Eventually(t, 5*time.Second, "the session's sockets leave the loop", func() bool { return loopRegs(t, h.p) == base-2 })
	testenv.Eventually(t, 5*time.Second, "the plain frontend's session count back to 0", func() bool {
		return plain.Counters.CurSessions.Load() == 0
	})
}

// lineServer is a backend on loopback that reads each connection's first
// line and hands it, with the connection, to serve; it returns the address.
func lineServer(t *testing.T, serve func(c net.Conn, r *bufio.Reader, first string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testenv.ServeListener(t, ln, func(c net.Conn) {
		r := bufio.NewReader(c)
		if l, err := r.ReadString('\n'); err == nil {
			serve(c, r, l)
		}
	})
	return ln.Addr().String()
}

// proxyHeaderServer is a backend that answers with the PROXY header it
// received (its first line, truncated to the protocol), then echoes.
func proxyHeaderServer(t *testing.T) string {
	t.Helper()
	return lineServer(t, func(c net.Conn, r *bufio.Reader, l string) {
		if strings.HasPrefix(l, "PROXY TCP4") {
			l = "PROXY TCP4\n"
		} else {
			l = "NO PROXY HEADER\n"
		}
		fmt.Fprint(c, l)
		_, _ = io.Copy(c, r)
	})
}

// A reload to a frontend the loop cannot serve takes the listening socket
// back to the goroutine accept loop, and a reload back hands it over again;
// sessions opened before each reload keep working, and no connection made
// around the reloads is refused.
func TestLoopReloadMovesListener(t *testing.T) {
	pp := proxyHeaderServer(t)
	plainDoc := fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: p, address: %q}]}]
`, pp)
	h := startProxy(t, plainDoc)
	addr := h.addr("fe")
	proxiedDoc := strings.Replace(strings.Replace(plainDoc, "{name: be,", "{name: be, send_proxy: v1,", 1), "127.0.0.1:0", addr, 1)
	plainDoc = strings.Replace(plainDoc, "127.0.0.1:0", addr, 1)

	first := func(want string) (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "hi\n")
		r := bufio.NewReader(c)
		if l, err := r.ReadString('\n'); err != nil || l != want {
			t.Fatalf("first line %q %v, want %q", l, err, want)
		}
		if strings.HasPrefix(want, "PROXY") {
			// The server took the header for its first line: "hi" comes back.
			if l, err := r.ReadString('\n'); err != nil || l != "hi\n" {
				t.Fatalf("echo of hi: %q %v", l, err)
			}
		}
		return c, r
	}
	// firstReply is the server's first line to a new connection; no
	// connection may be refused or cut while the listener changes hands.
	firstReply := func(round int) string {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("round %d: connection refused during the reload: %v", round, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "hi\n")
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		return l
	}
	old, oldR := first("NO PROXY HEADER\n")
	for round := range 3 {
		if err := h.apply(proxiedDoc); err != nil {
			t.Fatal(err)
		}
		// The listener may still be on the loop for one connection (the
		// accept loop takes it back at its next accept): poll until the
		// goroutine path answers.
		testenv.Eventually(t, 5*time.Second, "new sessions carry a PROXY header", func() bool {
			return firstReply(round) == "PROXY TCP4\n"
		})
		prox, proxR := first("PROXY TCP4\n")
		echoLine(t, old, oldR, fmt.Sprintf("old still relayed %d", round))
		if err := h.apply(plainDoc); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "new sessions back on the loop", func() bool {
			return firstReply(round) == "NO PROXY HEADER\n"
		})
		echoLine(t, prox, proxR, fmt.Sprintf("goroutine session kept %d", round))
		echoLine(t, old, oldR, fmt.Sprintf("loop session kept %d", round))
		if !testNoEventLoop() && !h.p.Frontend("fe").loopable() {
			t.Fatal("the plain frontend is not served by the loop")
		}
	}
}

// patternServer reads the client's bytes to their FIN, then sends size
// bytes of a pattern and closes; it reports the digest of what it read.
func patternServer(t *testing.T, size int) (string, chan [32]byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan [32]byte, 8)
	testenv.ServeListener(t, ln, func(c net.Conn) {
		defer c.Close()
		hs := sha256.New()
		if _, err := io.Copy(hs, c); err != nil {
			return
		}
		var sum [32]byte
		copy(sum[:], hs.Sum(nil))
		got <- sum
		_, _ = io.Copy(c, io.LimitReader(newPattern(), int64(size)))
	})
	return ln.Addr().String(), got
}

// patternReader yields a byte pattern, a function of the position only
// (so any chunking reads the same bytes), not periodic on any buffer size
// the relay uses.
type patternReader struct{ off *int }

func newPattern() patternReader { return patternReader{off: new(int)} }

func (p patternReader) Read(b []byte) (int, error) {
	for k := range b {
		i := *p.off + k
		b[k] = byte(i*7 + i/251)
	}
	*p.off += len(b)
	return len(b), nil
}

func patternDigest(r io.Reader, size int) [32]byte {
	hs := sha256.New()
	_, _ = io.Copy(hs, io.LimitReader(r, int64(size)))
	var sum [32]byte
	copy(sum[:], hs.Sum(nil))
	return sum
}

// Bulk both ways (splice), half-close (the client's FIN reaches the server
// while the response still flows), and a slow reader (the server outruns
// the client: the loop must hold and resume, not drop or reorder): every
// byte arrives, in order, and both ends see the FINs.
func TestLoopBulkHalfCloseAndBackpressure(t *testing.T) {
	const up, down = 3<<20 + 17, 8<<20 + 5
	srv, got := patternServer(t, down)
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: %q}]}]
`, srv))
	for _, slow := range []bool{false, true} {
		c, err := net.DialTimeout("tcp", h.addr("fe"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		// What the client sends, also hashed on the way.
		want := patternDigest(io.LimitReader(newPattern(), up), up)
		go func() {
			_, _ = io.Copy(c, io.LimitReader(newPattern(), up))
			c.(*net.TCPConn).CloseWrite()
		}()
		var r io.Reader = c
		if slow {
			r = &slowReader{r: c}
		}
		if d := patternDigest(r, down+1); d != patternDigest(newPattern(), down) {
			t.Fatalf("slow=%v: the response arrived altered", slow)
		}
		select {
		case sum := <-got:
			if sum != want {
				t.Fatalf("slow=%v: the request arrived altered", slow)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the server never saw the request's end")
		}
		c.Close()
	}
}

// slowReader reads in small pieces with pauses, so the proxy's writes to
// the client fill its socket buffers and have to wait for room.
type slowReader struct {
	r io.Reader
	n int
}

func (s *slowReader) Read(b []byte) (int, error) {
	if len(b) > 1500 {
		b = b[:1500]
	}
	s.n++
	if s.n%512 == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	return s.r.Read(b)
}

// A server that resets the connection ends the session at once (SD in the
// log), and a graceful stop's hard end (CloseConns) cuts a relayed session
// (KD), on whichever path serves it.
func TestLoopResetAndCloseConns(t *testing.T) {
	srv := lineServer(t, func(c net.Conn, r *bufio.Reader, l string) {
		if l == "reset\n" {
			_ = c.(*net.TCPConn).SetLinger(0) // close sends a RST
			c.Close()
			return
		}
		fmt.Fprint(c, l)
		_, _ = io.Copy(c, r)
	})
	h, out := startJSONProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, log: true}]
backends: [{name: be, servers: [{name: s, address: %q}]}]
`, srv))
	c, err := net.DialTimeout("tcp", h.addr("fe"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "reset\n")
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatalf("read %d bytes after the server's reset, want the connection closed", n)
	}
	c2, r2 := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", h.addr("fe"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}()
	echoLine(t, c2, r2, "kept")
	testenv.Eventually(t, 5*time.Second, "the reset session over", func() bool { return h.p.Conns() == 1 })
	if n := h.p.CloseConns(); n != 1 {
		t.Fatalf("CloseConns closed %d connections, want 1", n)
	}
	_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := r2.ReadString('\n'); err == nil {
		t.Fatal("the session survived CloseConns")
	}
	var recs []map[string]any
	testenv.Eventually(t, 5*time.Second, "two access records", func() bool {
		recs = jsonRecords(t, out)
		return len(recs) == 2
	})
	for i, want := range []string{"SD", "KD"} {
		if recs[i]["termination_state"] != want {
			t.Errorf("session %d: termination_state %v, want %s (%v)", i, recs[i]["termination_state"], want, recs[i]["msg"])
		}
	}
	// The log line is written before the session leaves the live set.
	testenv.Eventually(t, 5*time.Second, "no connection counted any more", func() bool { return h.p.Conns() == 0 })
}

// Small messages toward a server that does not read for a while: the
// relay's writes stop short, the rest is held (not dropped, not
// reordered) and delivered once the server reads.
func TestLoopHoldsSmallWrites(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	got := make(chan []byte, 1)
	testenv.ServeListener(t, ln, func(c net.Conn) {
		<-start
		b, _ := io.ReadAll(c)
		got <- b
	})
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: %q}]}]
`, ln.Addr().String()))
	c, err := net.DialTimeout("tcp", h.addr("fe"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var want bytes.Buffer
	// Paced so that the proxy reads them one by one (short reads: no
	// switch to splice), until well past what the server's buffers take.
	for i := range 1500 {
		m := fmt.Sprintf("%05d %s\n", i, strings.Repeat("x", 90))
		want.WriteString(m)
		if _, err := io.WriteString(c, m); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
	close(start)
	c.(*net.TCPConn).CloseWrite()
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("the server got %d bytes, want %d, or in another order", len(b), want.Len())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server never got the whole stream")
	}
}

// The relay's own buffering, white-box: a session between two socket
// pairs, the server side's send buffer tiny and the server not reading.
// Each small message is read on its own (the test waits for the loop to
// take it), so writes toward the server stop short and the rest is held;
// the client's next messages wait in its socket. Once the server reads,
// everything arrives, in order, and the session ends on the FINs.
func TestLoopRelayHoldsPartialWrites(t *testing.T) {
	if testNoEventLoop() {
		t.Skip("event loop disabled for this run")
	}
	h := startProxy(t, `
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: "127.0.0.1:9"}]}]
`)
	f := h.p.Frontend("fe")
	b := f.Backend("be")
	tl := h.p.loops.get(h.ctx, 0, 1, h.p.log)
	pair := func() (int, int) {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fds[0], fds[1]
	}
	client, proxyC := pair()
	proxyS, server := pair()
	_ = syscall.SetsockoptInt(proxyS, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
	clientF, serverF := os.NewFile(uintptr(client), "client"), os.NewFile(uintptr(server), "server")
	defer clientF.Close()
	defer serverF.Close()

	f.slots <- struct{}{}
	s := &loopSession{h: f.handler.(*tcpHandler), f: f, b: b, tl: tl, cfd: proxyC, sfd: proxyS}
	s.tcpSession = tcpSession{start: time.Now(), tw: -1, tc: -1, term: "--"}
	s.cside, s.sside = loopSide{s, false}, loopSide{s, true}
	s.timer = evloop.NewTimer(s.onTimer)
	s.lc = h.p.live.add(s)
	f.Counters.SessionStart()
	h.p.conns.Add(1)
	s.lease = Lease{Server: b.Servers[0]}
	onLoop := func(fn func()) {
		t.Helper()
		ch := make(chan struct{})
		tl.lp.Post(func() { fn(); close(ch) })
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("the loop does not run posted work")
		}
	}
	onLoop(func() {
		var err error
		if s.ctok, err = tl.lp.Add(proxyC, &s.cside); err != nil {
			t.Error(err)
		}
		if s.stok, err = tl.lp.Add(proxyS, &s.sside); err != nil {
			t.Error(err)
		}
		s.state = loopConnecting
		s.connected(0)
	})
	var want bytes.Buffer
	held := false
	for i := 0; !held || i < 50; i++ {
		if i > 5000 {
			t.Fatal("5000 messages and the relay never held back")
		}
		m := fmt.Sprintf("%05d %s\n", i, strings.Repeat("y", 200))
		want.WriteString(m)
		if _, err := clientF.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		// Wait until the loop took it, or holds bytes (then the client's
		// socket keeps the rest).
		testenv.Eventually(t, 5*time.Second, "the loop reads the message or holds", func() bool {
			var inq int
			var blocked bool
			onLoop(func() {
				inq, _ = unix.IoctlGetInt(proxyC, unix.SIOCINQ)
				blocked = s.up.blocked && len(s.up.pend) > 0
			})
			held = held || blocked
			return inq == 0 || blocked
		})
	}
	var spliced bool
	onLoop(func() { spliced = s.up.splice })
	if spliced {
		t.Fatal("one message at a time, yet the relay switched to splice")
	}
	_ = syscall.Shutdown(client, syscall.SHUT_WR)
	got, err := io.ReadAll(serverF)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the server got %d bytes, want %d, or in another order", len(got), want.Len())
	}
	_ = syscall.Shutdown(server, syscall.SHUT_WR)
	testenv.Eventually(t, 5*time.Second, "the session ends on both FINs", func() bool { return h.p.Conns() == 0 })
}

// Which frontends the loops serve, and the reason given for the others;
// the path is logged when a config changes it, not on every apply.
func TestLoopEligibility(t *testing.T) {
	tests := []struct {
		name, fe, be, why string
	}{
		{"plain", "", "", ""},
		{"log and keepalive", "log: true, tcp_keepalive: true, ", "tcp_keepalive: true, ", ""},
		{"accept_proxy", "accept_proxy: true, ", "", "accept_proxy"},
		{"send_proxy", "", "send_proxy: v2, ", "backend be: send_proxy"},
		{"source", "", "source: {address: 127.0.0.1}, ", "backend be: source"},
		{"sni rules", "inspect_delay: 1s, rules: [{backend: be, sni: [a.example]}], ", "", "inspect_delay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", %sdefault_backend: be}]
backends: [{name: be, %sservers: [{name: s, address: "127.0.0.1:9"}]}]
`, tc.fe, tc.be)))
			if err != nil {
				t.Fatal(err)
			}
			p := New(Options{})
			t.Cleanup(p.Drain) // closes the listeners
			if err := p.Apply(c); err != nil {
				t.Fatal(err)
			}
			h := p.Frontend("fe").handler.(*tcpHandler)
			if tc.why == "" && h.loopWhy != "" || !strings.HasPrefix(h.loopWhy, tc.why) {
				t.Fatalf("reason %q, want %q", h.loopWhy, tc.why)
			}
			if h.loopOK != (tc.why == "") {
				t.Fatalf("loopOK %v with reason %q", h.loopOK, h.loopWhy)
			}
		})
	}
	t.Run("a server named by host name", func(t *testing.T) {
		c, err := config.Parse("t.yaml", []byte(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: "localhost:9"}]}]
`))
		if err != nil {
			t.Fatal(err)
		}
		p := New(Options{})
		t.Cleanup(p.Drain)
		if err := p.Apply(c); err != nil {
			t.Fatal(err)
		}
		if why := p.Frontend("fe").handler.(*tcpHandler).loopWhy; !strings.Contains(why, "host name") {
			t.Fatalf("reason %q", why)
		}
	})
	t.Run("logged on change only", func(t *testing.T) {
		out := &testenv.LogBuffer{}
		p := New(Options{Log: slog.New(slog.NewTextHandler(out, nil))})
		t.Cleanup(p.Drain)
		apply := func(be string) {
			c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, %sservers: [{name: s, address: "127.0.0.1:9"}]}]
`, be)))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Apply(c); err != nil {
				t.Fatal(err)
			}
		}
		apply("")
		apply("")
		apply("send_proxy: v1, ")
		apply("send_proxy: v1, ")
		apply("")
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if strings.Contains(l, "tcp sessions") {
				got = append(got, l)
			}
		}
		if len(got) != 3 || !strings.Contains(got[0], "on the event loops") ||
			!strings.Contains(got[1], `reason="backend be: send_proxy"`) || !strings.Contains(got[2], "on the event loops") {
			t.Fatalf("path log lines:\n%s", strings.Join(got, "\n"))
		}
	})
}

// panicOnce is stick persistence whose first Lookup panics (a bug in code
// the session runs before its first event).
type panicOnce struct{ n atomic.Int32 }

func (p *panicOnce) Lookup(*ConnInfo) *upstream.Server {
	if p.n.Add(1) == 1 {
		panic("lookup bug")
	}
	return nil
}
func (p *panicOnce) StoreRequest(*ConnInfo, *upstream.Server)          {}
func (p *panicOnce) WantsResponse() bool                               { return false }
func (p *panicOnce) StoreResponse(*ConnInfo, *upstream.Server, []byte) {}
func (p *panicOnce) NeedsInspection() bool                             { return false }

// A panic while a session is being set up (on the loop: in the acceptor's
// event) ends that session as serveConn's recover does on the goroutine
// path: the client is closed and its maxconn slot, connection count and
// live entry are given back, so the next client (maxconn 1) is served.
func TestLoopPanicAtSetUpEndsSession(t *testing.T) {
	s := newTestServer(t, "s")
	c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
stick_tables: [{name: t, type: ip, size: 100}]
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, maxconn: 1}]
backends: [{name: be, stick: {table: t, on: src}, servers: [{name: s, address: %q}]}]
`, s.ln.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	per := &panicOnce{}
	h := startProxyWith(t, c, func(p *Proxy) {
		p.SetPersistFactory(func(*config.Backend, ServerLookup) (Persister, error) { return per, nil })
	})
	c1, err := net.DialTimeout("tcp", h.addr("fe"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	_ = c1.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := c1.Read(make([]byte, 16)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the session whose set-up panicked: read %d, %v; want it closed", n, err)
	}
	testenv.Eventually(t, 5*time.Second, "the panicked session's books closed", func() bool { return h.p.Conns() == 0 })
	dialGreeted(t, h.addr("fe"), "s")
}

// The loop decodes the client's address and port from accept4 itself and
// connects servers by address, IPv4 and IPv6 alike: the rules see the
// client's address, the log its port, and the session reaches the server.
func TestLoopAddresses(t *testing.T) {
	for _, fam := range []struct{ name, host, network string }{{"ipv4", "127.0.0.1", "tcp4"}, {"ipv6", "::1", "tcp6"}} {
		t.Run(fam.name, func(t *testing.T) {
			ln, err := net.Listen(fam.network, net.JoinHostPort(fam.host, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", fam.name, err)
			}
			testenv.ServeListener(t, ln, func(c net.Conn) {
				fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
				_, _ = io.Copy(c, c)
			})
			bind := net.JoinHostPort(fam.host, "0")
			h, out := startJSONProxy(t, fmt.Sprintf(`
frontends:
  - name: fe
    bind: %q
    log: true
    rules: [{backend: be, src: [%q]}]
backends: [{name: be, servers: [{name: s, address: %q}]}]
`, bind, fam.host+"/"+map[string]string{"ipv4": "32", "ipv6": "128"}[fam.name], ln.Addr().String()))
			if !h.p.Frontend("fe").loopable() && !testNoEventLoop() {
				t.Fatal("the frontend is not served by the loop")
			}
			c, r := dialGreeted(t, h.addr("fe"), net.ParseIP(fam.host).String())
			echoLine(t, c, r, "through "+fam.name)
			port := c.LocalAddr().(*net.TCPAddr).Port
			c.Close()
			var recs []map[string]any
			testenv.Eventually(t, 5*time.Second, "the access record", func() bool {
				recs = jsonRecords(t, out)
				return len(recs) == 1
			})
			if recs[0]["client_ip"] != net.ParseIP(fam.host).String() || recs[0]["client_port"] != float64(port) {
				t.Fatalf("logged client %v:%v, want %s:%d", recs[0]["client_ip"], recs[0]["client_port"], fam.host, port)
			}
		})
	}
}

// blackhole is a listening address whose accept queue is full, so that the
// kernel drops the SYNs of further connections: a connect to it hangs.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	filler, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filler.Close() })
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Skip("this kernel accepts past a full accept queue")
	}
	return addr
}

// timeout connect on the loop: each attempt that gets no answer is given
// up after it, retried, and the session ends as SC with every attempt
// booked on the server.
func TestLoopConnectTimeout(t *testing.T) {
	h, out := startJSONProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, log: true}]
backends: [{name: be, retries: 1, timeouts: {connect: 200ms}, servers: [{name: s, address: %q}]}]
`, blackhole(t)))
	c, err := net.DialTimeout("tcp", h.addr("fe"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatalf("read %d bytes from a session whose server never answered", n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the session ended after %v, want about two connect timeouts", d)
	}
	var recs []map[string]any
	testenv.Eventually(t, 5*time.Second, "the access record", func() bool {
		recs = jsonRecords(t, out)
		return len(recs) == 1
	})
	if recs[0]["termination_state"] != "SC" {
		t.Errorf("termination_state %v, want SC (%v)", recs[0]["termination_state"], recs[0]["msg"])
	}
	s := h.p.Server("be", "s")
	if n := s.Counters.ConnErrors.Load(); n != 2 {
		t.Errorf("%d connection errors booked, want 2 (one retry)", n)
	}
	if n := s.Counters.Retries.Load(); n != 1 {
		t.Errorf("%d retries booked, want 1", n)
	}
	testenv.Eventually(t, 5*time.Second, "the session's books closed", func() bool { return h.p.Conns() == 0 })
}
