package main

import (
	"context"
	"net/http"

	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/balance"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/plugins/check/builtin"
	"github.com/vipgate/vipgate/plugins/check/lua"
)

// healthManager runs the health checks of the live servers.
type healthManager interface {
	Reconcile(backends []*proxy.Backend)
	Run(ctx context.Context) error
}

// healthWiring adapts the proxy's backends to core/health's items.
type healthWiring struct{ m *health.Manager }

func newHealthManager(e *env) healthManager {
	m := health.NewManager(e.Checks, e.Bus, e.Log.With("sub", "health"))
	e.healthCtl = m
	e.Admin.HandleFunc("GET /api/v1/checks", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, m.Status())
	})
	return &healthWiring{m: m}
}

func (h *healthWiring) Reconcile(backends []*proxy.Backend) {
	var items []health.Item
	for _, b := range backends {
		for i, s := range b.Servers {
			sc := &b.Cfg.Servers[i]
			items = append(items, health.Item{Server: s, Check: b.Cfg.ServerCheck(sc), InitState: b.StartState(s),
				SlowStart: sc.SlowStart.D(), OnMarkedDown: sc.OnMarkedDown})
		}
	}
	h.m.Reconcile(items)
}

func (h *healthWiring) Run(ctx context.Context) error { return h.m.Run(ctx) }

// registerBuiltinChecks registers the built-in check kinds.
func registerBuiltinChecks(r *health.Registry) { builtin.Register(r) }

// knownNames is what this build can build, for validation: the check kinds
// of the health registry and core/balance's algorithms. It is the build's,
// not this node's: a witness runs no Lua yet must accept `kind: lua`.
func knownNames() config.Known {
	r := health.NewRegistry()
	registerBuiltinChecks(r)
	return config.Known{CheckKinds: append(r.Kinds(), lua.Kind), Algorithms: balance.Algorithms()}
}
