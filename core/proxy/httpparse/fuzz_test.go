package httpparse

import (
	"errors"
	"testing"
)

// FuzzParseRequest: no input panics, and an accepted head has consistent
// framing (never both CL and chunked) and lies inside the input.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive, X\r\nX: y\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		err := ParseRequest(b, Limits{512, 2048, 50}, &r)
		if err != nil {
			var pe *Error
			if !errors.Is(err, ErrNeedMore) && !errors.As(err, &pe) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if r.Chunked && r.ContentLength >= 0 {
			t.Fatal("accepted both framings")
		}
		if r.HeadLen > len(b) || r.HeadLen < 4 {
			t.Fatalf("HeadLen %d of %d", r.HeadLen, len(b))
		}
		for _, h := range r.Headers {
			if !IsToken(h.Name) || !fieldValueOK(h.Value) {
				t.Fatalf("bad header accepted %q: %q", h.Name, h.Value)
			}
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Response
		if err := ParseResponse(b, Limits{512, 2048, 50}, &r); err == nil {
			if r.Chunked && r.ContentLength >= 0 {
				t.Fatal("accepted both framings")
			}
			if r.Status < 100 || r.Status > 999 || r.HeadLen > len(b) {
				t.Fatalf("status %d headlen %d", r.Status, r.HeadLen)
			}
		}
	})
}

func FuzzChunked(f *testing.F) {
	f.Add([]byte("5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			size, n, err := ParseChunkSize(b)
			if err != nil {
				return
			}
			if size < 0 || n > len(b) || n < 3 {
				t.Fatalf("size %d n %d", size, n)
			}
			b = b[n:]
			if size == 0 {
				if m, err := ParseTrailers(b, 1024); err == nil && (m > len(b) || m < 2) {
					t.Fatalf("trailers %d of %d", m, len(b))
				}
				return
			}
			if int64(len(b)) < size+2 {
				return
			}
			b = b[size+2:]
		}
	})
}
