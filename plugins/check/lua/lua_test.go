package lua_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/plugins/check/lua"
	"github.com/vipgate/vipgate/scripting"
)

func TestRegisterLuaKind(t *testing.T) {
	rt := scripting.New(scripting.Options{})
	err := rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "chk", Source: `
function port_is(s, params)
  if s.port == tonumber(params.want) then return true, "port " .. s.port end
  return false, "port " .. tostring(s.port), -5
end`}}})
	if err != nil {
		t.Fatal(err)
	}
	reg := health.NewRegistry()
	lua.Register(reg, rt)
	if got := strings.Join(reg.Kinds(), ","); got != "lua" {
		t.Fatalf("kinds %q", got)
	}
	ch, err := reg.New(&config.Check{Kind: "lua", Script: "chk.port_is", Params: map[string]string{"want": "25"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		addr string
		want health.Result
	}{
		{"198.18.0.1:25", health.Result{OK: true, Reason: "port 25"}},
		{"198.18.0.1:26", health.Result{Reason: "port 26", PriorityDelta: -5, HasDelta: true}},
	} {
		res := ch.Check(ctx, health.Target{Backend: "b", Server: "s", Addr: tc.addr})
		res.Duration = 0
		if res != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.addr, res, tc.want)
		}
	}
	// A reload that removes the function turns the check into a failure
	// with a reason, not a crash.
	if err := rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "chk", Source: `function other() end`}}}); err != nil {
		t.Fatal(err)
	}
	if res := ch.Check(ctx, health.Target{Addr: "198.18.0.1:25"}); res.OK || !strings.Contains(res.Reason, `defines no global function "port_is"`) {
		t.Errorf("after reload: %+v", res)
	}
}
