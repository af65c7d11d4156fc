// Package builtin registers the check kinds built into vipgate: tcp, http,
// tls and exec. (lua is registered by the scripting wiring, which owns the
// Lua runtime.)
package builtin

import (
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/plugins/check/exec"
	"github.com/vipgate/vipgate/plugins/check/http"
	"github.com/vipgate/vipgate/plugins/check/tcp"
	"github.com/vipgate/vipgate/plugins/check/tls"
)

// Register adds the built-in kinds to r.
func Register(r *health.Registry) {
	r.Register("tcp", tcp.New)
	r.Register("http", http.New)
	r.Register("tls", tls.New)
	r.Register("exec", exec.New)
}
