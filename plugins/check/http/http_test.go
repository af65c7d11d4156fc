package http_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	chkhttp "github.com/vipgate/vipgate/plugins/check/http"
	"github.com/vipgate/vipgate/plugins/check/internal/checktest"
)

// request is what the last request looked like.
type request struct{ method, path, host, header, sni string }

// seen records the last request.
type seen struct {
	mu sync.Mutex
	request
}

func (s *seen) get() request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.request
}

// exchange answers like an Exchange front end: /ews/healthcheck.htm is 200
// with "200 OK" only for the right Host; /down is 503; /moved redirects.
func exchange(s *seen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.method, s.path, s.host, s.header = r.Method, r.URL.Path, r.Host, r.Header.Get("X-Check")
		if r.TLS != nil {
			s.sni = r.TLS.ServerName
		}
		s.mu.Unlock()
		switch r.URL.Path {
		case "/ews/healthcheck.htm":
			if r.Host != "exch2016.domain.com" {
				http.Error(w, "wrong host", http.StatusNotFound)
				return
			}
			fmt.Fprint(w, "200 OK<br/>EXCH1.domain.local")
		case "/down":
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			<-r.Context().Done()
		default:
			fmt.Fprint(w, "hello")
		}
	})
}

func run(t *testing.T, c *config.Check, addr string) health.Result {
	t.Helper()
	c.Kind = "http"
	if c.Verify == "" {
		c.Verify = "required"
	}
	if c.HTTP == nil {
		c.HTTP = &config.HTTPCheck{}
	}
	ch, err := chkhttp.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return ch.Check(ctx, health.Target{Backend: "b", Server: "s", Addr: addr, Check: c})
}

func TestHTTP(t *testing.T) {
	var s seen
	srv := httptest.NewServer(exchange(&s))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	closed := checktest.ClosedAddr(t)

	tests := []struct {
		name   string
		addr   string
		http   config.HTTPCheck
		ok     bool
		reason string
	}{
		{"default GET /", addr, config.HTTPCheck{}, true, ""},
		{"503", addr, config.HTTPCheck{Path: "/down"}, false, "HTTP 503"},
		{"expected 503", addr, config.HTTPCheck{Path: "/down", ExpectStatus: []int{503}}, true, ""},
		{"200 not in list", addr, config.HTTPCheck{ExpectStatus: []int{204}}, false, "HTTP 200"},
		{"redirect is 3xx, passes by default", addr, config.HTTPCheck{Path: "/moved"}, true, ""},
		{"missing host header gives 404", addr, config.HTTPCheck{Path: "/ews/healthcheck.htm"}, false, "HTTP 404"},
		{"host header", addr, config.HTTPCheck{Path: "/ews/healthcheck.htm", Host: "exch2016.domain.com", ExpectStatus: []int{200}}, true, ""},
		{"host among the headers", addr, config.HTTPCheck{Path: "/ews/healthcheck.htm", Headers: map[string]string{"host": "exch2016.domain.com"}}, true, ""},
		{"body regex", addr, config.HTTPCheck{Path: "/ews/healthcheck.htm", Host: "exch2016.domain.com", ExpectBody: `^200 OK`}, true, ""},
		{"body regex mismatch", addr, config.HTTPCheck{ExpectBody: `^200 OK`}, false, `HTTP 200, body does not match "^200 OK"`},
		{"refused", closed, config.HTTPCheck{}, false, "connection refused"},
		{"timeout", addr, config.HTTPCheck{Path: "/slow"}, false, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.http
			r := run(t, &config.Check{HTTP: &h}, tt.addr)
			if r.OK != tt.ok || !strings.HasPrefix(r.Reason, tt.reason) {
				t.Fatalf("got ok=%v reason=%q, want ok=%v reason %q", r.OK, r.Reason, tt.ok, tt.reason)
			}
		})
	}

	r := run(t, &config.Check{HTTP: &config.HTTPCheck{Method: "HEAD", Path: "/x", Headers: map[string]string{"X-Check": "yes"}}}, addr)
	if got := s.get(); !r.OK || got.method != "HEAD" || got.path != "/x" || got.header != "yes" {
		t.Fatalf("request not as configured: %+v (result %+v)", got, r)
	}
}

// The reference check from the Exchange deployment: GET
// /ews/healthcheck.htm with Host exch2016.domain.com over TLS, verify none.
func TestHTTPSExchangeReference(t *testing.T) {
	var s seen
	cert := checktest.SelfSigned(t, "exch2016.domain.com")
	srv := httptest.NewUnstartedServer(exchange(&s))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://")
	ref := func() config.HTTPCheck {
		return config.HTTPCheck{Method: "GET", Path: "/ews/healthcheck.htm", Host: "exch2016.domain.com", ExpectStatus: []int{200}}
	}

	tests := []struct {
		name   string
		check  config.Check
		ok     bool
		reason string
	}{
		{"ssl verify none", config.Check{SSL: true, Verify: "none"}, true, ""},
		{"ssl verify required, unknown CA", config.Check{SSL: true}, false, "TLS: certificate signed by unknown authority"},
		{"ssl verify required with ca_file (name from Host)", config.Check{SSL: true, CA: cert.CAFile}, true, ""},
		{"ssl with wrong sni", config.Check{SSL: true, CA: cert.CAFile, SNI: "wrong.example"}, false, "TLS: x509: certificate is valid for"},
		{"plain http to a tls server", config.Check{}, false, "HTTP 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ref()
			c := tt.check
			c.HTTP = &h
			r := run(t, &c, addr)
			if r.OK != tt.ok || !strings.HasPrefix(r.Reason, tt.reason) {
				t.Fatalf("got ok=%v reason=%q, want ok=%v reason %q", r.OK, r.Reason, tt.ok, tt.reason)
			}
		})
	}
	h := ref()
	if r := run(t, &config.Check{SSL: true, Verify: "none", HTTP: &h}, addr); !r.OK {
		t.Fatal(r.Reason)
	}
	if got := s.get(); got.sni != "exch2016.domain.com" || got.host != "exch2016.domain.com" {
		t.Fatalf("server saw SNI %q Host %q, want the Host header in both", got.sni, got.host)
	}
}

func TestHTTPToTLSPlainServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	r := run(t, &config.Check{SSL: true, Verify: "none"}, strings.TrimPrefix(srv.URL, "http://"))
	if r.OK || r.Reason != "TLS: server did not answer with TLS" {
		t.Fatalf("got %+v", r)
	}
}

// TestHTTPReadBudget: with HAProxy's "timeout check", an http check ends
// that long after the connection is established, whatever the overall
// deadline (here none): a server that never answers fails with "timeout".
func TestHTTPReadBudget(t *testing.T) {
	ch, err := chkhttp.New(&config.Check{Kind: "http", Verify: "required", HTTP: &config.HTTPCheck{Method: "GET", Path: "/"}})
	if err != nil {
		t.Fatal(err)
	}
	checktest.ReadBudgetEndsCheck(t, ch)
}

func BenchmarkHTTPCheck(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	b.Cleanup(srv.Close)
	c := &config.Check{Kind: "http", HTTP: &config.HTTPCheck{Method: "GET", Path: "/health", ExpectBody: "ok"}}
	ch, err := chkhttp.New(c)
	if err != nil {
		b.Fatal(err)
	}
	t := health.Target{Addr: strings.TrimPrefix(srv.URL, "http://"), Check: c}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := ch.Check(ctx, t); !r.OK {
			b.Fatal(r.Reason)
		}
	}
}
