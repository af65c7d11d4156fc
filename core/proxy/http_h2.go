package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/http2"

	"github.com/vipgate/vipgate/core/proxy/httpparse"
)

// serveH2 serves an HTTP/2 client (ALPN h2 on a TLS frontend). Each stream
// is translated to an HTTP/1.1 request and run through the same session
// code as HTTP/1.1 clients (rules, persistence, headers, pool, logs), over
// an in-memory connection: the HTTP/1.1 response it produces is parsed
// back and written to the stream.
func (h *httpHandler) serveH2(ctx context.Context, s *session, c *tls.Conn) {
	// Stream handlers may still run after ServeConn returns (a stream
	// queued when the connection ends), when s is back in the pool: they
	// get a copy of what they need from it.
	conn := h2Parent{clientAddr: s.clientAddr, local: s.local, tls: s.tls}
	srv := &http2.Server{
		IdleTimeout:          h.f.Cfg.Timeouts.HTTPKeepAlive.D(),
		MaxConcurrentStreams: uint32(h.f.Cfg.HTTP.H2MaxConcurrentStreams),
	}
	// Bounds the header list a client may send (SETTINGS_MAX_HEADER_LIST_SIZE).
	// Its protocol errors (a client's misbehaviour) go to the debug log,
	// not to stderr.
	base := &http.Server{MaxHeaderBytes: h.f.Cfg.HTTP.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(h.log.With("frontend", h.f.Name).Handler(), slog.LevelDebug)}
	h.goAwayOnDrain(ctx, base, srv)
	srv.ServeConn(c, &http2.ServeConnOpts{
		Context:    ctx,
		BaseConfig: base,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.serveH2Stream(&conn, c, w, r)
		}),
	})
}

// goAwayOnDrain makes a graceful stop (Proxy.Drain) send this connection a
// GOAWAY (NO_ERROR), as HAProxy's soft-stop does: the client opens its next
// streams elsewhere while the ones under way finish, instead of sending new
// requests on a connection the end of the grace will cut. x/net/http2 does
// this for the connections served under a base http.Server it was
// configured on, when that server shuts down.
func (h *httpHandler) goAwayOnDrain(ctx context.Context, base *http.Server, srv *http2.Server) {
	lc := liveConnOf(ctx)
	if lc == nil || http2.ConfigureServer(base, srv) != nil {
		return
	}
	goAway := func() { go func() { _ = base.Shutdown(context.Background()) }() }
	lc.goAway.Store(&goAway)
	if h.f.p.live.draining.Load() {
		goAway() // the drain began before the store: it did not see it
	}
}

// h2Parent is what streams take from their connection's session.
type h2Parent struct {
	clientAddr, local netip.AddrPort
	tls               tls.ConnectionState
}

func (h *httpHandler) serveH2Stream(parent *h2Parent, c net.Conn, w http.ResponseWriter, r *http.Request) {
	v := &h2Conn{Conn: c, w: w, body: r.Body, rc: http.NewResponseController(w)}
	v.pending = h2RequestHead(r, &v.chunked)
	st := h.newSession()
	defer h.putSession(st)
	st.clientAddr, st.local = parent.clientAddr, parent.local
	st.isTLS, st.tls, st.h2 = true, parent.tls, true
	st.cc = bufConn{Conn: v, buf: h.inBufs.get()}
	st.cw = bufWriter{c: v, buf: h.bufs16k.get()[:0]}
	// HTTP/2 requests are never a connection's "first request" (HAProxy
	// alike): each may use a pooled server connection.
	st.requests = 1
	// A stream the client resets (or whose connection ends) drops its
	// request at once, as HAProxy does: the queue wait and the connect are
	// cancelled, and the server connection in flight is closed. Without
	// this a reset stream held its server request up to timeout server,
	// which a client resetting streams in a loop (CVE-2023-44487) turned
	// into 100 stuck server connections per client connection.
	sctx := r.Context()
	killed := make(chan struct{})
	stop := context.AfterFunc(sctx, func() {
		defer close(killed)
		if sc := st.killConn.Load(); sc != nil {
			_ = sc.Conn.Close()
		}
	})
	defer func() {
		if !stop() {
			<-killed // st goes back to the pool once the func is done with it
		}
	}()
	if sctx.Err() != nil {
		// Reset while queued behind the streams in flight: nothing to do.
		st.finish()
		return
	}
	if msg := h2BadLength(r); msg != "" {
		// The HTTP/2 server keeps the first content-length only: a request
		// it would accept with several, or one its DATA cannot match, is
		// refused like its HTTP/1 equivalent.
		st.fail(nil, http.StatusBadRequest, "PR", time.Now(), msg)
	} else {
		st.serve(sctx)
	}
	st.finish()
	switch {
	case v.headDone && st.respCut:
		// The body ended short: reset the stream (RST_STREAM
		// INTERNAL_ERROR), as HAProxy does; ending it would hand the
		// client a truncated body as if it were whole.
		panic(http.ErrAbortHandler)
	case v.headDone:
	case v.bodyErr != nil:
		// The client broke its own body (DATA short of its content-length,
		// a reset): the session logged CD and answered nothing.
		w.WriteHeader(http.StatusBadRequest)
	default:
		w.WriteHeader(http.StatusBadGateway)
	}
}

// h2BadLength says what is wrong with a stream's content-length headers:
// several (even equal: HTTP/1 refuses differing ones, HTTP/2 has no list
// syntax), not a plain decimal, or non-zero on a stream the client ended
// with its HEADERS. "" when they are fine or absent.
func h2BadLength(r *http.Request) string {
	vs := r.Header["Content-Length"]
	switch {
	case len(vs) == 0:
		return ""
	case len(vs) > 1:
		return "several content-length headers"
	}
	n, err := strconv.ParseUint(vs[0], 10, 63)
	if err != nil {
		return "invalid content-length"
	}
	if int64(n) != r.ContentLength {
		return "content-length on a request without a body"
	}
	return ""
}

// h2RequestHead writes the stream's request as an HTTP/1.1 head.
func h2RequestHead(r *http.Request, chunked *bool) []byte {
	b := make([]byte, 0, 512)
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	for k, vs := range r.Header {
		if hopOrFraming([]byte(k)) {
			continue
		}
		for _, v := range vs {
			b = appendHeaderS(b, k, v)
		}
	}
	switch {
	case r.ContentLength > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
		b = append(b, "\r\n"...)
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		*chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(b, "Connection: close\r\n\r\n"...)
}

// h2Conn is the in-memory connection between an HTTP/2 stream and a
// session: reads give the request head then the body (chunk-encoded when
// its length is unknown), writes are the HTTP/1.1 response.
//
// Deadlines behave as on a net.Conn: they bound the reads and writes in
// progress or to come. They are passed to the stream only around each body
// read and response write, because an HTTP/2 stream deadline fires on its
// own (it breaks the body or resets the stream) even while nobody waits:
// without this, timeout client would end a stream whose server is merely
// slow to answer. Without deadlines at all, a client that never sends its
// body or never opens its flow-control window held a stream, and its
// server connection, forever.
type h2Conn struct {
	net.Conn
	w        http.ResponseWriter
	rc       *http.ResponseController
	rdl, wdl time.Time
	bodyErr  error // the client's body failed (not a timeout)
	body     io.ReadCloser
	chunked  bool
	pending  []byte
	bodyDone bool
	tmp      []byte
	// response side
	head     []byte
	headDone bool
	resp     httpparse.Response
}

func (v *h2Conn) Read(p []byte) (int, error) {
	for {
		if len(v.pending) > 0 {
			n := copy(p, v.pending)
			v.pending = v.pending[n:]
			return n, nil
		}
		if v.bodyDone || v.body == nil || v.body == http.NoBody {
			return 0, io.EOF
		}
		if !v.chunked {
			n, err := v.bodyRead(p)
			if errors.Is(err, io.EOF) {
				v.bodyDone = true
				if n > 0 {
					return n, nil
				}
				return 0, io.EOF
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		if v.tmp == nil {
			v.tmp = make([]byte, 16<<10)
		}
		n, err := v.bodyRead(v.tmp)
		if n > 0 {
			v.pending = strconv.AppendInt(v.pending[:0], int64(n), 16)
			v.pending = append(v.pending, "\r\n"...)
			v.pending = append(v.pending, v.tmp[:n]...)
			v.pending = append(v.pending, "\r\n"...)
		}
		if errors.Is(err, io.EOF) {
			v.pending = append(v.pending, "0\r\n\r\n"...)
			v.bodyDone = true
		} else if err != nil {
			return 0, err
		}
	}
}

func (v *h2Conn) Write(p []byte) (int, error) {
	total := len(p)
	for !v.headDone {
		v.head = append(v.head, p...)
		p = nil
		err := httpparse.ParseResponse(v.head, httpparse.Limits{MaxRequestLine: 1 << 16, MaxHeaderBytes: 1 << 20, MaxHeaders: 10000}, &v.resp)
		if errors.Is(err, httpparse.ErrNeedMore) {
			return total, nil
		}
		if err != nil {
			return 0, err
		}
		rest := v.head[v.resp.HeadLen:]
		if v.resp.Status < 200 {
			v.head = append(v.head[:0], rest...)
			continue
		}
		hd := v.w.Header()
		for _, f := range v.resp.Headers {
			if hopOrFraming(f.Name) && !httpparse.EqualFold(f.Name, "content-length") {
				continue
			}
			hd.Add(string(f.Name), string(f.Value))
		}
		v.w.WriteHeader(v.resp.Status)
		v.headDone = true
		p = rest
	}
	if len(p) > 0 {
		if err := v.armWrite(); err != nil {
			return 0, err
		}
		_, err := v.w.Write(p)
		if err == nil {
			err = v.rc.Flush()
		}
		if !v.wdl.IsZero() {
			_ = v.rc.SetWriteDeadline(time.Time{})
		}
		if err != nil {
			return 0, err
		}
	}
	return total, nil
}

// bodyRead reads the request body under the read deadline.
func (v *h2Conn) bodyRead(p []byte) (int, error) {
	if !v.rdl.IsZero() {
		if !time.Now().Before(v.rdl) {
			return 0, os.ErrDeadlineExceeded
		}
		_ = v.rc.SetReadDeadline(v.rdl)
		defer v.rc.SetReadDeadline(time.Time{})
	}
	n, err := v.body.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
		v.bodyErr = err
	}
	return n, err
}

// armWrite passes the write deadline to the stream for one write.
func (v *h2Conn) armWrite() error {
	if v.wdl.IsZero() {
		return nil
	}
	if !time.Now().Before(v.wdl) {
		return os.ErrDeadlineExceeded
	}
	return v.rc.SetWriteDeadline(v.wdl)
}

func (v *h2Conn) Close() error                       { return nil }
func (v *h2Conn) SetDeadline(t time.Time) error      { v.rdl, v.wdl = t, t; return nil }
func (v *h2Conn) SetReadDeadline(t time.Time) error  { v.rdl = t; return nil }
func (v *h2Conn) SetWriteDeadline(t time.Time) error { v.wdl = t; return nil }
