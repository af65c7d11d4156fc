package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

func TestHTTPRules(t *testing.T) {
	web := newGoBackend(t, "web")
	api := newGoBackend(t, "api")
	static := newGoBackend(t, "static")
	admin := newGoBackend(t, "admin")
	doc := fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 2s, client: 5s, server: 5s}}
frontends:
  - name: fe
    bind: "127.0.0.1:0"
    default_backend: web
    rules:
      - {deny: 403, path_prefix: [/private]}
      - {deny: 429, header: [{name: X-Abuse}]}
      - {redirect: {location: "https://example.org/new", code: 301}, path_prefix: [/old]}
      - {redirect: {scheme: https}, host: [secure.example]}
      - {redirect: {prefix: "https://mirror.example"}, path_prefix: [/mirror]}
      - {set_header: {Host: "internal.example"}, path_prefix: [/rehost]}
      - set_header: {X-Set: "one"}
        add_header: {X-Added: "two"}
        del_header: [X-Remove-Me]
        set_response_header: {X-Resp: "set"}
        del_response_header: [X-Server]
      - {backend: api, host: [api.example, "*.api.example"]}
      - {backend: static, path_regex: "\\.(css|js|png)$"}
      - {backend: admin, method: [DELETE]}
      - {backend: admin, header: [{name: X-Role, value: admin}]}
      - {backend: admin, header: [{name: User-Agent, regex: "^curl/"}], path_prefix: [/ua]}
      - {backend: api, src: [10.0.0.0/8]}
backends:
  - {name: web, servers: [{name: s1, address: %q}]}
  - {name: api, servers: [{name: s1, address: %q}]}
  - {name: static, servers: [{name: s1, address: %q}]}
  - {name: admin, servers: [{name: s1, address: %q}]}
`, web.addr(), api.addr(), static.addr(), admin.addr())
	h := startProxy(t, doc)
	url := "http://" + h.addr("fe")
	c := noRedirect()
	tests := []struct {
		name, method, path string
		hdr                []string
		status             int
		server, location   string
	}{
		{"default", "GET", "/", nil, 200, "web", ""},
		{"host", "GET", "/", []string{"Host", "api.example"}, 200, "api", ""},
		{"host port ignored", "GET", "/", []string{"Host", "API.example:8080"}, 200, "api", ""},
		{"host wildcard", "GET", "/", []string{"Host", "v2.api.example"}, 200, "api", ""},
		{"host wildcard one label", "GET", "/", []string{"Host", "a.b.api.example"}, 200, "web", ""},
		{"path regex", "GET", "/x/site.css", nil, 200, "static", ""},
		{"regex not on query", "GET", "/x?f=a.css", nil, 200, "web", ""},
		{"method", "DELETE", "/thing", nil, 200, "admin", ""},
		{"header value", "GET", "/", []string{"X-Role", "ADMIN"}, 200, "admin", ""},
		{"header regex", "GET", "/ua/x", []string{"User-Agent", "curl/8.0"}, 200, "admin", ""},
		{"header regex no match", "GET", "/ua/x", []string{"User-Agent", "Mozilla"}, 200, "web", ""},
		{"deny path", "GET", "/private/x", nil, 403, "", ""},
		{"deny header", "GET", "/", []string{"X-Abuse", "1"}, 429, "", ""},
		{"redirect location", "GET", "/old/page", nil, 301, "", "https://example.org/new"},
		{"redirect scheme", "GET", "/p?q=1", []string{"Host", "secure.example"}, 302, "", "https://secure.example/p?q=1"},
		{"redirect prefix", "GET", "/mirror/a?b=c", nil, 302, "", "https://mirror.example/mirror/a?b=c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, url+tt.path, nil)
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				if tt.hdr[i] == "Host" {
					req.Host = tt.hdr[i+1]
				} else {
					req.Header.Set(tt.hdr[i], tt.hdr[i+1])
				}
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tt.status, body)
			}
			if tt.server != "" && field(body, "server") != tt.server {
				t.Fatalf("served by %q, want %q", field(body, "server"), tt.server)
			}
			if tt.location != "" && resp.Header.Get("Location") != tt.location {
				t.Fatalf("Location %q, want %q", resp.Header.Get("Location"), tt.location)
			}
		})
	}
	// set_header Host replaces the Host line (one Host reaches the server).
	if _, body := get(t, c, url+"/rehost"); field(body, "host") != "internal.example" {
		t.Errorf("set_header Host: server saw host %q", field(body, "host"))
	}
	// Header actions apply to every request (the rule has no condition).
	req, _ := http.NewRequest("GET", url+"/", nil)
	req.Header.Set("X-Remove-Me", "x")
	req.Header.Set("X-Set", "client")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	if field(body, "h:X-Set") != "one" || field(body, "h:X-Added") != "two" || field(body, "h:X-Remove-Me") != "" {
		t.Errorf("request header actions not applied:\n%s", body)
	}
	if resp.Header.Get("X-Resp") != "set" || resp.Header.Get("X-Server") != "" {
		t.Errorf("response header actions not applied: %v", resp.Header)
	}
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	return b.String()
}

func TestHTTPCookieInsert(t *testing.T) {
	s1, s2 := newGoBackend(t, "one"), newGoBackend(t, "two")
	doc := fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 2s, client: 5s, server: 5s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    cookie: {name: SRV, indirect: true, nocache: true, httponly: true, secure: true, domain: .example.org}
    servers:
      - {name: s1, address: %q, cookie: c1}
      - {name: s2, address: %q}
`, s1.addr(), s2.addr())
	h := startProxy(t, doc)
	url := "http://" + h.addr("fe") + "/"
	c := &http.Client{Timeout: 5 * time.Second}

	resp, body := get(t, c, url)
	sc := resp.Header.Get("Set-Cookie")
	first := field(body, "server")
	want := map[string]string{"one": "SRV=c1", "two": "SRV=s2"}[first]
	if !strings.HasPrefix(sc, want+"; path=/; domain=.example.org; HttpOnly; Secure") {
		t.Fatalf("Set-Cookie %q (server %s)", sc, first)
	}
	if resp.Header.Get("Cache-Control") != "private" {
		t.Errorf("nocache: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	// With the cookie: always the same server; indirect: no new cookie,
	// and the cookie is not passed to the server.
	for i := 0; i < 6; i++ {
		resp, body := get(t, c, url, "Cookie", want+"; other=1")
		if field(body, "server") != first {
			t.Fatalf("request %d went to %s, want %s", i, field(body, "server"), first)
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("indirect: cookie re-sent %q", resp.Header.Get("Set-Cookie"))
		}
		if got := field(body, "h:Cookie"); got != "other=1" {
			t.Fatalf("indirect: server saw Cookie %q", got)
		}
	}
	// The cookie's server goes down: balanced to the other, new cookie.
	srv := h.p.Server("be", map[string]string{"one": "s1", "two": "s2"}[first])
	srv.SetAdmin(upstream.Maint)
	resp, body = get(t, c, url, "Cookie", want)
	if field(body, "server") == first || resp.StatusCode != 200 {
		t.Fatalf("down server's cookie: served by %s (%d)", field(body, "server"), resp.StatusCode)
	}
	if resp.Header.Get("Set-Cookie") == "" {
		t.Fatal("no new cookie after redispatch")
	}
	srv.SetAdmin(upstream.Ready)
	// Unknown cookie value: balanced.
	if resp, _ := get(t, c, url, "Cookie", "SRV=nosuch"); resp.StatusCode != 200 || resp.Header.Get("Set-Cookie") == "" {
		t.Fatalf("unknown cookie: %d %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	// A browser-like client sticks (plain insert: no domain/secure, so the
	// jar keeps the cookie for 127.0.0.1).
	h2 := startProxy(t, fmt.Sprintf(`
defaults: {mode: http}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    cookie: {name: SRV}
    servers: [{name: s1, address: %q}, {name: s2, address: %q}]
`, s1.addr(), s2.addr()))
	url = "http://" + h2.addr("fe") + "/"
	jar, _ := cookiejar.New(nil)
	bc := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	_, b0 := get(t, bc, url)
	for i := 0; i < 5; i++ {
		if _, b := get(t, bc, url); field(b, "server") != field(b0, "server") {
			t.Fatalf("cookie jar client moved from %s to %s", field(b0, "server"), field(b, "server"))
		}
	}
}

func TestHTTPCookieModes(t *testing.T) {
	s1 := newGoBackend(t, "one")
	for _, tc := range []struct {
		mode, sent, wantSet, wantSeen string
	}{
		{"rewrite", "SRV=s1", "SRV=s1; Path=/", "SRV=s1"},
		{"prefix", "SRV=s1~app-one", "SRV=s1~app-one; Path=/", "SRV=app-one"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf(`
defaults: {mode: http}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    cookie: {name: SRV, mode: %s}
    servers: [{name: s1, address: %q}]
`, tc.mode, s1.addr()))
			resp, _ := get(t, http.DefaultClient, "http://"+h.addr("fe")+"/setcookie")
			if got := resp.Header.Get("Set-Cookie"); got != tc.wantSet {
				t.Fatalf("Set-Cookie %q, want %q", got, tc.wantSet)
			}
			_, body := get(t, http.DefaultClient, "http://"+h.addr("fe")+"/", "Cookie", tc.sent)
			if got := field(body, "h:Cookie"); got != tc.wantSeen {
				t.Fatalf("server saw Cookie %q, want %q", got, tc.wantSeen)
			}
		})
	}
}

func TestHTTPCookieMaxIdle(t *testing.T) {
	s1, s2 := newGoBackend(t, "one"), newGoBackend(t, "two")
	h := startProxy(t, fmt.Sprintf(`
defaults: {mode: http}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    balance: {algorithm: roundrobin}
    cookie: {name: SRV, maxidle: 1h, maxlife: 2h}
    servers: [{name: s1, address: %q}, {name: s2, address: %q}]
`, s1.addr(), s2.addr()))
	url := "http://" + h.addr("fe") + "/"
	now := time.Now().Unix()
	// Fresh dated cookie: honoured (every time, whatever roundrobin says).
	for i := 0; i < 4; i++ {
		resp, body := get(t, http.DefaultClient, url, "Cookie", fmt.Sprintf("SRV=s2|%d|%d", now-60, now-600))
		if field(body, "server") != "two" {
			t.Fatalf("fresh cookie not honoured: %s", field(body, "server"))
		}
		// The idle date is refreshed, the first date kept.
		if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, fmt.Sprintf("|%d;", now-600)) {
			t.Fatalf("Set-Cookie %q does not keep the first date", sc)
		}
	}
	// Expired by maxidle (or maxlife): ignored, so roundrobin spreads.
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		_, body := get(t, http.DefaultClient, url, "Cookie", fmt.Sprintf("SRV=s2|%d|%d", now-7200, now-7200))
		seen[field(body, "server")] = true
	}
	if !seen["one"] {
		t.Fatalf("expired cookie still honoured: %v", seen)
	}
}

func TestHTTPBalanceHashing(t *testing.T) {
	s1, s2, s3 := newGoBackend(t, "one"), newGoBackend(t, "two"), newGoBackend(t, "three")
	for _, alg := range []string{"{algorithm: uri}", "{algorithm: url_param, param: user}", "{algorithm: hdr, param: X-User}"} {
		t.Run(alg, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf(`
defaults: {mode: http}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    balance: %s
    servers: [{name: s1, address: %q}, {name: s2, address: %q}, {name: s3, address: %q}]
`, alg, s1.addr(), s2.addr(), s3.addr()))
			url := "http://" + h.addr("fe")
			servers := map[string]bool{}
			for k := 0; k < 12; k++ {
				key := fmt.Sprintf("k%d", k)
				var where string
				for i := 0; i < 3; i++ {
					// The rest of the query varies: uri hashes the path only
					// (HAProxy's default), url_param and hdr their own value.
					_, body := get(t, http.DefaultClient, fmt.Sprintf("%s/%s?user=%s&n=%d", url, key, key, i), "X-User", key)
					s := field(body, "server")
					if where != "" && s != where {
						t.Fatalf("key %s moved from %s to %s", key, where, s)
					}
					where = s
				}
				servers[where] = true
			}
			if len(servers) < 2 {
				t.Fatalf("12 keys all hashed to %v", servers)
			}
		})
	}
}

func TestHTTPServerKeepAliveReuseRetry(t *testing.T) {
	// A server that closes each connection after one response without
	// saying so: the pooled connection is dead on the next request, which
	// must be retried on a fresh connection (idempotent, no body).
	addr := rawBackend(t, func(c net.Conn, got []byte) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	h := startProxy(t, httpDoc("", "", oneBackend(addr)))
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 5; i++ {
		resp, body := get(t, c, "http://"+h.addr("fe")+"/")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

// startLoggingProxy runs doc and returns frontend fe's address and the
// proxy's log output.
func startLoggingProxy(t *testing.T, doc string) (string, *testenv.LogBuffer) {
	t.Helper()
	c, err := config.Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out := &testenv.LogBuffer{}
	h := startProxyOpts(t, c, Options{Log: slog.New(slog.NewTextHandler(out, nil))}, nil)
	return h.addr("fe"), out
}

func TestHTTPAccessLog(t *testing.T) {
	g := newGoBackend(t, "web1")
	addr, out := startLoggingProxy(t, httpDoc("    http: {log: true}", "    rules: [{deny: 403, path_prefix: [/no]}]", oneBackend(g.addr())))
	url := "http://" + addr
	get(t, http.DefaultClient, url+"/hello?x=1")
	get(t, http.DefaultClient, url+"/no")
	rawExchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	// client:port [date] frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes term "request"
	for _, re := range []string{
		`127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe be/s1 \d+/\d+/\d+/\d+/\d+ 200 \d+ - - ---- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET /hello\?x=1 HTTP/1\.1\\"`,
		`fe fe/<NOSRV> -?\d+/-?\d+/-?\d+/-?\d+/\d+ 403 \d+ - - PR-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET /no HTTP/1\.1\\"`,
		`fe fe/<NOSRV> -?\d+/-?\d+/-?\d+/-?\d+/\d+ 400 \d+ - - PR-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"<BADREQ>\\"`,
	} {
		rx := regexp.MustCompile(re)
		testenv.Eventually(t, 5*time.Second, "log line "+re, func() bool { return rx.MatchString(out.String()) })
	}
}

// TestHTTPAccessLogErrors: a request that fails at or after balancing is
// logged as HAProxy does: the server that was tried and the timers measured
// so far (Tq for a refused head; Tw for a 503; Tw and Tc for a 504).
func TestHTTPAccessLogErrors(t *testing.T) {
	g := newGoBackend(t, "web1")
	doc := fmt.Sprintf(`
defaults: {mode: http, retries: 1, timeouts: {connect: 1s, client: 5s, server: 300ms}}
frontends:
  - name: fe
    bind: "127.0.0.1:0"
    default_backend: ok
    http: {log: true}
    rules:
      - {deny: 403, path_prefix: [/no]}
      - {backend: dead, path_prefix: [/dead]}
backends:
  - {name: ok, servers: [{name: s1, address: %q}]}
  - {name: dead, servers: [{name: d1, address: %q}]}
`, g.addr(), deadAddr(t))
	addr, out := startLoggingProxy(t, doc)
	url := "http://" + addr
	cl := &http.Client{Timeout: 5 * time.Second}
	for path, status := range map[string]int{"/slow": 504, "/dead": 503, "/no": 403} {
		if resp, _ := get(t, cl, url+path); resp.StatusCode != status {
			t.Fatalf("%s: %d, want %d", path, resp.StatusCode, status)
		}
	}
	for _, re := range []string{
		`fe ok/s1 \d+/\d+/\d+/-1/\d+ 504 \d+ - - sH-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET /slow HTTP/1\.1\\"`,
		`fe dead/d1 \d+/\d+/-1/-1/\d+ 503 \d+ - - SC-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET /dead HTTP/1\.1\\"`,
		`fe fe/<NOSRV> \d+/-1/-1/-1/\d+ 403 \d+ - - PR-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET /no HTTP/1\.1\\"`,
	} {
		rx := regexp.MustCompile(re)
		testenv.Eventually(t, 5*time.Second, "log line "+re, func() bool { return rx.MatchString(out.String()) })
	}
}

func TestHTTPReuseModes(t *testing.T) {
	for _, tc := range []struct {
		reuse string
		max   int64 // server connections for 3 client connections x 3 requests
		min   int64
	}{
		{"never", 3, 3},
		{"safe", 3, 1},
		{"always", 1, 1},
	} {
		t.Run(tc.reuse, func(t *testing.T) {
			g := newGoBackend(t, "web1")
			h := startProxy(t, httpDoc("", "", oneBackend(g.addr())+"    http: {reuse: "+tc.reuse+"}\n"))
			for i := 0; i < 3; i++ {
				tr := &http.Transport{}
				c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
				for j := 0; j < 3; j++ {
					if resp, _ := get(t, c, "http://"+h.addr("fe")+"/"); resp.StatusCode != 200 {
						t.Fatalf("status %d", resp.StatusCode)
					}
				}
				tr.CloseIdleConnections()
			}
			if n := g.conns.Load(); n < tc.min || n > tc.max {
				t.Fatalf("reuse %s: %d server connections, want %d..%d", tc.reuse, n, tc.min, tc.max)
			}
		})
	}
}

// TestHTTPNoReplay: a request that reached a server is never sent again,
// except an idempotent one without body on a reused idle connection that
// the server closed without answering (RFC 9110 9.2.2).
func TestHTTPNoReplay(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	be := testenv.Serve(t, func(c net.Conn) {
		// Answers the first request of a connection, reads the second
		// and hangs up without a word.
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			mu.Lock()
			seen[req.Method+" "+req.URL.Path]++
			mu.Unlock()
			if i == 1 {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	h := startProxy(t, httpDoc("", "", oneBackend(be)+"    http: {reuse: always}\n"))
	c := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + h.addr("fe")
	get(t, c, url+"/warm") // leaves an idle server connection in the pool
	resp, err := c.Post(url+"/pay", "text/plain", strings.NewReader("100 EUR"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Fatalf("POST on a connection the server dropped: %d, want 502", resp.StatusCode)
	}
	get(t, c, url+"/warm2")
	if resp, body := get(t, c, url+"/again"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("idempotent GET not retried: %d %q", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["POST /pay"] != 1 {
		t.Fatalf("POST reached the server %d times", seen["POST /pay"])
	}
	if seen["GET /again"] != 2 {
		t.Fatalf("GET /again reached the server %d times, want 2 (one replay)", seen["GET /again"])
	}
}

func TestHTTPReload(t *testing.T) {
	a, b := newGoBackend(t, "a"), newGoBackend(t, "b")
	doc := func(be string) string {
		return fmt.Sprintf(`
defaults: {mode: http}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: %s}]
backends:
  - {name: a, servers: [{name: s1, address: %q}]}
  - {name: b, servers: [{name: s1, address: %q}]}
`, be, a.addr(), b.addr())
	}
	h := startProxy(t, doc("a"))
	addr := h.addr("fe")
	old := &http.Client{Timeout: 5 * time.Second}
	if _, body := get(t, old, "http://"+addr+"/"); field(body, "server") != "a" {
		t.Fatalf("before reload: %q", body)
	}
	if err := h.apply(doc("b")); err != nil {
		t.Fatal(err)
	}
	// The listener is kept; a new connection sees the new routing.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	if _, body := get(t, fresh, "http://"+addr+"/"); field(body, "server") != "b" {
		t.Fatalf("after reload: %q", body)
	}
	// A keep-alive connection opened before the reload is still served.
	if resp, _ := get(t, old, "http://"+addr+"/"); resp.StatusCode != 200 {
		t.Fatalf("old connection after reload: %d", resp.StatusCode)
	}
}

// testHook routes by path, as a Lua route function would.
type testHook struct{}

func (testHook) Route(ctx context.Context, t *Txn) (Decision, error) {
	h := t.HTTP
	switch {
	case h.Path == "/hook/deny":
		return Decision{Deny: 451}, nil
	case h.Path == "/hook/redirect":
		return Decision{Redirect: "https://elsewhere.example/", RedirectCode: 307}, nil
	case h.Path == "/hook/fail":
		return Decision{}, fmt.Errorf("script error")
	case h.Path == "/hook/fail500", h.Path == "/hook/fail503":
		// A Go hook failing with fallback "500"/"503" (the status a Lua
		// hook's fallback gives); its header edits are not applied, the
		// variables it left are logged.
		h.Header.Set("X-Hooked", "yes")
		t.Vars = map[string]string{"step": "before-error"}
		return Decision{}, &HookFailure{Status: map[string]int{"/hook/fail500": 500, "/hook/fail503": 503}[h.Path], Err: fmt.Errorf("script error")}
	case strings.HasPrefix(h.Path, "/hook/b"):
		h.Header.Set("X-Hooked", "yes")
		h.Header.Del("X-Drop")
		h.ResponseHeader = http.Header{"X-Route": {"b"}}
		t.Vars = map[string]string{"route": "b"}
		return Decision{Backend: "b", Server: "s2"}, nil
	}
	return Decision{}, nil
}

func TestHTTPRouteHook(t *testing.T) {
	a, b1, b2 := newGoBackend(t, "a"), newGoBackend(t, "b1"), newGoBackend(t, "b2")
	c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
defaults: {mode: http, http: {log: true}}
frontends:
  - {name: fe, bind: "127.0.0.1:0", default_backend: a, rules: [{backend: b, path_prefix: [/hook/fail]}]}
backends:
  - {name: a, servers: [{name: s1, address: %q}]}
  - {name: b, servers: [{name: s1, address: %q}, {name: s2, address: %q}]}
`, a.addr(), b1.addr(), b2.addr())))
	if err != nil {
		t.Fatal(err)
	}
	// Set after validation: the config checks route names against its Lua
	// plugins, and this hook is Go.
	c.Frontends[0].Route = "myhook"
	var out testenv.LogBuffer
	p := startProxyOpts(t, c, Options{Log: slog.New(slog.NewTextHandler(&out, nil))}, func(p *Proxy) {
		p.SetHookResolver(func(name string) (RouteHook, error) { return testHook{}, nil })
	}).p
	testenv.Eventually(t, 5*time.Second, "listening", func() bool { return len(p.ListenAddrs()["fe"]) > 0 })
	url := "http://" + p.ListenAddrs()["fe"][0]
	cl := noRedirect()

	resp, body := get(t, cl, url+"/hook/b", "X-Drop", "1")
	if field(body, "server") != "b2" || field(body, "h:X-Hooked") != "yes" || field(body, "h:X-Drop") != "" || resp.Header.Get("X-Route") != "b" {
		t.Fatalf("hook decision not applied: %v\n%s", resp.Header, body)
	}
	if resp, _ := get(t, cl, url+"/hook/deny"); resp.StatusCode != 451 {
		t.Fatalf("deny: %d", resp.StatusCode)
	}
	if resp, _ := get(t, cl, url+"/hook/redirect"); resp.StatusCode != 307 || resp.Header.Get("Location") != "https://elsewhere.example/" {
		t.Fatalf("redirect: %d %v", resp.StatusCode, resp.Header)
	}
	// A failing hook gets its fallback: continue (the rules), 500 or 503.
	if _, body := get(t, cl, url+"/hook/fail"); !strings.HasPrefix(field(body, "server"), "b") {
		t.Fatalf("fallback continue: %q", body)
	}
	for _, status := range []int{500, 503} {
		path := fmt.Sprintf("/hook/fail%d", status)
		if resp, body := get(t, cl, url+path); resp.StatusCode != status || field(body, "server") != "" {
			t.Fatalf("fallback %d: got %d %q", status, resp.StatusCode, body)
		}
		line := regexp.MustCompile(fmt.Sprintf(` %d \d+ - - PI-- \d+/\d+/\d+/\d+/\d+ \d+/\d+ \\"GET %s HTTP/1.1\\" \{step=\\"before-error\\"\}`, status, path))
		testenv.Eventually(t, 5*time.Second, fmt.Sprintf("fallback %d logged as PI with the hook's vars", status), func() bool {
			return line.MatchString(out.String())
		})
	}
	if _, body := get(t, cl, url+"/other"); field(body, "server") != "a" {
		t.Fatalf("no opinion: %q", body)
	}
	testenv.Eventually(t, 5*time.Second, "hook vars in the access log", func() bool {
		return strings.Contains(out.String(), `GET /hook/b HTTP/1.1\" {route=\"b\"}`)
	})
}
