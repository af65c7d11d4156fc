package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/balance"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy/inspect"
	"github.com/vipgate/vipgate/core/upstream"
)

// tcpHandler is a frontend generation's tcp mode: one relayed session per
// client connection (HAProxy's mode tcp). The relay itself is relay.go's.
type tcpHandler struct {
	f *Frontend
	// inspect: the first client bytes must be peeked (SNI rules, hooks,
	// persistence on the ClientHello).
	inspect bool
	// loopOK: every session can be served on an event loop (tcploop.go),
	// loopWhy says why not; needLocal: the rules need the connection's
	// local port.
	loopOK, needLocal bool
	loopWhy           string
}

func newTCPHandler(f *Frontend) (connHandler, error) {
	h := &tcpHandler{f: f}
	if f.Cfg.InspectDelay > 0 {
		for _, r := range f.Cfg.Rules {
			if len(r.SNI) > 0 {
				h.inspect = true
			}
		}
		if f.hook != nil {
			h.inspect = true
		}
		for _, bn := range f.backendNames() {
			if b := f.backends[bn]; b != nil && b.persist != nil && b.persist.NeedsInspection() {
				h.inspect = true
			}
		}
	}
	h.loopWhy = h.loopEligible()
	h.loopOK = h.loopWhy == ""
	h.needLocal = needsLocal(f.Cfg)
	return h, nil
}

// tcpSession is the state of one tcp-mode session, allocated once: the
// routing transaction, the persistence view, the balancing request, the
// server slot and the relay would otherwise each escape to the heap on
// their own (they go through interfaces).
type tcpSession struct {
	txn   Txn
	ci    ConnInfo
	breq  balance.Request
	lease Lease
	relay relay
	// Access-log fields (option tcplog).
	start     time.Time
	tw, tc    time.Duration // queue wait, connect (-1: not reached)
	bytesOut  int64
	term      string
	backend   string
	killed    atomic.Bool
	logClient netip.AddrPort
}

// ServeConn is the tcp-mode session: inspect (optional), route, persist,
// connect with retries, relay.
func (h *tcpHandler) ServeConn(ctx context.Context, c net.Conn) {
	f := h.f
	defer c.Close()
	client := addrPort(c.RemoteAddr())
	local := addrPort(c.LocalAddr())
	ss := &tcpSession{start: time.Now(), tw: -1, tc: -1, term: "--", logClient: client}
	if config.Flag(f.Cfg.Log) {
		defer h.logSession(ss)
	}

	var peeked []byte
	var hello *inspect.Hello
	if h.inspect {
		var ok bool
		if peeked, hello, ok = peekClientHello(c, f.Cfg.InspectDelay.D()); !ok {
			return
		}
	}
	txn := &ss.txn
	*txn = Txn{Frontend: f.Name, Client: client, Local: local}
	if hello != nil {
		txn.SNI, txn.ALPN = hello.SNI, hello.ALPN
	}

	var dec Decision
	if f.hook != nil {
		hctx, cancel := context.WithCancel(ctx)
		d, err := f.hook.Route(hctx, txn)
		cancel()
		if err != nil {
			if hookFallback(err) != 0 {
				f.Counters.Denied.Add(1)
				ss.term = "PI"
				f.p.log.Debug("route hook failed; closing", "frontend", f.Name, "client", client, "err", err)
				return
			}
			f.p.log.Debug("route hook failed; using the frontend's rules", "frontend", f.Name, "err", err)
		} else {
			dec = d
		}
	}
	if dec.Deny != 0 {
		f.Counters.Denied.Add(1)
		ss.term = "PR"
		return
	}
	b, try := h.route(ss, dec, peeked)
	if b == nil {
		return
	}
	h.connectAndRelay(ctx, c, ss, b, &try)
}

// route picks the session's backend (the hook's choice, else the rules)
// and where its connection attempts start (the hook's server, else
// persistence), on either path; nil when no backend takes the session
// (PR, counted and logged).
func (h *tcpHandler) route(ss *tcpSession, dec Decision, peeked []byte) (*Backend, connectTry) {
	f := h.f
	txn := &ss.txn
	bname := dec.Backend
	if bname == "" {
		bname = f.matchRules(txn)
	}
	b := f.backends[bname]
	if b == nil {
		f.Counters.Denied.Add(1)
		ss.term = "PR"
		f.p.log.Debug("no backend for connection", "frontend", f.Name, "client", txn.Client)
		return nil, connectTry{}
	}
	ss.backend = b.Name
	var prefer *upstream.Server
	if dec.Server != "" {
		prefer = b.ServerByName(dec.Server)
	}
	ci := &ss.ci
	*ci = ConnInfo{Frontend: f.Name, Backend: b.Name, Client: txn.Client, Peeked: peeked, SNI: txn.SNI}
	if prefer == nil && b.persist != nil {
		prefer = b.persist.Lookup(ci)
	}
	ss.breq = balance.Request{Client: txn.Client.Addr()}
	return b, b.newConnectTry(txn.Client.Addr(), &ss.breq, prefer)
}

// connectAndRelay is the session from its first connect attempt on: the
// attempts left in try (all of them, or those the event loop could not make
// without waiting in the queue), the server's first bytes when persistence
// learns from them, then the relay.
func (h *tcpHandler) connectAndRelay(ctx context.Context, c net.Conn, ss *tcpSession, b *Backend, try *connectTry) {
	f := h.f
	ci := &ss.ci
	peeked := ci.Peeked
	client := ss.logClient
	lease := &ss.lease
	t0 := time.Now()
	sc, err := b.connectWith(ctx, client.Addr(), try, lease)
	if err != nil {
		ss.term = "SC"
		if errors.Is(err, ErrQueueTimeout) || errors.Is(err, ErrQueueFull) {
			ss.term = "sQ"
		}
		f.p.log.Debug("no server", "frontend", f.Name, "backend", b.Name, "client", client, "err", err)
		return
	}
	lease.Server.ObserveConnect(nil)
	ss.tw = lease.Queued
	ss.tc = time.Since(t0) - lease.Queued
	defer lease.Release()
	defer sc.Close()
	srv := lease.Server
	if b.persist != nil {
		b.persist.StoreRequest(ci, srv)
	}

	// on_marked_down shutdown-sessions and admin kills end the session here.
	id := srv.TrackID(func() { ss.killed.Store(true); _ = c.Close(); _ = sc.Close() })
	defer srv.Untrack(id)

	if sp := b.Cfg.SendProxy; sp != "" {
		if err := writeProxyHeader(sc, sp, c.RemoteAddr(), c.LocalAddr()); err != nil {
			srv.Counters.ConnErrors.Add(1)
			ss.term = "SC"
			return
		}
	}
	if len(peeked) > 0 {
		_ = sc.SetWriteDeadline(time.Now().Add(b.Cfg.Timeouts.Server.D()))
		if _, err := sc.Write(peeked); err != nil {
			srv.Counters.ConnErrors.Add(1)
			ss.term = "SC"
			return
		}
		srv.Counters.BytesIn.Add(uint64(len(peeked)))
		f.Counters.BytesIn.Add(uint64(len(peeked)))
		b.Counters.BytesIn.Add(uint64(len(peeked)))
	}
	raw := rawConn(c)
	if b.persist != nil && b.persist.WantsResponse() {
		first, err := readFirst(ctx, sc, b.Cfg.Timeouts.Server.D())
		if len(first) > 0 {
			b.persist.StoreResponse(ci, srv, first)
			_ = raw.SetWriteDeadline(time.Now().Add(f.Cfg.Timeouts.Client.D()))
			if _, werr := raw.Write(first); werr != nil {
				ss.term = "CD"
				return
			}
			ss.bytesOut += int64(len(first))
			srv.Counters.BytesOut.Add(uint64(len(first)))
			f.Counters.BytesOut.Add(uint64(len(first)))
			b.Counters.BytesOut.Add(uint64(len(first)))
		}
		if err != nil {
			ss.term = "SD"
			if isTimeout(err) {
				ss.term = "sD"
			}
			return
		}
	}

	start := time.Now()
	defer func() {
		d := time.Since(start)
		srv.Counters.SessionTime.Observe(d)
		b.Counters.SessionTime.Observe(d)
		f.Counters.SessionTime.Observe(d)
	}()
	tunnel := b.Cfg.Timeouts.Tunnel.D()
	r := &ss.relay
	*r = relay{
		client: raw, server: sc,
		clientIdle: f.Cfg.Timeouts.Client.D(), serverIdle: b.Cfg.Timeouts.Server.D(),
		clientFinIdle: f.Cfg.Timeouts.ClientFin.D(), serverFinIdle: b.Cfg.Timeouts.ServerFin.D(),
		srv: &srv.Counters, fe: f.Counters, be: b.Counters,
	}
	if tunnel > 0 {
		r.clientIdle, r.serverIdle = tunnel, tunnel
	}
	res := r.run()
	ss.bytesOut += res.bytesOut
	lc := liveConnOf(ctx)
	ss.term = relayTerm(res, ss.killed.Load() || (lc != nil && lc.cut.Load()))
}

// relayTerm is the termination state of a relayed session (HAProxy's two
// letters: who ended it, in the data phase).
func relayTerm(res relayResult, killed bool) string {
	switch {
	case killed:
		return "KD" // shutdown-sessions: killed by the operator or a check
	case res.abortedBy == 1 && isTimeout(res.clientErr):
		return "cD"
	case res.abortedBy == 1:
		return "CD"
	case res.abortedBy == 2 && isTimeout(res.serverErr):
		return "sD"
	case res.abortedBy == 2:
		return "SD"
	}
	return "--"
}

// logSession writes the session's access-log line (option tcplog;
// accessRec.appendText has the layout).
func (h *tcpHandler) logSession(ss *tcpSession) {
	f := h.f
	ms := func(d time.Duration) int64 {
		if d < 0 {
			return -1
		}
		return d.Milliseconds()
	}
	a := accessRec{
		client: ss.logClient, accept: ss.start, frontend: f.Name, backend: f.Name,
		tw: ms(ss.tw), tc: ms(ss.tc), ta: time.Since(ss.start).Milliseconds(),
		bytes: ss.bytesOut, term: ss.term,
		actconn: f.p.conns.Load(), feconn: f.Counters.CurSessions.Load(),
		retries: ss.lease.Retries, beQueue: ss.lease.QueuePos,
	}
	if ss.backend != "" {
		a.backend = ss.backend
		if b := ss.lease.b; b != nil {
			a.beconn = b.Counters.CurSessions.Load()
		}
	}
	if srv := ss.lease.Server; srv != nil {
		a.server = srv.Name
		a.srvconn = srv.Counters.CurSessions.Load()
	}
	a.countReleased(&ss.lease, ss.lease.Server)
	f.p.logAccess(&a)
}
