package scripting

import (
	"context"
	"fmt"
	"io"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// state is one LState with every plugin of a generation loaded into its
// own frozen environment. It is used by one call at a time.
type state struct {
	L    *lua.LState
	g    *generation
	envs map[string]*pluginEnv

	// Per call.
	kind   callKind
	plugin *plugin
	ctx    context.Context
	conns  []io.Closer

	txn    *txnBox
	txnUD  *lua.LUserData
	connMT *lua.LTable // metatable of net.tcp connections
	maxS   int
	guard  callGuard
	// Lines this call logged and dropped (logAllowed).
	logLines, logDropped int
}

// pluginEnv is a plugin's global environment: an empty table whose reads
// go to store and whose writes fail (globals are frozen after load).
type pluginEnv struct {
	env   *lua.LTable
	store *lua.LTable
}

// newState builds a sandboxed state and runs each plugin's top level in it.
func (g *generation) newState() (*state, error) {
	d := g.defaults
	L := lua.NewState(lua.Options{
		SkipOpenLibs:    true,
		CallStackSize:   d.CallStack,
		RegistrySize:    1024,
		RegistryMaxSize: d.Registry,
	})
	s := &state{L: L, g: g, envs: map[string]*pluginEnv{}, maxS: d.MaxString}
	g.rt.created.Add(1)
	g.rt.guard.add(&s.guard)
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	base, err := s.openSandbox()
	if err != nil {
		return nil, err
	}
	s.openTxn()

	// Load under a deadline too: a top level that loops must not hang Apply.
	ctx, cancel := context.WithTimeout(context.Background(), max(g.defaults.Timeout.D(), time.Second))
	defer cancel()
	for _, p := range g.order {
		store := L.CreateTable(0, base.Len()+8)
		base.ForEach(func(k, v lua.LValue) { store.RawSet(k, v) })
		store.RawSetString("config", toLua(L, p.config))
		info := L.NewTable()
		info.RawSetString("name", lua.LString(p.name))
		store.RawSetString("plugin", info)
		env := L.NewTable()
		// While the top level runs, global assignments land in store; then
		// the window is frozen. Every function the plugin defines (also
		// those kept in tables) has env as its environment.
		mt := freezeInto(L, env, store, "global")
		mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
			store.RawSet(L.Get(2), L.Get(3))
			return 0
		}))
		fn := L.NewFunctionFromProto(p.proto)
		fn.Env = env
		s.kind, s.plugin, s.ctx = kindLoad, p, ctx
		L.SetContext(ctx)
		L.Push(fn)
		err := safePCall(L, 0, 0)
		L.RemoveContext()
		s.ctx = nil
		s.closeConns()
		if err != nil {
			return nil, &LoadError{Plugin: p.name, Line: errLine(p.name, luaErrMsg(err)), Msg: luaErrMsg(err)}
		}
		mt.RawSetString("__newindex", frozenSetter(L, "global"))
		s.envs[p.name] = &pluginEnv{env: env, store: store}
	}
	s.endCall()
	ok = true
	return s, nil
}

// freezeInto makes view a read-only window on store: reads fall through,
// writes raise an error, and its metatable cannot be changed or read. It
// returns the metatable.
func freezeInto(L *lua.LState, view, store *lua.LTable, what string) *lua.LTable {
	mt := L.NewTable()
	mt.RawSetString("__index", store)
	mt.RawSetString("__newindex", frozenSetter(L, what))
	mt.RawSetString("__metatable", lua.LString("locked"))
	L.SetMetatable(view, mt)
	return mt
}

func frozenSetter(L *lua.LState, what string) *lua.LFunction {
	return L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("cannot assign %s %q: it is read-only (use a local variable)", what, L.Get(2).String())
		return 0
	})
}

func frozen(L *lua.LState, store *lua.LTable, what string) *lua.LTable {
	v := L.NewTable()
	freezeInto(L, v, store, what)
	return v
}

// endCall clears per-call state.
func (s *state) endCall() {
	s.kind, s.plugin = kindRoute, nil
	if s.logDropped > 0 {
		s.g.rt.logs.drop(s.logDropped)
	}
	s.logLines, s.logDropped = 0, 0
	if s.txn != nil {
		s.txn.reset()
	}
}

func (s *state) closeConns() {
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = s.conns[:0]
}

func (s *state) close() {
	s.g.rt.guard.remove(&s.guard)
	s.closeConns()
	s.L.Close()
	s.g.rt.closed.Add(1)
}

// errLine extracts the line from "plugin:12: message".
func errLine(plugin, msg string) int {
	var line int
	if _, err := fmt.Sscanf(msg, plugin+":%d:", &line); err == nil {
		return line
	}
	return 0
}
