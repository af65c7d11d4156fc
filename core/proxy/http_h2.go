package proxy

import (
	"context"
	"crypto/tls"
)

// serveH2 serves an HTTP/2 client (ALPN h2).
func (h *httpHandler) serveH2(ctx context.Context, s *session, c *tls.Conn) {
	_ = c.Close()
}
