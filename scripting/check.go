package scripting

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
)

// CheckTarget is what a scripted check or track script is called about.
// For a VRRP track script Backend and Server are empty.
type CheckTarget struct {
	Backend string
	Server  string
	Addr    string // host:port to probe ("" for track scripts)
	Params  map[string]string
}

// CheckResult is what the function returned.
type CheckResult struct {
	OK       bool
	Reason   string
	Delta    int
	HasDelta bool
}

// Check calls plugin.function(target, params) under ctx's deadline (or the
// plugin's timeout when ctx has none). The function returns a boolean
// (healthy or not), then optionally a string reason and/or a number
// priority delta, in any order; or a table {ok=, reason=, delta=}. A
// failing script is a failed check whose reason is the error.
func (r *Runtime) Check(ctx context.Context, ref string, t CheckTarget) CheckResult {
	pname, fn, err := r.resolve(ref)
	if err != nil {
		return CheckResult{Reason: "lua: " + err.Error()}
	}
	g := r.gen.Load()
	timeout := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return CheckResult{Reason: "timeout"}
		}
	}
	var res CheckResult
	err = r.call(ctx, g, kindCheck, pname, fn, timeout, func(s *state) int {
		L := s.L
		tt := L.CreateTable(0, 6)
		tt.RawSetString("backend", lua.LString(t.Backend))
		tt.RawSetString("name", lua.LString(t.Server))
		tt.RawSetString("address", lua.LString(t.Addr))
		if host, port, err := net.SplitHostPort(t.Addr); err == nil {
			tt.RawSetString("host", lua.LString(host))
			if n, err := strconv.Atoi(port); err == nil {
				tt.RawSetString("port", lua.LNumber(n))
			}
		}
		params := L.CreateTable(0, len(t.Params))
		for k, v := range t.Params {
			params.RawSetString(k, lua.LString(v))
		}
		L.Push(tt)
		L.Push(params)
		return 2
	}, lua.MultRet, func(s *state) error {
		res = readCheckResult(s.L)
		return nil
	})
	if err != nil {
		if se, ok := err.(*ScriptError); ok && se.Timeout {
			return CheckResult{Reason: "lua timeout: " + se.Msg}
		}
		return CheckResult{Reason: err.Error()}
	}
	return res
}

func readCheckResult(L *lua.LState) CheckResult {
	var res CheckResult
	top := L.GetTop()
	if top == 0 {
		res.Reason = "lua check returned nothing"
		return res
	}
	if t, ok := L.Get(1).(*lua.LTable); ok {
		res.OK = lua.LVAsBool(t.RawGetString("ok"))
		if r, ok := t.RawGetString("reason").(lua.LString); ok {
			res.Reason = string(r)
		}
		if d, ok := t.RawGetString("delta").(lua.LNumber); ok {
			res.Delta, res.HasDelta = int(d), true
		}
		return res
	}
	switch v := L.Get(1).(type) {
	case *lua.LFunction, *lua.LUserData, *lua.LState, *lua.LChannel:
		res.Reason = fmt.Sprintf("lua check returned a %s: return true or false (and a reason), or a table {ok=, reason=, delta=}", v.Type())
		return res
	}
	res.OK = lua.LVAsBool(L.Get(1))
	for i := 2; i <= top && i <= 3; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			res.Reason = string(v)
		case lua.LNumber:
			res.Delta, res.HasDelta = int(v), true
		}
	}
	if !res.OK && res.Reason == "" {
		res.Reason = "lua check failed"
	}
	return res
}

// Checker adapts a `kind: lua` check (script = plugin.function, params) to
// health.Checker. The function is resolved on each call, so reloads apply.
func (r *Runtime) Checker(c *config.Check) (health.Checker, error) {
	if c.Script == "" {
		return nil, fmt.Errorf("a lua check needs script (plugin.function)")
	}
	ref := c.Script
	params := c.Params
	return health.CheckerFunc(func(ctx context.Context, t health.Target) health.Result {
		start := time.Now()
		res := r.Check(ctx, ref, CheckTarget{Backend: t.Backend, Server: t.Server, Addr: t.Addr, Params: params})
		return health.Result{OK: res.OK, Reason: res.Reason, Duration: time.Since(start), PriorityDelta: res.Delta, HasDelta: res.HasDelta}
	}), nil
}
