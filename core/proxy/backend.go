package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/balance"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
)

// Errors a connection attempt can end with; the HTTP mode maps them to
// 503/504 and the stats to their counters.
var (
	ErrNoServer     = errors.New("no server available")
	ErrQueueTimeout = errors.New("timed out in queue")
	ErrQueueFull    = errors.New("queue full")
)

// Backend is the live form of a config.Backend: its servers, balancing
// policies (normal and backup groups), queue and counters. A reload builds a
// new Backend and reuses Servers by key; sessions in flight keep the Backend
// they started with.
type Backend struct {
	Name     string
	Cfg      *config.Backend
	Servers  []*upstream.Server
	Counters *upstream.Counters

	// normal servers of the node's own datacenter come first, then the
	// normal servers elsewhere, then backups (DESIGN: local datacenter
	// first, backup servers last). Without datacenters on the servers,
	// remote is empty.
	normal, remote, backup []*upstream.Server
	pNormal, pRemote       balance.Policy
	pBackup                balance.Policy
	persist                Persister

	dialer  net.Dialer
	srcDial map[*upstream.Server]*srcDial // servers with a configured source
	// addrs are the servers' numeric addresses (a server named by a host
	// name has none): what the event loop connects to (tcploop).
	addrs   map[*upstream.Server]netip.AddrPort
	bus     *events.Bus
	onEmpty func(b *Backend, empty bool)
	// log and connWarn report failed connections to servers, at most once
	// per connWarnEvery per server (an unchecked server that is down would
	// otherwise fail silently but for the counters).
	log      *slog.Logger
	connWarn map[*upstream.Server]*connWarnState

	mu      sync.Mutex
	waiters []chan struct{}
	empty   bool
	byName  map[string]*upstream.Server
	// added holds the servers this backend gained in the Apply that made
	// it (the backend existed before, the server did not): see StartState.
	added map[*upstream.Server]bool
}

// StartState is the init_state server s (one of b's) starts in when its
// checks begin (config.Server.StartState).
func (b *Backend) StartState(s *upstream.Server) string {
	for i, sv := range b.Servers {
		if sv == s {
			return b.Cfg.Servers[i].StartState(b.added[s])
		}
	}
	return ""
}

func newBackend(cfg *config.Backend, servers []*upstream.Server, bus *events.Bus, localDC string) (*Backend, error) {
	b := &Backend{Name: cfg.Name, Cfg: cfg, Servers: servers, bus: bus, byName: map[string]*upstream.Server{}, Counters: &upstream.Counters{}}
	var err error
	if b.pNormal, err = balance.New(cfg.Balance); err != nil {
		return nil, fmt.Errorf("backend %q: %w", cfg.Name, err)
	}
	if b.pRemote, err = balance.New(cfg.Balance); err != nil {
		return nil, fmt.Errorf("backend %q: %w", cfg.Name, err)
	}
	if cfg.AllBackups {
		b.pBackup, _ = balance.New(config.Balance{Algorithm: "roundrobin"})
	} else {
		// HAProxy uses only the first usable backup server unless allbackups.
		b.pBackup, _ = balance.New(config.Balance{Algorithm: "first"})
	}
	b.connWarn = make(map[*upstream.Server]*connWarnState, len(servers))
	for i, s := range servers {
		if i < len(cfg.Servers) {
			if sd := newSrcDial(cfg.ServerSource(&cfg.Servers[i])); sd != nil {
				if b.srcDial == nil {
					b.srcDial = map[*upstream.Server]*srcDial{}
				}
				b.srcDial[s] = sd
			}
		}
		b.byName[s.Name] = s
		b.connWarn[s] = &connWarnState{}
		if ap, err := netip.ParseAddrPort(s.Addr); err == nil && ap.Addr().Zone() == "" {
			if b.addrs == nil {
				b.addrs = make(map[*upstream.Server]netip.AddrPort, len(servers))
			}
			b.addrs[s] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		st := s.Settings()
		switch {
		case st.Backup:
			b.backup = append(b.backup, s)
		case localDC != "" && st.Datacenter != "" && st.Datacenter != localDC:
			b.remote = append(b.remote, s)
		default:
			b.normal = append(b.normal, s)
		}
	}
	// No TCP keepalive toward servers unless asked (HAProxy's srvtcpka is
	// off by default); it costs four setsockopt calls per connection.
	b.dialer.KeepAlive = -1
	b.rebuild()
	return b, nil
}

// attach makes server state changes rebuild this backend's policies. Called
// once the backend is live (after the old one is detached).
func (b *Backend) attach() {
	for _, s := range b.Servers {
		s.SetOnChange(b.rebuild)
	}
	b.rebuild()
}

// rebuild refreshes the balancing snapshots and reports empty/available
// transitions.
func (b *Backend) rebuild() {
	b.pNormal.Update(b.normal)
	b.pRemote.Update(b.remote)
	b.pBackup.Update(b.backup)
	usable := false
	for _, s := range b.Servers {
		if s.Usable() {
			usable = true
			break
		}
	}
	b.mu.Lock()
	changed := b.empty == usable // was empty and now usable, or the reverse
	b.empty = !usable
	b.mu.Unlock()
	// A server became usable: queued connections may proceed.
	b.wakeAll()
	if changed && b.onEmpty != nil {
		b.onEmpty(b, !usable)
	}
}

// ServerByName returns the named server or nil.
func (b *Backend) ServerByName(name string) *upstream.Server { return b.byName[name] }

// HasUsableServer reports whether any server (normal or backup) takes new sessions.
func (b *Backend) HasUsableServer() bool {
	for _, s := range b.Servers {
		if s.Usable() {
			return true
		}
	}
	return false
}

// pick chooses among the local datacenter's normal servers, then the other
// normal servers, then backups (HAProxy: backups only when no normal server
// is usable). A group whose servers are up but full is not spilled over:
// the caller queues for it.
func (b *Backend) pick(r *balance.Request) *upstream.Server {
	for _, g := range [...]struct {
		p       balance.Policy
		servers []*upstream.Server
	}{{b.pNormal, b.normal}, {b.pRemote, b.remote}} {
		if s := g.p.Pick(r); s != nil {
			return s
		}
		for _, s := range g.servers {
			if s.Usable() && (r == nil || s != r.Exclude) {
				return nil
			}
		}
	}
	return b.pBackup.Pick(r)
}

// Pick chooses a server for a new session or flow without taking a slot:
// the direct-routing director counts its flows itself.
func (b *Backend) Pick(r *balance.Request) *upstream.Server { return b.pick(r) }

// anyUsable reports whether waiting in the queue can help.
func (b *Backend) anyUsable(exclude *upstream.Server) bool {
	for _, s := range b.Servers {
		if s != exclude && s.Usable() {
			return true
		}
	}
	return false
}

func (b *Backend) full() bool {
	m := b.Cfg.MaxConn
	return m > 0 && b.Counters.CurSessions.Load() >= int64(m)
}

// Lease is a granted slot on a server: the caller must call Release once
// the session ends. Callers keep it in their session state (Acquire and
// Connect fill it in) so that no allocation is made per session.
type Lease struct {
	Server *upstream.Server
	// Queued is how long the connection waited for the slot (Tw).
	Queued time.Duration
	// QueuePos is how many were waiting in the backend's queue when this
	// connection joined it (HAProxy's %bq; 0: not queued). Retries are
	// the connect attempts Connect retried (%rc).
	QueuePos, Retries int64
	b                 *Backend
	done              bool
}

// Release frees the slot and wakes one queued connection. Releasing twice,
// or a Lease that holds nothing, does nothing.
func (l *Lease) Release() {
	if l == nil || l.b == nil || l.done {
		return
	}
	l.done = true
	l.Server.Counters.SessionEnd()
	l.b.Counters.SessionEnd()
	l.b.wakeOne()
}

// Acquire picks a server and reserves a session slot on it into l, queueing
// up to timeout queue while every usable server (or the backend) is at
// maxconn. prefer, when usable, wins over balancing (persistence, routing
// hooks).
func (b *Backend) Acquire(ctx context.Context, r *balance.Request, prefer *upstream.Server, l *Lease) error {
	var deadline <-chan time.Time
	var queuedAt time.Time
	pos := int64(-1)
	for {
		if b.tryPick(r, prefer, l) {
			if !queuedAt.IsZero() {
				l.Queued = time.Since(queuedAt)
				l.QueuePos = pos
				b.Counters.QueueTime.Observe(l.Queued)
			}
			return nil
		}
		ex := (*upstream.Server)(nil)
		if r != nil {
			ex = r.Exclude
		}
		if !b.anyUsable(ex) && (prefer == nil || !prefer.UsableForPersistence()) {
			return ErrNoServer
		}
		// Everyone usable is full: queue.
		if mq := b.Cfg.MaxQueue; mq > 0 && b.Counters.Queued.Load() >= int64(mq) {
			b.Counters.Denied.Add(1)
			return ErrQueueFull
		}
		if deadline == nil {
			t := time.NewTimer(b.Cfg.Timeouts.Queue.D())
			defer t.Stop()
			deadline = t.C
		}
		if queuedAt.IsZero() {
			queuedAt = time.Now()
		}
		ch := make(chan struct{})
		b.mu.Lock()
		b.waiters = append(b.waiters, ch)
		b.mu.Unlock()
		q := b.Counters.Queued.Add(1)
		if pos < 0 {
			pos = q - 1
		}
		for {
			m := b.Counters.QueueMax.Load()
			if q <= m || b.Counters.QueueMax.CompareAndSwap(m, q) {
				break
			}
		}
		select {
		case <-ch:
			b.Counters.Queued.Add(-1)
		case <-deadline:
			b.Counters.Queued.Add(-1)
			b.dropWaiter(ch)
			b.Counters.QueueTimeouts.Add(1)
			return ErrQueueTimeout
		case <-ctx.Done():
			b.Counters.Queued.Add(-1)
			b.dropWaiter(ch)
			return ctx.Err()
		}
	}
}

// tryPick reserves a slot into l without waiting.
func (b *Backend) tryPick(r *balance.Request, prefer *upstream.Server, l *Lease) bool {
	if b.full() {
		return false
	}
	var s *upstream.Server
	if prefer != nil && prefer.UsableForPersistence() && !prefer.Full() && (r == nil || prefer != r.Exclude) {
		s = prefer
	} else {
		s = b.pick(r)
	}
	if s == nil {
		return false
	}
	// Reserve; a race past maxconn by a few concurrent pickers is undone.
	now := time.Now().UnixNano()
	n := s.Counters.SessionStartAt(now)
	if m := s.Settings().MaxConn; m > 0 && n > int64(m) {
		s.Counters.SessionEnd()
		s.Counters.TotalSessions.Add(^uint64(0))
		return false
	}
	b.Counters.SessionStartAt(now)
	*l = Lease{Server: s, b: b}
	return true
}

func (b *Backend) wakeOne() {
	b.mu.Lock()
	if len(b.waiters) == 0 {
		b.mu.Unlock()
		return
	}
	ch := b.waiters[0]
	b.waiters = b.waiters[1:]
	b.mu.Unlock()
	close(ch)
}

func (b *Backend) wakeAll() {
	b.mu.Lock()
	ws := b.waiters
	b.waiters = nil
	b.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

func (b *Backend) dropWaiter(ch chan struct{}) {
	b.mu.Lock()
	for i, w := range b.waiters {
		if w == ch {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			b.mu.Unlock()
			return
		}
	}
	b.mu.Unlock()
	// Already woken: pass the wake-up on so it is not lost.
	b.wakeOne()
}

// Connect acquires a server into l and dials it, with HAProxy's retries
// and redispatch: a failed connect is retried `retries` times; with
// redispatch, the last retry goes to another server (persistence is given
// up). On success the caller releases l once the session ends; on error l
// holds nothing.
func (b *Backend) Connect(ctx context.Context, client netip.Addr, r *balance.Request, prefer *upstream.Server, l *Lease) (net.Conn, error) {
	t := b.newConnectTry(client, r, prefer)
	return b.connectWith(ctx, client, &t, l)
}

// ConnectLeased is Connect for a caller that already holds l (it looked for
// an idle connection on l.Server first): the first attempt dials l.Server
// on that slot; retries and redispatch go on as Connect's.
func (b *Backend) ConnectLeased(ctx context.Context, client netip.Addr, r *balance.Request, l *Lease) (net.Conn, error) {
	t := b.newConnectTry(client, r, l.Server)
	t.held = true
	return b.connectWith(ctx, client, &t, l)
}

// connectTry is where a connection's attempts stand: Connect's loop, and
// the event loop's non-blocking attempts (tcploop), which hand it to
// connectWith when an attempt has to wait in the queue.
type connectTry struct {
	r          *balance.Request
	prefer     *upstream.Server
	attempt    int // attempts failed so far
	retries    int
	redispatch bool
	lastErr    error
	// held: the next attempt's slot is already in the lease
	// (ConnectLeased).
	held bool
}

func (b *Backend) newConnectTry(client netip.Addr, r *balance.Request, prefer *upstream.Server) connectTry {
	if r == nil {
		r = &balance.Request{Client: client}
	}
	t := connectTry{r: r, prefer: prefer, redispatch: b.Cfg.Redispatch != nil && *b.Cfg.Redispatch}
	if b.Cfg.Retries != nil {
		t.retries = *b.Cfg.Retries
	}
	return t
}

// connectWith runs the attempts left in t.
func (b *Backend) connectWith(ctx context.Context, client netip.Addr, t *connectTry, l *Lease) (net.Conn, error) {
	for {
		if t.held {
			t.held = false
		} else if err := b.Acquire(ctx, t.r, t.prefer, l); err != nil {
			if t.lastErr != nil && errors.Is(err, ErrNoServer) {
				return nil, t.lastErr
			}
			return nil, err
		}
		s := l.Server
		t0 := time.Now()
		c, err := b.dial(s, client, t0)
		if err == nil {
			b.connected(t, l, time.Since(t0))
			return c, nil
		}
		if !b.connectFailed(t, l, err) || ctx.Err() != nil {
			return nil, t.lastErr
		}
	}
}

// connected books a successful attempt on l that took tc.
func (b *Backend) connected(t *connectTry, l *Lease, tc time.Duration) {
	l.Retries = int64(t.attempt)
	l.Server.Counters.ConnectTime.Observe(tc)
	b.Counters.ConnectTime.Observe(tc)
}

// connectFailed books a failed attempt on l (and releases it), and says
// whether to try again: retry the same server, as HAProxy does, or, with
// redispatch, another one on the last retry (HAProxy's default interval
// -1), or at once when the server is not usable any more (marked down).
func (b *Backend) connectFailed(t *connectTry, l *Lease, err error) bool {
	s := l.Server
	// Passive health; the caller reports the success once the connection
	// is usable (after TLS to the server).
	s.ObserveConnect(err)
	l.Release()
	s.Counters.ConnErrors.Add(1)
	b.Counters.ConnErrors.Add(1)
	t.lastErr = fmt.Errorf("connecting to %s/%s (%s): %w", b.Name, s.Name, s.Addr, err)
	b.warnConnect(s, err)
	if t.attempt == t.retries {
		return false
	}
	t.attempt++
	s.Counters.Retries.Add(1)
	b.Counters.Retries.Add(1)
	if t.redispatch && (t.attempt == t.retries || !s.Usable()) {
		t.r.Exclude = s
		t.prefer = nil
		b.Counters.Redispatches.Add(1)
		s.Counters.Redispatches.Add(1)
	} else if t.prefer == nil {
		t.prefer = s
	}
	return true
}

// dial connects to s within timeout connect, under a deadline context of
// its own rather than one derived from ctx: deriving would register every
// dial with the proxy's long-lived context (a shared lock and a map entry
// per connection). A proxy shutting down therefore lets a dial run out its
// connect timeout. (Dialer.DialTCP with a netip.AddrPort would skip parsing
// the address, but with no local address it binds to 0.0.0.0:0 before
// connecting: one more syscall, and bind's port allocation cannot share a
// source port between destinations, so busy proxies run out of ports.)
func (b *Backend) dial(s *upstream.Server, client netip.Addr, now time.Time) (net.Conn, error) {
	d, err := b.srcDial[s].dialer(&b.dialer, client)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithDeadline(context.Background(), now.Add(b.Cfg.Timeouts.Connect.D()))
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", s.Addr)
	if err == nil && config.Flag(b.Cfg.TCPKeepAlive) {
		setKeepAlive(c)
	}
	return c, err
}

// setKeepAlive turns TCP keepalive on with the kernel's timings, as
// HAProxy's tcpka options do (one setsockopt; Go's own defaults would
// probe every 15s).
func setKeepAlive(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1})
	}
}

// connWarnEvery bounds the failed-connection warnings: one per server per
// period, with the number of failures it stands for.
const connWarnEvery = 10 * time.Second

type connWarnState struct {
	last       atomic.Int64 // unix nanoseconds of the last warning
	suppressed atomic.Int64 // failures since
}

// warnConnect logs a failed connection to s (connect or TLS handshake),
// rate-limited per server.
func (b *Backend) warnConnect(s *upstream.Server, err error) {
	w := b.connWarn[s]
	if b.log == nil || w == nil {
		return
	}
	now := time.Now().UnixNano()
	last := w.last.Load()
	if (last != 0 && now-last < int64(connWarnEvery)) || !w.last.CompareAndSwap(last, now) {
		w.suppressed.Add(1)
		return
	}
	args := []any{"backend", b.Name, "server", s.Name, "addr", s.Addr, "err", err,
		"failures_since_last_warning", w.suppressed.Swap(0)}
	if b.clientSource(s) && isTimeout(err) {
		// The usual cause, which nothing on this node can see.
		args = append(args, "hint", "usesrc clientip: the server's replies to client addresses must come back through this node "+
			"(the server's default route) and be delivered locally (source setup_routing); see docs/forwarding.md")
	}
	b.log.Warn("cannot connect to server", args...)
}
