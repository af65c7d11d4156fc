package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// server answers every request on a real socket; stall delays the answers
// to requests whose (1-based) number is in it.
func server(t *testing.T, closeEach bool, stall func(n int64) time.Duration) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	addr := testenv.Serve(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line != "\r\n" {
				continue
			}
			if d := stall(n.Add(1)); d > 0 {
				time.Sleep(d)
			}
			resp := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n"
			if closeEach {
				resp = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nhi\n"
			}
			if _, err := c.Write([]byte(resp)); err != nil || closeEach {
				return
			}
		}
	})
	return addr, &n
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close bool
	}{{"keep-alive", false}, {"close", true}} {
		t.Run(tc.name, func(t *testing.T) {
			addr, n := server(t, tc.close, func(int64) time.Duration { return 0 })
			r, err := run(config{addr: addr, rate: 400, dur: 500 * time.Millisecond, conns: 4, close: tc.close, path: "/", deadline: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if r.sent != 200 || len(r.lat) != 200 || r.errs != 0 || n.Load() != 200 {
				t.Fatalf("sent %d, answered %d, errors %d, server saw %d; want 200 answered of 200", r.sent, len(r.lat), r.errs, n.Load())
			}
			if r.pct(50) > r.pct(99) || r.pct(99) > r.pct(99.9) {
				t.Fatalf("percentiles out of order: %v %v %v", r.pct(50), r.pct(99), r.pct(99.9))
			}
		})
	}
}

// A stall of the server is not hidden: the requests due while the only
// connection waits count their wait from their due time, so the slowest
// ones wait about the whole stall (a closed-loop client would record one
// slow request and none of the queued ones).
func TestRunCountsQueuedRequests(t *testing.T) {
	const stall = 300 * time.Millisecond
	addr, _ := server(t, false, func(n int64) time.Duration {
		if n == 10 {
			return stall
		}
		return 0
	})
	r, err := run(config{addr: addr, rate: 200, dur: time.Second, conns: 1, path: "/", deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.lat) != 200 {
		t.Fatalf("answered %d of 200 (errors %d)", len(r.lat), r.errs)
	}
	// At 200/s, about 60 requests fall due during the stall: more than 1%
	// of the 200 wait longer than half of it.
	var slow int
	for _, d := range r.lat {
		if d > stall/2 {
			slow++
		}
	}
	if slow < 20 {
		t.Fatalf("%d requests waited over %v; want the ~60 queued behind the stall (p99 %v)", slow, stall/2, r.pct(99))
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	_, err := run(config{addr: "127.0.0.1:1", rate: 0, dur: time.Second, conns: 1})
	if err == nil || !strings.Contains(err.Error(), "rate") {
		t.Fatalf("err = %v, want one naming the rate", err)
	}
}

// TestRunTLS: -tls speaks HTTPS (bench-https): every request is answered
// over TLS, kept alive or a handshake each.
func TestRunTLS(t *testing.T) {
	for _, closeEach := range []bool{false, true} {
		var n atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil {
				t.Error("a request not over TLS")
			}
			n.Add(1)
			_, _ = w.Write([]byte("hi\n"))
		}))
		srv.StartTLS()
		r, err := run(config{addr: srv.Listener.Addr().String(), rate: 200, dur: 500 * time.Millisecond, conns: 4,
			close: closeEach, path: "/", deadline: 5 * time.Second, tls: true})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.sent != 100 || len(r.lat) != 100 || r.errs != 0 || n.Load() != 100 {
			t.Fatalf("close %v: sent %d, answered %d, errors %d, server saw %d; want 100 answered of 100", closeEach, r.sent, len(r.lat), r.errs, n.Load())
		}
	}
}
