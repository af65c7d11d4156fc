package proxy

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/vipgate/vipgate/core/proxy/inspect"
)

// peekClientHello reads the client's first bytes for up to d without
// consuming them (the caller forwards them to the server first). It stops as
// soon as a whole ClientHello is in, or the client sent something that is
// not TLS. A client that says nothing within d is served without inspection
// (HAProxy's inspect-delay semantics), and so is a stream that is not TLS:
// the hello is nil then. ok is false when the client reset or left before
// sending a byte: there is nobody to serve.
func peekClientHello(c net.Conn, d time.Duration) (peeked []byte, hello *inspect.Hello, ok bool) {
	b, err := inspect.Peek(c, d, inspect.ClientHelloComplete)
	if err != nil {
		// A bare FIN is still a session (the server may speak first, and
		// the relay passes the half-close on); a reset is not.
		return nil, nil, errors.Is(err, io.EOF)
	}
	if h, err := inspect.ParseClientHello(b); err == nil {
		hello = h
	}
	return b, hello, true
}
