package inspect

import (
	"errors"
	"net"
	"os"
	"time"
)

// MaxPeek bounds how many bytes Peek buffers: one maximal TLS record plus
// its header is enough for any real ClientHello.
const MaxPeek = 5 + maxRecordLen

// Peek reads the first bytes a client sends, for at most wait, until need
// says it has enough (need may be nil: stop at the first read). The bytes
// are returned, not consumed: forward them first (or wrap the conn with
// Replay). Like HAProxy's inspect-delay, running out of time is not an
// error: the bytes so far are returned with a nil error, and the caller
// decides without inspection. Errors are the client's (reset, EOF before
// any byte). The read deadline is cleared before returning.
func Peek(c net.Conn, wait time.Duration, need func([]byte) bool) ([]byte, error) {
	buf := make([]byte, 0, 1024)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	for len(buf) < MaxPeek {
		if cap(buf)-len(buf) < 512 {
			nb := make([]byte, len(buf), min(2*cap(buf), MaxPeek))
			copy(nb, buf)
			buf = nb
		}
		n, err := c.Read(buf[len(buf):min(cap(buf), MaxPeek)])
		buf = buf[:len(buf)+n]
		if n > 0 && (need == nil || need(buf)) {
			return buf, nil
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return buf, nil
			}
			if len(buf) > 0 {
				// The client sent something and closed its side: what it
				// sent is still to be forwarded.
				return buf, nil
			}
			return buf, err
		}
	}
	return buf, nil
}

// Replay returns a conn whose first reads return peeked, then read c.
// Everything else goes to c.
func Replay(c net.Conn, peeked []byte) net.Conn {
	if len(peeked) == 0 {
		return c
	}
	return &replayConn{Conn: c, buf: peeked}
}

type replayConn struct {
	net.Conn
	buf []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.buf = r.buf[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// Unwrap gives the underlying conn once the peeked bytes are drained, so a
// relay can use splice on it.
func (r *replayConn) Unwrap() (net.Conn, bool) { return r.Conn, len(r.buf) == 0 }

// CloseWrite half-closes the underlying conn when it can.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return r.Conn.Close()
}
