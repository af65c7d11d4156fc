//go:build !linux

package proxy

import (
	"context"
	"net"
)

// serveOnLoop: no event loop on this platform (loopEligible is false).
func (l *listener) serveOnLoop(context.Context, net.Listener, int) bool {
	l.noLoop.Store(true)
	return true
}
