// Package proxy is the data plane: listeners, tcp mode (zero-copy relay) and
// http mode, timeouts, queues, retries and redispatch.
//
// Reload model: Apply builds new Frontend and Backend values from a config
// snapshot and swaps them in; listeners whose address stays are kept open
// (no refused connection during a reload), removed ones stop accepting;
// connections in flight finish on the objects they started with. Servers are
// reused by identity so health and counters survive.
//
// Like every subsystem, the proxy reconciles to what is pushed to it: each
// config snapshot (Apply) and the committed decisions that concern it (an
// operator's drain/maint, enforced through Server by cluster/state on
// commit). It reads neither raft nor a timer.
package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
)

// Options configure a Proxy.
type Options struct {
	Log *slog.Logger
	// AccessLog receives the access-log lines (default: Log). Each record's
	// message is HAProxy's text line, its attributes the line's fields.
	AccessLog *slog.Logger
	Bus       *events.Bus
	// Datacenter is the node's own datacenter (servers there are preferred).
	Datacenter string
	// Node, when set, is this node: frontends, backends and servers placed
	// on other nodes (config.Cluster.ForNode) are not served here.
	Node *config.Node
	// OnServers is called after every Apply with the live servers and their
	// backend config, so the health manager can reconcile its workers.
	OnServers func(backends []*Backend)
	// NoEventLoop serves every tcp session on goroutines (tcp.go), none on
	// the event loops (tcploop.go): the node file's proxy.event_loop: false.
	NoEventLoop bool
}

// Proxy is the live data plane of a node.
type Proxy struct {
	opts   Options
	log    *slog.Logger
	access *slog.Logger
	bus    *events.Bus
	// conns counts the client connections being served (HAProxy's
	// actconn, in the access log).
	conns atomic.Int64
	// live are those connections, for a graceful stop (drain.go).
	live liveConns
	// loops are the event loops of the tcp sessions they can serve.
	loops loopSet

	mu        sync.Mutex // serialises Apply and listener changes
	cfg       *config.Cluster
	listeners map[string]*listener // by bind address
	servers   map[string]*upstream.Server
	disabled  map[string]bool // frontends disabled at runtime
	// cfgDisabled remembers which servers the config put in maintenance.
	cfgDisabled map[string]bool

	state atomic.Pointer[state] // what the data path reads
	// httpPools are the idle server connections of the http frontends, by
	// frontend name: they outlive reloads (connPools).
	httpPools map[string]*connPools

	hooks   atomic.Pointer[HookResolver]
	persist atomic.Pointer[PersistFactory]

	ctx     context.Context
	started chan struct{}
}

// state is one consistent generation of frontends and backends.
type state struct {
	frontends map[string]*Frontend
	backends  map[string]*Backend
	order     []string // frontend names, config order
	border    []string // backend names, config order
	// vips are the document's VRRP addresses: a bind on one is opened
	// before this node holds it.
	vips map[netip.Addr]bool
}

// New makes an empty proxy; Apply gives it a configuration.
func New(opts Options) *Proxy {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.AccessLog == nil {
		opts.AccessLog = opts.Log
	}
	if opts.Bus == nil {
		opts.Bus = events.New("", "")
	}
	p := &Proxy{
		opts: opts, log: opts.Log, access: opts.AccessLog, bus: opts.Bus,
		listeners: map[string]*listener{}, servers: map[string]*upstream.Server{},
		disabled: map[string]bool{}, started: make(chan struct{}), httpPools: map[string]*connPools{},
	}
	p.state.Store(&state{frontends: map[string]*Frontend{}, backends: map[string]*Backend{}})
	p.ctx = context.Background()
	return p
}

// SetHookResolver installs the routing-hook lookup (Lua). Call before Apply.
func (p *Proxy) SetHookResolver(r HookResolver) { p.hooks.Store(&r) }

// HookResolver returns the routing-hook lookup installed by
// SetHookResolver, or nil. Stick rules with `on: lua` resolve their key
// functions through it.
func (p *Proxy) HookResolver() HookResolver {
	if h := p.hooks.Load(); h != nil {
		return *h
	}
	return nil
}

// SetPersistFactory installs the stick-rule implementation. Call before Apply.
func (p *Proxy) SetPersistFactory(f PersistFactory) { p.persist.Store(&f) }

// Run serves until ctx ends, then closes the listeners. Connections in
// flight are given their own timeouts to finish.
func (p *Proxy) Run(ctx context.Context) error {
	p.mu.Lock()
	p.ctx = ctx
	for _, l := range p.listeners {
		l.start(ctx)
	}
	close(p.started)
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	for addr, l := range p.listeners {
		l.close()
		delete(p.listeners, addr)
	}
	p.mu.Unlock()
	return nil
}

func (p *Proxy) running() bool {
	select {
	case <-p.started:
		return true
	default:
		return false
	}
}

// Apply reconciles the data plane to c. Listener errors (address in use)
// are returned after everything else has been applied, so one bad bind does
// not keep the rest of the configuration from working.
func (p *Proxy) Apply(c *config.Cluster) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c = c.ForNode(p.opts.Node)

	old := p.state.Load()
	ns := &state{frontends: map[string]*Frontend{}, backends: map[string]*Backend{}, vips: vipAddrs(c)}

	// Servers: reuse by identity so health and counters carry over.
	keep := map[string]*upstream.Server{}
	cfgDisabled := map[string]bool{}
	for bi := range c.Backends {
		bc := &c.Backends[bi]
		servers := make([]*upstream.Server, 0, len(bc.Servers))
		existed := old.backends[bc.Name] != nil
		added := map[*upstream.Server]bool{}
		for si := range bc.Servers {
			sc := &bc.Servers[si]
			key := bc.Name + "/" + sc.Name + "@" + sc.Address
			s := p.servers[key]
			if s == nil {
				s = upstream.NewServer(bc.Name, sc.Name, sc.Address, sc.EffectiveWeight())
				added[s] = existed
				// Out of rotation from the moment the data path can see it,
				// not from when its checks start (after this Apply).
				if st := sc.StartState(existed); bc.ServerCheck(sc) != nil && (st == "down" || st == "fully-down") {
					s.SetHealth(upstream.Down, "initial state")
				}
			}
			// `disabled` in the config is maintenance mode; lifting it
			// returns the server to ready, but an operator's runtime state
			// is left alone otherwise.
			if sc.Disabled {
				s.SetAdmin(upstream.Maint)
			} else if p.cfgDisabled[key] {
				s.SetAdmin(upstream.Ready)
			}
			cfgDisabled[key] = sc.Disabled
			dc := sc.Datacenter
			s.SetSettings(upstream.Settings{
				Index: si, Weight: sc.EffectiveWeight(), MaxConn: sc.MaxConn, Backup: sc.Backup,
				Cookie: serverCookie(sc), Datacenter: dc,
			})
			s.SetSlowStart(sc.SlowStart.D())
			keep[key] = s
			servers = append(servers, s)
		}
		b, err := newBackend(bc, servers, p.bus, p.opts.Datacenter)
		if err != nil {
			return err
		}
		b.added = added
		if ob := old.backends[bc.Name]; ob != nil {
			// Counters carry over by name, as the servers' do.
			b.Counters = ob.Counters
		}
		b.onEmpty = p.backendEmpty
		b.log = p.log
		if len(b.srcDial) > 0 && p.log != nil {
			for _, sd := range b.srcDial {
				if sd.clientIP {
					if err := CheckTransparent(); err != nil {
						// The config stays applied (a capability granted
						// later needs no reload); each connection fails
						// with the same message.
						p.log.Error("backend cannot connect from client addresses", "backend", bc.Name, "err", err)
					}
					break
				}
			}
		}
		if pf := p.persist.Load(); pf != nil && bc.Stick != nil {
			per, err := (*pf)(bc, b.ServerByName)
			if err != nil {
				return fmt.Errorf("backend %q: stick: %w", bc.Name, err)
			}
			b.persist = per
		}
		ns.backends[bc.Name] = b
		ns.border = append(ns.border, bc.Name)
	}
	// Servers that disappeared: end their checks (the health manager sees
	// them gone) and stop routing to them; their sessions finish.
	for key, s := range p.servers {
		if _, ok := keep[key]; !ok {
			s.SetOnChange(nil)
		}
	}
	p.servers = keep
	p.cfgDisabled = cfgDisabled

	hooks := p.HookResolver()
	for fi := range c.Frontends {
		fc := &c.Frontends[fi]
		if fc.Mode == config.ModeDR {
			continue // forwarded by core/dr, not proxied
		}
		f, err := newFrontend(p, fc, ns, hooks)
		if err != nil {
			return err
		}
		of := old.frontends[fc.Name]
		if of != nil {
			f.Counters = of.Counters
		}
		f.logPath(of)
		ns.frontends[fc.Name] = f
		ns.order = append(ns.order, fc.Name)
	}

	for _, b := range ns.backends {
		b.attach()
	}
	p.state.Store(ns)
	p.cfg = c
	p.reconcilePools(ns)
	errs := p.reconcileListeners(ns)
	// Retired only now that the listeners point at the new generation: an
	// accept loop waiting for a slot of an old one wakes once and finds
	// the new frontend, instead of spinning on the closed channel until
	// the listeners are switched.
	if old != nil {
		for _, f := range old.frontends {
			f.retire()
		}
	}

	if p.opts.OnServers != nil {
		list := make([]*Backend, 0, len(ns.border))
		for _, n := range ns.border {
			list = append(list, ns.backends[n])
		}
		p.opts.OnServers(list)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// connPoolsFor returns the idle connection pools of an http frontend,
// made on its first generation. Caller holds p.mu.
func (p *Proxy) connPoolsFor(frontend string) *connPools {
	cp := p.httpPools[frontend]
	if cp == nil {
		cp = newConnPools()
		p.httpPools[frontend] = cp
	}
	return cp
}

// reconcilePools keeps the idle server connections the new generation can
// use (same frontend, same server reached the same way) and closes the
// rest. Caller holds p.mu.
func (p *Proxy) reconcilePools(ns *state) {
	live := map[string]bool{}
	for name, f := range ns.frontends {
		h, ok := f.handler.(*httpHandler)
		if !ok {
			continue
		}
		live[name] = true
		keys := map[poolKey]bool{}
		h.poolKeys(keys)
		h.pools.retain(keys, h.idle, h.srvBufs)
	}
	for name, cp := range p.httpPools {
		if !live[name] {
			cp.retire()
			delete(p.httpPools, name)
		}
	}
}

// vipAddrs are the addresses of every VRRP instance of c.
func vipAddrs(c *config.Cluster) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, in := range c.VRRP.Instances {
		for _, s := range in.VIPs {
			if v, err := config.ParseVIP(s); err == nil {
				m[v.Prefix.Addr()] = true
			}
		}
	}
	return m
}

// isVIP reports whether the bind address addr is on one of the VIPs.
func (st *state) isVIP(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && st.vips[a.Unmap()]
}

// reconcileListeners opens new bind addresses, points kept ones at their new
// frontend and closes removed ones. Caller holds p.mu.
func (p *Proxy) reconcileListeners(ns *state) []string {
	want := map[string]*Frontend{}
	for _, name := range ns.order {
		f := ns.frontends[name]
		if f.Cfg.Disabled || p.disabled[name] {
			continue
		}
		for _, a := range f.Cfg.Bind {
			want[a] = f
		}
	}
	// A listener is kept when a wanted bind names it by its configured
	// string or by the address it actually holds (":0" binds in tests).
	var errs []string
	next := map[string]*listener{}
	claimed := map[*listener]bool{}
	var toOpen []string
	for addr := range want {
		l := p.listeners[addr]
		if l == nil || claimed[l] {
			l = nil
			for _, cand := range p.listeners {
				if !claimed[cand] && cand.bound() == addr {
					l = cand
					break
				}
			}
		}
		if l == nil {
			toOpen = append(toOpen, addr)
			continue
		}
		claimed[l] = true
		l.fe.Store(want[addr])
		next[addr] = l
	}
	for _, l := range p.listeners {
		if !claimed[l] {
			l.close()
		}
	}
	sort.Strings(toOpen)
	if p.live.draining.Load() {
		toOpen = nil // stopping: nothing new listens
	}
	for _, addr := range toOpen {
		f := want[addr]
		l, err := listen(p, addr, f, ns.isVIP(addr))
		if err != nil {
			// A port in use is logged and survived; the rest keeps working.
			p.log.Error("cannot listen", "frontend", f.Name, "bind", addr, "err", err)
			errs = append(errs, fmt.Sprintf("frontend %q: %v", f.Name, err))
			continue
		}
		next[addr] = l
		if p.running() {
			l.start(p.ctx)
		}
	}
	p.listeners = next
	return errs
}

// SetFrontendEnabled stops (or resumes) accepting on a frontend's binds at
// runtime. Established connections are not touched.
func (p *Proxy) SetFrontendEnabled(name string, on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state.Load()
	if _, ok := st.frontends[name]; !ok {
		return fmt.Errorf("no frontend %q", name)
	}
	if on {
		delete(p.disabled, name)
	} else {
		p.disabled[name] = true
	}
	if errs := p.reconcileListeners(st); len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	p.bus.Publish(events.Event{
		Kind: events.FrontendState, Level: events.Notice, Subject: name,
		Message: fmt.Sprintf("frontend %s %s", name, map[bool]string{true: "enabled", false: "disabled"}[on]),
		Attrs:   map[string]string{"frontend": name, "state": map[bool]string{true: "enabled", false: "disabled"}[on]},
	})
	return nil
}

// FrontendEnabled reports whether a frontend is accepting.
func (p *Proxy) FrontendEnabled(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.state.Load().frontends[name]
	return ok && !f.Cfg.Disabled && !p.disabled[name]
}

func (p *Proxy) backendEmpty(b *Backend, empty bool) {
	// Logged as well as published: HAProxy's "backend X has no server
	// available!" is the line operators grep for.
	if empty {
		p.log.Error("backend has no server available", "backend", b.Name)
		p.bus.Publish(events.Event{
			Kind: events.BackendEmpty, Level: events.Alert, Subject: b.Name,
			Message: fmt.Sprintf("backend %s has no server available", b.Name),
			Attrs:   map[string]string{"backend": b.Name},
		})
		return
	}
	p.log.Info("backend has servers available again", "backend", b.Name)
	p.bus.Publish(events.Event{
		Kind: events.BackendAvailable, Level: events.Notice, Subject: b.Name,
		Message: fmt.Sprintf("backend %s has servers available again", b.Name),
		Attrs:   map[string]string{"backend": b.Name},
	})
}

// Backends returns the live backends in config order.
func (p *Proxy) Backends() []*Backend {
	st := p.state.Load()
	out := make([]*Backend, 0, len(st.border))
	for _, n := range st.border {
		out = append(out, st.backends[n])
	}
	return out
}

// Frontends returns the live frontends in config order.
func (p *Proxy) Frontends() []*Frontend {
	st := p.state.Load()
	out := make([]*Frontend, 0, len(st.order))
	for _, n := range st.order {
		out = append(out, st.frontends[n])
	}
	return out
}

// Backend returns a live backend or nil.
func (p *Proxy) Backend(name string) *Backend { return p.state.Load().backends[name] }

// Servers returns a backend's servers (nil if there is no such backend).
func (p *Proxy) Servers(backend string) []*upstream.Server {
	if b := p.Backend(backend); b != nil {
		return b.Servers
	}
	return nil
}

// Server returns one server or nil.
func (p *Proxy) Server(backend, name string) *upstream.Server {
	if b := p.Backend(backend); b != nil {
		return b.ServerByName(name)
	}
	return nil
}

// LocalHealthy reports whether the named frontends (all when empty) are
// enabled and listening and each of their backends has a usable server. It
// is what a VRRP "local proxy" track asks: can this node serve, even through
// another datacenter's servers?
func (p *Proxy) LocalHealthy(frontends []string) (bool, string) {
	return p.healthy(frontends, false)
}

// DatacenterHealthy is the stricter question the active-datacenter roll-up
// asks: every frontend listens and each backend can serve from this
// datacenter's own servers (untagged servers and servers of this
// datacenter, backups included). A datacenter whose own servers are all
// down still forwards across the WAN, but it should stop being the active
// one: that is what an operator failing Exchange over to the standby site
// means. A backend with no normal server of its own (all elsewhere by
// design) counts any usable server.
func (p *Proxy) DatacenterHealthy() (bool, string) {
	return p.healthy(nil, true)
}

func (p *Proxy) healthy(frontends []string, ownServers bool) (bool, string) {
	st := p.state.Load()
	names := frontends
	if len(names) == 0 {
		names = st.order
	}
	if len(names) == 0 {
		return false, "no frontend configured"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		f, ok := st.frontends[n]
		if !ok {
			return false, fmt.Sprintf("no frontend %q", n)
		}
		if f.Cfg.Disabled || p.disabled[n] {
			return false, fmt.Sprintf("frontend %s is disabled", n)
		}
		for _, a := range f.Cfg.Bind {
			if !p.listeningOn(a) {
				return false, fmt.Sprintf("frontend %s is not listening on %s", n, a)
			}
		}
		for _, bn := range f.backendNames() {
			b := st.backends[bn]
			if b == nil || !b.HasUsableServer() {
				return false, fmt.Sprintf("backend %s of frontend %s has no server up", bn, n)
			}
			if ownServers && !b.hasOwnUsableServer(p.opts.Datacenter) {
				return false, fmt.Sprintf("backend %s of frontend %s has no server of datacenter %s up", bn, n, p.opts.Datacenter)
			}
		}
	}
	return true, "ok"
}

// listeningOn reports whether a bind address is held. Caller holds p.mu.
func (p *Proxy) listeningOn(a string) bool {
	if _, ok := p.listeners[a]; ok {
		return true
	}
	for _, l := range p.listeners {
		if l.bound() == a {
			return true
		}
	}
	return false
}

// ListenAddrs returns the actual addresses listened on (with ports resolved
// for ":0" binds), by frontend; for tests and the demo banner.
func (p *Proxy) ListenAddrs() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]string{}
	for _, l := range p.listeners {
		f := l.fe.Load()
		out[f.Name] = append(out[f.Name], l.bound())
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// Config returns the snapshot last applied.
func (p *Proxy) Config() *config.Cluster {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

func serverCookie(s *config.Server) string { return cookieOf(s) }

// Frontend returns a live frontend or nil.
func (p *Proxy) Frontend(name string) *Frontend { return p.state.Load().frontends[name] }

// hasOwnUsableServer reports whether a server of datacenter dc (or one
// without a datacenter) can take a session. See DatacenterHealthy.
func (b *Backend) hasOwnUsableServer(dc string) bool {
	if dc == "" || (len(b.normal) == 0 && len(b.remote) > 0) {
		return b.HasUsableServer()
	}
	for _, s := range b.Servers {
		if d := s.Settings().Datacenter; (d == "" || d == dc) && s.Usable() {
			return true
		}
	}
	return false
}
