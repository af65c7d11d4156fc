package scripting

import (
	"context"
	"net/http"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

// BenchmarkRouteHook is one trivial routing-hook call: pool get, deadline,
// PCall, decision, pool put.
func BenchmarkRouteHook(b *testing.B) {
	r := newRig(b, `function route(txn) return "app" end`)
	h, _ := r.rt.Hook("p.route")
	txn := httpTxn("GET", "/", "", nil)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d, err := h.Route(ctx, txn); err != nil || d.Backend != "app" {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkRouteHookCanary reads a header and picks a backend (the
// examples/lua canary plugin's work).
func BenchmarkRouteHookCanary(b *testing.B) {
	r := newRig(b, `
function route(txn)
  if txn:header(config.header) == "1" then txn:use_backend(config.canary) end
end`, func(c *config.Lua) {
		c.Plugins[0].Config = map[string]any{"header": "X-Canary", "canary": "app-canary"}
	})
	h, _ := r.rt.Hook("p.route")
	hdr := http.Header{}
	hdr.Set("X-Canary", "1")
	txn := httpTxn("GET", "/", "", hdr)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d, err := h.Route(ctx, txn); err != nil || d.Backend != "app-canary" {
			b.Fatal(d, err)
		}
	}
}

// BenchmarkRouteHookParallel measures contention on the state pool.
func BenchmarkRouteHookParallel(b *testing.B) {
	r := newRig(b, `function route(txn) return "app" end`)
	h, _ := r.rt.Hook("p.route")
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		txn := httpTxn("GET", "/", "", nil)
		for pb.Next() {
			if _, err := h.Route(ctx, txn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNewState is the cost of a state when the pool is empty.
func BenchmarkNewState(b *testing.B) {
	r := newRig(b, `function route(txn) return "app" end`)
	g := r.rt.gen.Load()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s, err := g.newState()
		if err != nil {
			b.Fatal(err)
		}
		s.close()
	}
}
