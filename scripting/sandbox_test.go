package scripting

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// run calls p.f() through the check path (no txn) and returns its reason
// (the error text for a failure) and whether it returned true.
func run(t *testing.T, r *rig) CheckResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.rt.Check(ctx, "p.f", CheckTarget{})
}

func TestSandboxRefusesForbidden(t *testing.T) {
	// Each forbidden capability must be absent (nil) or raise.
	for _, expr := range []string{
		"io", "debug", "package", "coroutine", "channel", "require", "module",
		"load", "loadstring", "loadfile", "dofile", "getfenv", "setfenv", "rawset",
		"collectgarbage", "newproxy", "_printregs", "_G",
		"os.execute", "os.exit", "os.remove", "os.rename", "os.getenv", "os.tmpname", "os.setenv", "os.setlocale",
		"string.dump", "math.randomseed",
	} {
		t.Run(expr, func(t *testing.T) {
			r := newRig(t, "function f() return "+expr+" == nil, 'present: "+expr+"' end")
			if res := run(t, r); !res.OK {
				t.Errorf("%s is reachable: %+v", expr, res)
			}
		})
	}
	// Calling them is an error, not an escape.
	for _, call := range []string{
		`io.open("/etc/passwd")`, `os.execute("id")`, `require("os")`, `loadstring("return 1")()`,
		`dofile("/etc/passwd")`, `collectgarbage()`, `setfenv(1, {})`, `getfenv(1)`, `rawset(string, "x", 1)`,
		`debug.getinfo(1)`, `load(function() return nil end)`,
	} {
		t.Run(call, func(t *testing.T) {
			r := newRig(t, "function f() "+call+" return true end")
			if res := run(t, r); res.OK || !strings.Contains(res.Reason, "p:1:") {
				t.Errorf("%s did not fail with a positioned error: %+v", call, res)
			}
		})
	}
}

// TestSetmetatableTablesOnly: gopher-lua's setmetatable also takes a
// number, boolean or function and changes the metatable of that whole type
// in the state: one plugin could then run its code inside every other
// plugin's calls served by the same pooled state.
func TestSetmetatableTablesOnly(t *testing.T) {
	rt := New(Options{})
	err := rt.Apply(&config.Lua{Defaults: config.LuaDefaults{PoolSize: 1}, Plugins: []config.LuaPlugin{
		{Name: "a", Source: `function f()
  for _, v in ipairs({1, true, print, "s"}) do
    local ok, err = pcall(setmetatable, v, {__index = function() return "hijacked" end})
    if ok then return false, "setmetatable accepted a " .. type(v) end
    if not tostring(err):find("table expected") then return false, tostring(err) end
  end
  return true
end`},
		{Name: "b", Source: `function g()
  local ok, v = pcall(function() return (5).x end)
  local ok2, v2 = pcall(function() return (true).x end)
  local ok3, v3 = pcall(function() return print.x end)
  if ok or ok2 or ok3 then return false, "hijacked: " .. tostring(v) .. tostring(v2) .. tostring(v3) end
  return true
end`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rt.Check(context.Background(), "a.f", CheckTarget{}); !r.OK {
		t.Errorf("a.f: %+v", r)
	}
	if r := rt.Check(context.Background(), "b.g", CheckTarget{}); !r.OK {
		t.Errorf("b.g: %+v", r)
	}
	if st := rt.Stats(); st.StatesCreated != 1 {
		t.Errorf("states created %d: both calls must share the pooled state for this test", st.StatesCreated)
	}
}

func TestSandboxAllowed(t *testing.T) {
	r := newRig(t, `
function f()
  assert(type(os.time()) == "number" and type(os.clock()) == "number" and #os.date("%Y") == 4)
  assert(string.upper("a") == "A" and ("abc"):sub(2) == "bc" and ("x"):rep(3) == "xxx")
  assert(math.floor(2.5) == 2 and math.max(1, 3) == 3 and math.random(1, 1) == 1)
  local t = {3, 1, 2}; table.sort(t); assert(table.concat(t, ",") == "1,2,3")
  table.insert(t, 4); assert(#t == 4 and table.remove(t) == 4)
  assert(select("#", 1, 2) == 2 and tonumber("12") == 12 and tostring(1) == "1")
  local ok, err = pcall(error, "x"); assert(not ok)
  assert(rawget({a = 1}, "a") == 1 and rawequal(t, t) and next({}) == nil)
  local mt = setmetatable({}, {__index = function() return 7 end}); assert(mt.anything == 7)
  assert(getmetatable("") == "locked")
  assert(string.format("%5.2f|%s|%d", 1.5, "s", 3) == " 1.50|s|3")
  assert(("a,b,c"):gsub(",", ";") == "a;b;c")
  assert(select(2, ("aaa"):gsub("a", "b", 2)) == 2)
  assert(("hello world"):gsub("(%w+)", "<%1>") == "<hello> <world>")
  assert(("hello"):gsub("l", {l = "L"}) == "heLLo")
  assert(("abc"):gsub("%w", function(c) return c:upper() end) == "ABC")
  assert(("abc"):gsub("", "-") == "-a-b-c-")
  assert(("x=1"):gsub("(%w)=(%w)", "%2=%1") == "1=x")
  assert(unpack({1, 2}) == 1 and xpcall(function() return true end, print))
  assert(select("#", ("abc"):byte(1, -1)) == 3 and ("A"):byte() == 65)
  -- find/match/gmatch run on vipgate's interruptible matcher: Lua semantics kept.
  local a, b, c = ("key=val"):find("(%w+)="); assert(a == 1 and b == 4 and c == "key")
  assert(("a.b"):find(".", 1, true) == 2 and ("abc"):find("b", -2) == 2 and ("abc"):find("x") == nil)
  assert(("abc"):find("", 10) == nil and select(2, ("abc"):find("")) == 0 and ("abc"):find("c", 4) == nil)
  assert(("abc"):find("$") == 4 and ("abc"):find("^b") == nil and ("aXb"):find("%u") == 2)
  local k, v = ("user=alice"):match("(%w+)=(%w+)"); assert(k == "user" and v == "alice")
  assert(("hello"):match("l+") == "ll" and ("hello"):match("()ll()") == 3 and ("abc"):match("x") == nil)
  assert(("abab"):match("ab", 2) == "ab" and ("abc"):match("^(a)") == "a" and ("THE (quick) fox"):find("%((%a+)%)") == 5)
  local words = {} for w in ("one two  three"):gmatch("%a+") do words[#words + 1] = w end
  assert(#words == 3 and words[3] == "three")
  local kv = {} for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do kv[k] = v end
  assert(kv.a == "1" and kv.b == "2")
  assert(("f(a(b)c)"):match("%b()") == "(a(b)c)" and ("aa"):match("(a)%1") == "a")
  return true
end`)
	if res := run(t, r); !res.OK {
		t.Fatalf("allowed library use failed: %+v", res)
	}
}

func TestGlobalsFrozen(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"new global", `newglobal = 1`},
		{"overwrite function", `f = nil`},
		{"overwrite library", `string = {}`},
		{"library field", `string.rep = function() end`},
		{"math field", `math.pi = 3`},
		{"os field", `os.time = nil`},
		{"log field", `log.info = nil`},
		{"vipgate field", `vipgate.servers = nil`},
		{"string metatable", `getmetatable("").__index = {}`},
		{"protected metatable", `setmetatable(string, {})`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, "counter = 0\nfunction f()\n "+tc.body+"\n return true\nend")
			if res := run(t, r); res.OK {
				t.Errorf("%s succeeded after load", tc.body)
			} else if tc.name == "new global" && !strings.Contains(res.Reason, "read-only") {
				t.Errorf("unclear error: %s", res.Reason)
			}
		})
	}
	// Module-level locals remain the way to keep state per Lua state.
	r := newRig(t, "local n = 0\nfunction f() n = n + 1 return true end")
	if res := run(t, r); !res.OK {
		t.Fatal(res)
	}
}

func TestPluginsAreIsolated(t *testing.T) {
	rt := New(Options{})
	err := rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{
		{Name: "a", Source: `secret = "a-only" function get() return true, tostring(secret) end`},
		{Name: "b", Source: `function get() return true, tostring(secret) end`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rt.Check(context.Background(), "a.get", CheckTarget{}); r.Reason != "a-only" {
		t.Errorf("a sees %q", r.Reason)
	}
	if r := rt.Check(context.Background(), "b.get", CheckTarget{}); r.Reason != "nil" {
		t.Errorf("b sees a's global: %q", r.Reason)
	}
}

func TestLimits(t *testing.T) {
	short := func(c *config.Lua) {
		c.Defaults.Timeout = config.Duration(100 * time.Millisecond)
		c.Defaults.MaxString = 1 << 20
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"infinite loop", `while true do end`, "deadline"},
		{"busy recursion", `local function g(n) return g(n) end local x = g(1)`, "deadline"},
		{"deep recursion", `local function g(n) return 1 + g(n+1) end local x = g(1)`, "stack overflow"},
		{"string.rep huge", `local s = string.rep("x", 1e9)`, "over the 1048576-byte limit"},
		{"string.rep method", `local s = ("xy"):rep(1e8, ",")`, "over the 1048576-byte limit"},
		{"format width", `local s = string.format("%999999999d", 1)`, "width or precision too long"},
		{"format precision", `local s = string.format("%.500f", 1)`, "width or precision too long"},
		{"concat table", `local s = string.rep("x", 1e6) local t = {} for i = 1, 100 do t[i] = s end local r = table.concat(t)`, "table.concat result over"},
		{"gsub blowup", `local s = string.rep("x", 1e5) local r = s:gsub(".", s)`, "string.gsub result over"},
		{"table growth", `local t = {} local i = 0 while true do i = i + 1 t[i] = i end`, "deadline"},
		{"string doubling", `local s = "x" while true do s = s .. s end`, ""}, // the deadline, or the guard (TestMemoryGuard…)
		{"unpack huge", `local x = unpack({}, 1, 1e8)`, "too many results"},
		{"string.byte huge", `local s = string.rep("x", 1e6) local x = s:byte(1, -1)`, "string slice too long"},
		{"pcall cannot swallow timeout", `while true do pcall(function() while true do end end) end`, "deadline"},
		// Backtracking patterns: one Go call each, stopped by the deadline.
		{"find backtracking", `local s = string.rep("a", 20000) local x = s:find(".-.-.-b")`, "pattern matching stopped"},
		{"match backtracking", `local s = string.rep("a", 20000) local x = string.match(s, "(.-)(.-)(.-)b")`, "pattern matching stopped"},
		{"gmatch backtracking", `local s = string.rep("a", 20000) for m in s:gmatch(".-.-.-b") do end`, "pattern matching stopped"},
		{"gfind backtracking", `local s = string.rep("a", 20000) for m in string.gfind(s, ".-.-.-b") do end`, "pattern matching stopped"},
		{"gsub backtracking", `local s = string.rep("a", 20000) local x = s:gsub(".-.-.-b", "")`, "pattern matching stopped"},
		{"pcall cannot swallow pattern timeout", `local s = string.rep("a", 20000) while true do pcall(string.find, s, ".-.-.-b") end`, "deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limits := short
			if strings.HasSuffix(tc.want, "result over") {
				// A cap, not the deadline, must stop these: finding 1e5
				// matches alone can take 100ms under -race on a busy
				// machine, so the deadline here is out of the way.
				limits = func(c *config.Lua) {
					short(c)
					c.Defaults.Timeout = config.Duration(5 * time.Second)
				}
			}
			r := newRig(t, "function f()\n"+tc.body+"\nreturn true\nend", limits)
			start := time.Now()
			res := r.rt.Check(context.Background(), "p.f", CheckTarget{})
			if res.OK {
				t.Fatalf("%s was not cut off", tc.name)
			}
			if !strings.Contains(res.Reason, tc.want) {
				t.Errorf("reason %q, want containing %q", res.Reason, tc.want)
			}
			t.Logf("%s: cut off after %v: %s", tc.name, time.Since(start).Round(time.Millisecond), res.Reason)
			// The runtime stays usable.
			r2 := r.rt.Check(context.Background(), "p.f", CheckTarget{})
			if r2.OK {
				t.Errorf("second call unexpectedly ok")
			}
		})
	}
}

func TestTimeoutIsFlaggedAndCounted(t *testing.T) {
	r := newRig(t, "function f(txn) while true do end end", func(c *config.Lua) {
		c.Defaults.Timeout = config.Duration(20 * time.Millisecond)
	})
	h, _ := r.rt.Hook("p.f")
	_, err := h.Route(context.Background(), httpTxn("GET", "/", "", nil))
	se, ok := err.(*ScriptError)
	if !ok || !se.Timeout || !strings.Contains(se.Msg, "p:1:") {
		t.Fatalf("err = %#v, want a positioned timeout", err)
	}
	if st := r.rt.Stats(); st.Timeouts != 1 || st.Functions["p.f"].Timeouts != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// doublingRig runs a runtime (guard included) whose p.f doubles a string
// until stopped, with a 60s deadline and a 16 MiB max_alloc, beside more
// Lua source.
func doublingRig(t *testing.T, more string) *rig {
	t.Helper()
	r := newRig(t, "function f()\n local s = 'x'\n while true do s = s .. s end\nend\n"+more, func(c *config.Lua) {
		c.Defaults.Timeout = config.Duration(60 * time.Second)
		c.Defaults.MaxAlloc = 16 << 20
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go r.rt.Run(ctx)
	return r
}

// TestMemoryGuardStopsStringDoubling: `s = s .. s` is one VM instruction
// per doubling, so only the memory guard (running with Run) can stop it
// long before its generous deadline.
func TestMemoryGuardStopsStringDoubling(t *testing.T) {
	r := doublingRig(t, "")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := r.rt.Check(context.Background(), "p.f", CheckTarget{})
	runtime.ReadMemStats(&after)
	if res.OK || !strings.Contains(res.Reason, "lua.defaults.max_alloc") || !strings.Contains(res.Reason, "p:3:") {
		t.Fatalf("doubling not stopped by the guard: %+v", res)
	}
	// Overshoot is bounded by a few doublings past the limit, far from
	// what 60s of doubling would reach.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 2<<30 {
		t.Errorf("allocated %d MB before being stopped", grew>>20)
	}
	if k := r.rt.Stats().MemoryKills; k != 1 {
		t.Errorf("memory kills %d, want 1", k)
	}
	// Ordinary calls are not affected.
	r2 := newRig(t, "function f() local t = {} for i = 1, 1000 do t[i] = ('x'):rep(100) end return true end")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r2.rt.Run(ctx)
	for i := 0; i < 100; i++ {
		if res := r2.rt.Check(context.Background(), "p.f", CheckTarget{}); !res.OK {
			t.Fatalf("ordinary call failed: %+v", res)
		}
	}
}

// TestMemoryGuardSleepsWhenIdle: without calls the guard stops ticking (an
// idle node, or one without Lua, must not wake 500 times a second), and a
// call that begins while it sleeps wakes it: a memory bomb is still
// stopped, measured from a fresh heap sample.
func TestMemoryGuardSleepsWhenIdle(t *testing.T) {
	r := doublingRig(t, "function g() return true end")
	m := &r.rt.guard
	idle := func() bool { return m.idle.Load() }
	testenv.Eventually(t, 5*time.Second, "guard idle with no calls", idle)
	before := m.rounds.Load()
	time.Sleep(50 * time.Millisecond) // 25 rounds if it still ticked
	if n := m.rounds.Load() - before; n != 0 {
		t.Fatalf("idle guard went %d rounds in 50ms", n)
	}
	if res := r.rt.Check(context.Background(), "p.g", CheckTarget{}); !res.OK {
		t.Fatalf("ordinary call: %+v", res)
	}
	testenv.Eventually(t, 5*time.Second, "guard idle again after the call", idle)
	res := r.rt.Check(context.Background(), "p.f", CheckTarget{})
	if res.OK || !strings.Contains(res.Reason, "lua.defaults.max_alloc") {
		t.Fatalf("doubling begun while the guard slept was not stopped: %+v", res)
	}
	if k := r.rt.Stats().MemoryKills; k != 1 {
		t.Errorf("memory kills %d, want 1", k)
	}
	if m.rounds.Load() == before {
		t.Errorf("the call did not wake the guard")
	}
}

var guardTestRetain [][]byte

// TestMemoryGuardIgnoresNetworkWaits: while a check waits on a slow server,
// the rest of the process allocates (a busy proxy with a large live heap
// grows it by hundreds of MB between two GCs). That growth is not the
// script's: the check must not be killed for it. Growth while the script
// itself runs, between network calls, still counts.
func TestMemoryGuardIgnoresNetworkWaits(t *testing.T) {
	respond := make(chan struct{})
	addr := tcpServer(t, func(c net.Conn) {
		<-respond
		_, _ = c.Write([]byte("220 ready\r\n"))
		c.Close()
	})
	r := newRig(t, `
function slow()
  local c, err = net.tcp("`+addr+`")
  if not c then return false, err end
  local l, err = c:receive()
  return l ~= nil, l or err
end
function hog()
  local c = net.tcp("`+addr+`")
  local keep = {}
  for i = 1, 200 do
    keep[i] = string.rep("x", 1000000) .. i
    c:send("x") c:receive() -- network calls (failing once the server closed)
  end
  return true, "not stopped"
end`, func(c *config.Lua) {
		c.Defaults.Timeout = config.Duration(30 * time.Second)
		c.Defaults.MaxAlloc = 16 << 20
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.rt.Run(ctx)
	testenv.Eventually(t, 5*time.Second, "guard running", func() bool { return r.rt.guard.rounds.Load() > 0 })

	done := make(chan CheckResult, 1)
	go func() { done <- r.rt.Check(context.Background(), "p.slow", CheckTarget{}) }()
	// While the check waits, the process retains 64 MB; once the guard
	// has seen it and gone round twice more, the server answers.
	runtime.GC() // earlier tests' garbage would hide the growth
	seen := r.rt.guard.rounds.Load()
	testenv.Eventually(t, 5*time.Second, "a guard round after GC", func() bool { return r.rt.guard.rounds.Load() >= seen+1 })
	before := r.rt.guard.heap.Load()
	for range 64 {
		guardTestRetain = append(guardTestRetain, make([]byte, 1<<20))
	}
	testenv.Eventually(t, 5*time.Second, "guard sees the growth", func() bool { return r.rt.guard.heap.Load() > before+48<<20 })
	seen = r.rt.guard.rounds.Load()
	testenv.Eventually(t, 5*time.Second, "two more guard rounds", func() bool { return r.rt.guard.rounds.Load() >= seen+2 })
	close(respond)
	res := <-done
	guardTestRetain = nil
	if !res.OK || res.Reason != "220 ready" {
		t.Fatalf("a check waiting on the network was stopped: %+v", res)
	}
	if k := r.rt.Stats().MemoryKills; k != 0 {
		t.Fatalf("memory kills %d", k)
	}

	// A script that allocates between network calls is still stopped.
	res = r.rt.Check(context.Background(), "p.hog", CheckTarget{})
	if res.OK || !strings.Contains(res.Reason, "lua.defaults.max_alloc") {
		t.Fatalf("allocation between network calls not stopped: %+v", res)
	}
}
