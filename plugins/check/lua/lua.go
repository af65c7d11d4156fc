// Package lua is the "lua" health-check kind: `kind: lua` with
// `script: plugin.function` (and optional `params`) calls a function of the
// cluster's Lua plugins (see scripting.Runtime.Check). VRRP track scripts
// use the same kind through the health registry.
package lua

import (
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
)

// Runtime is the part of *scripting.Runtime the check kind needs.
type Runtime interface {
	Checker(c *config.Check) (health.Checker, error)
}

// Kind is the check kind this package registers.
const Kind = "lua"

// Register adds the "lua" kind, backed by rt, to r.
func Register(r *health.Registry, rt Runtime) {
	r.Register(Kind, rt.Checker)
}
