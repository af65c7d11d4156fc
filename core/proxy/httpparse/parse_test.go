package httpparse

import (
	"errors"
	"strings"
	"testing"
)

var lim = Limits{MaxRequestLine: 200, MaxHeaderBytes: 1024, MaxHeaders: 20}

func TestParseRequest(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name   string
		in     string
		status int // 0 = ok, -1 = need more
		check  func(*Request) bool
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, func(r *Request) bool {
			return string(r.Method) == "GET" && string(r.Host) == "a" && r.ContentLength == -1 && r.KeepAlive()
		}},
		{"leading crlf", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, nil},
		{"http10 close", "GET / HTTP/1.0\r\n\r\n", 0, func(r *Request) bool { return !r.KeepAlive() }},
		{"http10 keepalive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, func(r *Request) bool { return r.KeepAlive() }},
		{"close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0, func(r *Request) bool { return !r.KeepAlive() }},
		{"cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 0, func(r *Request) bool { return r.ContentLength == 5 }},
		{"cl same dup", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, func(r *Request) bool { return r.ContentLength == 5 }},
		{"cl list same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 0, func(r *Request) bool { return r.ContentLength == 5 }},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0, func(r *Request) bool { return r.Chunked }},
		{"expect", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", 0, func(r *Request) bool { return r.Expect100 }},
		{"upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0, func(r *Request) bool { return r.HasUpgrade && r.Conn&ConnUpgrade != 0 }},
		{"absolute", "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 0, nil},
		{"absolute userinfo", "GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"absolute empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"options star", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0, nil},
		{"obs-text value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", 0, nil},
		{"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", -1, nil},
		{"incomplete line", "GET / HT", -1, nil},

		{"cl and te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"te and cl", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400, nil},
		{"cl differ", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, nil},
		{"cl list differ", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400, nil},
		{"cl sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, nil},
		{"cl hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400, nil},
		{"cl empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400, nil},
		{"cl huge", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, nil},
		{"te gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, nil},
		{"te twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"te obfuscated", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400, nil},
		{"te space name", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400, nil},
		{"te tab value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n", 0, func(r *Request) bool { return r.Chunked }},
		{"te vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", 400, nil},
		{"te http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"obs fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, nil},
		{"bare lf", "GET / HTTP/1.1\nHost: a\n\n", 400, nil},
		{"bare cr", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, nil},
		{"nul value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, nil},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"bad target", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"bad target rel", "GET a HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405, nil},
		{"http2 line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, nil},
		{"bad version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, nil},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400, nil},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, nil},
		{"bad host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, nil},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
		{"long line", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, nil},
		{"long line incomplete", "GET /" + long, 414, nil},
		{"too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: y\r\n", 25) + "\r\n", 431, nil},
		{"too big head", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 1100) + "\r\n\r\n", 431, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			err := ParseRequest([]byte(tt.in), lim, &r)
			switch tt.status {
			case 0:
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if r.HeadLen != len(tt.in) {
					t.Fatalf("HeadLen %d, want %d", r.HeadLen, len(tt.in))
				}
				if tt.check != nil && !tt.check(&r) {
					t.Fatalf("check failed: %+v", r)
				}
			case -1:
				if !errors.Is(err, ErrNeedMore) {
					t.Fatalf("want ErrNeedMore, got %v", err)
				}
			default:
				var pe *Error
				if !errors.As(err, &pe) || pe.Status != tt.status {
					t.Fatalf("want status %d, got %v", tt.status, err)
				}
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		in     string
		status int
		ok     bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 200, true},
		{"HTTP/1.1 204\r\n\r\n", 204, true},
		{"HTTP/1.0 200 OK\r\n\r\n", 200, true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 0, false},
		{"HTTP/1.1 2x0 OK\r\n\r\n", 0, false},
		{"HTTP/2 200 OK\r\n\r\n", 0, false},
		{"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, false},
	}
	for _, tt := range tests {
		var r Response
		err := ParseResponse([]byte(tt.in), lim, &r)
		if tt.ok != (err == nil) || (tt.ok && r.Status != tt.status) {
			t.Errorf("%q: status %d err %v", tt.in, r.Status, err)
		}
	}
}

func TestParseChunkSize(t *testing.T) {
	tests := []struct {
		in   string
		size int64
		ok   bool
	}{
		{"0\r\n", 0, true},
		{"1a\r\n", 26, true},
		{"A;foo=bar\r\n", 10, true},
		{"A ; foo = \"b\\\"r\"\r\n", 10, true},
		{"A;foo\r\n", 10, true},
		{"\r\n", 0, false},
		{"-1\r\n", 0, false},
		{"0x1\r\n", 0, false},
		{" 1\r\n", 0, false},
		{"1\n", 0, false},
		{"1;\r\n", 0, false},
		{"1;a=\"x\r\n", 0, false},
		{"1;a=b c\r\n", 0, false},
		{"1;a\x00\r\n", 0, false},
		{"ffffffffffffffffff\r\n", 0, false},
		{"1\rx\r\n", 0, false},
	}
	for _, tt := range tests {
		size, n, err := ParseChunkSize([]byte(tt.in))
		if tt.ok != (err == nil) || (tt.ok && (size != tt.size || n != len(tt.in))) {
			t.Errorf("%q: size %d n %d err %v", tt.in, size, n, err)
		}
	}
	if _, _, err := ParseChunkSize([]byte("1a")); !errors.Is(err, ErrNeedMore) {
		t.Errorf("incomplete: %v", err)
	}
}

func TestParseTrailers(t *testing.T) {
	if n, err := ParseTrailers([]byte("\r\n"), 100); err != nil || n != 2 {
		t.Errorf("empty: %d %v", n, err)
	}
	if n, err := ParseTrailers([]byte("X: y\r\n\r\nrest"), 100); err != nil || n != 8 {
		t.Errorf("one: %d %v", n, err)
	}
	for _, in := range []string{"Content-Length: 5\r\n\r\n", "X y\r\n\r\n", " X: y\r\n\r\n", "X: y\n\r\n"} {
		if _, err := ParseTrailers([]byte(in), 100); err == nil || errors.Is(err, ErrNeedMore) {
			t.Errorf("%q accepted", in)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	in := []byte("GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: wrk/4\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nCookie: SRV=s1; x=y\r\n\r\n")
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if err := ParseRequest(in, Limits{8192, 16384, 101}, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 22 Nov 2026 21:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\n")
	var r Response
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseResponse(in, Limits{8192, 16384, 101}, &r); err != nil {
			b.Fatal(err)
		}
	}
}
