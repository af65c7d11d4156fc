package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vipgate/vipgate/core/balance"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy/httpparse"
	"github.com/vipgate/vipgate/core/upstream"
)

// connHandler serves one accepted connection of a frontend.
type connHandler interface {
	ServeConn(ctx context.Context, c net.Conn)
}

// expectWait is how long a request with "Expect: 100-continue" waits for
// the server's interim answer before its body is sent anyway (curl waits 1s).
const expectWait = time.Second

// httpHandler is a frontend generation's http mode. The idle server
// connections are the frontend's, shared with its other generations
// (connPools).
type httpHandler struct {
	f        *Frontend
	log      *slog.Logger
	lim      httpparse.Limits
	opts     *config.HTTPOptions
	bufSize  int
	tls      *tlsTerm
	pools    *connPools
	idle     time.Duration // how long a server connection may sit in the pool
	backends map[string]*httpBackend
	pages    errorPages
	// needHeader: a rule matches on headers or a hook wants them, so the
	// request headers are copied into an http.Header.
	needHeader bool
	actions    bool // some rule has an http action
	accessLog  bool
	// Buffers are recycled: a connection-per-request load would otherwise
	// allocate tens of kilobytes per request.
	sessions sync.Pool
	inBufs   *bufPool // client read buffers (bufSize)
	bufs16k  *bufPool // write buffers
	// srvBufs are server read buffers: a response head must fit whole,
	// so they are as large as the largest backend max_header_bytes (the
	// same pool as bufs16k at the default).
	srvBufs *bufPool
}

// httpBackend is the per-backend part: error pages, reuse, TLS, cookie.
type httpBackend struct {
	b        *Backend
	cfg      *config.Backend
	pages    errorPages
	tls      *tls.Config
	reuse    string
	maxIdle  int
	retryAll bool
	cookie   *config.Cookie
	respLim  httpparse.Limits
	fp       [32]byte // connFingerprint: which pooled connections it may use
}

func newHTTPHandler(f *Frontend) (connHandler, error) {
	fc := f.Cfg
	h := &httpHandler{
		f: f, log: f.p.log, opts: &fc.HTTP,
		lim: httpparse.Limits{
			MaxRequestLine: fc.HTTP.MaxRequestLine, MaxHeaderBytes: fc.HTTP.MaxHeaderBytes, MaxHeaders: fc.HTTP.MaxHeaders,
		},
		backends:  map[string]*httpBackend{},
		accessLog: config.Flag(fc.HTTP.Log) || config.Flag(fc.Log),
	}
	// The read buffer holds a whole head plus slack for pipelined bytes.
	h.bufSize = max(fc.HTTP.MaxHeaderBytes+fc.HTTP.MaxRequestLine, 16<<10)
	var err error
	if h.pages, err = loadErrorPages(fc.HTTP.ErrorFiles, nil); err != nil {
		return nil, err
	}
	idle := 4 * time.Second
	for name, b := range f.backends {
		bc := b.Cfg
		if bc.Mode != config.ModeHTTP {
			continue
		}
		hb := &httpBackend{
			b: b, cfg: bc, reuse: bc.HTTP.Reuse, maxIdle: bc.HTTP.MaxIdle, cookie: bc.Cookie,
			retryAll: config.Flag(bc.HTTP.RetryNonIdempotent),
			respLim:  httpparse.Limits{MaxRequestLine: 1 << 20, MaxHeaderBytes: max(bc.HTTP.MaxHeaderBytes, 16<<10), MaxHeaders: max(bc.HTTP.MaxHeaders, 101)},
		}
		if bc.SendProxy != "" {
			// A PROXY header speaks for one client: such connections are
			// private to it (HAProxy does the same).
			hb.reuse = "never"
		}
		if hb.pages, err = loadErrorPages(bc.HTTP.ErrorFiles, h.pages); err != nil {
			return nil, fmt.Errorf("backend %q: %w", name, err)
		}
		if hb.tls, err = serverTLSConfig(bc); err != nil {
			return nil, fmt.Errorf("backend %q: %w", name, err)
		}
		if ka := bc.Timeouts.HTTPKeepAlive.D(); ka > 0 && ka < idle {
			idle = ka
		}
		h.backends[name] = hb
	}
	h.inBufs, h.bufs16k = newBufPool(h.bufSize), newBufPool(16<<10)
	h.srvBufs = h.bufs16k
	srvSize := 16 << 10
	for _, hb := range h.backends {
		srvSize = max(srvSize, hb.respLim.MaxHeaderBytes)
	}
	if srvSize > 16<<10 {
		h.srvBufs = newBufPool(srvSize)
	}
	h.idle = idle
	for _, hb := range h.backends {
		hb.fp = connFingerprint(hb.cfg, h.srvBufs.size)
	}
	h.pools = f.p.connPoolsFor(fc.Name)
	for i := range fc.Rules {
		r := &fc.Rules[i]
		if len(r.Header) > 0 {
			h.needHeader = true
		}
		if r.HasHTTPAction() {
			h.actions = true
		}
	}
	if f.hook != nil {
		h.needHeader = true
	}
	if fc.TLS != nil {
		if h.tls, err = newTLSTerm(fc.TLS, h.log); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// poolKeys are the pool keys this generation uses: one per server of each
// backend whose connections may be pooled.
func (h *httpHandler) poolKeys(into map[poolKey]bool) {
	for _, hb := range h.backends {
		if hb.reuse == "never" {
			continue
		}
		for _, s := range hb.b.Servers {
			into[poolKey{s, hb.fp}] = true
		}
	}
}

// cookieOf is a server's persistence cookie value.
func cookieOf(s *config.Server) string {
	if s.Cookie != "" {
		return s.Cookie
	}
	return s.Name
}

// ServeConn serves an HTTP/1.1 client connection (or HTTP/2 over TLS).
func (h *httpHandler) ServeConn(ctx context.Context, c net.Conn) {
	h.pools.startReaper(ctx)
	defer c.Close()
	raw := c
	s := h.newSession()
	defer h.putSession(s)
	s.live = liveConnOf(ctx)
	s.clientAddr, s.local = addrPort(c.RemoteAddr()), addrPort(c.LocalAddr())
	if h.tls != nil {
		tc, proto, err := h.tls.handshake(ctx, c, h.f.Cfg.Timeouts.HTTPRequest.D())
		if err != nil {
			h.f.Counters.Denied.Add(1)
			h.log.Debug("tls handshake failed", "frontend", h.f.Name, "client", s.clientAddr, "err", err)
			return
		}
		c = tc
		s.tls = tc.ConnectionState()
		s.isTLS = true
		if proto == "h2" {
			h.serveH2(ctx, s, tc)
			return
		}
	}
	s.cc = bufConn{Conn: c, buf: h.inBufs.get()}
	s.cw = bufWriter{c: c, buf: h.bufs16k.get()[:0]}
	if s.rio.attach(c) {
		s.cc.rio, s.cw.rio = &s.rio, &s.rio
	}
	s.serve(ctx)
	s.finish()
	if s.linger {
		if tc, ok := c.(*tls.Conn); ok {
			_ = tc.CloseWrite() // close_notify: the answer is whole
		}
		lingerClose(raw, min(lingerTime, h.f.Cfg.Timeouts.Client.D()))
	}
}

// lingerTime bounds a lingering close (nginx's lingering_timeout is 5s).
const lingerTime = 2 * time.Second

// lingerClose ends a connection whose request body was not read to its end
// (an answer before the upload was done: a 413, a 401, a deny) as nginx and
// HAProxy do: a FIN first, then what the client still sends is read and
// dropped for a moment. Closing a socket with unread bytes sends a reset,
// and a reset can make the client's stack drop the answer before the
// client has read it. TLS connections linger on the TCP connection under
// them (the answer is out; the records that follow need no decrypting).
func lingerClose(raw net.Conn, d time.Duration) {
	cw, ok := raw.(interface{ CloseWrite() error })
	if !ok || d <= 0 || cw.CloseWrite() != nil {
		return
	}
	_ = raw.SetReadDeadline(time.Now().Add(d))
	_, _ = io.Copy(io.Discard, raw)
}

// newSession takes a recycled session: its header slices and scratch
// buffers have already grown to size, which spares a new connection a
// handful of allocations.
func (h *httpHandler) newSession() *session {
	if s, ok := h.sessions.Get().(*session); ok {
		return s
	}
	return &session{h: h}
}

func (h *httpHandler) putSession(s *session) {
	// A session a panic ended (serveConn recovers) may still be
	// registered with a server: its kill would later close whatever
	// connection the recycled session holds then, another client's.
	s.untrack()
	*s = session{
		h:    h,
		req:  httpparse.Request{Message: httpparse.Message{Headers: s.req.Headers[:0]}},
		resp: httpparse.Response{Message: httpparse.Message{Headers: s.resp.Headers[:0]}},
		out:  s.out[:0], logb: s.logb[:0], acts: s.acts[:0],
		// Kept, as closures bound to s: rebinding them would cost
		// allocations per connection.
		rio: s.rio, kill: s.kill,
	}
	// finish detached it, unless a panic skipped finish.
	s.rio.detach()
	h.sessions.Put(s)
}

// idleRead waits for the next request of a kept-alive connection without
// holding the big buffers: they go back to the pools while the client is
// idle (as HAProxy does), so idle connections cost a couple of kilobytes,
// not forty. It reports false when the connection is done (closed, reset
// or idle past timeout http-keep-alive).
func (s *session) idleRead() bool {
	h := s.h
	if lc := s.live; lc != nil {
		// Marked idle before draining is read: a drain either is seen
		// here or sees the mark and cuts the wait short.
		lc.idle.Store(true)
		defer lc.idle.Store(false)
		if h.f.p.live.draining.Load() {
			return false
		}
	}
	h.inBufs.put(s.cc.buf)
	h.bufs16k.put(s.cw.buf)
	if s.sbuf != nil {
		h.bufs16k.put(s.sbuf)
	}
	s.cc.buf, s.cw.buf, s.sbuf = nil, nil, nil
	var n int
	var err error
	for n == 0 && err == nil {
		n, err = s.cc.read(s.idle[:])
	}
	s.cc.buf = h.inBufs.get()
	s.cw.buf = h.bufs16k.get()[:0]
	s.cc.r, s.cc.w = 0, copy(s.cc.buf, s.idle[:n])
	return n > 0
}

// finish releases what the session holds once its connection is done.
func (s *session) finish() {
	h := s.h
	if s.attached != nil {
		s.attached.discard(h.srvBufs)
		s.attached = nil
	}
	h.inBufs.put(s.cc.buf)
	h.bufs16k.put(s.cw.buf)
	if s.sbuf != nil {
		h.bufs16k.put(s.sbuf)
	}
	s.cc.buf, s.cw.buf, s.sbuf = nil, nil, nil
	s.cc.rio, s.cw.rio = nil, nil
	s.rio.detach()
}

// session is one client connection's state.
type session struct {
	h          *httpHandler
	live       *liveConn // nil for an HTTP/2 stream
	cc         bufConn
	cw         bufWriter
	rio        rawIO // cc's and cw's, on plain TCP (recycled with the session)
	clientAddr netip.AddrPort
	local      netip.AddrPort
	isTLS      bool
	h2         bool // an HTTP/2 stream behind an h2Conn
	// respCut: a response body ended short (the server's connection broke
	// or timed out, or the client's). HTTP/1 clients see the connection
	// close inside the body; an HTTP/2 stream must be reset, since ending
	// it would present the short body as complete.
	respCut      bool
	tls          tls.ConnectionState
	requests     int
	attached     *serverConn // reuse never, or private: the session's own server connection
	attachedBack *httpBackend
	// ci is the request's key material for a backend's stick rule (kept
	// here: through the Persister interface a local would escape).
	ci ConnInfo
	// linger: the current request's body has not been read to its end;
	// closing now must not reset the connection (lingerClose).
	linger bool
	// authConn: the request carries NTLM or Negotiate credentials.
	authConn bool
	// preferLast: a server answered with connection-based sign-in (NTLM,
	// Negotiate): the session's later requests go to the server of its
	// attached connection, whatever the balancing says.
	preferLast bool
	req        httpparse.Request
	resp       httpparse.Response
	out        []byte // request head being built toward the server
	sbuf       []byte // write buffer toward the server
	breq       balance.Request
	// ck and rec are the request's cookie persistence state and access-log
	// record, kept here for the same reason as breq: as locals they escape
	// (through exchangeReq) and cost two allocations per request.
	ck  cookieState
	rec logRec
	// lease is the server slot of the request in flight (one at a time:
	// a retry releases the previous one first).
	lease Lease
	// The request in flight is registered with its server so that
	// shutdown-sessions (on_marked_down, the admin action) can end it:
	// killConn is what kill closes; kill is made once per session.
	killConn   atomic.Pointer[serverConn]
	kill       func()
	trackedSrv *upstream.Server
	trackID    uint64
	acts       []*config.Rule    // matching rules with actions (reused)
	vars       map[string]string // set by the route hook, for the log
	idle       [2048]byte        // the first read after an idle wait lands here
	txn        Txn
	htxn       HTTPTxn
	logb       []byte
}

func (s *session) serve(ctx context.Context) {
	f := s.h.f
	for {
		start := time.Now()
		s.logb = s.logb[:0]
		// timeout http-keep-alive bounds the wait for a next request,
		// timeout http-request the time to receive its whole head.
		wait := f.Cfg.Timeouts.HTTPRequest.D()
		waiting := s.requests > 0 && len(s.cc.buffered()) == 0
		if waiting {
			wait = f.Cfg.Timeouts.HTTPKeepAlive.D()
		}
		_ = s.cc.SetReadDeadline(start.Add(wait))
		restart := waiting
		if waiting && !s.h2 {
			if !s.idleRead() {
				return
			}
			if s.h.accessLog {
				start, restart = time.Now(), false // Tq counts from the first byte
			}
		}
		for {
			err := httpparse.ParseRequest(s.cc.buffered(), s.h.lim, &s.req)
			if err == nil {
				// Until the body has gone to a server, closing the
				// connection must linger (see lingerClose).
				s.linger = s.req.Chunked || s.req.ContentLength > 0
				break
			}
			if !errors.Is(err, httpparse.ErrNeedMore) {
				var pe *httpparse.Error
				errors.As(err, &pe)
				s.fail(nil, pe.Status, "PR", start, pe.Msg)
				return
			}
			if waiting && len(s.cc.buffered()) > 0 {
				// A partial head after a keep-alive wait: from here on
				// http-request bounds it. (A head that arrives whole, the
				// usual case, never pays for this re-arm.)
				waiting = false
				_ = s.cc.SetReadDeadline(time.Now().Add(f.Cfg.Timeouts.HTTPRequest.D()))
			}
			if err := s.cc.fill(); err != nil {
				switch {
				case errors.Is(err, errBufFull):
					s.fail(nil, 431, "PR", start, "request head too large")
				case isTimeout(err) && len(s.cc.buffered()) > 0:
					// Slowloris: part of a head, then silence.
					s.fail(nil, 408, "cR", start, "timeout receiving the request head")
				}
				return
			}
			if restart && s.h.accessLog {
				restart = false
				start = time.Now() // Tq counts from the request's first byte
			}
		}
		s.requests++
		if !s.serveRequest(ctx, start) {
			return
		}
		if ctx.Err() != nil || f.p.live.draining.Load() {
			return // stopping: no next request on this connection
		}
	}
}

// fail answers an error page and ends the connection; the access log has
// no timers but Tt (the request head was not complete, or was refused
// before a server was sought).
func (s *session) fail(hb *httpBackend, status int, term string, start time.Time, msg string) {
	s.failRec(hb, &logRec{start: start}, status, term, msg)
}

// refuse is fail for a complete request head refused before balancing
// (deny, no backend): the access log has Tq.
func (s *session) refuse(status int, term string, start, headDone time.Time, msg string) {
	s.failRec(nil, &logRec{start: start, reqDone: headDone}, status, term, msg)
}

// failRec is fail for a request that reached balancing: the access log
// keeps the timers measured so far and the server that was tried (HAProxy
// logs "be/srv" with Tw/Tc for a 503 SC, a 504 sH, a 502 SH).
func (s *session) failRec(hb *httpBackend, rec *logRec, status int, term, msg string) {
	f := s.h.f
	f.Counters.CountResponse(status)
	if status < 500 {
		f.Counters.Denied.Add(1)
	}
	pages := s.h.pages
	if hb != nil {
		pages = hb.pages
	}
	_ = s.cc.SetWriteDeadline(time.Now().Add(f.Cfg.Timeouts.Client.D()))
	s.cw.buf = s.cw.buf[:0]
	_, _ = s.cw.Write(pages.get(status))
	_ = s.cw.flush()
	if s.h.accessLog {
		rec.status, rec.term, rec.bytes, rec.backend, rec.err = status, term, s.cw.total, hb, msg
		rec.end = time.Time{}
		s.logLine(rec)
	}
	s.h.log.Debug("http request refused", "frontend", f.Name, "client", s.clientAddrString(), "status", status, "reason", msg)
}

func (s *session) clientAddrString() string { return s.cc.RemoteAddr().String() }

// bstr views buffer bytes as a string without copying; valid only until
// the buffer is reused, so never retained past the request's routing.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// splitTarget returns host (absolute-form only), path and query.
func splitTarget(t []byte) (host, path, query []byte) {
	if t[0] != '/' && t[0] != '*' {
		i := bytes.Index(t, []byte("://"))
		rest := t[i+3:]
		j := bytes.IndexAny(rest, "/?")
		if j < 0 {
			host, t = rest, []byte("/")
		} else {
			host, t = rest[:j], rest[j:]
			if t[0] == '?' {
				t = append([]byte("/"), t...)
			}
		}
	}
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		return host, t[:q], t[q+1:]
	}
	return host, t, nil
}

func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// serveRequest handles one parsed request; it returns whether the client
// connection stays open.
func (s *session) serveRequest(ctx context.Context, start time.Time) bool {
	h, f := s.h, s.h.f
	req := &s.req
	headDone := s.stamp() // Tq ends: the head is complete
	hostB, pathB, queryB := splitTarget(req.Target)
	absolute := hostB != nil
	if !absolute {
		hostB = req.Host
	}
	if m := f.Cfg.Monitor; m != nil && bstr(pathB) == m.URI {
		return s.monitor(m)
	}
	// Everything below until the head is serialised uses views into the
	// client buffer; nothing reads from the client meanwhile.
	t := &s.txn
	*t = Txn{Frontend: f.Name, Client: s.clientAddr, Local: s.local, HTTP: &s.htxn}
	if s.clientAddr == (netip.AddrPort{}) {
		s.clientAddr = addrPort(s.cc.RemoteAddr())
		t.Client = s.clientAddr
	}
	if s.isTLS {
		t.SNI = s.tls.ServerName
		if s.tls.NegotiatedProtocol != "" {
			t.ALPN = []string{s.tls.NegotiatedProtocol}
		}
	}
	s.vars = nil
	s.htxn = HTTPTxn{Method: bstr(req.Method), Host: bstr(stripPort(hostB)), Path: bstr(pathB), Query: bstr(queryB)}
	if h.needHeader {
		s.htxn.Header = make(http.Header, len(req.Headers))
		for _, hd := range req.Headers {
			k := http.CanonicalHeaderKey(string(hd.Name))
			s.htxn.Header[k] = append(s.htxn.Header[k], string(hd.Value))
		}
	}
	if h.accessLog {
		// The request line is kept for the log: the buffer moves on.
		s.logb = append(s.logb[:0], req.Method...)
		s.logb = append(s.logb, ' ')
		s.logb = append(s.logb, req.Target...)
		s.logb = append(s.logb, " HTTP/1."...)
		s.logb = append(s.logb, byte('0'+req.Minor))
	}

	var dec Decision
	hooked := false
	if f.hook != nil {
		// Hooks may keep what they see: give them copies.
		s.htxn.Method, s.htxn.Host = string(req.Method), string(stripPort(hostB))
		s.htxn.Path, s.htxn.Query = string(pathB), string(queryB)
		ht := *t
		hh := s.htxn
		ht.HTTP = &hh
		d, err := f.hook.Route(ctx, &ht)
		if err != nil {
			// The hook's runtime counts and logs (rate-limited) its own
			// failures. The Lua runtime applies set_var only on success, so
			// a failed Lua hook leaves no variables; a Go hook may.
			s.vars = ht.Vars
			if status := hookFallback(err); status != 0 {
				s.refuse(status, "PI", start, headDone, "route hook failed")
				return false
			}
			h.log.Debug("route hook failed; using the frontend's rules", "frontend", f.Name, "err", err)
		} else {
			dec = d
			hooked = true
			s.htxn.Header = hh.Header
			s.htxn.ResponseHeader = hh.ResponseHeader
			s.vars = ht.Vars
		}
	}
	if dec.Deny != 0 {
		status := dec.Deny
		if status < 200 || status > 599 {
			status = 403
		}
		s.refuse(status, "PR", start, headDone, "denied by route hook")
		return false
	}
	if dec.Redirect != "" {
		if !validHookValue(dec.Redirect) {
			s.refuse(500, "PR", start, headDone, "route hook redirect location has control characters")
			return false
		}
		return s.redirect(start, dec.Redirect, dec.RedirectCode)
	}

	// http-request actions, in rule order.
	acts := s.acts[:0]
	if h.actions {
		for i := range f.Cfg.Rules {
			r := &f.Cfg.Rules[i]
			if !r.HasHTTPAction() || !tcpRuleMatches(r, t) {
				continue
			}
			if r.Deny != 0 {
				s.refuse(r.Deny, "PR", start, headDone, "denied by rule")
				return false
			}
			if rd := r.Redirect; rd != nil {
				return s.redirect(start, redirectLocation(rd, s.isTLS, hostB, req.Target, pathB, queryB), rd.Code)
			}
			acts = append(acts, r)
		}
		s.acts = acts
	}
	bname := dec.Backend
	if bname == "" {
		bname = f.matchRules(t)
	}
	hb := h.backends[bname]
	if hb == nil {
		s.refuse(503, "SC", start, headDone, "no backend")
		return false
	}
	b := hb.b

	// Persistence and request hashing.
	var prefer *upstream.Server
	if hooked && dec.Server != "" {
		prefer = b.ServerByName(dec.Server)
	}
	s.ck = cookieState{}
	ck := &s.ck
	if hb.cookie != nil {
		*ck = s.lookupCookie(hb, req)
		if prefer == nil {
			prefer = ck.srv
		}
	}
	if b.persist != nil {
		// A stick rule (on: src in http mode): after a hook's choice and
		// the cookie, as HAProxy's stick match comes after them.
		s.ci = ConnInfo{Frontend: f.Name, Backend: b.Name, Client: s.clientAddr, SNI: s.tls.ServerName}
		if prefer == nil {
			prefer = b.persist.Lookup(&s.ci)
		}
	}
	// Kept in the session: a local would escape to the heap (it goes
	// through the balancer's interface).
	s.breq = balance.Request{Client: s.clientAddr.Addr()}
	breq := &s.breq
	switch b.Cfg.Balance.Algorithm {
	case "uri":
		// HAProxy's balance uri: the part before the question mark.
		breq.Key, breq.HasKey = bstr(pathB), true
	case "url_param":
		if v, ok := urlParam(queryB, b.Cfg.Balance.Param); ok {
			breq.Key, breq.HasKey = bstr(v), true
		}
	case "hdr":
		if v := req.Get(b.Cfg.Balance.Param); v != nil {
			breq.Key, breq.HasKey = bstr(v), true
		}
	}

	// The head toward the server.
	s.buildRequestHead(hb, hostB, absolute, pathB, queryB, acts, hooked, ck)
	hasBody := req.Chunked || req.ContentLength > 0
	// Credentials for a connection-based scheme sign in the server
	// connection (Kerberos may need a single request, without a 401 first).
	s.authConn = hasConnAuth(req.Headers, "authorization", "proxy-authorization")
	upgrade := req.HasUpgrade && req.Conn&httpparse.ConnUpgrade != 0
	clientKeep := req.KeepAlive()
	s.cc.consume(req.HeadLen)

	// Only the write side needs arming: body reads re-arm the read
	// deadline themselves (idleDeadline) when they have to wait.
	now := time.Now()
	_ = s.cc.SetWriteDeadline(now.Add(f.Cfg.Timeouts.Client.D()))
	s.rec = logRec{start: start, reqDone: now, backend: hb, ck: ck}
	return s.exchange(ctx, &exchangeReq{hb: hb, breq: breq, prefer: prefer, ck: ck, acts: acts, rec: &s.rec,
		hasBody: hasBody, upgrade: upgrade, clientKeep: clientKeep})
}

func stripPort(h []byte) []byte {
	if len(h) == 0 {
		return h
	}
	if h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

func urlParam(q []byte, name string) ([]byte, bool) {
	for len(q) > 0 {
		var kv []byte
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, nil
		}
		k, v, _ := bytes.Cut(kv, []byte("="))
		if string(k) == name {
			return v, true
		}
	}
	return nil, false
}

// exchangeReq is one routed request, as handleRequest hands it to exchange.
type exchangeReq struct {
	hb     *httpBackend
	breq   *balance.Request
	prefer *upstream.Server // persistence's or a hook's choice (nil: balance)
	ck     *cookieState
	acts   []*config.Rule // the frontend's http actions that matched
	rec    *logRec
	// hasBody: chunked or a Content-Length above 0; upgrade: a protocol
	// upgrade (WebSocket) is asked for; clientKeep: the client keeps the
	// connection alive.
	hasBody, upgrade, clientKeep bool
}

// exchange sends the request to a server and relays the response.
func (s *session) exchange(ctx context.Context, x *exchangeReq) bool {
	f, b := s.h.f, x.hb.b
	req := &s.req
	// The head bytes are only valid until the client buffer moves on.
	isHead := string(req.Method) == "HEAD"
	idempotent := isIdempotent(req.Method)
	expect := req.Expect100
	minor := req.Minor
	chunked, cl := req.Chunked, req.ContentLength

	attempt := 0
	held := false
attempts:
	for {
		attempt++
		// A retry goes to a fresh connection: another idle one may be just
		// as dead as the one that failed.
		// The idle check of a reused plain TCP connection is left to the
		// request's send (flushFill) when the head goes out with it: no
		// body, and a head the write buffer holds (a larger one is
		// written through before flushFill).
		later := !x.hasBody && len(s.out) < s.h.bufs16k.size
		sc, lease, reused, err := s.serverConn(ctx, x.hb, x.breq, x.prefer, attempt > 1, later, held, x.rec)
		held = false
		if x.rec.tw.IsZero() {
			x.rec.tw = s.stamp()
		}
		if err != nil {
			status := 503
			term := "SC"
			if errors.Is(err, ErrQueueTimeout) || errors.Is(err, ErrQueueFull) {
				term = "sQ"
			} else if !errors.Is(err, ErrNoServer) && ctx.Err() == nil {
				x.rec.server = s.lease.Server // the last one tried
			}
			s.failRec(x.hb, x.rec, status, term, err.Error())
			return false
		}
		x.rec.tc = s.stamp()
		x.rec.server = lease.Server
		x.rec.retries, x.rec.queuePos = int64(attempt-1)+lease.Retries, lease.QueuePos
		srv := lease.Server
		if b.persist != nil {
			b.persist.StoreRequest(&s.ci, srv) // stick store-request: learn or refresh
		}
		s.track(srv, sc)
		if s.h2 && ctx.Err() != nil {
			// The HTTP/2 stream was reset before track: serveH2Stream
			// found nothing to close, so this connection is closed here.
			_ = sc.Conn.Close()
		}
		if x.ck.srv != nil && x.ck.srv != srv {
			x.ck.redispatched = true
		}
		// timeout server bounds writing the head as well as waiting for
		// the answer (bodies re-arm their own deadlines as they move); a
		// reused connection got it with its idle check.
		if !reused {
			_ = sc.SetDeadline(time.Now().Add(b.Cfg.Timeouts.Server.D()))
		}
		if s.sbuf == nil {
			s.sbuf = s.h.bufs16k.get()[:0]
		}
		sw := bufWriter{c: sc.Conn, buf: s.sbuf[:0], rio: sc.bufConn.rio}
		// Expect: 100-continue: the head goes alone, the body only once the
		// server said 100 (or the client sends it anyway).
		_, err = sw.Write(s.out)
		switch {
		case err != nil:
		case !x.hasBody:
			// Sent with the read of the answer (flushFill): the wait
			// below finds it buffered. Not with a body: a server may
			// answer before the body is all out (flushFill would not
			// look for that answer), and the answer's wait has
			// deadlines of its own (expectWait, or one armed after the
			// body).
			err = sc.flushFill(&sw)
		case expect || x.upgrade:
			err = sw.flush()
		}
		if errors.Is(err, errNotIdle) {
			// What a failed idle check is: this connection is dropped
			// and the request, not sent, takes another on the same
			// server slot (not a retry).
			s.untrack()
			sc.discard(s.h.srvBufs)
			held = true
			attempt--
			continue attempts
		}
		if err != nil {
			s.dropServer(sc, lease)
			if reused && !x.hasBody && (idempotent || x.hb.retryAll) && attempt == 1 {
				continue attempts
			}
			srv.ObserveResponse(false, err.Error())
			s.failRec(x.hb, x.rec, 502, "SH", err.Error())
			return false
		}
		bodySent := !x.hasBody
		if x.hasBody && !expect && !x.upgrade {
			if err := s.sendBody(&sw, sc, chunked, cl, b.Cfg.Timeouts.Server.D()); err == nil {
				bodySent, s.linger = true, false
			} else if !s.answeredEarly(sc, x.hb, err) {
				s.dropServer(sc, lease)
				return s.bodyFailed(x.hb, x.rec, err)
			}
		}

		// Response head (1xx are relayed and skipped).
		srv.Counters.BytesIn.Add(uint64(sw.total))
		b.Counters.BytesIn.Add(uint64(sw.total))
		f.Counters.BytesIn.Add(uint64(sw.total))
		resp := &s.resp
		serverTimeout := b.Cfg.Timeouts.Server.D()
		for {
			if expect && !bodySent && x.hasBody {
				_ = sc.SetReadDeadline(time.Now().Add(min(expectWait, serverTimeout)))
			}
			err := s.readResponseHead(sc, x.hb)
			if err != nil && expect && !bodySent && x.hasBody && isTimeout(err) && len(sc.buffered()) == 0 {
				// The server does not answer the Expect (an HTTP/1.0
				// server, or one that just waits): send the body anyway,
				// as clients do after a while (RFC 9110 10.1.1).
				if err := s.sendBody(&sw, sc, chunked, cl, b.Cfg.Timeouts.Server.D()); err != nil {
					s.dropServer(sc, lease)
					return s.bodyFailed(x.hb, x.rec, err)
				}
				bodySent, s.linger = true, false
				continue
			}
			if err != nil {
				got := len(sc.buffered()) > 0
				s.dropServer(sc, lease)
				var pe *httpparse.Error
				switch {
				case reused && !got && !x.hasBody && (idempotent || x.hb.retryAll) && attempt == 1 && !isTimeout(err):
					// A kept-alive connection the server had closed:
					// nothing was processed, try a fresh one.
					srv.Counters.Retries.Add(1)
					continue attempts
				case isTimeout(err):
					srv.Counters.RespErrors.Add(1)
					b.Counters.RespErrors.Add(1)
					srv.ObserveResponse(false, "server timeout")
					s.failRec(x.hb, x.rec, 504, "sH", "server timeout")
				case errors.As(err, &pe):
					srv.Counters.RespErrors.Add(1)
					b.Counters.RespErrors.Add(1)
					srv.ObserveResponse(false, "invalid response: "+pe.Msg)
					s.failRec(x.hb, x.rec, 502, "PH", pe.Msg)
				default:
					srv.Counters.RespErrors.Add(1)
					b.Counters.RespErrors.Add(1)
					srv.ObserveResponse(false, err.Error())
					s.failRec(x.hb, x.rec, 502, "SH", err.Error())
				}
				return false
			}
			if resp.Status >= 200 || resp.Status == 101 {
				break
			}
			// Interim response: 100 Continue releases the body.
			if minor >= 1 && !s.h2 {
				s.cw.buf = s.cw.buf[:0]
				_, _ = s.cw.Write(sc.buffered()[:resp.HeadLen])
				if err := s.cw.flush(); err != nil {
					s.dropServer(sc, lease)
					return false
				}
			}
			sc.consume(resp.HeadLen)
			// An interim answer is server activity: timeout server starts
			// over (a 102 Processing every few seconds keeps a long
			// operation alive, as in HAProxy).
			_ = sc.SetReadDeadline(time.Now().Add(serverTimeout))
			if resp.Status == 100 && !bodySent {
				if err := s.sendBody(&sw, sc, chunked, cl, b.Cfg.Timeouts.Server.D()); err != nil {
					s.dropServer(sc, lease)
					return s.bodyFailed(x.hb, x.rec, err)
				}
				bodySent, s.linger = true, false
			}
		}
		x.rec.tr = s.stamp()
		status := resp.Status
		x.rec.status = status
		srv.ObserveStatus(status)
		if s.authConn || ((status == 401 || status == 407) && connAuth(resp)) {
			// NTLM and Negotiate sign in the connection, not the
			// request (HAProxy marks it private and prefers the last
			// server for the session).
			sc.private, s.preferLast = true, true
		}

		if status == 101 {
			if !x.upgrade {
				s.dropServer(sc, lease)
				s.failRec(x.hb, x.rec, 502, "PH", "101 without an upgrade request")
				return false
			}
			return s.tunnel(x.hb, sc, lease, x.rec, x.acts, x.ck)
		}
		if !bodySent {
			// The server answered without waiting for the body: the
			// client's body is unread, so the connection cannot go on.
			x.clientKeep = false
		}
		noBody := isHead || status == 204 || status == 304
		respChunked := resp.Chunked && !noBody
		respCL := resp.ContentLength
		untilEOF := !noBody && !respChunked && respCL < 0
		// An HTTP/1.0 message with Transfer-Encoding is processed, then its
		// connection closed (RFC 9112 6.1): a 1.0 hop may frame it otherwise.
		serverKeep := resp.KeepAlive() && !untilEOF && bodySent && x.hb.reuse != "" && !(resp.Minor == 0 && resp.Chunked)
		if untilEOF {
			x.clientKeep = false
		}
		dechunk := respChunked && (minor == 0 || s.h2)
		if dechunk {
			x.clientKeep = false
		}
		s.writeResponseHead(x.hb, x.clientKeep, minor, noBody, dechunk, x.acts, x.ck, srv)
		sc.consume(resp.HeadLen)
		// Counted before the body goes out, so a client that has the
		// response can rely on the stats.
		srv.Counters.CountResponse(status)
		b.Counters.CountResponse(status)
		f.Counters.CountResponse(status)
		idle := &idleDeadline{src: sc, dst: s.cc.Conn, d: b.Cfg.Timeouts.Server.D(), dw: f.Cfg.Timeouts.Client.D()}
		var berr error
		switch {
		case noBody:
		case respChunked:
			berr = copyChunked(&s.cw, &sc.bufConn, x.hb.respLim.MaxHeaderBytes, dechunk, idle, false)
		case respCL >= 0:
			berr = copyLen(&s.cw, &sc.bufConn, respCL, idle, false)
		default:
			berr = copyUntilEOF(&s.cw, &sc.bufConn, idle)
		}
		released := false
		if berr == nil {
			// The server's part is done: its connection goes back before
			// the client's last bytes leave, so the client's next request
			// finds it idle.
			if serverKeep && len(sc.buffered()) == 0 {
				s.releaseServer(x.hb, sc, lease)
			} else {
				s.dropServer(sc, lease)
			}
			released = true
			if err := s.cw.flush(); err != nil {
				berr = &bodyError{client: true, err: err}
			}
		}
		x.rec.bytes = s.cw.total
		srv.Counters.BytesOut.Add(uint64(s.cw.total))
		b.Counters.BytesOut.Add(uint64(s.cw.total))
		f.Counters.BytesOut.Add(uint64(s.cw.total))
		s.cw.total = 0
		if berr != nil {
			s.respCut = true
			if !released {
				s.dropServer(sc, lease)
			}
			var be *bodyError
			x.rec.term = "SD"
			if errors.As(berr, &be) && be.client {
				x.rec.term = "CD"
			} else {
				srv.ObserveResponse(false, "response body: "+berr.Error())
			}
			if isTimeout(berr) {
				x.rec.term = "sD"
				if be != nil && be.client {
					x.rec.term = "cD"
				}
			}
			x.rec.end = time.Now()
			s.logDone(x.rec)
			return false
		}
		x.rec.end = s.stamp()
		x.rec.term = "--"
		s.logDone(x.rec)
		return x.clientKeep
	}
}

// stamp is a timer reading for the access log (skipped without one: the
// clock is not free at these rates).
func (s *session) stamp() time.Time {
	if s.h.accessLog {
		return time.Now()
	}
	return time.Time{}
}

func (s *session) logDone(rec *logRec) {
	if s.h.accessLog {
		s.logLine(rec)
	}
}

// bodyFailed ends a request whose body could not be forwarded.
func (s *session) bodyFailed(hb *httpBackend, rec *logRec, err error) bool {
	var be *bodyError
	var pe *httpparse.Error
	switch {
	case errors.As(err, &pe):
		s.failRec(hb, rec, pe.Status, "PR", pe.Msg)
	case errors.As(err, &be) && be.client:
		if isTimeout(err) {
			s.failRec(hb, rec, 408, "cD", "timeout receiving the request body")
		} else if s.h.accessLog {
			rec.term = "CD"
			rec.end = time.Now()
			s.logLine(rec)
		}
	default:
		s.failRec(hb, rec, 502, "SD", err.Error())
	}
	return false
}

// answeredEarly reports whether a server that could not take the whole
// request body (it stopped reading, or closed) has already sent a final
// answer — a 413 for a too large upload, a 401 — which is then relayed
// instead of a 502, as HAProxy does. The answer is in s.resp.
func (s *session) answeredEarly(sc *serverConn, hb *httpBackend, err error) bool {
	var be *bodyError
	var pe *httpparse.Error
	if errors.As(err, &pe) {
		return false // the client's body is malformed
	}
	// A failed splice cannot say which side broke: a server that has
	// spoken is the one that stopped.
	if errors.As(err, &be) && be.client && !sc.spoke() {
		return false
	}
	// What the server said before it stopped reading is already here.
	d := expectWait
	if st := hb.b.Cfg.Timeouts.Server.D(); st > 0 {
		d = min(d, st)
	}
	_ = sc.SetReadDeadline(time.Now().Add(d))
	return s.readResponseHead(sc, hb) == nil && s.resp.Status >= 200
}

// sendBody streams the request body (after the head in sw) to the server.
// Reading the client is bounded by timeout client, writing to the server
// by timeout server (serverTimeout).
func (s *session) sendBody(sw *bufWriter, sc *serverConn, chunked bool, cl int64, serverTimeout time.Duration) error {
	idle := &idleDeadline{src: s.cc.Conn, dst: sc, d: s.h.f.Cfg.Timeouts.Client.D(), dw: serverTimeout}
	var err error
	if chunked {
		err = copyChunked(sw, &s.cc, s.h.lim.MaxHeaderBytes, false, idle, true)
	} else {
		err = copyLen(sw, &s.cc, cl, idle, true)
	}
	if err == nil {
		err = sw.flush()
	}
	if err == nil {
		// timeout server is the server's inactivity: the wait for its
		// answer starts once the body is out, however long the body took
		// (the read deadline armed with the head may have passed).
		_ = sc.SetReadDeadline(time.Now().Add(serverTimeout))
	}
	return err
}

// connAuth reports whether a 401/407 answer asks for connection-based
// sign-in: a WWW-Authenticate or Proxy-Authenticate challenge for NTLM or
// Negotiate (Kerberos/NTLM). Their handshake and the signed-in state live
// on the TCP connection.
func connAuth(resp *httpparse.Response) bool {
	return hasConnAuth(resp.Headers, "www-authenticate", "proxy-authenticate")
}

// hasConnAuth reports whether one of the named header fields starts with
// the NTLM or Negotiate scheme. The first four letters decide, as in
// HAProxy ("NTLM", "Nego"), so variants of Negotiate count too.
func hasConnAuth(headers []httpparse.Header, names ...string) bool {
	for _, h := range headers {
		if !slices.ContainsFunc(names, func(n string) bool { return httpparse.EqualFold(h.Name, n) }) {
			continue
		}
		v := bytes.TrimLeft(h.Value, " \t")
		if len(v) >= 4 && (httpparse.EqualFold(v[:4], "ntlm") || httpparse.EqualFold(v[:4], "nego")) {
			return true
		}
	}
	return false
}

// readResponseHead reads until a complete response head is buffered.
func (s *session) readResponseHead(sc *serverConn, hb *httpBackend) error {
	for {
		err := httpparse.ParseResponse(sc.buffered(), hb.respLim, &s.resp)
		if err == nil {
			return nil
		}
		if !errors.Is(err, httpparse.ErrNeedMore) {
			return err
		}
		if err := sc.fill(); err != nil {
			if errors.Is(err, errBufFull) {
				return &httpparse.Error{Status: 502, Msg: "response head too large"}
			}
			return err
		}
	}
}

// serverConn gets a connection for this request: the session's own, an
// idle pooled one (http-reuse) or a new one (with retries/redispatch).
//
// held: s.lease still holds the server slot of an attempt whose pooled
// connection failed its idle check; the request takes another connection
// on that slot.
func (s *session) serverConn(ctx context.Context, hb *httpBackend, breq *balance.Request, prefer *upstream.Server, fresh, later, held bool, rec *logRec) (*serverConn, *Lease, bool, error) {
	b := hb.b
	// Balancing runs for every request (after a signed-in connection's
	// server is preferred: preferLast); a connection is reused only when
	// it goes to the server that was picked.
	a := s.attached
	s.attached = nil
	if a != nil && (s.attachedBack != hb || fresh) {
		a.discard(s.h.srvBufs)
		a = nil
	}
	if a != nil && s.preferLast && prefer == nil {
		prefer = a.srv
	}
	usePool := !fresh && (hb.reuse == "always" || (hb.reuse == "safe" && s.requests > 1))
	lease := &s.lease
	var c net.Conn
	var err error
	if held || a != nil || usePool {
		if !held {
			err = b.Acquire(ctx, breq, prefer, lease)
			rec.tw = s.stamp() // Tw: waiting for a server slot (queue)
			if err != nil {
				if a != nil {
					a.discard(s.h.srvBufs)
				}
				return nil, nil, false, err
			}
		}
		// timeout server bounds writing the head as well as waiting for
		// the answer; a reused connection gets it with its idle check.
		deadline := time.Now().Add(b.Cfg.Timeouts.Server.D())
		// With later, the idle check of a plain TCP connection is made
		// with the request's send (flushFill).
		if a != nil && a.srv == lease.Server && a.idleOK(deadline, later) {
			return a, lease, true, nil
		}
		if a != nil {
			a.discard(s.h.srvBufs)
		}
		if usePool {
			if sc := s.h.pools.get(poolKey{lease.Server, hb.fp}, deadline, later); sc != nil {
				return sc, lease, true, nil
			}
		}
		// A new connection on the slot already held: released and taken
		// again, it would count the request twice in the server's
		// sessions.
		c, err = b.ConnectLeased(ctx, s.clientAddr.Addr(), breq, lease)
	} else {
		c, err = b.Connect(ctx, s.clientAddr.Addr(), breq, prefer, lease)
	}
	if err != nil {
		return nil, nil, false, err
	}
	// No SetNoDelay: Go sets TCP_NODELAY on every TCP connection it makes,
	// and a second setsockopt per new server connection is pure cost.
	if sp := b.Cfg.SendProxy; sp != "" {
		if err := writeProxyHeader(c, sp, s.cc.RemoteAddr(), s.cc.LocalAddr()); err != nil {
			_ = c.Close()
			lease.Release()
			return nil, nil, false, err
		}
	}
	if hb.tls != nil {
		c, err = wrapServerTLS(ctx, c, hb.tls, lease.Server.Addr, b.Cfg.Timeouts.Connect.D())
		if err != nil {
			lease.Server.ObserveConnect(err)
			lease.Server.Counters.ConnErrors.Add(1)
			b.Counters.ConnErrors.Add(1)
			b.warnConnect(lease.Server, err)
			lease.Release()
			return nil, nil, false, err
		}
	}
	lease.Server.ObserveConnect(nil)
	sc := &serverConn{bufConn: bufConn{Conn: c, buf: s.h.srvBufs.get()}, srv: lease.Server}
	// From the client's address (usesrc clientip), the connection speaks
	// for that client alone: another client's request on it would reach
	// the server as this one's.
	sc.private = b.clientSource(lease.Server)
	if tc, ok := c.(*tls.Conn); ok {
		sc.raw = syscallConnOf(tc.NetConn())
	} else if sc.rio.attach(c) {
		sc.bufConn.rio = &sc.rio
		sc.raw = sc.rio.rawConn()
	}
	return sc, lease, false, nil
}

// track registers the request in flight on srv (see session.kill).
func (s *session) track(srv *upstream.Server, sc *serverConn) {
	if s.kill == nil {
		s.kill = func() {
			if c := s.killConn.Load(); c != nil {
				_ = c.Conn.Close()
			}
		}
	}
	s.killConn.Store(sc)
	s.trackedSrv, s.trackID = srv, srv.TrackID(s.kill)
}

func (s *session) untrack() {
	if s.trackedSrv != nil {
		s.trackedSrv.Untrack(s.trackID)
		s.trackedSrv = nil
		s.killConn.Store(nil)
	}
}

func (s *session) releaseServer(hb *httpBackend, sc *serverConn, lease *Lease) {
	s.untrack()
	// The connection keeps its deadline while idle (it may expire there):
	// the idle check before reuse sets the next request's first.
	lease.Release()
	sc.requests++
	if hb.reuse == "never" || sc.private {
		s.attached, s.attachedBack = sc, hb
		return
	}
	s.h.pools.put(sc, poolKey{sc.srv, hb.fp}, hb.maxIdle)
}

func (s *session) dropServer(sc *serverConn, lease *Lease) {
	s.untrack()
	sc.discard(s.h.srvBufs)
	lease.Release()
}

// tunnel switches to a bidirectional relay after 101 Switching Protocols.
func (s *session) tunnel(hb *httpBackend, sc *serverConn, lease *Lease, rec *logRec, acts []*config.Rule, ck *cookieState) bool {
	f, b := s.h.f, hb.b
	s.untrack() // the tunnel tracks itself, client side included
	defer lease.Release()
	defer sc.discard(s.h.srvBufs)
	srv := lease.Server
	s.writeResponseHead(hb, true, 1, true, false, acts, ck, srv)
	sc.consume(s.resp.HeadLen)
	// Bytes that came with the 101 (server speaks first) and bytes the
	// client pipelined after its request go out before the relay.
	if b := sc.buffered(); len(b) > 0 {
		_, _ = s.cw.Write(b)
		sc.consume(len(b))
	}
	if err := s.cw.flush(); err != nil {
		return false
	}
	if b := s.cc.buffered(); len(b) > 0 {
		if _, err := sc.Write(b); err != nil {
			return false
		}
		s.cc.consume(len(b))
	}
	f.Counters.CountResponse(101)
	b.Counters.CountResponse(101)
	srv.Counters.CountResponse(101)
	untrack := srv.Track(func() { _ = s.cc.Close(); _ = sc.Conn.Close() })
	defer untrack()
	r := &relay{
		client: s.cc.Conn, server: sc.Conn,
		clientIdle: f.Cfg.Timeouts.Client.D(), serverIdle: b.Cfg.Timeouts.Server.D(),
		clientFinIdle: f.Cfg.Timeouts.ClientFin.D(), serverFinIdle: b.Cfg.Timeouts.ServerFin.D(),
		srv: &srv.Counters, fe: f.Counters, be: b.Counters,
	}
	if t := b.Cfg.Timeouts.Tunnel.D(); t > 0 {
		r.clientIdle, r.serverIdle = t, t
	}
	res := r.run()
	rec.bytes = res.bytesOut
	rec.end = time.Now()
	rec.term = "--"
	s.logDone(rec)
	return false
}

// redirect answers a redirect; the connection stays open when the request
// had no body.
func (s *session) redirect(start time.Time, loc string, code int) bool {
	if code < 300 || code > 399 {
		code = 302
	}
	keep, n, err := s.answer(code, "Location: "+loc+"\r\n", "")
	if s.h.accessLog {
		s.logLine(&logRec{start: start, status: code, term: "LR", bytes: n})
	}
	return keep && err == nil
}

// monitor answers a probe of the gateway (HAProxy monitor-uri): 200, or
// 503 when a backend it watches has no usable server. Like HAProxy's,
// these requests are counted but not logged: probes every second or two
// would drown the access log.
func (s *session) monitor(m *config.Monitor) bool {
	code, body := 200, "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n"
	for _, name := range m.Backends {
		if b := s.h.f.Backend(name); b == nil || !b.anyUsable(nil) { // tcp-mode ones too
			code, body = 503, "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"
			break
		}
	}
	keep, _, err := s.answer(code, "Content-Type: text/html\r\n", body)
	return keep && err == nil
}

// answer writes a response of the proxy's own (no server involved) with
// the extra header lines and body, keeping the connection when the client
// may send another request. It returns that, the bytes written and the
// write error.
func (s *session) answer(code int, headers, body string) (bool, int64, error) {
	f := s.h.f
	keep := s.req.KeepAlive() && !s.req.Chunked && s.req.ContentLength <= 0
	s.cc.consume(s.req.HeadLen)
	s.cw.buf = s.cw.buf[:0]
	w := &s.cw
	_, _ = w.WriteString("HTTP/1.1 ")
	_, _ = w.WriteString(strconv.Itoa(code))
	_, _ = w.WriteString(" ")
	_, _ = w.WriteString(http.StatusText(code))
	_, _ = w.WriteString("\r\n")
	_, _ = w.WriteString(headers)
	_, _ = w.WriteString("Content-Length: ")
	_, _ = w.WriteString(strconv.Itoa(len(body)))
	_, _ = w.WriteString("\r\nCache-Control: no-cache\r\n")
	if !keep {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
	if string(s.req.Method) != "HEAD" {
		_, _ = w.WriteString(body)
	}
	_ = s.cc.SetWriteDeadline(time.Now().Add(f.Cfg.Timeouts.Client.D()))
	err := w.flush()
	f.Counters.CountResponse(code)
	n := w.total
	w.total = 0
	return keep, n, err
}

func redirectLocation(rd *config.Redirect, isTLS bool, host, target, path, query []byte) string {
	switch {
	case rd.Location != "":
		return rd.Location
	case rd.Prefix != "":
		p := string(path)
		if len(query) > 0 {
			p += "?" + string(query)
		}
		return rd.Prefix + p
	default:
		p := string(path)
		if len(query) > 0 {
			p += "?" + string(query)
		}
		return rd.Scheme + "://" + string(host) + p
	}
}
