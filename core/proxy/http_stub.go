package proxy

import (
	"context"
	"errors"
	"net"

	"github.com/vipgate/vipgate/core/config"
)

// Placeholder for http mode (owned by the HTTP mode work): until it lands,
// http frontends are refused at Apply.

// connHandler serves one accepted connection of a frontend.
type connHandler interface {
	ServeConn(ctx context.Context, c net.Conn)
}

func newHTTPHandler(f *Frontend) (connHandler, error) {
	return nil, errors.New("http mode is not available in this build")
}

// cookieOf is a server's persistence cookie value.
func cookieOf(s *config.Server) string { return s.Name }

// httpRuleMatches evaluates a rule's http-mode conditions.
func httpRuleMatches(r *config.Rule, t *Txn) bool { return true }
