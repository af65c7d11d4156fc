package scripting

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// FuzzScript runs arbitrary source through load and one call: whatever it
// does, the runtime must return (an error is fine), never panic or hang.
func FuzzScript(f *testing.F) {
	for _, s := range []string{
		`function f(txn) return "x" end`,
		`function f(txn) txn:set_header("a", txn:path()) end`,
		`function f(txn) local s = ("x"):rep(10) return s:gsub("x", "%0%0") end`,
		`function f(txn) return string.format("%5.1f %s", 1, txn:query()) end`,
		`x = 1 function f() x = 2 end`,
		`function f(txn) return unpack({1,2,3}, 1, 3) end`,
		`function f(txn) error({}) end`,
		`function f(txn) return setmetatable({}, {__index = function(t, k) return t[k] end}).x end`,
		`function f(txn) local t = {} t[t] = t return table.concat({1, 2}, t) end`,
		`function f(txn) return ("a"):rep(3000):find(".-.-.-b") end`,
		`function f(txn) for k, v in txn:path():gmatch("(%w+)=(%w*)") do txn:set_var(k, v) end end`,
	} {
		f.Add(s)
	}
	rt := New(Options{})
	f.Fuzz(func(t *testing.T, src string) {
		c := &config.Lua{Defaults: config.LuaDefaults{Timeout: config.Duration(20 * time.Millisecond), MaxString: 1 << 16}, Plugins: []config.LuaPlugin{{Name: "p", Source: src}}}
		if err := rt.Apply(c); err != nil {
			return
		}
		h, err := rt.Hook("p.f")
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = h.Route(ctx, httpTxn("GET", "/p", "q=1", http.Header{"A": {"b"}}))
		_ = rt.Check(ctx, "p.f", CheckTarget{Addr: "127.0.0.1:1"})
	})
}

// FuzzGsub compares nothing but safety: any subject, pattern and
// replacement must give a result or a Lua error within the limits.
func FuzzGsub(f *testing.F) {
	f.Add("hello world", "(%w+)", "<%1>")
	f.Add("abc", "", "-")
	f.Add("aaa", "a*", "%0%0")
	f.Add("x", "%", "y")
	f.Add("x", "(", "%2")
	rt := New(Options{})
	if err := rt.Apply(&config.Lua{Defaults: config.LuaDefaults{MaxString: 1 << 16}, Plugins: []config.LuaPlugin{{Name: "p", Source: `
function f(_, p) return true, (p.s:gsub(p.pat, p.repl)) end`}}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s, pat, repl string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res := rt.Check(ctx, "p.f", CheckTarget{Params: map[string]string{"s": s, "pat": pat, "repl": repl}})
		if res.OK && len(res.Reason) > 1<<16 {
			t.Fatalf("result of %d bytes over the limit", len(res.Reason))
		}
	})
}
