package tcp_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/plugins/check/internal/checktest"
	"github.com/vipgate/vipgate/plugins/check/tcp"
	chktls "github.com/vipgate/vipgate/plugins/check/tls"
)

// redisLike answers "+PONG" to "PING".
func redisLike(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(line) == "PING" {
			io.WriteString(c, "+PONG\r\n")
		} else {
			io.WriteString(c, "-ERR unknown\r\n")
		}
	}
}

func run(t *testing.T, c *config.Check, addr string, timeout time.Duration) health.Result {
	t.Helper()
	if c.Kind == "" {
		c.Kind = "tcp"
	}
	if c.Verify == "" {
		c.Verify = "required"
	}
	var ch health.Checker
	var err error
	if c.Kind == "tls" {
		ch, err = chktls.New(c)
	} else {
		ch, err = tcp.New(c)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return ch.Check(ctx, health.Target{Backend: "b", Server: "s", Addr: addr, Check: c})
}

func TestTCP(t *testing.T) {
	silent := checktest.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	redis := checktest.Serve(t, redisLike)
	smtp := checktest.Serve(t, func(c net.Conn) { io.WriteString(c, "220 mx.example ESMTP\r\n"); io.Copy(io.Discard, c) })
	hangup := checktest.Serve(t, func(c net.Conn) {})
	closed := checktest.ClosedAddr(t)

	tests := []struct {
		name   string
		addr   string
		check  config.Check
		ok     bool
		reason string // prefix
	}{
		{"connect", silent, config.Check{}, true, ""},
		{"refused", closed, config.Check{}, false, "connection refused"},
		{"send expect", redis, config.Check{Send: "PING\r\n", Expect: "+PONG"}, true, ""},
		{"send expect wrong answer", redis, config.Check{Send: "PONG\r\n", Expect: "+PONG"}, false, `unexpected answer "-ERR unknown"`},
		{"expect regex", redis, config.Check{Send: "PING\r\n", ExpectRegex: `^\+PO.G`}, true, ""},
		{"server speaks first", smtp, config.Check{Expect: "220 "}, true, ""},
		{"banner mismatch", smtp, config.Check{ExpectRegex: "^554"}, false, `unexpected answer "220 mx.example ESMTP"`},
		{"no answer before timeout", silent, config.Check{Send: "PING\r\n", Expect: "+PONG"}, false, "no answer: timeout"},
		{"server hangs up", hangup, config.Check{Expect: "+OK"}, false, "no answer: connection closed by server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, &tt.check, tt.addr, 300*time.Millisecond)
			if r.OK != tt.ok || !strings.HasPrefix(r.Reason, tt.reason) {
				t.Fatalf("got ok=%v reason=%q, want ok=%v reason %q", r.OK, r.Reason, tt.ok, tt.reason)
			}
			if r.Duration <= 0 {
				t.Errorf("duration not measured")
			}
		})
	}
}

func TestTLS(t *testing.T) {
	cert := checktest.SelfSigned(t, "exch2016.domain.com")
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	var lastSNI = make(chan string, 16)
	tlsSrv := checktest.Serve(t, func(c net.Conn) {
		tc := tls.Server(c, srvTLS.Clone())
		if err := tc.Handshake(); err != nil {
			return
		}
		lastSNI <- tc.ConnectionState().ServerName
		redisLike(tc)
	})
	plainHTTP := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plainHTTP.Close)
	plain := strings.TrimPrefix(plainHTTP.URL, "http://")

	tests := []struct {
		name   string
		addr   string
		check  config.Check
		ok     bool
		reason string
	}{
		{"verify none", tlsSrv, config.Check{Kind: "tls", Verify: "none"}, true, ""},
		{"unknown authority", tlsSrv, config.Check{Kind: "tls"}, false, "TLS: certificate signed by unknown authority"},
		{"ca_file and ip", tlsSrv, config.Check{Kind: "tls", CA: cert.CAFile}, true, ""},
		{"ca_file and sni", tlsSrv, config.Check{Kind: "tls", CA: cert.CAFile, SNI: "exch2016.domain.com"}, true, ""},
		{"ca_file wrong sni", tlsSrv, config.Check{Kind: "tls", CA: cert.CAFile, SNI: "other.example"}, false, "TLS: x509: certificate is valid for"},
		{"ssl on tcp kind with send expect", tlsSrv, config.Check{Kind: "tcp", SSL: true, Verify: "none", Send: "PING\r\n", Expect: "+PONG"}, true, ""},
		{"not a tls server", plain, config.Check{Kind: "tls", Verify: "none"}, false, "TLS: server did not answer with TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, &tt.check, tt.addr, 2*time.Second)
			if r.OK != tt.ok || !strings.HasPrefix(r.Reason, tt.reason) {
				t.Fatalf("got ok=%v reason=%q, want ok=%v reason %q", r.OK, r.Reason, tt.ok, tt.reason)
			}
		})
	}
	// The SNI option is what the server saw.
	for len(lastSNI) > 0 {
		<-lastSNI
	}
	if r := run(t, &config.Check{Kind: "tls", Verify: "none", SNI: "exch2016.domain.com"}, tlsSrv, 2*time.Second); !r.OK {
		t.Fatal(r.Reason)
	}
	if got := <-lastSNI; got != "exch2016.domain.com" {
		t.Fatalf("server saw SNI %q", got)
	}
}

func TestBadCAFile(t *testing.T) {
	if _, err := tcp.New(&config.Check{Kind: "tls", Verify: "required", CA: "/nonexistent/ca.pem"}); err == nil ||
		!strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("missing ca_file accepted: %v", err)
	}
}

// A check cancelled by shutdown (no deadline) returns at once.
func TestCancel(t *testing.T) {
	silent := checktest.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ch, err := tcp.New(&config.Check{Kind: "tcp", Send: "x", Expect: "y"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan health.Result, 1)
	go func() { done <- ch.Check(ctx, health.Target{Addr: silent}) }()
	time.Sleep(20 * time.Millisecond) // let it reach the read; the result is the same either way
	cancel()
	select {
	case r := <-done:
		if r.OK || !strings.Contains(r.Reason, "cancelled") {
			t.Fatalf("cancelled check: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("check ignored cancellation")
	}
}

// TestReadBudget: with HAProxy's "timeout check", the check ends that long
// after the connection is established, whatever the overall deadline (here
// none): a silent server fails the check with "timeout".
func TestReadBudget(t *testing.T) {
	ch, err := tcp.New(&config.Check{Kind: "tcp", Send: "x", Expect: "y"})
	if err != nil {
		t.Fatal(err)
	}
	checktest.ReadBudgetEndsCheck(t, ch)
}

func BenchmarkTCPConnectCheck(b *testing.B) {
	addr := checktest.Serve(b, func(c net.Conn) {})
	ch, _ := tcp.New(&config.Check{Kind: "tcp"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := ch.Check(ctx, health.Target{Addr: addr}); !r.OK {
			b.Fatal(r.Reason)
		}
	}
}

func BenchmarkTCPSendExpectCheck(b *testing.B) {
	addr := checktest.Serve(b, redisLike)
	ch, _ := tcp.New(&config.Check{Kind: "tcp", Send: "PING\r\n", Expect: "+PONG"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := ch.Check(ctx, health.Target{Addr: addr}); !r.OK {
			b.Fatal(r.Reason)
		}
	}
}
