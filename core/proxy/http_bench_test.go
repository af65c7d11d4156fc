package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/vipgate/vipgate/core/proxy/httpparse"
	"github.com/vipgate/vipgate/internal/testenv"
)

// fastBackend answers every request head with a fixed small response.
func fastBackend(b testing.TB) string {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: fast\r\nContent-Type: text/plain\r\nContent-Length: 17\r\n\r\nhello from fast!\n")
	return testenv.Serve(b, func(c net.Conn) {
		buf := make([]byte, 16<<10)
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil {
				return
			}
			have += n
			for {
				i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
				if i < 0 {
					break
				}
				if _, err := c.Write(resp); err != nil {
					return
				}
				copy(buf, buf[i+4:have])
				have -= i + 4
			}
		}
	})
}

// BenchmarkHTTPProxyKeepAlive measures the whole hot path: parse the
// request, route, pooled server connection, parse the response, relay.
func BenchmarkHTTPProxyKeepAlive(b *testing.B) {
	h := startProxy(b, httpDoc("", "", oneBackend(fastBackend(b))))
	addr := h.addr("fe")
	benchKeepAlive(b, func() (net.Conn, error) { return net.Dial("tcp", addr) })
}

// BenchmarkHTTPSProxyKeepAlive is the same over TLS (termination on the
// frontend, plain toward the server): the record layer on top of the hot
// path.
func BenchmarkHTTPSProxyKeepAlive(b *testing.B) {
	dir := b.TempDir()
	ca := newTestCA(b)
	cp, kp := ca.issue(b, dir, "srv", 2, false, "bench.example")
	h := startProxy(b, httpDoc(fmt.Sprintf(`    tls: {certificates: [{cert: %q, key: %q}]}`, cp, kp), "", oneBackend(fastBackend(b))))
	addr := h.addr("fe")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "bench.example"}
	benchKeepAlive(b, func() (net.Conn, error) { return tls.Dial("tcp", addr, cfg) })
}

// benchKeepAlive sends small GETs over kept-alive connections from dial,
// one per parallel goroutine, and reads each response whole.
func benchKeepAlive(b *testing.B, dial func() (net.Conn, error)) {
	req := []byte("GET /index.html HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := dial()
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		body := make([]byte, 17)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			// Head then the 17-byte body.
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					b.Error(err)
					return
				}
				if len(l) == 2 {
					break
				}
			}
			if _, err := io.ReadFull(br, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHTTPProxyConnPerRequest: a new client connection per request
// (accept, session setup, server connection, teardown).
func BenchmarkHTTPProxyConnPerRequest(b *testing.B) {
	h := startProxy(b, httpDoc("", "", oneBackend(fastBackend(b))))
	addr := h.addr("fe")
	req := []byte("GET / HTTP/1.1\r\nHost: bench.example\r\nConnection: close\r\n\r\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		for pb.Next() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			for {
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
			c.Close()
		}
	})
}

func BenchmarkHTTPBuildRequestHead(b *testing.B) {
	h := startProxy(b, httpDoc("    http: {forwardfor: {}, x_forwarded_proto: true}", "", oneBackend("127.0.0.1:1")))
	hh := h.p.Frontends()[0].handler.(*httpHandler)
	s := hh.newSession()
	in := []byte("GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nConnection: keep-alive\r\nCookie: a=b\r\n\r\n")
	hb := hh.backends["be"]
	b.ReportAllocs()
	for b.Loop() {
		if err := httpparseRequest(in, hh, s); err != nil {
			b.Fatal(err)
		}
		_, path, query := splitTarget(s.req.Target)
		s.buildRequestHead(hb, s.req.Host, false, path, query, nil, false, &cookieState{})
	}
}

func httpparseRequest(in []byte, h *httpHandler, s *session) error {
	return httpparse.ParseRequest(in, h.lim, &s.req)
}
