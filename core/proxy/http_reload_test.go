package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// connCountingServer is an http server that counts the connections it
// accepted and closed.
type connCountingServer struct {
	srv            *httptest.Server
	opened, closed atomic.Int64
}

func newConnCountingServer(t *testing.T) *connCountingServer {
	t.Helper()
	cs := &connCountingServer{}
	cs.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	cs.srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			cs.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			cs.closed.Add(1)
		}
	}
	cs.srv.Start()
	t.Cleanup(cs.srv.Close)
	return cs
}

// keepAliveClient is one client connection sending requests one at a time.
type keepAliveClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAliveClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAliveClient{c: c, r: bufio.NewReader(c)}
}

func (k *keepAliveClient) get(t *testing.T) {
	t.Helper()
	_ = k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
		t.Fatalf("status %d body %q close %v", resp.StatusCode, body, resp.Close)
	}
}

// TestHTTPReloadKeepsServerConnections: client connections opened before a
// reload go on reusing pooled server connections after it (issue 23: they
// opened a new server connection per request, forever), and a reload that
// changes how a server is reached closes the old pooled connections rather
// than handing them to the new generation.
func TestHTTPReloadKeepsServerConnections(t *testing.T) {
	cs := newConnCountingServer(t)
	doc := func(via, tcpka string) string {
		return fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 2s, client: 30s, server: 10s, http_request: 10s, http_keep_alive: 30s}}
frontends:
  - {name: fe, bind: "127.0.0.1:0", default_backend: be, http: {via: %s}}
backends:
  - {name: be, tcp_keepalive: %s, servers: [{name: s1, address: %q}]}
`, via, tcpka, cs.srv.Listener.Addr())
	}
	h := startProxy(t, doc("one", "false"))
	addr := h.addr("fe")
	clients := make([]*keepAliveClient, 4)
	for i := range clients {
		clients[i] = dialKeepAlive(t, addr)
	}
	round := func(n int) {
		for range n {
			for _, k := range clients {
				k.get(t)
			}
		}
	}
	round(5)
	before := cs.opened.Load()

	// A header-only change: the same server, reached the same way.
	if err := h.apply(doc("two", "false")); err != nil {
		t.Fatal(err)
	}
	round(50)
	fresh := dialKeepAlive(t, addr)
	for range 20 {
		fresh.get(t)
	}
	if grew := cs.opened.Load() - before; grew > 1 {
		t.Fatalf("after a header-only reload, 220 requests on kept-alive client connections opened %d server connections", grew)
	}

	// TCP keepalive toward the server changes how its connections are
	// made: the new generation starts from new connections and the idle
	// ones of the old are closed.
	opened := cs.opened.Load()
	if err := h.apply(doc("two", "true")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cs.closed.Load() < opened && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := cs.closed.Load(); c < opened {
		t.Fatalf("%d of %d old server connections closed after a reload changing tcp_keepalive", c, opened)
	}
	newer := dialKeepAlive(t, addr)
	for range 20 {
		newer.get(t)
	}
	if n := cs.opened.Load() - opened; n < 1 || n > 2 {
		t.Fatalf("after tcp_keepalive changed, 20 requests opened %d server connections, want 1", n)
	}
}

func TestConnFingerprint(t *testing.T) {
	base := func() *config.Backend {
		return &config.Backend{Name: "be", HTTPBackend: config.HTTPBackend{SSL: &config.ServerTLS{Verify: "none"}}}
	}
	on := true
	for _, tc := range []struct {
		name   string
		change func(b *config.Backend) int // returns the buffer size
		same   bool
	}{
		{"unchanged", func(*config.Backend) int { return 16 << 10 }, true},
		{"timeouts", func(b *config.Backend) int { b.Timeouts.Server = config.Duration(time.Minute); return 16 << 10 }, true},
		{"buffer", func(*config.Backend) int { return 32 << 10 }, false},
		{"ssl off", func(b *config.Backend) int { b.SSL = nil; return 16 << 10 }, false},
		{"verify", func(b *config.Backend) int { b.SSL.Verify = "required"; return 16 << 10 }, false},
		{"sni", func(b *config.Backend) int { b.SSL.SNI = "x.example"; return 16 << 10 }, false},
		{"send_proxy", func(b *config.Backend) int { b.SendProxy = "v2"; return 16 << 10 }, false},
		{"tcp_keepalive", func(b *config.Backend) int { b.TCPKeepAlive = &on; return 16 << 10 }, false},
	} {
		b := base()
		size := tc.change(b)
		if same := connFingerprint(b, size) == connFingerprint(base(), 16<<10); same != tc.same {
			t.Errorf("%s: same fingerprint %v, want %v", tc.name, same, tc.same)
		}
	}
}

// TestReloadKeepsCounters: frontend and backend counters survive a reload
// for the names that stay, as server counters do (issue 23: they restarted
// from zero at every reload); a new name starts from zero.
func TestReloadKeepsCounters(t *testing.T) {
	cs := newConnCountingServer(t)
	doc := func(fe, via string) string {
		return fmt.Sprintf(`
defaults: {mode: http}
frontends:
  - {name: %s, bind: "127.0.0.1:0", default_backend: be, http: {via: %s}}
backends:
  - {name: be, servers: [{name: s1, address: %q}]}
`, fe, via, cs.srv.Listener.Addr())
	}
	h := startProxy(t, doc("fe", "one"))
	k := dialKeepAlive(t, h.addr("fe"))
	for range 3 {
		k.get(t)
	}
	if err := h.apply(doc("fe", "two")); err != nil {
		t.Fatal(err)
	}
	fe, be := h.p.Frontend("fe").Counters, h.p.Backend("be").Counters
	if n := fe.HTTPResponses[2].Load(); n != 3 {
		t.Errorf("frontend 2xx after reload = %d, want 3", n)
	}
	if n := be.HTTPResponses[2].Load(); n != 3 {
		t.Errorf("backend 2xx after reload = %d, want 3", n)
	}
	if n := fe.TotalSessions.Load(); n != 1 {
		t.Errorf("frontend sessions after reload = %d, want 1", n)
	}
	// The connection opened before the reload counts on the same counters.
	k.get(t)
	if n := h.p.Frontend("fe").Counters.HTTPResponses[2].Load(); n != 4 {
		t.Errorf("frontend 2xx after one more request = %d, want 4", n)
	}
	if err := h.apply(doc("renamed", "two")); err != nil {
		t.Fatal(err)
	}
	if n := h.p.Frontend("renamed").Counters.HTTPResponses[2].Load(); n != 0 {
		t.Errorf("a new frontend name starts with %d responses counted", n)
	}
}
