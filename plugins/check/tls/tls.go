// Package tls is the "tls" health check kind: a TCP connection and a TLS
// handshake (with certificate verification unless `verify: none`),
// optionally followed by send/expect as in the tcp kind. It is the tcp kind
// with `ssl: true`, kept as its own name because operators think of "is the
// TLS endpoint answering" as its own check.
package tls

import (
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/plugins/check/tcp"
)

// New builds a tls checker from a validated check config.
func New(c *config.Check) (health.Checker, error) {
	cc := *c
	cc.SSL = true
	return tcp.New(&cc)
}
