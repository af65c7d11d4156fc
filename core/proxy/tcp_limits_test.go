package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestTCPBackendMaxConnAndMaxQueue: the backend-wide maxconn queues the
// next connection even though its servers have room, and max_queue refuses
// one more at once instead of letting it wait.
func TestTCPBackendMaxConnAndMaxQueue(t *testing.T) {
	s1, s2 := newTestServer(t, "s1"), newTestServer(t, "s2")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    maxconn: 1
    max_queue: 1
    timeouts: {queue: 10s}
    servers: [{name: s1, address: %q}, {name: s2, address: %q}]
`, s1.addr(), s2.addr()))
	b := h.p.Backend("be")
	_, first := hold(t, h.addr("fe"))
	queued, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()
	testenv.Eventually(t, 5*time.Second, "second connection queued", func() bool { return b.Counters.Queued.Load() == 1 })
	if s1.conns.Load()+s2.conns.Load() != 1 {
		t.Fatalf("servers have %d connections while the backend's maxconn is 1", s1.conns.Load()+s2.conns.Load())
	}
	// The queue is full: the third is refused without waiting.
	if name, err := greet(t, h.addr("fe")); err == nil {
		t.Fatalf("third connection served by %s past max_queue", name)
	}
	if b.Counters.Denied.Load() != 1 {
		t.Fatalf("denied %d, want 1 (queue full)", b.Counters.Denied.Load())
	}
	first.Close()
	_ = queued.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := bufio.NewReader(queued).ReadString('\n'); err != nil || (l != "s1\n" && l != "s2\n") {
		t.Fatalf("queued connection after the slot was freed: %q %v", l, err)
	}
}

// TestTCPFinTimeouts: once one side has closed its half, the remaining
// direction is bounded by client_fin / server_fin instead of the (long)
// client / server timeouts.
func TestTCPFinTimeouts(t *testing.T) {
	t.Run("server_fin: the client has closed, the server stays silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		t.Cleanup(func() { close(done) })
		testenv.ServeListener(t, ln, func(c net.Conn) {
			_, _ = io.Copy(io.Discard, c) // up to the client's FIN, then silence
			<-done
		})
		h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, timeouts: {client: 1h}}]
backends: [{name: be, timeouts: {server: 1h, server_fin: 200ms}, servers: [{name: s, address: %q}]}]
`, ln.Addr().String()))
		c, err := net.Dial("tcp", h.addr("fe"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("bye"))
		c.(*net.TCPConn).CloseWrite()
		expectClosedBy(t, c, 0, 10*time.Second)
	})
	t.Run("client_fin: the server has closed, the client stays silent", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		testenv.ServeListener(t, ln, func(c net.Conn) {
			fmt.Fprint(c, "bye\n")
			c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		})
		h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, timeouts: {client: 1h, client_fin: 200ms}}]
backends: [{name: be, timeouts: {server: 1h}, servers: [{name: s, address: %q}]}]
`, ln.Addr().String()))
		c, err := net.Dial("tcp", h.addr("fe"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The server's half-close arrives as EOF; the client keeps its
		// half open and says nothing, so client_fin ends the session:
		// the proxy resets or closes toward the client.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if got, err := io.ReadAll(c); err != nil || string(got) != "bye\n" {
			t.Fatalf("read %q, %v", got, err)
		}
		fe := h.p.Frontend("fe")
		testenv.Eventually(t, 10*time.Second, "session ended by client_fin", func() bool { return fe.Counters.CurSessions.Load() == 0 })
	})
}

// TestTCPAccessLog: with log: true a tcp frontend writes one HAProxy
// tcplog-like line per connection, with the termination state.
func TestTCPAccessLog(t *testing.T) {
	srv := newTestServer(t, "s")
	dead := newTestServer(t, "dead")
	dead.close()
	c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
defaults: {log: true}
frontends:
  - {name: fe, bind: "127.0.0.1:0", default_backend: be, timeouts: {client: 300ms}, rules: [{backend: gone, src: [127.0.0.2]}]}
backends:
  - {name: be, servers: [{name: s, address: %q}]}
  - {name: gone, servers: [{name: d, address: %q}]}
`, srv.addr(), dead.addr())))
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.LogBuffer
	p := startProxyOpts(t, c, Options{Log: slog.New(slog.NewTextHandler(&out, nil))}, nil).p
	addr := p.ListenAddrs()["fe"][0]

	expectLine := func(what, re string) {
		t.Helper()
		line := regexp.MustCompile(`msg="127\.0\.0\.\d+:\d+ \[\d\d/\w+/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] ` + re + ` \d+/\d+/\d+/\d+/\d+ \d+/\d+"`)
		testenv.Eventually(t, 5*time.Second, what+" logged", func() bool { return line.MatchString(out.String()) })
	}
	// A normal session: the client closes after the greeting.
	if name, err := greet(t, addr); err != nil || name != "s" {
		t.Fatalf("greet: %q %v", name, err)
	}
	expectLine("normal session", `fe be/s 0/\d+/\d+ 2 --`)
	// The server refused: logged with the server tried, as HAProxy does.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if gc, err := d.Dial("tcp", addr); err == nil {
		_ = gc.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = gc.Read(make([]byte, 1)) // EOF: the server refused
		gc.Close()
	}
	expectLine("connect failure", `fe gone/d -1/-1/\d+ 0 SC`)
	// Client idle past timeout client.
	cl, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	expectLine("client timeout", `fe be/s 0/\d+/\d+ 2 cD`)
	// Killed by shutdown-sessions.
	cl2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	testenv.Eventually(t, 5*time.Second, "session tracked", func() bool { return p.Server("be", "s").KillSessions() > 0 })
	expectLine("killed session", `fe be/s 0/\d+/\d+ \d+ KD`)
}

// TestTCPOneSidedTimeouts: an idle connection is cut by the shorter of
// timeout client and timeout server; the side whose timeout is long does
// not keep it open (it used to wait out its own timeout).
func TestTCPOneSidedTimeouts(t *testing.T) {
	for _, tc := range []struct{ fe, be string }{
		{"{client: 200ms}", "{server: 1h}"},
		{"{client: 1h}", "{server: 200ms}"},
	} {
		srv := newTestServer(t, "s")
		h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, timeouts: %s}]
backends: [{name: be, timeouts: %s, servers: [{name: s, address: %q}]}]
`, tc.fe, tc.be, srv.addr()))
		c, err := net.Dial("tcp", h.addr("fe"))
		if err != nil {
			t.Fatal(err)
		}
		expectClosedBy(t, c, 150*time.Millisecond, 10*time.Second)
		c.Close()
	}
}

// TestTCPStalledReceiver: a client that stops reading while the server
// keeps sending is cut (timeout client bounds writes to it too) instead of
// the relay dropping what it could not deliver and carrying on.
func TestTCPStalledReceiver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	testenv.ServeListener(t, ln, func(c net.Conn) {
		_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, timeouts: {client: 300ms}}]
backends: [{name: be, timeouts: {server: 1h}, servers: [{name: s, address: %q}]}]
`, ln.Addr().String()))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fe := h.p.Frontend("fe")
	testenv.Eventually(t, 10*time.Second, "stalled session ended", func() bool {
		return fe.Counters.CurSessions.Load() == 0 && fe.Counters.TotalSessions.Load() == 1
	})
}
