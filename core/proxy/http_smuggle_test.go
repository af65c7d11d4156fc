package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// recBackend is a raw HTTP/1.1 server that records every request it parsed
// (net/http's reader, as a typical backend would) and the raw bytes.
type recBackend struct {
	ln   net.Listener
	mu   sync.Mutex
	reqs []string // "METHOD URI body"
	raw  strings.Builder
}

func newRecBackend(t testing.TB) *recBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recBackend{ln: ln}
	testenv.ServeListener(t, ln, r.serve)
	return r
}

type teeConn struct {
	net.Conn
	r *recBackend
}

func (t teeConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.r.mu.Lock()
	t.r.raw.Write(p[:n])
	t.r.mu.Unlock()
	return n, err
}

func (r *recBackend) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(teeConn{c, r})
	for {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, fmt.Sprintf("%s %s %s", req.Method, req.RequestURI, body))
		r.mu.Unlock()
		if err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}
}

func (r *recBackend) seen() ([]string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...), r.raw.String()
}

// TestHTTPSmuggling sends the classic desync attacks. Each must be refused
// (400/501) or normalised; the backend must never see the smuggled request
// as a second request.
func TestHTTPSmuggling(t *testing.T) {
	const smuggled = "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name   string
		req    string
		status int // expected first status line code
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggled + "\r\n0\r\n\r\n", 400},
		{"TE.TE xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.TE space before colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.TE tab before colon", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.TE duplicate", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.TE list", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.TE vertical tab", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.TE obs-fold", "POST / HTTP/1.1\r\nHost: x\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.TE leading space line", "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE.TE bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\n\r\n0\r\n\r\n" + smuggled, 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400},
		{"duplicate CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 34\r\n\r\n" + smuggled, 400},
		{"CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 34\r\n\r\n" + smuggled, 400},
		{"CL plus sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +34\r\n\r\n" + smuggled, 400},
		{"NUL in header", "GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400},
		{"CR in header", "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400},
		{"chunk ext bad", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk ext bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk size 0x", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk size negative", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk size space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n" + smuggled, 400},
		{"chunk data overrun", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n" + smuggled, 400},
		{"trailer CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 34\r\n\r\n" + smuggled, 400},
		{"invalid method", "G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"invalid target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
	}
	be := newRecBackend(t)
	h := startProxy(t, httpDoc("", "", oneBackend(be.ln.Addr().String())))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := be.seen()
			got := rawExchange(t, h.addr("fe"), tt.req)
			if want := fmt.Sprintf("HTTP/1.1 %d ", tt.status); !strings.HasPrefix(got, want) {
				t.Fatalf("response %q, want %s", firstLine(got), want)
			}
			if strings.Count(got, "HTTP/1.1 ") != 1 {
				t.Fatalf("more than one response: %q", got)
			}
			after, _ := be.seen()
			for _, r := range after[len(before):] {
				if strings.HasPrefix(r, "GET /admin") {
					t.Fatalf("smuggled request reached the backend: %q", after[len(before):])
				}
			}
			// A refused body may have let the head through (it is streamed),
			// but never as a complete second request.
			if n := len(after) - len(before); n > 1 {
				t.Fatalf("backend saw %d requests: %q", n, after[len(before):])
			}
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// TestHTTPNormalisation: accepted-but-ambiguous forms reach the backend in
// one canonical shape.
func TestHTTPNormalisation(t *testing.T) {
	be := newRecBackend(t)
	h := startProxy(t, httpDoc("", "", oneBackend(be.ln.Addr().String())))
	tests := []struct {
		name, req, wantRaw, wantReq string
	}{
		{"chunk extensions dropped", "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;foo=bar\r\nabc\r\n0\r\n\r\n",
			"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "POST /c abc"},
		{"identical CLs merged", "POST /l HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\nabc",
			"Content-Length: 3\r\n\r\nabc", "POST /l abc"},
		{"absolute form", "GET http://other.example/p?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			"GET /p?q=1 HTTP/1.1\r\nHost: other.example\r\n", "GET /p?q=1 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, rawBefore := be.seen()
			got := rawExchange(t, h.addr("fe"), tt.req)
			if !strings.HasPrefix(got, "HTTP/1.1 200") {
				t.Fatalf("response %q", got)
			}
			reqs, raw := be.seen()
			raw = raw[len(rawBefore):]
			if !strings.Contains(raw, tt.wantRaw) {
				t.Fatalf("backend got %q, want it to contain %q", raw, tt.wantRaw)
			}
			if strings.Count(raw, "Content-Length") > 1 {
				t.Fatalf("duplicate Content-Length forwarded: %q", raw)
			}
			if n := reqs[len(before):]; len(n) != 1 || n[0] != tt.wantReq {
				t.Fatalf("backend requests %q", n)
			}
		})
	}
}

func TestHTTPLimitsAndTimeouts(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("    http: {max_request_line: 100, max_header_bytes: 512, max_headers: 10}", "", oneBackend(g.addr())))
	addr := h.addr("fe")
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"414", "GET /" + strings.Repeat("a", 200) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
		{"431 size", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 600) + "\r\n\r\n", 431},
		{"431 count", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X: a\r\n", 11) + "\r\n", 431},
		{"505", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"405 connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405},
	} {
		if got := rawExchange(t, addr, tc.req); !strings.HasPrefix(got, fmt.Sprintf("HTTP/1.1 %d", tc.status)) {
			t.Errorf("%s: %q", tc.name, firstLine(got))
		}
	}
	// Slowloris: a partial head, then silence: 408 after timeout
	// http_request (1s), and the connection is closed.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n")
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Fatalf("slowloris: %q", b)
	}
	// An idle keep-alive connection is closed silently after http_keep_alive.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c2)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: want EOF, got %v", err)
	}
}

// TestHTTPResponseDesync: a server that sends more than its response (an
// extra "response" on an idle keep-alive connection) must not get that
// data delivered as the answer to another request.
func TestHTTPResponseDesync(t *testing.T) {
	extraSent := make(chan struct{}, 1)
	firstDone := make(chan struct{})
	var conns atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
					if n == 1 {
						// Later, once the proxy has parked the connection,
						// out of turn: a poisoned response.
						<-firstDone
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
						extraSent <- struct{}{}
					}
				}
			}()
		}
	}()
	h := startProxy(t, httpDoc("", "", oneBackend(ln.Addr().String())+"    http: {reuse: always}\n"))
	url := "http://" + h.addr("fe")
	// Loopback delivers into the proxy's socket buffer within the write.
	checkNoStaleResponse(t, url, firstDone, extraSent)
}

// checkNoStaleResponse asks url once (the server answers "good"), closes
// firstDone (the server then sends an extra "evil" answer and signals
// extraSent) and checks that later requests still get "good".
func checkNoStaleResponse(t *testing.T, url string, firstDone, extraSent chan struct{}) {
	t.Helper()
	if _, body := get(t, http.DefaultClient, url+"/1"); body != "good" {
		t.Fatalf("first: %q", body)
	}
	close(firstDone)
	<-extraSent
	for i := 0; i < 3; i++ {
		c := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
		if _, body := get(t, c, url+"/next"); body != "good" {
			t.Fatalf("request %d got %q: a stale response was delivered", i, body)
		}
	}
}

// TestHTTPBadResponses: responses with ambiguous framing are not relayed.
func TestHTTPBadResponses(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"CL differ", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd"},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabcd"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
		{"bad status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"},
		{"NUL", "HTTP/1.1 200 OK\r\nX: a\x00\r\nContent-Length: 0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawBackend(t, func(c net.Conn, _ []byte) { io.WriteString(c, tc.resp) })
			h := startProxy(t, httpDoc("", "", oneBackend(addr)))
			got := rawExchange(t, h.addr("fe"), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if !strings.HasPrefix(got, "HTTP/1.1 502 ") || strings.Contains(got, "abcd") {
				t.Fatalf("got %q", got)
			}
		})
	}
}
