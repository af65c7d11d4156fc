package scripting

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
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
		loadAndCall(rt, config.LuaDefaults{Timeout: config.Duration(20 * time.Millisecond), MaxString: 1 << 16}, src, "/p")
	})
}

// loadAndCall applies src as plugin p and calls p.f as a route hook and as
// a check; any failure is fine.
func loadAndCall(rt *Runtime, d config.LuaDefaults, src, path string) {
	if err := rt.Apply(&config.Lua{Defaults: d, Plugins: []config.LuaPlugin{{Name: "p", Source: src}}}); err != nil {
		return
	}
	h, err := rt.Hook("p.f")
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = h.Route(ctx, httpTxn("GET", path, "q=1", http.Header{"A": {"b"}}))
	_ = rt.Check(ctx, "p.f", CheckTarget{Addr: "127.0.0.1:1"})
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

// FuzzLuaBridge is the Lua bridge's part of make fuzz-long: any script,
// seeded with the red-team hooks (shared tables through json.encode and
// log, %q, log floods, doubling strings, hooks returning functions), runs
// as a route hook and as a check with the memory guard on, and each call
// stays within an allocation ceiling and, while fuzzing, a time ceiling.
func FuzzLuaBridge(f *testing.F) {
	for _, s := range []string{
		"function f(txn)\n" + shared26 + "return json.encode(t)\nend",
		"function f(txn)\n" + shared26 + "log.info('x', 't', t)\nend",
		"function f(txn)\n" + shared26 + "print(t, t, t)\nend",
		`function f(txn) for i = 1, 100000 do log.info("line", "i", i) end end`,
		`function f(txn) return string.format("%q", string.rep("\0", 60000)) end`,
		`function f(txn) local s = "x" while true do s = s .. s end end`,
		`function f(txn) return function() end end`,
		`function f(txn) local t = {} t[1] = t return json.encode(t) end`,
		`function f(txn) local t = {} for i = 1, 100000 do t["k" .. i] = i end return json.encode(t) end`,
		`function f(txn) return json.decode(string.rep("[", 5000)) end`,
		`function f(txn) local h = {} for i = 1, 20000 do h["x" .. i] = "y" end txn:set_header("a", json.encode(h)) end`,
	} {
		f.Add(s, "/p")
	}
	rt := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	go rt.Run(ctx)
	d := config.LuaDefaults{Timeout: config.Duration(50 * time.Millisecond), MaxString: 1 << 16, MaxAlloc: 32 << 20}
	f.Fuzz(func(t *testing.T, src, path string) {
		testenv.Ceilings(t, "load and two calls", 1<<30, 10*time.Second, func() { loadAndCall(rt, d, src, path) })
	})
}
