package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/proxy/httpparse"
)

// FuzzHTTPForwardedHead is a differential test against net/http's request
// reader (what many backends use): every request head the proxy accepts is
// re-serialised as it would go to a server, and that head must read back
// as exactly one request with the same method, target, host and framing.
// A disagreement on framing is what request smuggling is made of.
func FuzzHTTPForwardedHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\n",
		"GET http://b:8080/p HTTP/1.1\r\nHost: a\r\nCookie: SRV=s1; x=y\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	h := startProxy(f, httpDoc("    http: {forwardfor: {}, forwarded: true, via: fz}", "", oneBackend("127.0.0.1:1")+"    cookie: {name: SRV, indirect: true}\n"))
	hh := h.p.Frontends()[0].handler.(*httpHandler)
	hb := hh.backends["be"]
	f.Fuzz(func(t *testing.T, in []byte) {
		s := hh.newSession()
		defer hh.putSession(s)
		if err := httpparse.ParseRequest(in, hh.lim, &s.req); err != nil {
			return
		}
		host, path, query := splitTarget(s.req.Target)
		absolute := host != nil
		if !absolute {
			host = s.req.Host
		}
		s.buildRequestHead(hb, host, absolute, path, query, nil, false, &cookieState{})
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(s.out)))
		if err != nil {
			t.Fatalf("forwarded head not readable: %v\n%q\nfrom %q", err, s.out, in)
		}
		if r.Method != string(s.req.Method) {
			t.Fatalf("method %q vs %q", r.Method, s.req.Method)
		}
		if r.Host != string(host) {
			t.Fatalf("host %q vs %q", r.Host, host)
		}
		chunked := len(r.TransferEncoding) > 0
		if chunked != s.req.Chunked {
			t.Fatalf("framing disagrees: net/http chunked=%v, proxy chunked=%v\n%q", chunked, s.req.Chunked, s.out)
		}
		want := s.req.ContentLength
		if want < 0 && !s.req.Chunked {
			want = 0
		}
		if !chunked && r.ContentLength != want {
			t.Fatalf("length disagrees: net/http %d, proxy %d\n%q", r.ContentLength, want, s.out)
		}
		if strings.Count(string(s.out), "\r\n\r\n") != 1 || !bytes.HasSuffix(s.out, []byte("\r\n\r\n")) {
			t.Fatalf("forwarded head has an embedded end of head: %q", s.out)
		}
	})
}
