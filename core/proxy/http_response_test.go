package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// keepAliveBackend serves requests in a loop on each connection: respond
// writes the answer to each request (its body already read). It counts the
// connections it accepted.
func keepAliveBackend(t testing.TB, conns *atomic.Int64, respond func(c net.Conn, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testenv.ServeListener(t, ln, func(c net.Conn) {
		if conns != nil {
			conns.Add(1)
		}
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			respond(c, req)
		}
	})
	return ln.Addr().String()
}

// oneServerDoc is an http frontend in front of one server, with timeouts.
func oneServerDoc(addr, timeouts string) string {
	return fmt.Sprintf(`
defaults: {mode: http, retries: 0, timeouts: {%s}}
frontends:
  - {name: fe, bind: "127.0.0.1:0", default_backend: be}
backends:
  - {name: be, servers: [{name: s1, address: %q}]}
`, timeouts, addr)
}

// clientConn is a raw client connection to the proxy with a reader for its
// answers.
type clientConn struct {
	net.Conn
	br *bufio.Reader
}

func dialClient(t testing.TB, addr string) *clientConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &clientConn{Conn: c, br: bufio.NewReader(c)}
}

// roundTrip sends req and reads one response (method tells the reader
// whether a body follows).
func (c *clientConn) roundTrip(t testing.TB, method, req string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response to %q: %v", firstLine(req), err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of the response to %q: %v", firstLine(req), err)
	}
	return resp, string(b)
}

// TestHTTPReusedConnDeadlines: a pooled server connection keeps the
// deadlines of its last exchange. Reused once they have passed, it must
// still carry the next request: the write deadline armed while a request
// body went out (here the response then streamed for longer than timeout
// server), and the read deadline of a connection idle for longer than
// timeout server (within the pool's idle time), which made the idle check
// throw every such connection away.
func TestHTTPReusedConnDeadlines(t *testing.T) {
	var conns atomic.Int64
	addr := keepAliveBackend(t, &conns, func(c net.Conn, req *http.Request) {
		if req.URL.Path == "/stream" {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
			for _, b := range "hello" {
				time.Sleep(100 * time.Millisecond)
				io.WriteString(c, string(b))
			}
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	h := startProxy(t, oneServerDoc(addr, "connect: 1s, client: 5s, server: 300ms, http_request: 2s, http_keep_alive: 3s"))
	c := dialClient(t, h.addr("fe"))
	// 64 KiB: more than the proxy's client buffer, so the body is read in
	// several goes and the server connection's write deadline armed.
	big := strings.Repeat("x", 64<<10)
	post := func(step, path, want string) {
		t.Helper()
		resp, body := c.roundTrip(t, "POST", fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", path, len(big), big))
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("%s: %d %q", step, resp.StatusCode, body)
		}
	}
	post("upload, then a response longer than timeout server", "/stream", "hello")
	post("next upload on the same server connection", "/up", "ok")
	// Idle longer than timeout server, shorter than the pool's idle time.
	time.Sleep(500 * time.Millisecond)
	post("upload after an idle wait", "/up", "ok")
	if n := conns.Load(); n != 1 {
		t.Fatalf("server saw %d connections, want 1 (the idle one reused)", n)
	}
}

// TestHTTPSlowUploadServerTimeout: timeout server is the server's
// inactivity, not a bound on the whole exchange: a request body that takes
// longer than it to arrive (the server reading all along) is followed by
// the server's prompt answer, not a 504.
func TestHTTPSlowUploadServerTimeout(t *testing.T) {
	addr := keepAliveBackend(t, nil, func(c net.Conn, req *http.Request) {
		io.WriteString(c, "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")
	})
	h := startProxy(t, oneServerDoc(addr, "connect: 1s, client: 2s, server: 300ms"))
	for _, tc := range []struct{ name, head, piece, end string }{
		{"content-length", "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", "x", ""},
		{"chunked", "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nx\r\n", "0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialClient(t, h.addr("fe"))
			io.WriteString(c, tc.head)
			// Five pieces, 150ms apart: each within timeout client, the
			// whole longer than timeout server.
			for i := 0; i < 5; i++ {
				time.Sleep(150 * time.Millisecond)
				io.WriteString(c, tc.piece)
			}
			resp, body := c.roundTrip(t, "POST", tc.end)
			if resp.StatusCode != 201 || body != "done" {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestHTTPInterimResponsesKeepServerAlive: interim answers (102 Processing)
// are server activity: a server that sends one every 150ms for longer than
// timeout server before its final answer is not timed out.
func TestHTTPInterimResponsesKeepServerAlive(t *testing.T) {
	addr := keepAliveBackend(t, nil, func(c net.Conn, req *http.Request) {
		for i := 0; i < 5; i++ {
			time.Sleep(150 * time.Millisecond)
			io.WriteString(c, "HTTP/1.1 102 Processing\r\n\r\n")
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
	})
	h := startProxy(t, oneServerDoc(addr, "connect: 1s, client: 2s, server: 300ms"))
	c := dialClient(t, h.addr("fe"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	var got []int
	for {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, resp.StatusCode)
		if resp.StatusCode >= 200 {
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != "done" {
				t.Fatalf("final answer %d %q after %v", resp.StatusCode, b, got)
			}
			break
		}
	}
	if want := "[102 102 102 102 102 200]"; fmt.Sprint(got) != want {
		t.Fatalf("answers %v, want %s", got, want)
	}
}

// TestHTTPNoContentFraming: a 204 carries no framing fields toward the
// client (RFC 9110 8.6, RFC 9112 6.1; HAProxy drops them too): a
// Content-Length or Transfer-Encoding a server put on it would make a
// client wait for a body that never comes. An HTTP/1.0 client never sees
// Transfer-Encoding (here on the answer to a HEAD). The connection goes on.
func TestHTTPNoContentFraming(t *testing.T) {
	for _, tc := range []struct{ name, req, resp string }{
		{"204 content-length", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-A: 1\r\n\r\n"},
		{"204 chunked", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"},
		{"HEAD chunked, HTTP/1.0 client", "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := keepAliveBackend(t, nil, func(c net.Conn, req *http.Request) {
				if req.URL.Path == "/next" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
					return
				}
				io.WriteString(c, tc.resp)
			})
			h := startProxy(t, oneServerDoc(addr, "connect: 1s, client: 2s, server: 1s"))
			c := dialClient(t, h.addr("fe"))
			io.WriteString(c, tc.req)
			tp := textproto.NewReader(c.br)
			status, err := tp.ReadLine()
			if err != nil {
				t.Fatal(err)
			}
			hdr, err := tp.ReadMIMEHeader()
			if err != nil {
				t.Fatalf("%s: %v", status, err)
			}
			if hdr.Get("X-A") != "1" || hdr.Get("Content-Length") != "" || hdr.Get("Transfer-Encoding") != "" {
				t.Fatalf("%s %v: want X-A and no framing field", status, hdr)
			}
			resp, body := c.roundTrip(t, "GET", "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != 200 || body != "next" {
				t.Fatalf("next request: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestHTTP10ChunkedResponseNotReused: an HTTP/1.0 response with
// Transfer-Encoding has untrustworthy framing (RFC 9112 6.1: process it,
// then close; HAProxy does the same): its connection is not reused even
// when it asks for keep-alive.
func TestHTTP10ChunkedResponseNotReused(t *testing.T) {
	var conns atomic.Int64
	addr := keepAliveBackend(t, &conns, func(c net.Conn, req *http.Request) {
		io.WriteString(c, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	})
	h := startProxy(t, oneServerDoc(addr, "connect: 1s, client: 2s, server: 1s"))
	c := dialClient(t, h.addr("fe"))
	for i := 0; i < 2; i++ {
		resp, body := c.roundTrip(t, "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 200 || body != "hello" {
			t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("server saw %d connections, want 2 (none reused)", n)
	}
}

// TestHTTPResponseDesyncTLS: TestHTTPResponseDesync toward a TLS server.
// Bytes a server sends on an idle connection must not become the answer
// to the next request there either: when they arrive while the
// connection is idle, and when they came in the same read as the end of
// the previous response (then the TLS layer holds them, not the socket).
func TestHTTPResponseDesyncTLS(t *testing.T) {
	good := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"
	evil := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
	for _, later := range []bool{true, false} {
		t.Run(fmt.Sprintf("later=%v", later), func(t *testing.T) {
			firstDone := make(chan struct{})
			extraSent := make(chan struct{}, 1)
			var conns atomic.Int64
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg := &tls.Config{Certificates: []tls.Certificate{testTLSCert(t)}}
			testenv.ServeListener(t, ln, func(c net.Conn) {
				n := conns.Add(1)
				bc := &batchConn{Conn: c}
				tc := tls.Server(bc, cfg)
				br := bufio.NewReader(tc)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					switch {
					case n != 1:
						io.WriteString(tc, good)
					case later:
						io.WriteString(tc, good)
						<-firstDone
						io.WriteString(tc, evil)
						extraSent <- struct{}{}
					default:
						// Two TLS records in one write: the proxy's TLS layer
						// reads both while looking for the first.
						bc.batch = true
						io.WriteString(tc, good)
						io.WriteString(tc, evil)
						bc.flush()
						extraSent <- struct{}{}
					}
				}
			})
			h := startProxy(t, fmt.Sprintf(`
defaults: {mode: http, retries: 0, timeouts: {connect: 1s, client: 2s, server: 1s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, ssl: {verify: none}, http: {reuse: always}, servers: [{name: s1, address: %q}]}]
`, ln.Addr().String()))
			checkNoStaleResponse(t, "http://"+h.addr("fe"), firstDone, extraSent)
			// The check costs no healthy connection (TLS 1.3 session
			// tickets and all): the second one served all three.
			if n := conns.Load(); n != 2 {
				t.Fatalf("server saw %d connections, want 2", n)
			}
		})
	}
}

// batchConn holds writes back while batch is set, to send them in one go.
type batchConn struct {
	net.Conn
	batch bool
	buf   []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	if b.batch {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

func (b *batchConn) flush() {
	b.batch = false
	_, _ = b.Conn.Write(b.buf)
	b.buf = nil
}

// TestHTTPLargeResponseHead: a backend's max_header_bytes bounds the
// response heads of its servers (HAProxy's tune.bufsize applies to both
// directions): above the 16 KiB default, a head within it is relayed, one
// past it is a 502.
func TestHTTPLargeResponseHead(t *testing.T) {
	addr := keepAliveBackend(t, nil, func(c net.Conn, req *http.Request) {
		n := 30 << 10
		if req.URL.Path == "/huge" {
			n = 70 << 10
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\nok", strings.Repeat("b", n))
	})
	h := startProxy(t, fmt.Sprintf(`
defaults: {mode: http, retries: 0, timeouts: {connect: 1s, client: 2s, server: 1s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, http: {max_header_bytes: 65536}, servers: [{name: s1, address: %q}]}]
`, addr))
	c := dialClient(t, h.addr("fe"))
	resp, body := c.roundTrip(t, "GET", "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || body != "ok" || len(resp.Header.Get("X-Big")) != 30<<10 {
		t.Fatalf("30 KiB head: %d %q (X-Big %d bytes)", resp.StatusCode, body, len(resp.Header.Get("X-Big")))
	}
	resp, _ = c.roundTrip(t, "GET", "GET /huge HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 502 {
		t.Fatalf("70 KiB head: %d, want 502", resp.StatusCode)
	}
}

// TestHTTPEarlyResponseDuringUpload: a server that answers before it has
// read the request body and closes (413 for a too large upload, 401)
// has its answer reach the client, as through HAProxy, not a 502 or
// nothing: the proxy reads the answer when the body can no longer be
// sent (here a splice toward the server fails, which does not say which
// side broke).
func TestHTTPEarlyResponseDuringUpload(t *testing.T) {
	addr := rawBackend(t, func(c net.Conn, _ []byte) {
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
		// Closing with the body unread resets the connection.
	})
	h := startProxy(t, oneServerDoc(addr, "connect: 1s, client: 2s, server: 1s"))
	c := dialClient(t, h.addr("fe"))
	const size = 8 << 20
	go func() {
		io.WriteString(c, fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size))
		io.WriteString(c, strings.Repeat("x", size))
	}()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || string(b) != "too big!" || err != nil {
		t.Fatalf("%d %q %v, want the server's 413", resp.StatusCode, b, err)
	}
	if !resp.Close {
		t.Fatal("the connection stays open though the request body was not read")
	}
}

// TestHTTPBrokenResponses: each way a server can fail a response gets
// HAProxy's answer and termination state, and a body cut short never
// looks complete to the client: its connection ends without the rest (no
// last chunk for a chunked body), and the server connection is not
// reused.
func TestHTTPBrokenResponses(t *testing.T) {
	endless := func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		for i := 0; i < 1<<14; i++ {
			if _, err := io.WriteString(c, "X-Endless: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"); err != nil {
				return
			}
		}
	}
	for _, tc := range []struct {
		name string
		send func(c net.Conn)
		// want starts what the client gets (a bad chunk size in the same
		// read as the head comes before the proxy's first write: nothing).
		want  string
		term  string
		whole string // the client must not get this much
	}{
		{"malformed head", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n") }, "HTTP/1.1 502 ", "PH", ""},
		{"not HTTP/1.x", func(c net.Conn) { io.WriteString(c, "HTTP/2 200\r\n\r\n") }, "HTTP/1.1 502 ", "PH", ""},
		{"ICY", func(c net.Conn) { io.WriteString(c, "ICY 200 OK\r\n\r\n") }, "HTTP/1.1 502 ", "PH", ""},
		{"endless head", endless, "HTTP/1.1 502 ", "PH", ""},
		{"close before head", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-") }, "HTTP/1.1 502 ", "SH", ""},
		{"content-length cut", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") }, "HTTP/1.1 200 ", "SD", "abcdefghij"},
		{"chunked cut", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
		}, "HTTP/1.1 200 ", "SD", "0\r\n"},
		{"chunked cut in a chunk", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n9\r\nab")
		}, "HTTP/1.1 200 ", "SD", "0\r\n"},
		{"bad chunk size", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n-1\r\nx\r\n0\r\n\r\n")
		}, "", "SD", "0\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawBackend(t, func(c net.Conn, _ []byte) { tc.send(c) })
			doc := fmt.Sprintf(`
defaults: {mode: http, retries: 0, timeouts: {connect: 1s, client: 2s, server: 1s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, http: {log: true}}]
backends: [{name: be, servers: [{name: s1, address: %q}]}]
`, addr)
			fe, out := startLoggingProxy(t, doc)
			// Keep-alive is asked for: only the failure may end the connection.
			got := rawExchange(t, fe, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if !strings.HasPrefix(got, tc.want) || (tc.whole != "" && strings.Contains(got, tc.whole)) {
				t.Fatalf("client got %q", got)
			}
			rx := regexp.MustCompile(` be/s1 \S+ \d+ \d+ - - ` + tc.term + `-- `)
			testenv.Eventually(t, 5*time.Second, "log line with "+tc.term, func() bool { return rx.MatchString(out.String()) })
		})
	}
}

// TestHTTPResponseHeadChecks: answers that look valid but do not fit the
// request. A 101 to a request that asked for no upgrade is a 502 (the
// client would be switched to a protocol it did not ask for); a body after
// the answer to a HEAD, or after a 204, is not delivered as the next
// answer, nor is that server connection reused; hop-by-hop fields never
// reach the client; repeated 100 Continue are relayed before the answer.
func TestHTTPResponseHeadChecks(t *testing.T) {
	var conns atomic.Int64
	addr := keepAliveBackend(t, &conns, func(c net.Conn, req *http.Request) {
		switch req.URL.Path {
		case "/101":
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
		case "/head":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nHTTP/1.1 66")
		case "/204":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 666 Evil\r\nContent-Length: 0\r\n\r\n")
		case "/hop":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\n"+
				"Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Kept: 1\r\nContent-Length: 2\r\n\r\nok")
		case "/continue":
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
		}
	})
	h := startProxy(t, oneServerDoc(addr, "connect: 1s, client: 2s, server: 1s"))

	if got := rawExchange(t, h.addr("fe"), "GET /101 HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 502 ") {
		t.Fatalf("101 without an upgrade request: %q", got)
	}
	for _, m := range []struct{ method, path string }{{"HEAD", "/head"}, {"GET", "/204"}} {
		// A proxy of its own: no idle connection left by the others.
		h := startProxy(t, oneServerDoc(addr, "connect: 1s, client: 2s, server: 1s"))
		before := conns.Load()
		c := dialClient(t, h.addr("fe"))
		resp, body := c.roundTrip(t, m.method, m.method+" "+m.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode/100 != 2 || body != "" {
			t.Fatalf("%s %s: %d %q", m.method, m.path, resp.StatusCode, body)
		}
		for i := 0; i < 2; i++ {
			resp, body = c.roundTrip(t, "GET", "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp.StatusCode != 200 || body != "next" {
				t.Fatalf("after %s %s: %d %q", m.method, m.path, resp.StatusCode, body)
			}
		}
		if n := conns.Load() - before; n != 2 {
			t.Fatalf("after %s %s: %d new server connections, want 2 (the first not reused)", m.method, m.path, n)
		}
	}
	c := dialClient(t, h.addr("fe"))
	resp, body := c.roundTrip(t, "GET", "GET /hop HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, k := range []string{"X-Private", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("hop-by-hop %s: %q reached the client", k, v)
		}
	}
	if resp.Header.Get("X-Kept") != "1" || body != "ok" || resp.Close {
		t.Fatalf("%v %q close=%v: want X-Kept, the body, and the client connection kept (the server's close is its own)", resp.Header, body, resp.Close)
	}
	io.WriteString(c, "POST /continue HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	var got []int
	for len(got) == 0 || got[len(got)-1] < 200 {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, resp.StatusCode)
	}
	if fmt.Sprint(got) != "[100 100 200]" {
		t.Fatalf("answers %v, want [100 100 200]", got)
	}
}

// TestHTTPReusedConnClosedOnRequest: a kept-alive server connection that
// passes its idle check and is closed by the server once the next request
// arrives (with a FIN, or a reset) is retried on a fresh connection: the
// end of the connection is seen by the read that waits for the answer,
// which is made with the request's write (flushFill) since nothing can be
// pending then.
func TestHTTPReusedConnClosedOnRequest(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(map[bool]string{false: "FIN", true: "reset"}[reset], func(t *testing.T) {
			var dropped atomic.Int64
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			testenv.ServeListener(t, ln, func(c net.Conn) {
				br := bufio.NewReader(c)
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				// The second request on this connection is read and
				// dropped: nothing was answered, so it is safe to retry.
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				dropped.Add(1)
				if reset {
					_ = c.(*net.TCPConn).SetLinger(0)
				}
				_ = c.Close()
			})
			h := startProxy(t, httpDoc("", "", oneBackend(ln.Addr().String())))
			c := &http.Client{Timeout: 5 * time.Second}
			for i := 0; i < 6; i++ {
				resp, body := get(t, c, "http://"+h.addr("fe")+"/")
				if resp.StatusCode != 200 || body != "ok" {
					t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
				}
			}
			if dropped.Load() == 0 {
				t.Fatal("no request reached a reused connection: the case was not tested")
			}
		})
	}
}

// TestHTTPReusedConnHalfClosedWhileIdle: a server that closes its side of
// an idle kept-alive connection and lingers (reads on, never resets, as a
// lingering close does) must not hold the next request until timeout
// server: the idle check made with the request's send finds the end
// (errNotIdle, the request goes to a new connection), or the end wakes the
// wait for the answer and the request is retried.
func TestHTTPReusedConnHalfClosedWhileIdle(t *testing.T) {
	var conns atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testenv.ServeListener(t, ln, func(c net.Conn) {
		conns.Add(1)
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c) // linger: read and drop until the proxy closes
	})
	doc := fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 1s, client: 20s, server: 15s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s1, address: %q}]}]
`, ln.Addr().String())
	h := startProxy(t, doc)
	// One client connection: its later requests may take pooled server
	// connections (http-reuse safe).
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	for i := 0; i < 5; i++ {
		resp, body := get(t, cl, "http://"+h.addr("fe")+"/")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := conns.Load(); n < 5 {
		t.Fatalf("5 requests over %d server connections: a half-closed one was used", n)
	}
}

// TestHTTPServerSessionsCountedOnce: a request counts once in its server's
// and backend's total sessions (HAProxy's stot), also when the idle
// connections it was to reuse turn out closed and it takes a new one:
// the server slot taken for the pooled connection is the new one's.
func TestHTTPServerSessionsCountedOnce(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("", "", oneBackend(g.addr())))
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	n := 0
	for batch := 0; batch < 3; batch++ {
		for i := 0; i < 4; i++ {
			if resp, _ := get(t, cl, "http://"+h.addr("fe")+"/"); resp.StatusCode != 200 {
				t.Fatalf("batch %d request %d: %d", batch, i, resp.StatusCode)
			}
			n++
		}
		// The server closes the proxy's idle connections: the next
		// request finds its pooled one closed.
		g.srv.CloseClientConnections()
	}
	srv, be := h.p.Servers("be")[0], h.p.Backends()[0]
	if got := srv.Counters.TotalSessions.Load(); got != uint64(n) {
		t.Fatalf("%d requests counted %d sessions on the server", n, got)
	}
	if got := be.Counters.TotalSessions.Load(); got != uint64(n) {
		t.Fatalf("%d requests counted %d sessions on the backend", n, got)
	}
}
