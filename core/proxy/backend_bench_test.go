package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/vipgate/vipgate/core/balance"
	"github.com/vipgate/vipgate/internal/testenv"
)

// backendFor builds the live backend of a one-backend document.
func backendFor(tb testing.TB, doc string) *Backend {
	tb.Helper()
	h := startProxy(tb, doc)
	return h.p.Backend("be")
}

// BenchmarkBackendAcquire is the per-session cost of choosing a server and
// reserving its slot (no dial): the balancing, maxconn and queue logic.
func BenchmarkBackendAcquire(b *testing.B) {
	be := backendFor(b, `
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    servers: [{name: a, address: "127.0.0.1:1", maxconn: 100}, {name: b, address: "127.0.0.1:2", weight: 2}]
`)
	ctx := context.Background()
	r := &balance.Request{Client: netip.MustParseAddr("198.18.0.1")}
	var l Lease
	b.ReportAllocs()
	for b.Loop() {
		if err := be.Acquire(ctx, r, nil, &l); err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}

// sinkBackend is the live backend of a document whose one server is a
// loopback listener that accepts and closes.
func sinkBackend(tb testing.TB) *Backend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	testenv.ServeListener(tb, ln, func(net.Conn) {})
	return backendFor(tb, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: %q}]}]
`, ln.Addr().String()))
}

// BenchmarkBackendConnect is Acquire plus the dial to a loopback server
// that accepts and closes: what the proxy spends per new tcp session
// toward the server.
func BenchmarkBackendConnect(b *testing.B) {
	be := sinkBackend(b)
	ctx := context.Background()
	client := netip.MustParseAddr("198.18.0.1")
	r := &balance.Request{Client: client}
	var l Lease
	b.ReportAllocs()
	for b.Loop() {
		c, err := be.Connect(ctx, client, r, nil, &l)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		l.Release()
	}
}
