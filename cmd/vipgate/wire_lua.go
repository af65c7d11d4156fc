package main

import (
	"context"
	"net/http"

	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/plugins/check/lua"
	"github.com/vipgate/vipgate/scripting"
)

// luaSubsystem owns the node's Lua runtime: routing hooks (installed into
// the proxy), the "lua" check kind (health checks and VRRP track scripts)
// and event handlers (Run).
type luaSubsystem struct{ rt *scripting.Runtime }

// newLua wires the lua subsystem into a node. It runs before the proxy's
// first Apply so that frontends naming a route hook find it.
func newLua(e *env) (subsystem, error) {
	o := scripting.Options{Log: e.Log.With("sub", "lua"), Bus: e.Bus, IsLeader: e.IsLeader}
	if e.Proxy != nil {
		o.Live = e.Proxy
	}
	rt := scripting.New(o)
	lua.Register(e.Checks, rt)
	if e.Proxy != nil {
		e.Proxy.SetHookResolver(rt.Hook)
	}
	if e.Admin != nil {
		e.Admin.Section("lua", func() any { return rt.Stats() })
		e.Admin.HandleFunc("GET /api/v1/lua", admin.Read, func(w http.ResponseWriter, r *http.Request) {
			admin.WriteJSON(w, http.StatusOK, rt.Stats())
		})
	}
	return &luaSubsystem{rt: rt}, nil
}

func (l *luaSubsystem) Name() string { return "lua" }

// Apply compiles the new scripts; on error the previous ones stay in use.
func (l *luaSubsystem) Apply(c *config.Cluster) error { return l.rt.Apply(&c.Lua) }

// Run feeds events to the Lua handlers.
func (l *luaSubsystem) Run(ctx context.Context) error { return l.rt.Run(ctx) }
