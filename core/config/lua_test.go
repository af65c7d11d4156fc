package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const luaDoc = `
frontends:
  - name: web
    bind: ":8080"
    mode: http
    default_backend: app
    route: canary.route
backends:
  - name: app
    mode: http
    check: {kind: lua, script: mail.smtp, params: {domain: example.com}}
    servers: [{name: a, address: "127.0.0.1:9001"}]
lua:
  defaults: {timeout: 20ms, fallback: "503"}
  plugins:
    - name: canary
      source: |
        function route(txn)
          if txn:header(config.header) then return config.backend end
        end
      config: {header: X-Canary, backend: app, users: [a, b], nested: {x: 1}}
    - name: mail
      file: smtp.lua
      timeout: 2s
      fallback: continue
      handlers:
        - {events: [server.down, server.up], function: notify, min_level: warning}
`

func TestLuaSectionParsesAndInlinesFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "smtp.lua"), []byte("function smtp(s) return true end\nnotify = function(ev) end\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(doc, []byte(luaDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadFile(doc)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	l := &c.Lua
	if l.Defaults.Timeout.D() != 20*time.Millisecond || l.Defaults.Fallback != "503" || l.Defaults.PoolSize != DefaultLuaPoolSize ||
		l.Defaults.MaxString != DefaultLuaMaxString || l.Defaults.HandlerTimeout.D() != DefaultLuaHandlerTimeout {
		t.Errorf("defaults %+v", l.Defaults)
	}
	mail := l.Plugin("mail")
	if mail == nil || !strings.Contains(mail.Source, "function smtp") {
		t.Fatalf("file not inlined: %+v", mail)
	}
	if l.EffectiveTimeout(mail) != 2*time.Second || l.EffectiveFallback(mail) != "continue" {
		t.Errorf("plugin overrides not effective")
	}
	canary := l.Plugin("canary")
	if l.EffectiveTimeout(canary) != 20*time.Millisecond || l.EffectiveFallback(canary) != "503" {
		t.Errorf("defaults not inherited")
	}
	if canary.Config["header"] != "X-Canary" || len(canary.Config["users"].([]any)) != 2 {
		t.Errorf("config table %#v", canary.Config)
	}
	for _, tc := range []struct{ ref, plugin, fn string }{{"canary.route", "canary", "route"}, {"smtp", "mail", "smtp"}, {"notify", "mail", "notify"}} {
		p, f, err := l.ResolveFunction(tc.ref)
		if err != nil || p != tc.plugin || f != tc.fn {
			t.Errorf("resolve %q = %q %q %v", tc.ref, p, f, err)
		}
	}
	// The replicated document carries the code: it parses without the file.
	out, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("elsewhere.yaml", out); err != nil {
		t.Fatalf("marshalled document does not load on another node: %v\n%s", err, out)
	}
}

func TestLuaProblemsArePositioned(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.lua"), []byte("-- comment\nfunction f(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := "backends:\n  - {name: b, servers: [{name: s, address: 'h:1'}]}\n"
	cases := []struct{ name, doc, want string }{
		{"inline syntax error", "lua:\n  plugins:\n    - name: p\n      source: |\n        function f()\n          return 1 +\n        end\n",
			`bad.yaml:7: lua.plugins.0.source: plugin "p": lua line 3: `},
		{"file syntax error", "lua:\n  plugins:\n    - {name: p, file: broken.lua}\n", `broken.lua:2: lua.plugins.0.file: plugin "p": lua line 2: unexpected end of source`},
		{"missing file", "lua:\n  plugins:\n    - {name: p, file: nope.lua}\n", `bad.yaml:3:23: lua.plugins.0.file: plugin "p": open `},
		{"no source", "lua:\n  plugins:\n    - {name: p}\n", `lua.plugins.0: plugin "p" needs source (inline Lua) or file`},
		{"no name", "lua:\n  plugins:\n    - {source: 'x = 1'}\n", `a lua plugin needs a name`},
		{"dotted name", "lua:\n  plugins:\n    - {name: a.b, source: 'x = 1'}\n", `plugin name "a.b"`},
		{"duplicate", "lua:\n  plugins:\n    - {name: a, source: 'x = 1'}\n    - {name: a, source: 'x = 1'}\n", `bad.yaml:4:14: lua.plugins.1.name: duplicate lua plugin "a"`},
		{"bad fallback", "lua:\n  defaults: {fallback: 404}\n", `lua.defaults.fallback: fallback "404": want continue, 500 or 503`},
		{"plugin fallback", "lua:\n  plugins:\n    - {name: a, source: 'x = 1', fallback: drop}\n", `lua.plugins.0.fallback: fallback "drop"`},
		{"timeout range", "lua:\n  defaults: {timeout: 2m}\n", `timeout 2m0s out of range 1ms-1m`},
		{"pool size", "lua:\n  defaults: {pool_size: -1}\n", `pool_size -1 out of range`},
		{"max string", "lua:\n  defaults: {max_string: 10}\n", `max_string 10 out of range`},
		{"call stack", "lua:\n  defaults: {call_stack: 1}\n", `call_stack 1 out of range`},
		{"registry", "lua:\n  defaults: {registry: 1}\n", `registry 1 out of range`},
		{"handler function", "lua:\n  plugins:\n    - name: a\n      source: 'function f() end'\n      handlers: [{events: ['*'], function: g}]\n",
			`lua.plugins.0.handlers.0.function: plugin "a" defines no global function "g" (have: f)`},
		{"handler events", "lua:\n  plugins:\n    - name: a\n      source: 'function f() end'\n      handlers: [{function: f}]\n", `a handler needs events`},
		{"handler level", "lua:\n  plugins:\n    - name: a\n      source: 'function f() end'\n      handlers: [{events: ['*'], function: f, min_level: loud}]\n", `min_level "loud"`},
		{"unknown key", "lua:\n  plugins:\n    - {name: a, sorce: 'x'}\n", `unknown key "sorce" (did you mean "source"?)`},
		{"route plugin", "frontends:\n  - {name: f, bind: ':80', default_backend: b, route: nope.route}\n" + base, `frontends.0.route: route "nope.route": no lua plugin "nope" (have: none)`},
		{"route function", "frontends:\n  - {name: f, bind: ':80', default_backend: b, route: a.rout}\n" + base + "lua:\n  plugins:\n    - {name: a, source: 'function route() end'}\n",
			`lua plugin "a" defines no global function "rout" (have: route)`},
		{"local function is not callable", "frontends:\n  - {name: f, bind: ':80', default_backend: b, route: a.r}\n" + base + "lua:\n  plugins:\n    - {name: a, source: 'local function r() end'}\n",
			`defines no global function "r" (have: none)`},
		{"check script", "backends:\n  - name: b\n    check: {kind: lua, script: a.chk}\n    servers: [{name: s, address: 'h:1'}]\n", `backends.0.check.script: script "a.chk": no lua plugin "a"`},
		{"ambiguous bare", "frontends:\n  - {name: f, bind: ':80', default_backend: b, route: r}\n" + base + "lua:\n  plugins:\n    - {name: a, source: 'function r() end'}\n    - {name: c, source: 'function r() end'}\n",
			`ambiguous: defined by plugins a, c`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "bad.yaml"), []byte(c.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not contain %q:\n%v", c.want, err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, want *config.Error", err)
			}
		})
	}
}

func TestLuaGlobalFunctions(t *testing.T) {
	fns, err := LuaGlobalFunctions("p", `
function a() end
b = function() end
local function c() end
local d = function() end
function M.e() end
function M:f() end
x, g = 1, function() end
if true then function h() end end
`)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"a": true, "b": true, "c": false, "d": false, "e": false, "f": false, "g": true, "h": false} {
		if fns[name] != want {
			t.Errorf("%s: %v, want %v", name, fns[name], want)
		}
	}
}
