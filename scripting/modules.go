package scripting

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	lua "github.com/yuin/gopher-lua"

	"github.com/vipgate/vipgate/core/upstream"
)

// logModule: log.debug/info/warn/error(msg, key, value, ...).
func (s *state) logModule() *lua.LTable {
	t := s.L.NewTable()
	for i, name := range []string{"debug", "info", "warn", "error"} {
		t.RawSetString(name, s.L.NewFunction(s.logAt(i-1)))
	}
	return t
}

// logAt logs at -1 debug, 0 info, 1 warn, 2 error. A line is at most
// maxLogLine bytes (message and attributes; what does not fit is cut and
// the line says truncated=true), and lines are rate-limited (logAllowed).
func (s *state) logAt(lvl int) lua.LGFunction {
	level := [...]slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}[lvl+1]
	return func(L *lua.LState) int {
		if !s.logAllowed() {
			return 0
		}
		top := L.GetTop()
		cv := newConverter(s.ctx, maxLogLine)
		msg := ""
		if top >= 1 {
			msg = lua.LVAsString(L.ToStringMeta(L.Get(1)))
			if len(msg) > maxLogLine/2 {
				msg, cv.full = msg[:maxLogLine/2]+"…", true
			}
			cv.budget -= len(msg)
		}
		attrs := make([]any, 0, min(top, 64)+5)
		if s.plugin != nil {
			attrs = append(attrs, "plugin", s.plugin.name)
		}
		for i := 2; i+1 <= top && !cv.stopped(); i += 2 {
			k := lua.LVAsString(L.ToStringMeta(L.Get(i)))
			if !cv.charge(len(k) + 2) {
				break
			}
			if v := cv.value(L.Get(i+1), 0); !cv.full {
				attrs = append(attrs, k, v)
			}
		}
		if top >= 2 && top%2 == 0 && !cv.stopped() {
			if v := cv.value(L.Get(top), 0); !cv.full {
				attrs = append(attrs, "extra", v)
			}
		}
		if cv.err != nil {
			L.RaiseError("log: %v", cv.err)
		}
		if cv.full {
			attrs = append(attrs, "truncated", true)
		}
		ctx := s.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		s.g.rt.log.Log(ctx, level, "lua: "+msg, attrs...)
		return 0
	}
}

// liveModule: vipgate.servers(backend), vipgate.server(backend, name),
// vipgate.up(backend).
func (s *state) liveModule() *lua.LTable {
	L := s.L
	t := L.NewTable()
	t.RawSetString("servers", L.NewFunction(func(L *lua.LState) int {
		srvs := s.servers(L, L.CheckString(1))
		out := L.CreateTable(len(srvs), 0)
		for _, sv := range srvs {
			out.Append(serverTable(L, sv))
		}
		L.Push(out)
		return 1
	}))
	t.RawSetString("server", L.NewFunction(func(L *lua.LState) int {
		name := L.CheckString(2)
		for _, sv := range s.servers(L, L.CheckString(1)) {
			if sv.Name == name {
				L.Push(serverTable(L, sv))
				return 1
			}
		}
		L.Push(lua.LNil)
		return 1
	}))
	t.RawSetString("up", L.NewFunction(func(L *lua.LState) int {
		n := 0
		for _, sv := range s.servers(L, L.CheckString(1)) {
			if sv.Usable() {
				n++
			}
		}
		L.Push(lua.LNumber(n))
		return 1
	}))
	// vipgate.local_healthy({"frontend", ...}) → ok, reason: the named
	// frontends (all when none) listen and have a usable server.
	t.RawSetString("local_healthy", L.NewFunction(func(L *lua.LState) int {
		lh, ok := s.g.rt.live.(interface {
			LocalHealthy([]string) (bool, string)
		})
		if !ok {
			L.Push(lua.LFalse)
			L.Push(lua.LString("no local proxy on this node"))
			return 2
		}
		var names []string
		if tb, ok := L.Get(1).(*lua.LTable); ok {
			s.eachEntry(L, tb, "vipgate.local_healthy", newConverter(s.ctx, s.maxS), func(_, v lua.LValue) { names = append(names, v.String()) })
		} else if str, ok := L.Get(1).(lua.LString); ok {
			names = append(names, string(str))
		}
		okv, reason := lh.LocalHealthy(names)
		L.Push(lua.LBool(okv))
		L.Push(lua.LString(reason))
		return 2
	}))
	return t
}

func (s *state) servers(L *lua.LState, backend string) []*upstream.Server {
	live := s.g.rt.live
	if live == nil {
		return nil
	}
	return live.Servers(backend)
}

func serverTable(L *lua.LState, sv *upstream.Server) *lua.LTable {
	t := L.CreateTable(0, 9)
	t.RawSetString("name", lua.LString(sv.Name))
	t.RawSetString("backend", lua.LString(sv.Backend))
	t.RawSetString("address", lua.LString(sv.Addr))
	t.RawSetString("up", lua.LBool(sv.Health() == upstream.Up))
	t.RawSetString("usable", lua.LBool(sv.Usable()))
	t.RawSetString("admin", lua.LString(sv.Admin().String()))
	t.RawSetString("weight", lua.LNumber(sv.Weight()))
	t.RawSetString("sessions", lua.LNumber(sv.Counters.CurSessions.Load()))
	if st := sv.Settings(); st != nil {
		t.RawSetString("backup", lua.LBool(st.Backup))
		t.RawSetString("datacenter", lua.LString(st.Datacenter))
	}
	return t
}

// jsonModule: json.encode(value), json.decode(string).
func (s *state) jsonModule() *lua.LTable {
	L := s.L
	t := L.NewTable()
	t.RawSetString("encode", L.NewFunction(func(L *lua.LState) int {
		cv := newConverter(s.ctx, s.maxS)
		v := cv.value(L.CheckAny(1), 0)
		switch {
		case cv.err != nil:
			L.RaiseError("json.encode stopped: %v", cv.err)
		case cv.full:
			L.RaiseError("json.encode result over the %d-byte limit (lua.defaults.max_string; a table referenced from several places is written out at each)", s.maxS)
		}
		b, err := json.Marshal(v)
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(err.Error()))
			return 2
		}
		if len(b) > s.maxS {
			L.RaiseError("json.encode result over the %d-byte limit", s.maxS)
		}
		L.Push(lua.LString(b))
		return 1
	}))
	t.RawSetString("decode", L.NewFunction(func(L *lua.LState) int {
		src := L.CheckString(1)
		if len(src) > s.maxS {
			// The decoded tables take several times the text.
			L.ArgError(1, fmt.Sprintf("json.decode input over the %d-byte limit (lua.defaults.max_string)", s.maxS))
		}
		var v any
		if err := json.Unmarshal([]byte(src), &v); err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(err.Error()))
			return 2
		}
		L.Push(toLua(L, v))
		return 1
	}))
	return t
}

// toLua converts decoded YAML/JSON values.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int:
		return lua.LNumber(x)
	case int64:
		return lua.LNumber(x)
	case uint64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case map[string]string:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetString(k, lua.LString(e))
		}
		return t
	case map[any]any:
		t := L.CreateTable(0, len(x))
		for k, e := range x {
			t.RawSetString(fmt.Sprint(k), toLua(L, e))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}

// stringMap reads a table of string → string (or list of strings).
func (s *state) stringMap(L *lua.LState, t *lua.LTable, what string) map[string][]string {
	m := map[string][]string{}
	cv := newConverter(s.ctx, s.maxS)
	s.eachEntry(L, t, what, cv, func(k, v lua.LValue) {
		ks := k.String()
		if vt, ok := v.(*lua.LTable); ok {
			s.eachEntry(L, vt, what, cv, func(_, e lua.LValue) { m[ks] = append(m[ks], e.String()) })
			return
		}
		m[ks] = append(m[ks], v.String())
	})
	return m
}

// maxCopyEntries bounds the entries a Go function copies out of one Lua
// table (headers, ALPN names, frontend names, DNS addresses).
const maxCopyEntries = 10000

// eachEntry calls fn for each entry of t, at most maxCopyEntries of them
// and within cv's byte budget and deadline (entries are charged by their
// string size), raising a Lua error past either: copying a table out of
// Lua is one VM instruction, which nothing else would bound.
func (s *state) eachEntry(L *lua.LState, t *lua.LTable, what string, cv *converter, fn func(k, v lua.LValue)) {
	n := 0
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		if n++; n > maxCopyEntries {
			L.RaiseError("%s: more than %d entries", what, maxCopyEntries)
		}
		size := 0
		if str, ok := v.(lua.LString); ok {
			size = len(str)
		}
		if !cv.charge(len(k.String()) + size + 2) {
			if cv.err != nil {
				L.RaiseError("%s: %v", what, cv.err)
			}
			L.RaiseError("%s: more than %d bytes (lua.defaults.max_string)", what, s.maxS)
		}
		fn(k, v)
	}
}
