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
	acceptLoop(t, ln, func(c net.Conn) {
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

// acceptLoop serves every connection ln accepts with handle, each in its
// own goroutine, closing it after; ln closes with the test.
func acceptLoop(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
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
	}
	return Decision{}, nil
}

// TestTCPRouteHookSeesHello: a tcp-mode route hook gets the SNI and ALPN of
// a real TLS ClientHello; "no opinion" and a failing hook fall back to the
// frontend's rules.
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
	// Deny closes the connection before any server sees it.
	dc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: "deny.example", InsecureSkipVerify: true})
	if err == nil {
		dc.Close()
		t.Fatal("denied connection completed a handshake")
	}
	if n := h.p.Frontend("fe").Counters.Denied.Load(); n != 1 {
		t.Fatalf("denied counter %d, want 1", n)
	}
}
