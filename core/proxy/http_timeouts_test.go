package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestHTTPBodyTimeouts: in http mode, timeout client fires while a client
// stalls in the middle of its request body (408, cD), and timeout server
// while a server stalls in the middle of its response body (the client's
// connection is closed: the head is already out; sD). Both are logged with
// the server.
func TestHTTPBodyTimeouts(t *testing.T) {
	// hold keeps the server side open until the proxy closes it.
	hold := func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
	upload := rawBackend(t, func(c net.Conn, _ []byte) { hold(c) })
	stall := rawBackend(t, func(c net.Conn, _ []byte) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		hold(c)
	})
	doc := fmt.Sprintf(`
defaults: {mode: http, retries: 0, timeouts: {connect: 1s, client: 300ms, server: 300ms}}
frontends:
  - name: fe
    bind: "127.0.0.1:0"
    default_backend: up
    http: {log: true}
    rules: [{backend: stall, path_prefix: [/stall]}]
backends:
  - {name: up, servers: [{name: u1, address: %q}]}
  - {name: stall, servers: [{name: s1, address: %q}]}
`, upload, stall)
	addr, out := startLoggingProxy(t, doc)

	// exchange sends req and reads until the proxy closes the connection
	// (the 5s deadline only bounds a proxy that never does).
	exchange := func(req string) (string, error) {
		cc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		_ = cc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(cc, req)
		b, err := io.ReadAll(cc)
		return string(b), err
	}

	got, err := exchange("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	if err != nil || !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Errorf("client stalled in its body: %q, %v (want a 408, then the connection closed)", got, err)
	}
	got, err = exchange("GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
	if err != nil || !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.HasSuffix(got, "partial") {
		t.Errorf("server stalled in its body: %q, %v (want the head and the partial body, then the connection closed)", got, err)
	}
	for _, re := range []string{
		`fe up/u1 \d+/\d+/\d+/-1/\d+ 408 \d+ - - cD-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"POST /upload HTTP/1\.1\\"`,
		`fe stall/s1 \d+/\d+/\d+/\d+/\d+ 200 \d+ - - sD-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET /stall HTTP/1\.1\\"`,
	} {
		rx := regexp.MustCompile(re)
		testenv.Eventually(t, 5*time.Second, "log line "+re, func() bool { return rx.MatchString(out.String()) })
	}
}

// TestUnreachableServerIsLogged: a server that refuses connections is
// reported in the log even without health checks or an access log (once
// per server per period, with the count of the failures it stands for),
// and the proxy carries on.
func TestUnreachableServerIsLogged(t *testing.T) {
	dead := deadAddr(t)
	doc := fmt.Sprintf(`
defaults: {retries: 0, timeouts: {connect: 1s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s1, address: %q}]}]
`, dead)
	addr, out := startLoggingProxy(t, doc)
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(c) // the proxy closes it: no server
		c.Close()
	}
	want := regexp.MustCompile(`level=WARN msg="cannot connect to server" backend=be server=s1 addr=` + regexp.QuoteMeta(dead) + ` err=.*connection refused`)
	testenv.Eventually(t, 5*time.Second, "a warning for be/s1", func() bool { return want.MatchString(out.String()) })
	if n := strings.Count(out.String(), "cannot connect to server"); n >= 20 {
		t.Errorf("%d warnings for 20 failures: not rate-limited", n)
	}
}

// TestBackendEmptyIsLogged: the last usable server going away is logged
// (HAProxy's "backend X has no server available!"), and so is the return.
func TestBackendEmptyIsLogged(t *testing.T) {
	doc := `
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s1, address: "127.0.0.1:1"}, {name: s2, address: "127.0.0.1:2"}]}]
`
	c, err := config.Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.LogBuffer
	h := startProxyOpts(t, c, Options{Log: slog.New(slog.NewTextHandler(&out, nil))}, nil)
	empty := regexp.MustCompile(`level=ERROR msg="backend has no server available" backend=be`)
	back := regexp.MustCompile(`level=INFO msg="backend has servers available again" backend=be`)
	h.p.Server("be", "s1").SetAdmin(upstream.Maint)
	if empty.MatchString(out.String()) {
		t.Fatal("logged empty while s2 is still usable")
	}
	h.p.Server("be", "s2").SetAdmin(upstream.Maint)
	testenv.Eventually(t, 5*time.Second, "the empty backend logged", func() bool { return empty.MatchString(out.String()) })
	h.p.Server("be", "s2").SetAdmin(upstream.Ready)
	testenv.Eventually(t, 5*time.Second, "the backend's return logged", func() bool { return back.MatchString(out.String()) })
}

// TestHTTPQueueTimeout: in http mode a request that waits for a server
// slot (maxconn) longer than timeout queue gets a 503, logged sQ with its
// queue time.
func TestHTTPQueueTimeout(t *testing.T) {
	g := newGoBackend(t, "web1")
	doc := fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 1s, client: 5s, server: 5s, queue: 200ms}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, http: {log: true}}]
backends: [{name: be, servers: [{name: s1, address: %q, maxconn: 1}]}]
`, g.addr())
	addr, out := startLoggingProxy(t, doc)
	busy := make(chan error, 1)
	go func() {
		// /slow holds the only slot for 2s.
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		busy <- err
	}()
	testenv.Eventually(t, 5*time.Second, "the slot taken", func() bool { return g.conns.Load() > 0 })
	resp, _ := get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/queued")
	if resp.StatusCode != 503 {
		t.Fatalf("queued past timeout queue: %d, want 503", resp.StatusCode)
	}
	rx := regexp.MustCompile(`fe be/<NOSRV> \d+/\d+/-1/-1/\d+ 503 \d+ - - sQ-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET /queued HTTP/1\.1\\"`)
	testenv.Eventually(t, 5*time.Second, "log line sQ", func() bool { return rx.MatchString(out.String()) })
	if err := <-busy; err != nil {
		t.Errorf("the request holding the slot: %v", err)
	}
}

// TestHTTPClientStopsReading: a client that stops reading a large response
// is cut after timeout client (the proxy's writes stall), so the server's
// connection is released too; the access log says cD.
func TestHTTPClientStopsReading(t *testing.T) {
	serverDone := make(chan error, 1)
	big := rawBackend(t, func(c net.Conn, _ []byte) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
		chunk := make([]byte, 64<<10)
		_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for {
			if _, err := c.Write(chunk); err != nil {
				serverDone <- err
				return
			}
		}
	})
	doc := fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 1s, client: 300ms, server: 30s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, http: {log: true}}]
backends: [{name: be, servers: [{name: s1, address: %q}]}]
`, big)
	addr, out := startLoggingProxy(t, doc)
	cc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	io.WriteString(cc, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	// Never read. The server's writes must fail once the proxy gives up
	// (the 20s write deadline only bounds a proxy that never does).
	select {
	case err := <-serverDone:
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the server's writes blocked until its own deadline: the proxy never cut the stalled client")
		}
	case <-time.After(25 * time.Second):
		t.Fatal("server handler did not finish")
	}
	rx := regexp.MustCompile(`fe be/s1 \d+/\d+/\d+/\d+/\d+ 200 \d+ - - cD-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET /big HTTP/1\.1\\"`)
	testenv.Eventually(t, 5*time.Second, "log line cD", func() bool { return rx.MatchString(out.String()) })
}
