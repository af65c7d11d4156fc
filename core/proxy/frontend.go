package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipgate/vipgate/core/accept"
	"github.com/vipgate/vipgate/core/balance"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy/inspect"
	"github.com/vipgate/vipgate/core/upstream"
)

// Frontend is the live form of a config.Frontend for one generation.
type Frontend struct {
	Name     string
	Cfg      *config.Frontend
	Counters *upstream.Counters

	p        *Proxy
	backends map[string]*Backend // this generation's backends
	hook     RouteHook
	slots    chan struct{} // maxconn
	retired  chan struct{}
	once     sync.Once
	http     connHandler
	// inspect: the first client bytes must be peeked (SNI rules, hooks,
	// persistence on the ClientHello).
	inspect bool
}

func newFrontend(p *Proxy, fc *config.Frontend, st *state, hooks HookResolver) (*Frontend, error) {
	f := &Frontend{
		Name: fc.Name, Cfg: fc, p: p, backends: st.backends, Counters: &upstream.Counters{},
		slots: make(chan struct{}, max(fc.MaxConn, 1)), retired: make(chan struct{}),
	}
	if fc.Route != "" {
		if hooks == nil {
			return nil, fmt.Errorf("frontend %q: route %q: no scripting runtime is available", fc.Name, fc.Route)
		}
		h, err := hooks(fc.Route)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: route %q: %w", fc.Name, fc.Route, err)
		}
		f.hook = h
	}
	if fc.InspectDelay > 0 && fc.Mode == config.ModeTCP {
		for _, r := range fc.Rules {
			if len(r.SNI) > 0 {
				f.inspect = true
			}
		}
		if f.hook != nil {
			f.inspect = true
		}
		for _, bn := range f.backendNames() {
			if b := st.backends[bn]; b != nil && b.persist != nil && b.persist.NeedsInspection() {
				f.inspect = true
			}
		}
	}
	if fc.Mode == config.ModeHTTP {
		h, err := newHTTPHandler(f)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
		}
		f.http = h
	}
	return f, nil
}

// Backend returns a backend of this frontend's generation.
func (f *Frontend) Backend(name string) *Backend { return f.backends[name] }

// backendNames lists the backends this frontend may send to.
func (f *Frontend) backendNames() []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	add(f.Cfg.DefaultBackend)
	for _, r := range f.Cfg.Rules {
		add(r.Backend)
	}
	return out
}

func (f *Frontend) retire() { f.once.Do(func() { close(f.retired) }) }

// listener is one bound address; it survives reloads and serves whichever
// Frontend is current.
type listener struct {
	p       *Proxy
	addr    string
	ln      net.Listener
	fe      atomic.Pointer[Frontend]
	started atomic.Bool
	done    chan struct{}
}

// bindNetwork picks the socket family for a bind address. An IPv4 host
// ("0.0.0.0:443") takes IPv4 only: Go would otherwise make a wildcard
// dual-stack socket. An IPv6 host ("[::]:443", "[2001:db8::1]:443") takes
// IPv6 only (v6only), so that the same port can also be bound on 0.0.0.0,
// as with HAProxy. A bind without a host (":443") or with a name stays
// "tcp": dual-stack for the wildcard.
func bindNetwork(addr string) (network string, v6only bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "tcp", false
	}
	a, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return "tcp", false
	case a.Is4() || a.Is4In6():
		return "tcp4", false
	}
	return "tcp6", true
}

func listen(p *Proxy, addr string, f *Frontend) (*listener, error) {
	network, only6 := bindNetwork(addr)
	// KeepAlive -1: no TCP keepalive on client connections (HAProxy's
	// clitcpka is off by default), which also saves four setsockopt calls
	// per accepted connection.
	lc := net.ListenConfig{KeepAlive: -1, Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// SO_REUSEADDR: rebind at once after a restart while old
			// connections sit in TIME_WAIT.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			if serr == nil && only6 {
				// Go makes [::] sockets dual-stack; the option must be set
				// before bind(), which is when Control runs.
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	l := &listener{p: p, addr: addr, ln: ln, done: make(chan struct{})}
	l.fe.Store(f)
	return l, nil
}

func (l *listener) start(ctx context.Context) {
	if l.started.Swap(true) {
		return
	}
	go l.serve(ctx)
}

func (l *listener) close() {
	_ = l.ln.Close()
}

func (l *listener) serve(ctx context.Context) {
	defer close(l.done)
	for {
		f := l.fe.Load()
		// maxconn: take a slot before accepting, so that excess clients wait
		// in the kernel's accept queue, as with HAProxy.
		select {
		case f.slots <- struct{}{}:
		case <-f.retired:
			continue
		case <-ctx.Done():
			return
		}
		c, err := accept.Next(ctx, l.ln, l.p.log)
		if err != nil {
			<-f.slots
			return
		}
		// A reload may have happened while Accept blocked: serve the
		// connection with the current generation, moving the slot over.
		if cur := l.fe.Load(); cur != f {
			<-f.slots
			f = cur
			select {
			case f.slots <- struct{}{}:
			case <-ctx.Done():
				_ = c.Close()
				return
			}
		}
		go func() {
			defer func() { <-f.slots }()
			f.serveConn(ctx, c)
		}()
	}
}

// serveConn handles one client connection.
func (f *Frontend) serveConn(ctx context.Context, c net.Conn) {
	defer func() {
		if r := recover(); r != nil {
			f.p.log.Error("panic serving connection", "frontend", f.Name, "panic", r)
			_ = c.Close()
		}
	}()
	if config.Flag(f.Cfg.TCPKeepAlive) {
		setKeepAlive(c)
	}
	f.Counters.SessionStart()
	defer f.Counters.SessionEnd()
	// Go sets TCP_NODELAY on every TCP connection already.
	if f.Cfg.AcceptProxy {
		_ = c.SetReadDeadline(time.Now().Add(f.Cfg.Timeouts.Client.D()))
		pc, err := readProxyHeader(c)
		if err != nil {
			f.Counters.Denied.Add(1)
			f.p.log.Debug("bad PROXY header", "frontend", f.Name, "client", c.RemoteAddr(), "err", err)
			_ = c.Close()
			return
		}
		_ = c.SetReadDeadline(time.Time{})
		c = pc
	}
	if f.http != nil {
		f.http.ServeConn(ctx, c)
		return
	}
	f.serveTCP(ctx, c)
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
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

// serveTCP is the tcp-mode session: inspect (optional), route, persist,
// connect with retries, relay.
func (f *Frontend) serveTCP(ctx context.Context, c net.Conn) {
	defer c.Close()
	client := addrPort(c.RemoteAddr())
	local := addrPort(c.LocalAddr())
	ss := &tcpSession{start: time.Now(), tw: -1, tc: -1, term: "--", logClient: client}
	if config.Flag(f.Cfg.Log) {
		defer f.logTCP(ss)
	}

	var peeked []byte
	var hello *inspect.Hello
	if f.inspect {
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
	bname := dec.Backend
	if bname == "" {
		bname = f.matchRules(txn)
	}
	b := f.backends[bname]
	if b == nil {
		f.Counters.Denied.Add(1)
		ss.term = "PR"
		f.p.log.Debug("no backend for connection", "frontend", f.Name, "client", client)
		return
	}
	ss.backend = b.Name

	var prefer *upstream.Server
	if dec.Server != "" {
		prefer = b.ServerByName(dec.Server)
	}
	ci := &ss.ci
	*ci = ConnInfo{Frontend: f.Name, Backend: b.Name, Client: client, Peeked: peeked, SNI: txn.SNI}
	if prefer == nil && b.persist != nil {
		prefer = b.persist.Lookup(ci)
	}

	ss.breq = balance.Request{Client: client.Addr()}
	lease := &ss.lease
	t0 := time.Now()
	sc, err := b.Connect(ctx, client.Addr(), &ss.breq, prefer, lease)
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
	ss.term = relayTerm(res, ss.killed.Load())
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

// logTCP writes the session's access-log line (option tcplog):
//
//	client:port [date] frontend backend/server Tw/Tc/Tt bytes term
func (f *Frontend) logTCP(ss *tcpSession) {
	b := make([]byte, 0, 160)
	b = ss.logClient.AppendTo(b)
	b = append(b, " ["...)
	b = ss.start.UTC().AppendFormat(b, "02/Jan/2006:15:04:05.000")
	b = append(b, "] "...)
	b = append(b, f.Name...)
	b = append(b, ' ')
	if ss.backend != "" {
		b = append(b, ss.backend...)
	} else {
		b = append(b, f.Name...)
	}
	b = append(b, '/')
	if srv := ss.lease.Server; srv != nil {
		b = append(b, srv.Name...)
	} else {
		b = append(b, "<NOSRV>"...)
	}
	b = append(b, ' ')
	for _, d := range [...]time.Duration{ss.tw, ss.tc} {
		if d < 0 {
			b = append(b, "-1"...)
		} else {
			b = strconv.AppendInt(b, d.Milliseconds(), 10)
		}
		b = append(b, '/')
	}
	b = strconv.AppendInt(b, time.Since(ss.start).Milliseconds(), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, ss.bytesOut, 10)
	b = append(b, ' ')
	b = append(b, ss.term...)
	f.p.log.LogAttrs(context.Background(), slog.LevelInfo, string(b), slog.String("frontend", f.Name))
}

// matchRules returns the first matching rule's backend, or the default.
func (f *Frontend) matchRules(t *Txn) string {
	for i := range f.Cfg.Rules {
		r := &f.Cfg.Rules[i]
		if r.Backend == "" || !tcpRuleMatches(r, t) {
			continue
		}
		return r.Backend
	}
	return f.Cfg.DefaultBackend
}

func tcpRuleMatches(r *config.Rule, t *Txn) bool {
	if nets := r.SrcNets(); len(nets) > 0 {
		ok := false
		for _, n := range nets {
			if n.Contains(t.Client.Addr()) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.DstPort) > 0 {
		ok := false
		for _, p := range r.DstPort {
			if uint16(p) == t.Local.Port() {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.SNI) > 0 {
		ok := false
		for _, pat := range r.SNI {
			if matchSNI(pat, t.SNI) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return httpRuleMatches(r, t)
}

// matchSNI matches a server name against "name" or "*.domain" (one label).
func matchSNI(pat, sni string) bool {
	if sni == "" {
		return false
	}
	pat, sni = strings.ToLower(pat), strings.ToLower(strings.TrimSuffix(sni, "."))
	if strings.HasPrefix(pat, "*.") {
		i := strings.IndexByte(sni, '.')
		return i > 0 && sni[i:] == pat[1:]
	}
	return pat == sni
}
