package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// goBackend is a real net/http server on loopback that reports what it saw.
type goBackend struct {
	name  string
	srv   *httptest.Server
	conns atomic.Int64
	reqs  atomic.Int64
}

func newGoBackend(t testing.TB, name string) *goBackend {
	t.Helper()
	g := &goBackend{name: name}
	g.srv = httptest.NewUnstartedServer(http.HandlerFunc(g.serve))
	g.srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			g.conns.Add(1)
		}
	}
	g.srv.Start()
	t.Cleanup(g.srv.Close)
	return g
}

func (g *goBackend) addr() string { return g.srv.Listener.Addr().String() }

func (g *goBackend) serve(w http.ResponseWriter, r *http.Request) {
	g.reqs.Add(1)
	switch {
	case r.URL.Path == "/chunked":
		w.Header().Set("X-Server", g.name)
		fl := w.(http.Flusher)
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "part%d;", i)
			fl.Flush()
		}
		return
	case r.URL.Path == "/slow":
		time.Sleep(2 * time.Second)
	case r.URL.Path == "/setcookie":
		http.SetCookie(w, &http.Cookie{Name: "SRV", Value: "app-" + g.name, Path: "/"})
	case r.URL.Path == "/ws":
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello-%s\n", g.name)
		brw.Flush()
		// Echo lines until EOF.
		for {
			l, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo:" + l)
			brw.Flush()
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	sum := sha256.Sum256(body)
	w.Header().Set("X-Server", g.name)
	fmt.Fprintf(w, "server=%s\nmethod=%s\nuri=%s\nhost=%s\nbody=%d\nsha=%s\nte=%v\n", g.name, r.Method, r.RequestURI, r.Host, len(body), hex.EncodeToString(sum[:8]), r.TransferEncoding)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	for _, k := range keys {
		fmt.Fprintf(w, "h:%s=%s\n", k, strings.Join(r.Header.Values(k), "|"))
	}
}

// field extracts "key=value" from a goBackend answer.
func field(body, key string) string {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	return ""
}

func httpDoc(fe string, extraFE, backends string) string {
	return fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 2s, client: 5s, server: 1500ms, http_request: 1s, http_keep_alive: 2s}}
frontends:
  - name: fe
    bind: "127.0.0.1:0"
    default_backend: be
%s
%s
backends:
%s
`, fe, extraFE, backends)
}

func oneBackend(addrs ...string) string {
	var b strings.Builder
	b.WriteString("  - name: be\n    servers:\n")
	for i, a := range addrs {
		fmt.Fprintf(&b, "      - {name: s%d, address: %q}\n", i+1, a)
	}
	return b.String()
}

func get(t testing.TB, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func noRedirect() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestHTTPProxyBasics(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("    http: {forwardfor: {}, x_forwarded_proto: true, x_forwarded_port: true, forwarded: true, via: vipgate}", "", oneBackend(g.addr())))
	url := "http://" + h.addr("fe")
	c := &http.Client{Timeout: 5 * time.Second}

	resp, body := get(t, c, url+"/a/b?x=1", "Connection", "keep-alive, X-Hop", "X-Hop", "secret", "X-Forwarded-Proto", "spoofed")
	if resp.StatusCode != 200 || field(body, "server") != "web1" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	for key, want := range map[string]string{
		"uri":                 "/a/b?x=1",
		"h:X-Forwarded-For":   "127.0.0.1",
		"h:X-Forwarded-Proto": "http",
		"h:X-Forwarded-Port":  strings.Split(h.addr("fe"), ":")[1],
		"h:Forwarded":         "for=127.0.0.1;proto=http;host=" + h.addr("fe"),
		"h:Via":               "1.1 vipgate",
		"h:X-Hop":             "", // named by Connection: hop-by-hop
	} {
		if got := field(body, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if resp.Header.Get("Via") != "1.1 vipgate" {
		t.Errorf("response Via %q", resp.Header.Get("Via"))
	}

	// Keep-alive on both sides: many requests, one client connection and
	// (with http-reuse safe) very few server connections.
	before := g.conns.Load()
	for i := 0; i < 20; i++ {
		resp, _ := get(t, c, url+"/")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if n := g.conns.Load() - before; n > 2 {
		t.Errorf("20 keep-alive requests opened %d server connections", n)
	}
	if fe := h.p.Frontends()[0]; fe.Counters.HTTPResponses[2].Load() < 21 {
		t.Errorf("2xx counter %d", fe.Counters.HTTPResponses[2].Load())
	}
}

func TestHTTPForwardForModes(t *testing.T) {
	g := newGoBackend(t, "web1")
	tests := []struct {
		opt, sent, want string
	}{
		{"{}", "1.2.3.4", "1.2.3.4|127.0.0.1"},
		{"{mode: replace}", "1.2.3.4", "127.0.0.1"},
		{"{except: [127.0.0.0/8]}", "1.2.3.4", "1.2.3.4"},
		{"{mode: off}", "1.2.3.4", "1.2.3.4"},
		{"{header: X-Client-IP}", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.opt, func(t *testing.T) {
			h := startProxy(t, httpDoc("    http: {forwardfor: "+tt.opt+"}", "", oneBackend(g.addr())))
			_, body := get(t, http.DefaultClient, "http://"+h.addr("fe")+"/", "X-Forwarded-For", tt.sent)
			if tt.sent == "" {
				if got := field(body, "h:X-Client-Ip"); got != "127.0.0.1" {
					t.Fatalf("X-Client-IP %q", got)
				}
				return
			}
			if got := field(body, "h:X-Forwarded-For"); got != tt.want {
				t.Fatalf("X-Forwarded-For %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHTTPBodies(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("", "", oneBackend(g.addr())))
	url := "http://" + h.addr("fe")
	c := &http.Client{Timeout: 10 * time.Second}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	sum := sha256.Sum256(big)
	want := hex.EncodeToString(sum[:8])

	for _, tc := range []struct {
		name string
		body io.Reader
		cl   int64
	}{
		{"content-length", bytes.NewReader(big), int64(len(big))},
		{"chunked", io.MultiReader(bytes.NewReader(big[:1000]), bytes.NewReader(big[1000:])), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", url+"/upload", tc.body)
			req.ContentLength = tc.cl
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || field(string(b), "sha") != want || field(string(b), "body") != fmt.Sprint(len(big)) {
				t.Fatalf("status %d body %s", resp.StatusCode, b)
			}
		})
	}
	// Chunked response streamed through.
	resp, body := get(t, c, url+"/chunked")
	if body != "part0;part1;part2;part3;part4;" || len(resp.TransferEncoding) == 0 {
		t.Fatalf("chunked response %q te %v", body, resp.TransferEncoding)
	}
	// HTTP/1.0 client gets a de-chunked, close-delimited body.
	raw := rawExchange(t, h.addr("fe"), "GET /chunked HTTP/1.0\r\n\r\n")
	if !strings.HasSuffix(raw, "\r\n\r\npart0;part1;part2;part3;part4;") || strings.Contains(raw, "Transfer-Encoding") {
		t.Fatalf("HTTP/1.0 response %q", raw)
	}
}

// rawExchange writes a raw request and reads until the proxy closes.
func rawExchange(t testing.TB, addr, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestHTTPExpectContinue(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("", "", oneBackend(g.addr())))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	l, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(l, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue before sending the body, got %q %v", l, err)
	}
	for {
		l, _ = br.ReadString('\n')
		if l == "\r\n" || l == "" {
			break
		}
	}
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || field(string(b), "body") != "5" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestHTTPPipelining(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("", "", oneBackend(g.addr())))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/one", "/two", "/three"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if got := field(string(b), "uri"); got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after Connection: close: %v", err)
	}
}

func TestHTTPWebSocketTunnel(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("", "", oneBackend(g.addr())))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("upgrade: %v %+v", err, resp)
	}
	if l, _ := br.ReadString('\n'); l != "hello-web1\n" {
		t.Fatalf("server-first bytes %q", l)
	}
	for _, m := range []string{"a\n", "bb\n"} {
		io.WriteString(c, m)
		if l, _ := br.ReadString('\n'); l != "echo:"+m {
			t.Fatalf("echo %q", l)
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	g := newGoBackend(t, "web1")
	dead := deadAddr(t)
	garbage := rawBackend(t, func(c net.Conn, _ []byte) { io.WriteString(c, "SMTP ready\r\n\r\n") })
	dir := t.TempDir()
	page := dir + "/503.html"
	if err := writeFile(page, "<p>custom 503</p>"); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`
defaults: {mode: http, retries: 1, timeouts: {connect: 1s, client: 5s, server: 500ms}}
frontends:
  - name: fe
    bind: "127.0.0.1:0"
    default_backend: ok
    http: {error_files: {503: %q}}
    rules:
      - {backend: dead, path_prefix: [/dead]}
      - {backend: garbage, path_prefix: [/garbage]}
      - {backend: ok, path_prefix: [/slow]}
backends:
  - {name: ok, servers: [{name: s1, address: %q}]}
  - {name: dead, servers: [{name: s1, address: %q}]}
  - {name: garbage, servers: [{name: s1, address: %q}]}
`, page, g.addr(), dead, garbage)
	h := startProxy(t, doc)
	url := "http://" + h.addr("fe")
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/dead", 503, "custom 503"},
		{"/garbage", 502, "invalid or incomplete response"},
		{"/slow", 504, "didn't respond in time"},
		{"/fine", 200, "server=web1"},
	} {
		resp, body := get(t, &http.Client{Timeout: 5 * time.Second}, url+tc.path)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q", tc.path, resp.StatusCode, body)
		}
	}
	// A server marked down: 503 at once.
	h.p.Server("ok", "s1").SetAdmin(2)
	if resp, _ := get(t, http.DefaultClient, url+"/"); resp.StatusCode != 503 {
		t.Errorf("all servers in maintenance: %d", resp.StatusCode)
	}
}

func writeFile(p, s string) error {
	return osWriteFile(p, []byte(s))
}

func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// rawBackend accepts connections, reads what arrives and hands it to fn.
type rawRecorder struct {
	mu   sync.Mutex
	data []byte
}

func rawBackend(t testing.TB, fn func(c net.Conn, got []byte)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testenv.ServeListener(t, ln, func(c net.Conn) {
		buf := make([]byte, 65536)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(buf)
		fn(c, buf[:n])
	})
	return ln.Addr().String()
}

func osWriteFile(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }

// TestHTTPExpectIgnoredByServer: a server that never sends 100 Continue
// still gets the body (after the expect wait), and the client its answer.
func TestHTTPExpectIgnoredByServer(t *testing.T) {
	addr := rawBackend(t, func(c net.Conn, got []byte) {
		// Wait for the body before answering, like an HTTP/1.0 server.
		for !strings.HasSuffix(string(got), "hello") {
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got = append(got, buf[:n]...)
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ngot")
	})
	h := startProxy(t, httpDoc("", "", oneBackend(addr)))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	// This client sends its body at once instead of waiting for 100.
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "got" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}

// TestHTTPTunnelKilled: shutdown-sessions / admin kills end WebSocket
// tunnels like tcp sessions.
func TestHTTPTunnelKilled(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("", "", oneBackend(g.addr())))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v", err)
	}
	br.ReadString('\n')
	srv := h.p.Server("be", "s1")
	testenv.Eventually(t, 5*time.Second, "tunnel tracked", func() bool { return srv.KillSessions() > 0 })
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel still open after kill")
	}
}

// TestHTTPRequestKilled: shutdown-sessions (on_marked_down, the admin
// action) also ends a plain request waiting on the server: the client gets
// a 502 at once instead of waiting for timeout server.
func TestHTTPRequestKilled(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer ts.Close()
	h := startProxy(t, httpDoc("", "", oneBackend(ts.Listener.Addr().String())))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	srv := h.p.Server("be", "s1")
	testenv.Eventually(t, 5*time.Second, "request tracked on its server", func() bool { return srv.KillSessions() > 0 })
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 502 {
		t.Fatalf("killed request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	// Like HAProxy's error pages, the 502 closes the client connection;
	// the server itself is still up and serves the next client.
	if resp, body := get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+h.addr("fe")+"/ok"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("next request: %d %q", resp.StatusCode, body)
	}
	if n := srv.KillSessions(); n != 0 {
		t.Fatalf("%d sessions still tracked after the requests ended", n)
	}
}

// TestHTTPTunnelTimeout: after 101 Switching Protocols the connection is a
// tunnel bounded by timeout tunnel, not by the (here much longer) client
// and server timeouts.
func TestHTTPTunnelTimeout(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 2s, client: 1h, server: 1h}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, timeouts: {tunnel: 300ms}, servers: [{name: s1, address: %q}]}]
`, g.addr()))
	c, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v", err)
	}
	if l, _ := br.ReadString('\n'); l != "hello-web1\n" {
		t.Fatalf("server-first bytes %q", l)
	}
	expectClosedBy(t, c, 250*time.Millisecond, 10*time.Second)
}

// TestPutSessionUntracks: a session recycled while still registered with a
// server (a panic skipped its own clean-up) is unregistered first, so a
// later shutdown-sessions cannot reach the connection the recycled
// session serves next.
func TestPutSessionUntracks(t *testing.T) {
	h := startProxy(t, httpDoc("", "", oneBackend("127.0.0.1:1")))
	hh := h.p.Frontends()[0].handler.(*httpHandler)
	srv := upstream.NewServer("be", "s1", "127.0.0.1:1", 1)
	s := hh.newSession()
	s.track(srv, &serverConn{})
	hh.putSession(s)
	if n := srv.KillSessions(); n != 0 {
		t.Fatalf("a recycled session left %d kill(s) registered with its server", n)
	}
}
