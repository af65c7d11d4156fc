package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// peerServer answers each TCP connection with the address it came from.
func peerServer(t *testing.T) string {
	return testenv.Serve(t, func(c net.Conn) {
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "%s\n", host)
	})
}

// dialFrom connects to addr from the local address src (any 127/8
// address is the node's own on loopback).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func peerSeen(t *testing.T, src, addr string) string {
	t.Helper()
	c := dialFrom(t, src, addr)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	l, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading through the proxy: %v", err)
	}
	return strings.TrimSpace(l)
}

func tcpSourceDoc(backendSource, serverSource, addr string) string {
	return fmt.Sprintf(`
defaults: {mode: tcp, timeouts: {connect: 2s, client: 5s, server: 5s}}
frontends:
  - {name: fe, bind: "127.0.0.1:0", default_backend: be}
backends:
  - name: be
%s    servers:
      - {name: s1, address: %q%s}
`, backendSource, addr, serverSource)
}

func TestSourceFixedAddress(t *testing.T) {
	srv := peerServer(t)
	tests := []struct{ name, be, srv, want string }{
		{"none", "", "", "127.0.0.1"},
		{"backend", "    source: {address: 127.0.0.2}\n", "", "127.0.0.2"},
		{"server overrides", "    source: {address: 127.0.0.2}\n", ", source: {address: 127.0.0.3}", "127.0.0.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startProxy(t, tcpSourceDoc(tt.be, tt.srv, srv))
			if got := peerSeen(t, "127.0.0.9", h.addr("fe")); got != tt.want {
				t.Errorf("server saw %s, want %s", got, tt.want)
			}
		})
	}
}

// requireTransparent skips unless this process may use IP_TRANSPARENT.
func requireTransparent(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	if err := CheckTransparent(); err != nil {
		t.Fatal(err) // root has CAP_NET_ADMIN
	}
}

// TestSourceClientIPTCP: on loopback every 127/8 address is local, so the
// replies need no routing; what is tested is that the server connection
// is bound to each client's own address.
func TestSourceClientIPTCP(t *testing.T) {
	requireTransparent(t)
	srv := peerServer(t)
	h := startProxy(t, tcpSourceDoc("    source: {usesrc: clientip}\n", "", srv))
	for _, client := range []string{"127.0.0.7", "127.0.0.8", "127.0.0.7"} {
		if got := peerSeen(t, client, h.addr("fe")); got != client {
			t.Errorf("client %s: server saw %s", client, got)
		}
	}
}

// TestSourceClientIPHTTPNotPooled: two clients alternate keep-alive
// requests on one backend with http-reuse always: each request reaches
// the server from its own client's address (a pooled connection of one
// client never carries another's request), and a client's connection is
// kept for its own next requests.
func TestSourceClientIPHTTPNotPooled(t *testing.T) {
	requireTransparent(t)
	var conns atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "peer=%s\n", host)
	}), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })

	for _, src := range []string{"    source: {usesrc: clientip}\n", ""} {
		t.Run(fmt.Sprintf("clientip=%v", src != ""), func(t *testing.T) {
			doc := httpDoc("", "", "  - name: be\n    http: {reuse: always}\n"+src+"    servers:\n      - {name: s1, address: \""+ln.Addr().String()+"\"}\n")
			h := startProxy(t, doc)
			clients := map[string]*http.Client{}
			for _, ip := range []string{"127.0.0.7", "127.0.0.8"} {
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
				clients[ip] = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 1}}
				t.Cleanup(clients[ip].CloseIdleConnections)
			}
			before := conns.Load()
			for i := 0; i < 6; i++ {
				ip := []string{"127.0.0.7", "127.0.0.8"}[i%2]
				_, body := get(t, clients[ip], "http://"+h.addr("fe")+"/")
				want := ip
				if src == "" {
					want = "127.0.0.1"
				}
				if got := field(body, "peer"); got != want {
					t.Fatalf("request %d from %s reached the server from %s, want %s", i, ip, got, want)
				}
			}
			n := conns.Load() - before
			if src != "" {
				// One server connection per client, kept for its
				// requests; none of them shared through the pool.
				if n != 2 {
					t.Errorf("%d server connections for 2 keep-alive clients, want 2", n)
				}
				if idle := h.p.connPoolsFor("fe").count(); idle != 0 {
					t.Errorf("%d client-address connections in the shared pool", idle)
				}
			} else if n != 1 {
				t.Errorf("without a client source the pool is shared: %d server connections, want 1", n)
			}
		})
	}
}
