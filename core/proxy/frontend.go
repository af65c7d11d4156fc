package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipgate/vipgate/core/accept"
	"github.com/vipgate/vipgate/core/config"
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
	// handler serves the connections in the frontend's mode (tcp.go's
	// tcpHandler or http.go's httpHandler).
	handler connHandler
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
	mk := newTCPHandler
	if fc.Mode == config.ModeHTTP {
		mk = newHTTPHandler
	}
	h, err := mk(f)
	if err != nil {
		return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
	}
	f.handler = h
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
// Frontend is current. It holds listenShards sockets on that address, each
// with its own accept loop.
type listener struct {
	p       *Proxy
	addr    string
	lns     []net.Listener
	fe      atomic.Pointer[Frontend]
	started atomic.Bool
	closed  chan struct{}
	once    sync.Once
	// noLoop: no event loop could be had; the accept loops serve every
	// connection on goroutines.
	noLoop atomic.Bool
	// workers: each accept loop's goroutines for its connections (one
	// pool per socket of lns).
	workers []*workers
}

// bound is the address the listener holds (the port resolved for ":0").
func (l *listener) bound() string { return l.lns[0].Addr().String() }

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

// listen opens addr for f. vip: addr is a VIP of the document, bound
// before the node holds it (freebind).
func listen(p *Proxy, addr string, f *Frontend, vip bool) (*listener, error) {
	network, only6 := bindNetwork(addr)
	shards := listenShards()
	// KeepAlive -1: no TCP keepalive on client connections (HAProxy's
	// clitcpka is off by default), which also saves four setsockopt calls
	// per accepted connection.
	lc := net.ListenConfig{KeepAlive: -1, Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// SO_REUSEADDR: rebind at once after a restart while old
			// connections sit in TIME_WAIT.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			if serr == nil && shards > 1 && reusePort(fd) != nil {
				// A kernel without SO_REUSEPORT (before Linux 3.9, some
				// sandboxes): one socket, as elsewhere.
				shards = 1
			}
			if serr == nil && only6 {
				// Go makes [::] sockets dual-stack; the option must be set
				// before bind(), which is when Control runs.
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1)
			}
			if serr == nil && vip {
				serr = freebind(fd, network == "tcp6")
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	if shards > 1 {
		if err := probeBind(network, addr, only6, vip); err != nil {
			return nil, err
		}
	}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	l := &listener{p: p, addr: addr, lns: []net.Listener{ln}, closed: make(chan struct{})}
	// The other shards bind the address the first one got (its port, for
	// ":0" binds).
	for len(l.lns) < shards {
		ln, err := lc.Listen(context.Background(), network, l.bound())
		if err != nil {
			l.close()
			return nil, fmt.Errorf("listen socket %d of %d on %s: %w", len(l.lns)+1, shards, addr, err)
		}
		l.lns = append(l.lns, ln)
	}
	for range l.lns {
		l.workers = append(l.workers, &workers{})
	}
	l.fe.Store(f)
	return l, nil
}

func (l *listener) start(ctx context.Context) {
	if l.started.Swap(true) {
		return
	}
	for i, ln := range l.lns {
		go l.serve(ctx, ln, i)
	}
}

func (l *listener) close() {
	l.once.Do(func() { close(l.closed) })
	for _, ln := range l.lns {
		_ = ln.Close()
	}
	for _, w := range l.workers {
		w.close()
	}
}

// serve is the accept loop of one of the listener's sockets (shard: its
// index). While the current frontend is one an event loop can serve, the
// socket is the loop's (serveOnLoop); this loop waits for it to come back.
func (l *listener) serve(ctx context.Context, ln net.Listener, shard int) {
	onLoop := func() bool { return !l.noLoop.Load() && l.fe.Load().loopable() }
	for {
		if onLoop() {
			if !l.serveOnLoop(ctx, ln, shard) {
				return
			}
			if onLoop() {
				// Given back while still servable there: full, or an
				// accept error. Take the next connection here (waiting
				// for a slot, backing off) before handing it over again.
				if !l.acceptOne(ctx, ln, l.workers[shard]) {
					return
				}
			}
			continue
		}
		if !l.acceptOne(ctx, ln, l.workers[shard]) {
			return
		}
	}
}

// acceptOne accepts a connection and serves it on one of ws's goroutines;
// false when the listener closed or ctx ended.
func (l *listener) acceptOne(ctx context.Context, ln net.Listener, ws *workers) bool {
	c, err := accept.Next(ctx, ln, l.p.log)
	if err != nil {
		return false
	}
	// maxconn: the slot is taken after accepting, not before, because
	// the kernel picks the socket a client lands on: a loop holding a
	// slot while it waits in accept would keep it from a client queued
	// on another socket. So each loop holds at most one accepted client
	// unserved while the frontend is full; the others wait in the
	// kernel's accept queue, as with HAProxy.
	f := l.slot(ctx)
	if f == nil {
		_ = c.Close()
		return false
	}
	ws.run(connJob{l: l, f: f, ctx: ctx, lc: l.p.live.add(c), c: c})
	return true
}

// slot takes a maxconn slot of the current generation's frontend, waiting
// while it is full; nil when the listener closes or ctx ends.
func (l *listener) slot(ctx context.Context) *Frontend {
	for {
		f := l.fe.Load()
		select {
		case f.slots <- struct{}{}:
			// A reload may have happened while the frontend was full: the
			// new generation counts its own connections.
			if l.fe.Load() == f {
				return f
			}
			<-f.slots
		case <-f.retired:
		case <-l.closed:
			return nil
		case <-ctx.Done():
			return nil
		}
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
	f.p.conns.Add(1)
	defer f.p.conns.Add(-1)
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
	f.handler.ServeConn(ctx, c)
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
