package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testenv"
)

// tlsNameServer is a TLS backend on loopback that answers every handshake
// with its name and the SNI and ALPN it saw, then closes: the proxy passes
// the TLS stream through untouched (tcp mode), so the backend terminates.
func tlsNameServer(t testing.TB, name string, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.ServeListener(t, ln, func(c net.Conn) {
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			return
		}
		st := tc.ConnectionState()
		fmt.Fprintf(tc, "%s sni=%s alpn=%s\n", name, st.ServerName, st.NegotiatedProtocol)
	})
	return ln.Addr().String()
}

// tlsGreet makes a real TLS connection through the proxy and returns the
// backend's answer line.
func tlsGreet(t testing.TB, addr, sni string, alpn ...string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: alpn})
	if err != nil {
		t.Fatalf("tls dial (sni %q): %v", sni, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("sni %q: reading the answer: %v", sni, err)
	}
	return strings.TrimSpace(line)
}

func tcpSNIDoc(a, b, def string, extra string) string {
	return fmt.Sprintf(`
frontends:
  - name: fe
    bind: "127.0.0.1:0"
    inspect_delay: 2s
    default_backend: def
    rules:
      - {backend: a, sni: [a.example]}
      - {backend: b, sni: ["*.b.example"]}
%s
backends:
  - {name: a, servers: [{name: a1, address: %q}]}
  - {name: b, servers: [{name: b1, address: %q}]}
  - {name: def, servers: [{name: d1, address: %q}]}
`, extra, a, b, def)
}

func testTLSCert(t testing.TB) tls.Certificate {
	t.Helper()
	ca := newTestCA(t)
	cp, kp := ca.issue(t, t.TempDir(), "srv", 2, false, "a.example", "x.b.example", "other.example")
	cert, err := tls.LoadX509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestTCPRoutesBySNI: in tcp mode the frontend peeks the ClientHello and
// routes by its server name, and the TLS session, hello included, reaches
// the chosen server intact.
func TestTCPRoutesBySNI(t *testing.T) {
	cert := testTLSCert(t)
	a, b, def := tlsNameServer(t, "A", cert), tlsNameServer(t, "B", cert), tlsNameServer(t, "D", cert)
	h := startProxy(t, tcpSNIDoc(a, b, def, ""))
	addr := h.addr("fe")
	for _, tc := range []struct{ sni, want string }{
		{"a.example", "A sni=a.example alpn="},
		{"A.Example", "A sni=A.Example alpn="}, // names compare case-insensitively
		{"x.b.example", "B sni=x.b.example alpn="},
		{"b.example", "D sni=b.example alpn="}, // *.b.example needs one more label
		{"other.example", "D sni=other.example alpn="},
	} {
		if got := tlsGreet(t, addr, tc.sni); got != tc.want {
			t.Errorf("SNI %s: %q, want %q", tc.sni, got, tc.want)
		}
	}
	// No SNI at all (a client dialling by address): the default backend.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.HasPrefix(line, "D ") {
		t.Errorf("no SNI: %q, want the default backend", line)
	}
}

// TestTCPInspectNotTLS: a client that is not speaking TLS is served by the
// default backend with its bytes intact, and one that says nothing is
// served once inspect_delay runs out (server-speaks-first protocols).
func TestTCPInspectNotTLS(t *testing.T) {
	a, def := newTestServer(t, "A"), newTestServer(t, "D")
	h := startProxy(t, fmt.Sprintf(`
frontends:
  - name: fe
    bind: "127.0.0.1:0"
    inspect_delay: 200ms
    default_backend: def
    rules: [{backend: a, sni: [a.example]}]
backends:
  - {name: a, servers: [{name: a1, address: %q}]}
  - {name: def, servers: [{name: d1, address: %q}]}
`, a.addr(), def.addr()))
	c, err := net.DialTimeout("tcp", h.addr("fe"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "EHLO a.example\r\n")
	r := bufio.NewReader(c)
	for _, want := range []string{"D\n", "EHLO a.example\r\n"} {
		if l, err := r.ReadString('\n'); l != want {
			t.Fatalf("plain client: %q (%v), want %q", l, err, want)
		}
	}
	// A silent client: the greeting comes after inspect_delay.
	if name, err := greet(t, h.addr("fe")); err != nil || name != "D" {
		t.Fatalf("silent client: %q, %v", name, err)
	}
}

// sniHook routes like a Lua hook that reads txn.sni and txn.alpn.
type sniHook struct{}

func (sniHook) Route(_ context.Context, t *Txn) (Decision, error) {
	switch {
	case t.SNI == "deny.example":
		return Decision{Deny: 403}, nil
	case slices.Contains(t.ALPN, "h2"):
		return Decision{Backend: "b"}, nil
	case strings.HasSuffix(t.SNI, ".hooked"):
		return Decision{Backend: "a"}, nil
	case t.SNI == "fail.example":
		return Decision{}, fmt.Errorf("script error")
	case t.SNI == "fail503.example":
		return Decision{}, &HookFailure{Status: 503, Err: fmt.Errorf("script error")}
	}
	return Decision{}, nil
}

// TestTCPRouteHookSeesHello: a tcp-mode route hook gets the SNI and ALPN of
// a real TLS ClientHello; "no opinion" and a failing hook with fallback
// continue go on with the frontend's rules; fallback 500/503 closes.
func TestTCPRouteHookSeesHello(t *testing.T) {
	cert := testTLSCert(t)
	a, b, def := tlsNameServer(t, "A", cert), tlsNameServer(t, "B", cert), tlsNameServer(t, "D", cert)
	c, err := config.Parse("test.yaml", []byte(tcpSNIDoc(a, b, def, "")))
	if err != nil {
		t.Fatal(err)
	}
	c.Frontends[0].Route = "sni"
	h := startProxyWith(t, c, func(p *Proxy) {
		p.SetHookResolver(func(string) (RouteHook, error) { return sniHook{}, nil })
	})
	addr := h.addr("fe")
	for _, tc := range []struct {
		sni  string
		alpn []string
		want string
	}{
		{"x.hooked", nil, "A sni=x.hooked alpn="},
		{"other.example", []string{"h2", "http/1.1"}, "B sni=other.example alpn=h2"},
		{"x.b.example", nil, "B sni=x.b.example alpn="},   // no opinion: rules
		{"fail.example", nil, "D sni=fail.example alpn="}, // hook error: rules
		{"other.example", []string{"http/1.1"}, "D sni=other.example alpn=http/1.1"},
	} {
		if got := tlsGreet(t, addr, tc.sni, tc.alpn...); got != tc.want {
			t.Errorf("SNI %s ALPN %v: %q, want %q", tc.sni, tc.alpn, got, tc.want)
		}
	}
	// Deny, and a failure whose fallback is 500/503, close the connection
	// before any server sees it.
	for i, sni := range []string{"deny.example", "fail503.example"} {
		dc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			dc.Close()
			t.Fatalf("%s: connection completed a handshake", sni)
		}
		if n := h.p.Frontend("fe").Counters.Denied.Load(); n != uint64(i+1) {
			t.Fatalf("%s: denied counter %d, want %d", sni, n, i+1)
		}
	}
}

func TestBindNetwork(t *testing.T) {
	for _, tc := range []struct {
		addr, network string
		v6only        bool
	}{
		{"[::]:443", "tcp6", true},
		{"[2001:db8::1]:443", "tcp6", true},
		{"[::ffff:198.18.0.1]:443", "tcp4", false},
		{"0.0.0.0:443", "tcp4", false},
		{"198.18.0.1:443", "tcp4", false},
		{":443", "tcp", false},
		{"localhost:443", "tcp", false},
	} {
		if n, only := bindNetwork(tc.addr); n != tc.network || only != tc.v6only {
			t.Errorf("bindNetwork(%q) = %s, %v; want %s, %v", tc.addr, n, only, tc.network, tc.v6only)
		}
	}
}

// TestTCPDualBinds: one frontend on 0.0.0.0:P and [::]:P (the usual
// "IPv4 and IPv6 on 443"): both bind, and each family is served.
func TestTCPDualBinds(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	srv := newTestServer(t, "s")
	var h *harness
	var port int
	// The port must be free in both families; retry if another process
	// took it between the probe and the bind.
	for try := 0; ; try++ {
		port = freeDualPort(t)
		c, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
frontends: [{name: fe, bind: ["0.0.0.0:%d", "[::]:%d"], default_backend: be}]
backends: [{name: be, servers: [{name: s, address: %q}]}]
`, port, port, srv.addr())))
		if err != nil {
			t.Fatal(err)
		}
		bus := events.New("test", "dc1")
		p := New(Options{Bus: bus})
		err = p.Apply(c)
		if err == nil {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = p.Run(ctx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })
			h = &harness{t: t, p: p, bus: bus, ctx: ctx}
			break
		}
		if try == 5 {
			t.Fatalf("binding 0.0.0.0:%d and [::]:%d together: %v", port, port, err)
		}
		p.Apply(&config.Cluster{}) // close what did bind
	}
	if got := len(h.p.ListenAddrs()["fe"]); got != 2 {
		t.Fatalf("listening on %v, want both binds", h.p.ListenAddrs())
	}
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		if name, err := greet(t, addr); err != nil || name != "s" {
			t.Errorf("client to %s: %q, %v", addr, name, err)
		}
	}
	if ok, why := h.p.LocalHealthy(nil); !ok {
		t.Errorf("LocalHealthy: %s", why)
	}
}

// freeDualPort returns a port that was free on 0.0.0.0 and [::] a moment ago.
func freeDualPort(t *testing.T) int {
	t.Helper()
	for {
		l4, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l4.Addr().(*net.TCPAddr).Port
		l4.Close()
		if l6, err := net.Listen("tcp6", fmt.Sprintf("[::]:%d", port)); err == nil {
			l6.Close()
			return port
		}
	}
}
