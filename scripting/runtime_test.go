package scripting

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// fakeLive is a LiveState over fixed servers.
type fakeLive map[string][]*upstream.Server

func (f fakeLive) Servers(b string) []*upstream.Server { return f[b] }

type rig struct {
	rt  *Runtime
	bus *events.Bus
	log *testenv.LogBuffer
}

// newRig applies one plugin "p" with src (and optional defaults).
func newRig(t testing.TB, src string, mod ...func(*config.Lua)) *rig {
	t.Helper()
	lb := &testenv.LogBuffer{}
	bus := events.New("n1", "dc1")
	rt := New(Options{Log: slog.New(slog.NewTextHandler(lb, nil)), Bus: bus, Live: fakeLive{}})
	// A generous deadline: the shared CI machine may stall a goroutine for
	// longer than the production default. Tests about deadlines set theirs.
	c := &config.Lua{Defaults: config.LuaDefaults{Timeout: config.Duration(10 * time.Second)}, Plugins: []config.LuaPlugin{{Name: "p", Source: src}}}
	for _, m := range mod {
		m(c)
	}
	if err := rt.Apply(c); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return &rig{rt: rt, bus: bus, log: lb}
}

func httpTxn(method, path, query string, hdr http.Header) *proxy.Txn {
	if hdr == nil {
		hdr = http.Header{}
	}
	return &proxy.Txn{
		Frontend: "web",
		Client:   netip.MustParseAddrPort("198.18.0.7:40000"),
		Local:    netip.MustParseAddrPort("198.18.0.1:443"),
		SNI:      "www.example.com",
		ALPN:     []string{"h2", "http/1.1"},
		HTTP:     &proxy.HTTPTxn{Method: method, Host: "www.example.com", Path: path, Query: query, Header: hdr},
	}
}

func route(t testing.TB, r *rig, fn string, txn *proxy.Txn) (proxy.Decision, error) {
	t.Helper()
	h, err := r.rt.Hook("p." + fn)
	if err != nil {
		t.Fatalf("hook: %v", err)
	}
	return h.Route(context.Background(), txn)
}

func TestTxnReadAPI(t *testing.T) {
	r := newRig(t, `
function read(txn)
  local parts = {
    txn:frontend(), txn:client_ip(), tostring(txn:client_port()),
    txn:local_ip(), tostring(txn:local_port()), txn:sni(), table.concat(txn:alpn(), ","),
    tostring(txn:is_http()), txn:method(), txn:host(), txn:path(), txn:query(),
    txn:query_param("user") or "-", txn:header("x-a") or "-", table.concat(txn:headers("x-multi"), "+"),
    txn:cookie("sid") or "-", tostring(txn:header("absent")),
  }
  local all = txn:headers()
  parts[#parts+1] = all["x-a"][1]
  txn:set_var("seen", table.concat(parts, "|"))
  txn:set_var("copy", txn:var("seen") ~= nil)
end`)
	hdr := http.Header{}
	hdr.Set("X-A", "alpha")
	hdr.Add("X-Multi", "1")
	hdr.Add("X-Multi", "2")
	hdr.Set("Cookie", "a=b; sid=s3cr3t")
	txn := httpTxn("POST", "/ews/x", "user=bob&x=1", hdr)
	if _, err := route(t, r, "read", txn); err != nil {
		t.Fatal(err)
	}
	want := "web|198.18.0.7|40000|198.18.0.1|443|www.example.com|h2,http/1.1|true|POST|www.example.com|/ews/x|user=bob&x=1|bob|alpha|1+2|s3cr3t|nil|alpha"
	if got := txn.Vars["seen"]; got != want {
		t.Errorf("txn read API:\n got %s\nwant %s", got, want)
	}
	if txn.Vars["copy"] != "true" {
		t.Errorf("var/set_var round trip: %q", txn.Vars["copy"])
	}
}

func TestTxnDecisions(t *testing.T) {
	r := newRig(t, `
function backend(txn) txn:use_backend("b1") end
function short(txn) return "b2" end
function server(txn) txn:use_server("b3", "s2") end
function deny(txn) txn:deny(429) end
function deny_default(txn) txn:deny() end
function redirect(txn) txn:redirect("https://example.com/", 301) end
function redirect_default(txn) txn:redirect("/login") end
function nothing(txn) end
function headers(txn)
  txn:set_header("X-Route", "canary")
  txn:add_header("X-Multi", "2")
  txn:del_header("X-Drop")
  txn:set_response_header("X-Served-By", "lua")
  txn:add_response_header("X-Many", 1)
end
function bad_status(txn) txn:deny(99) end
function bad_header(txn) txn:set_header("X-Bad", "a\r\nInjected: 1") end
function bad_name(txn) txn:set_header("Bad Name", "x") end
function bad_code(txn) txn:redirect("/x", 200) end
function tcp_only(txn) return txn:path() end
`)
	cases := []struct {
		fn      string
		want    proxy.Decision
		wantErr string
	}{
		{"backend", proxy.Decision{Backend: "b1"}, ""},
		{"short", proxy.Decision{Backend: "b2"}, ""},
		{"server", proxy.Decision{Backend: "b3", Server: "s2"}, ""},
		{"deny", proxy.Decision{Deny: 429}, ""},
		{"deny_default", proxy.Decision{Deny: 403}, ""},
		{"redirect", proxy.Decision{Redirect: "https://example.com/", RedirectCode: 301}, ""},
		{"redirect_default", proxy.Decision{Redirect: "/login", RedirectCode: 302}, ""},
		{"nothing", proxy.Decision{}, ""},
		{"bad_status", proxy.Decision{}, "out of range"},
		{"bad_header", proxy.Decision{}, "CR, LF"},
		{"bad_name", proxy.Decision{}, "invalid header name"},
		{"bad_code", proxy.Decision{}, "redirect code 200"},
	}
	for _, tc := range cases {
		t.Run(tc.fn, func(t *testing.T) {
			d, err := route(t, r, tc.fn, httpTxn("GET", "/", "", nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d != tc.want {
				t.Errorf("decision = %+v, want %+v", d, tc.want)
			}
		})
	}

	t.Run("headers", func(t *testing.T) {
		hdr := http.Header{"X-Multi": {"1"}, "X-Drop": {"x"}}
		txn := httpTxn("GET", "/", "", hdr)
		if _, err := route(t, r, "headers", txn); err != nil {
			t.Fatal(err)
		}
		h := txn.HTTP
		if h.Header.Get("X-Route") != "canary" || strings.Join(h.Header.Values("X-Multi"), ",") != "1,2" || h.Header.Get("X-Drop") != "" {
			t.Errorf("request headers = %v", h.Header)
		}
		if h.ResponseHeader.Get("X-Served-By") != "lua" || h.ResponseHeader.Get("X-Many") != "1" {
			t.Errorf("response headers = %v", h.ResponseHeader)
		}
	})
	t.Run("tcp mode has no http methods", func(t *testing.T) {
		txn := httpTxn("GET", "/", "", nil)
		txn.HTTP = nil
		_, err := route(t, r, "tcp_only", txn)
		if err == nil || !strings.Contains(err.Error(), "http-mode") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFailedHookLeavesRequestUntouched(t *testing.T) {
	r := newRig(t, `
function f(txn)
  txn:set_header("X-Half", "done")
  txn:set_var("step", "half")
  txn:use_backend("other")
  error("boom")
end`)
	txn := httpTxn("GET", "/", "", nil)
	_, err := route(t, r, "f", txn)
	if err == nil || !strings.Contains(err.Error(), "p:6: boom") {
		t.Fatalf("want positioned error p:6, got %v", err)
	}
	if txn.HTTP.Header.Get("X-Half") != "" {
		t.Errorf("header change of a failed hook was applied")
	}
	if txn.Vars != nil {
		t.Errorf("set_var of a failed hook was applied: %v", txn.Vars)
	}
}

// TestHookVarsAppliedOnlyOnSuccess: set_var is staged like header changes:
// a hook that fails or runs out of time leaves the txn's variables as they
// were (the map the caller holds is not written either); one that returns
// normally adds its variables to those already there, and txn:var sees a
// hook's own set_var at once.
func TestHookVarsAppliedOnlyOnSuccess(t *testing.T) {
	src := `
function ok(txn)
  txn:set_var("route", "b")
  txn:set_var("route", txn:var("route") .. "2")
  txn:set_var("seen", txn:var("before"))
end
function fails(txn) txn:set_var("route", "x"); txn:set_var("before", "changed"); error("boom") end
function slow(txn) txn:set_var("route", "x"); while true do end end`
	r := newRig(t, src)
	slow := newRig(t, src, func(c *config.Lua) { c.Defaults.Timeout = config.Duration(50 * time.Millisecond) })
	for _, tc := range []struct {
		r       *rig
		fn      string
		wantErr string
		want    map[string]string
	}{
		{r, "ok", "", map[string]string{"before": "1", "route": "b2", "seen": "1"}},
		{r, "fails", "boom", map[string]string{"before": "1"}},
		{slow, "slow", "timeout", map[string]string{"before": "1"}},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			txn := httpTxn("GET", "/", "", nil)
			held := map[string]string{"before": "1"}
			txn.Vars = held
			_, err := route(t, tc.r, tc.fn, txn)
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !maps.Equal(txn.Vars, tc.want) {
				t.Errorf("vars = %v, want %v", txn.Vars, tc.want)
			}
			if !maps.Equal(held, map[string]string{"before": "1"}) {
				t.Errorf("the caller's map was written: %v", held)
			}
		})
	}
}

// TestRedirectLocationChecked: a redirect location from Lua is checked like
// a header value (it becomes the Location header): CR, LF or NUL, or an
// empty location, fails the hook with a clear error, and the plugin's
// fallback applies.
func TestRedirectLocationChecked(t *testing.T) {
	r := newRig(t, `
function nul(txn) txn:redirect("https://example.com/\0x") end
function crlf(txn) txn:redirect("https://example.com/\r\nSet-Cookie: a=b") end
function lf(txn) txn:redirect("/x\ny") end
function empty(txn) txn:redirect("") end
function good(txn) txn:redirect("https://example.com/a?b=c", 307) end`, func(c *config.Lua) { c.Plugins[0].Fallback = "503" })
	for _, tc := range []struct{ fn, wantErr string }{
		{"nul", "must not contain CR, LF or NUL"},
		{"crlf", "must not contain CR, LF or NUL"},
		{"lf", "must not contain CR, LF or NUL"},
		{"empty", "must not be empty"},
		{"good", ""},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			d, err := route(t, r, tc.fn, httpTxn("GET", "/", "", nil))
			if tc.wantErr == "" {
				if err != nil || d != (proxy.Decision{Redirect: "https://example.com/a?b=c", RedirectCode: 307}) {
					t.Fatalf("got %+v, %v", d, err)
				}
				return
			}
			var hf *proxy.HookFailure
			if !errors.As(err, &hf) || hf.Status != 503 || !strings.Contains(err.Error(), tc.wantErr) || d != (proxy.Decision{}) {
				t.Fatalf("got %+v, %v; want the 503 fallback with an error containing %q", d, err, tc.wantErr)
			}
		})
	}
}

func TestTxnOnlyValidDuringCall(t *testing.T) {
	r := newRig(t, `
local kept = {}
function keep(txn) kept.txn = txn end
function reuse(target) return kept.txn:path() end
`, func(c *config.Lua) { c.Defaults.PoolSize = 1 })
	if _, err := route(t, r, "keep", httpTxn("GET", "/secret", "", nil)); err != nil {
		t.Fatal(err)
	}
	// Same (single pooled) state, outside any hook: the kept txn is dead.
	res := r.rt.Check(context.Background(), "p.reuse", CheckTarget{})
	if res.OK || !strings.Contains(res.Reason, "only valid during its hook call") {
		t.Fatalf("stale txn use: %+v", res)
	}
}

func TestFallbacks(t *testing.T) {
	src := `function f(txn) error("nope") end`
	for _, tc := range []struct {
		fallback string
		status   int // of the *proxy.HookFailure; 0: a plain error
	}{
		{"continue", 0},
		{"500", 500},
		{"503", 503},
	} {
		t.Run(tc.fallback, func(t *testing.T) {
			r := newRig(t, src, func(c *config.Lua) { c.Plugins[0].Fallback = tc.fallback })
			before := r.rt.Errors("p.f")
			d, err := route(t, r, "f", httpTxn("GET", "/", "", nil))
			var hf *proxy.HookFailure
			status := 0
			if errors.As(err, &hf) {
				status = hf.Status
			}
			if err == nil || status != tc.status || d != (proxy.Decision{}) || !strings.Contains(err.Error(), "nope") {
				t.Fatalf("got %+v, %v; want a failure with fallback status %d", d, err, tc.status)
			}
			if got := r.rt.Errors("p.f"); got != before+1 {
				t.Errorf("error counter %d → %d, want +1", before, got)
			}
		})
	}
}

func TestErrorThresholdPublishesEvent(t *testing.T) {
	r := newRig(t, `function f(txn) error("always") end`, func(c *config.Lua) { c.Defaults.ErrorThreshold = 3 })
	sub := r.bus.Subscribe("t", 16, func(e events.Event) bool { return e.Kind == events.LuaErrors })
	defer sub.Close()
	for i := 0; i < 5; i++ {
		_, _ = route(t, r, "f", httpTxn("GET", "/", "", nil))
	}
	select {
	case e := <-sub.C:
		if e.Attr("script") != "p.f" || e.Attr("count") != "3" || !strings.Contains(e.Attr("last_error"), "always") {
			t.Errorf("event attrs = %v", e.Attrs)
		}
	default:
		t.Fatal("no lua.errors event after 3 failures")
	}
	select {
	case e := <-sub.C:
		t.Fatalf("second lua.errors event within the same minute: %v", e)
	default:
	}
	// One log line per function and minute, not one per failure.
	if n := strings.Count(r.log.String(), "lua call failed"); n != 1 {
		t.Errorf("%d log lines for 5 failures, want 1", n)
	}
}

func TestFailedStateIsNotPooled(t *testing.T) {
	r := newRig(t, `
local n = 0
function count(txn) n = n + 1; txn:set_var("n", n) end
function fail(txn) error("x") end`, func(c *config.Lua) { c.Defaults.PoolSize = 1 })
	txn := httpTxn("GET", "/", "", nil)
	for i := 0; i < 3; i++ {
		if _, err := route(t, r, "count", txn); err != nil {
			t.Fatal(err)
		}
	}
	if txn.Vars["n"] != "3" {
		t.Fatalf("pooled state not reused: n=%s", txn.Vars["n"])
	}
	closedBefore := r.rt.Stats().StatesClosed
	_, _ = route(t, r, "fail", txn)
	if got := r.rt.Stats().StatesClosed; got != closedBefore+1 {
		t.Errorf("failed state not closed: closed %d → %d", closedBefore, got)
	}
	if _, err := route(t, r, "count", txn); err != nil {
		t.Fatal(err)
	}
	if txn.Vars["n"] != "1" {
		t.Errorf("after a failure a fresh state must be used: n=%s", txn.Vars["n"])
	}
}

func TestLoadErrorsArePositioned(t *testing.T) {
	rt := New(Options{})
	for _, tc := range []struct {
		src, want string
	}{
		{"function f()\n  return 1 +\nend", `lua plugin "bad", line 3: syntax error`},
		{"local x = 1\n\nerror('top level failed')", `lua plugin "bad", line 3: bad:3: top level failed`},
		{"local t = nil\nlocal y = t.x", `line 2`},
		{"while true do end", `deadline`},
	} {
		err := rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "bad", Source: tc.src}}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("src %q: err = %v, want containing %q", tc.src, err, tc.want)
		}
		var le *LoadError
		if !errors.As(err, &le) || le.Plugin != "bad" {
			t.Errorf("src %q: not a LoadError naming the plugin: %#v", tc.src, err)
		}
	}
	// The previous generation stays.
	if len(rt.Plugins()) != 0 {
		t.Errorf("plugins after failed applies: %v", rt.Plugins())
	}
}

func TestReloadSwapsScripts(t *testing.T) {
	r := newRig(t, `function f(txn) return "old" end`)
	h, err := r.rt.Hook("p.f")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := h.Route(context.Background(), httpTxn("GET", "/", "", nil))
	if d.Backend != "old" {
		t.Fatalf("backend %q", d.Backend)
	}
	if err := r.rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "p", Source: `function f(txn) return "new" end`}}}); err != nil {
		t.Fatal(err)
	}
	// The hook the proxy holds follows the reload.
	d, _ = h.Route(context.Background(), httpTxn("GET", "/", "", nil))
	if d.Backend != "new" {
		t.Fatalf("after reload backend %q", d.Backend)
	}
	// A broken reload keeps the working scripts.
	if err := r.rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "p", Source: `function f(txn) return "x" `}}}); err == nil {
		t.Fatal("broken reload accepted")
	}
	d, _ = h.Route(context.Background(), httpTxn("GET", "/", "", nil))
	if d.Backend != "new" {
		t.Fatalf("after failed reload backend %q", d.Backend)
	}
}

func TestReloadUnderLoad(t *testing.T) {
	r := newRig(t, `function f(txn) return "v0" end`)
	h, _ := r.rt.Hook("p.f")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				d, err := h.Route(context.Background(), httpTxn("GET", "/", "", nil))
				if err != nil || !strings.HasPrefix(d.Backend, "v") {
					errs <- errors.Join(err, errors.New("bad decision "+d.Backend))
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		src := `function f(txn) return "v` + strings.Repeat("1", i) + `" end`
		if err := r.rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "p", Source: src}}}); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := r.rt.Stats()
	if st.StatesCreated-st.StatesClosed > uint64(config.DefaultLuaPoolSize) {
		t.Errorf("states leaked: created %d closed %d", st.StatesCreated, st.StatesClosed)
	}
}

func TestLiveState(t *testing.T) {
	up := upstream.NewServer("app", "a", "198.18.1.1:80", 1)
	down := upstream.NewServer("app", "b", "198.18.1.2:80", 2)
	down.SetHealth(upstream.Down, "test")
	drain := upstream.NewServer("app", "c", "198.18.1.3:80", 1)
	drain.SetAdmin(upstream.Drain)
	up.Counters.CurSessions.Store(7)
	lb := &testenv.LogBuffer{}
	rt := New(Options{Log: slog.New(slog.NewTextHandler(lb, nil)), Live: fakeLive{"app": {up, down, drain}}})
	err := rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "p", Source: `
function f(txn)
  local out = {}
  for _, s in ipairs(vipgate.servers("app")) do
    out[#out+1] = string.format("%s:%s:%s:%s:%d:%d", s.name, tostring(s.up), tostring(s.usable), s.admin, s.weight, s.sessions)
  end
  txn:set_var("servers", table.concat(out, " "))
  txn:set_var("up", vipgate.up("app"))
  txn:set_var("one", vipgate.server("app", "b").address)
  txn:set_var("none", tostring(vipgate.server("app", "zz")))
  txn:set_var("empty", #vipgate.servers("nope"))
  local ok, why = vipgate.local_healthy({"web"})
  txn:set_var("local", tostring(ok) .. ":" .. why)
end`}}})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := rt.Hook("p.f")
	txn := httpTxn("GET", "/", "", nil)
	if _, err := h.Route(context.Background(), txn); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"servers": "a:true:true:ready:1:7 b:false:false:ready:2:0 c:true:false:drain:1:0",
		"up":      "1", "one": "198.18.1.2:80", "none": "nil", "empty": "0",
		"local": "false:no local proxy on this node", // fakeLive has no LocalHealthy
	}
	for k, v := range want {
		if txn.Vars[k] != v {
			t.Errorf("%s = %q, want %q", k, txn.Vars[k], v)
		}
	}
}

func TestLogAndConfigAndJSON(t *testing.T) {
	r := newRig(t, `
function f(txn)
  log.info("hello", "user", config.user, "n", config.list[2])
  log.warn("careful")
  log.error("bad", "k", {a = 1})
  log.debug("hidden")
  print("printed")
  txn:set_var("plugin", plugin.name)
  local j = json.encode({x = 1, y = {"a", "b"}})
  local back = json.decode(j)
  txn:set_var("json", back.y[2] .. back.x)
  local v, err = json.decode("{bad")
  txn:set_var("jsonerr", tostring(v) .. " " .. tostring(err ~= nil))
end`, func(c *config.Lua) {
		c.Plugins[0].Config = map[string]any{"user": "bob", "list": []any{1, 2, 3}}
	})
	txn := httpTxn("GET", "/", "", nil)
	if _, err := route(t, r, "f", txn); err != nil {
		t.Fatal(err)
	}
	out := r.log.String()
	for _, want := range []string{`level=INFO msg="lua: hello" plugin=p user=bob n=2`, `level=WARN msg="lua: careful"`, `level=ERROR msg="lua: bad" plugin=p k=map[a:1]`, `msg="lua: printed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Errorf("debug line logged at info level")
	}
	if txn.Vars["plugin"] != "p" || txn.Vars["json"] != "b1" || txn.Vars["jsonerr"] != "nil true" {
		t.Errorf("vars = %v", txn.Vars)
	}
}

func TestBareFunctionName(t *testing.T) {
	rt := New(Options{})
	err := rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{
		{Name: "a", Source: `function only_a(txn) return "A" end function both() end`},
		{Name: "b", Source: `function both() end`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := rt.Hook("only_a")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := h.Route(context.Background(), httpTxn("GET", "/", "", nil))
	if d.Backend != "A" {
		t.Errorf("backend %q", d.Backend)
	}
	if _, err := rt.Hook("both"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous name: %v", err)
	}
	if _, err := rt.Hook("missing"); err == nil {
		t.Error("missing function resolved")
	}
	h, _ = rt.Hook("a.missing")
	if _, err := h.Route(context.Background(), httpTxn("GET", "/", "", nil)); err == nil || !strings.Contains(err.Error(), "defines no global function") {
		t.Errorf("missing function call: %v", err)
	}
	h, _ = rt.Hook("zz.f")
	if _, err := h.Route(context.Background(), httpTxn("GET", "/", "", nil)); err == nil || !strings.Contains(err.Error(), `no lua plugin "zz"`) {
		t.Errorf("missing plugin call: %v", err)
	}
}

func TestCallerCancellation(t *testing.T) {
	r := newRig(t, `function f(txn) while true do end end`, func(c *config.Lua) { c.Defaults.Timeout = config.Duration(time.Minute) })
	ctx, cancel := context.WithCancel(context.Background())
	h, _ := r.rt.Hook("p.f")
	done := make(chan error, 1)
	go func() {
		_, err := h.Route(ctx, httpTxn("GET", "/", "", nil))
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("cancelled call returned no error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cancelled call did not return")
	}
}
