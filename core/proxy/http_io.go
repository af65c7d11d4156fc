package proxy

import (
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/vipgate/vipgate/core/proxy/httpparse"
)

// bufConn is a connection with one reusable read buffer: heads are parsed
// in place (zero-copy) and bodies stream through the same buffer.
type bufConn struct {
	net.Conn
	buf  []byte
	r, w int
	// rio does the reads of a plain TCP connection (else Conn.Read).
	rio *rawIO
	// rerr is the outcome of a read made ahead (flushFill), for the next
	// fill.
	rerr error
}

// read reads from the connection, through rio when set.
func (b *bufConn) read(p []byte) (int, error) {
	if b.rio != nil {
		return b.rio.Read(p)
	}
	return b.Conn.Read(p)
}

var errBufFull = errors.New("buffer full")

func (b *bufConn) buffered() []byte { return b.buf[b.r:b.w] }

func (b *bufConn) consume(n int) {
	b.r += n
	if b.r == b.w {
		b.r, b.w = 0, 0
	}
}

// fill reads at least one more byte. It compacts the buffer first when the
// free tail is exhausted; callers must re-derive slices into the buffer.
func (b *bufConn) fill() error {
	if b.r > 0 && b.w == len(b.buf) {
		n := copy(b.buf, b.buf[b.r:b.w])
		b.r, b.w = 0, n
	}
	if b.w == len(b.buf) {
		return errBufFull
	}
	if err := b.rerr; err != nil {
		b.rerr = nil
		return err
	}
	for {
		n, err := b.read(b.buf[b.w:])
		b.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// bufWriter batches small writes (a head and a small body go out in one
// write) and passes large ones straight through.
type bufWriter struct {
	c     net.Conn
	buf   []byte
	total int64 // bytes handed to the connection
	// rio does the writes of a plain TCP connection (else c.Write).
	rio *rawIO
}

func (w *bufWriter) write(p []byte) (int, error) {
	if w.rio != nil {
		return w.rio.Write(p)
	}
	return w.c.Write(p)
}

func (w *bufWriter) Write(p []byte) (int, error) {
	if len(w.buf)+len(p) > cap(w.buf) {
		if err := w.flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(w.buf) {
			n, err := w.write(p)
			w.total += int64(n)
			return n, err
		}
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

func (w *bufWriter) WriteString(s string) (int, error) {
	if len(w.buf)+len(s) > cap(w.buf) {
		return w.Write([]byte(s))
	}
	w.buf = append(w.buf, s...)
	return len(s), nil
}

func (w *bufWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.write(w.buf)
	w.total += int64(n)
	w.buf = w.buf[:0]
	return err
}

// flushFill sends a request head without a body (w) and reads the first
// bytes of its answer into sc, in one call when it can (rawIO.WriteRead:
// no read that finds nothing before the answer comes). Its error is the
// send's; the read's outcome is in sc: bytes appended, or an error its
// next fill returns. A connection whose idle check was left to this send
// (sc.unchecked) gets it here, before anything goes out: errNotIdle when
// it fails.
func (sc *serverConn) flushFill(w *bufWriter) error {
	b := &sc.bufConn
	idle := sc.unchecked
	sc.unchecked = false
	if w.rio == nil || w.rio != b.rio || len(w.buf) == 0 || b.r != b.w || b.w == len(b.buf) {
		if idle && !sc.quiet() {
			return errNotIdle
		}
		return w.flush()
	}
	wn, werr, rn, rerr, done := w.rio.WriteRead(w.buf, b.buf[b.w:], idle)
	w.total += int64(wn)
	if werr != nil {
		w.buf = w.buf[:0]
		return werr
	}
	if !done {
		// The socket took part of it: the rest waits for room.
		n, err := w.write(w.buf[wn:])
		w.total += int64(n)
		w.buf = w.buf[:0]
		return err
	}
	w.buf = w.buf[:0]
	b.w += rn
	if rn == 0 {
		b.rerr = rerr
	}
	return nil
}

// bodyError says which side broke a body transfer (for the status code and
// the log's termination state).
type bodyError struct {
	client bool // the reading side was the client
	read   bool // the read failed (else the write)
	err    error
}

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// idleDeadline refreshes an inactivity deadline on both connections: d
// bounds reading src (its side's timeout), dw writing to dst (the other
// side's: a client that stops reading a response is cut by timeout client,
// as in HAProxy, not by timeout server). dw 0 means d.
type idleDeadline struct {
	src, dst net.Conn
	d, dw    time.Duration
	last     time.Time
}

func (t *idleDeadline) touch() {
	dw := t.dw
	if dw <= 0 {
		dw = t.d
	}
	if t.d <= 0 && dw <= 0 {
		return
	}
	now := time.Now()
	// Re-arming costs a timer update: do it at most every quarter of the
	// shorter timeout.
	period := t.d
	if period <= 0 || (dw > 0 && dw < period) {
		period = dw
	}
	if now.Sub(t.last) < period/4 {
		return
	}
	t.last = now
	if t.d > 0 {
		_ = t.src.SetReadDeadline(now.Add(t.d))
	}
	if dw > 0 {
		_ = t.dst.SetWriteDeadline(now.Add(dw))
	}
}

// writeExpired reports whether err is the write side's deadline: a
// timeout once the write deadline has passed but not the read one.
func (t *idleDeadline) writeExpired(err error) bool {
	dw := t.dw
	if dw <= 0 || dw == t.d || !isTimeout(err) {
		return false
	}
	idle := time.Since(t.last)
	return idle >= dw && (t.d <= 0 || idle < t.d)
}

// copyLen moves exactly n body bytes from src to dst.
func copyLen(dst *bufWriter, src *bufConn, n int64, idle *idleDeadline, srcClient bool) error {
	for n > 0 {
		b := src.buffered()
		if len(b) == 0 {
			// Large remainder between TCP sockets: splice, after the
			// pending head went out.
			if n > 256<<10 {
				if err := dst.flush(); err != nil {
					return &bodyError{client: !srcClient, err: err}
				}
				if _, ok := src.Conn.(*net.TCPConn); ok {
					if _, ok := dst.c.(*net.TCPConn); ok {
						idle.touch()
						m, err := io.CopyN(dst.c, src.Conn, min(n, spliceChunk))
						dst.total += m
						n -= m
						if err != nil {
							if errors.Is(err, io.EOF) {
								err = io.ErrUnexpectedEOF
							}
							if idle.writeExpired(err) {
								// splice does not say which side failed: the
								// receiver stalled past its timeout.
								return &bodyError{client: !srcClient, err: err}
							}
							return &bodyError{client: srcClient, read: true, err: err}
						}
						continue
					}
				}
			}
			if err := dst.flush(); err != nil {
				return &bodyError{client: !srcClient, err: err}
			}
			idle.touch()
			if err := src.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return &bodyError{client: srcClient, read: true, err: err}
			}
			continue
		}
		if int64(len(b)) > n {
			b = b[:n]
		}
		if _, err := dst.Write(b); err != nil {
			return &bodyError{client: !srcClient, err: err}
		}
		src.consume(len(b))
		n -= int64(len(b))
	}
	return nil
}

// copyUntilEOF moves a close-delimited response body.
func copyUntilEOF(dst *bufWriter, src *bufConn, idle *idleDeadline) error {
	for {
		if b := src.buffered(); len(b) > 0 {
			if _, err := dst.Write(b); err != nil {
				return &bodyError{client: true, err: err}
			}
			src.consume(len(b))
		}
		if err := dst.flush(); err != nil {
			return &bodyError{client: true, err: err}
		}
		idle.touch()
		if err := src.fill(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return &bodyError{read: true, err: err}
		}
	}
}

// copyChunked re-encodes a chunked body from src to dst: sizes are
// rewritten canonically, extensions dropped, trailers forwarded only after
// validation. With dechunk the raw data is written instead (for HTTP/1.0
// clients) and trailers are dropped.
func copyChunked(dst *bufWriter, src *bufConn, maxTrailer int, dechunk bool, idle *idleDeadline, srcClient bool) error {
	var tmp [24]byte
	more := func() error {
		if err := dst.flush(); err != nil {
			return &bodyError{client: !srcClient, err: err}
		}
		idle.touch()
		if err := src.fill(); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if errors.Is(err, errBufFull) {
				return &bodyError{client: srcClient, read: true, err: &httpparse.Error{Status: 400, Msg: "chunk framing too large"}}
			}
			return &bodyError{client: srcClient, read: true, err: err}
		}
		return nil
	}
	for {
		size, n, err := httpparse.ParseChunkSize(src.buffered())
		if errors.Is(err, httpparse.ErrNeedMore) {
			if err := more(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return &bodyError{client: srcClient, read: true, err: err}
		}
		src.consume(n)
		if size == 0 {
			for {
				m, err := httpparse.ParseTrailers(src.buffered(), maxTrailer)
				if errors.Is(err, httpparse.ErrNeedMore) {
					if err := more(); err != nil {
						return err
					}
					continue
				}
				if err != nil {
					return &bodyError{client: srcClient, read: true, err: err}
				}
				if !dechunk {
					_, _ = dst.WriteString("0\r\n")
					if _, err := dst.Write(src.buffered()[:m]); err != nil {
						return &bodyError{client: !srcClient, err: err}
					}
				}
				src.consume(m)
				return nil
			}
		}
		if !dechunk {
			h := strconv.AppendInt(tmp[:0], size, 16)
			h = append(h, '\r', '\n')
			if _, err := dst.Write(h); err != nil {
				return &bodyError{client: !srcClient, err: err}
			}
		}
		if err := copyLen(dst, src, size, idle, srcClient); err != nil {
			return err
		}
		for len(src.buffered()) < 2 {
			if err := more(); err != nil {
				return err
			}
		}
		if b := src.buffered(); b[0] != '\r' || b[1] != '\n' {
			return &bodyError{client: srcClient, read: true, err: &httpparse.Error{Status: 400, Msg: "chunk data not followed by CRLF"}}
		}
		src.consume(2)
		if !dechunk {
			_, _ = dst.WriteString("\r\n")
		}
	}
}
