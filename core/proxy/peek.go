package proxy

import (
	"net"
	"time"
)

// clientHello is what routing needs from a TLS ClientHello.
type clientHello struct {
	SNI  string
	ALPN []string
}

// peekClientHello reads the client's first bytes for up to d without
// consuming them (the caller forwards them to the server first). It stops as
// soon as a complete TLS record is in, or the client sent something that is
// not TLS. A client that says nothing within d is served without inspection
// (HAProxy's inspect-delay semantics).
func peekClientHello(c net.Conn, d time.Duration) ([]byte, *clientHello) {
	buf := make([]byte, 0, 1024)
	tmp := make([]byte, 4096)
	deadline := time.Now().Add(d)
	_ = c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(time.Time{})
	for len(buf) < 16384+5 {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if hello, done := parseHello(buf); done {
			return buf, hello
		}
		if err != nil {
			break
		}
	}
	hello, _ := parseHello(buf)
	return buf, hello
}
