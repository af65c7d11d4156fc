// Package dr is the direct-routing datapath (mode dr, LVS-DR without IPVS):
// the node that holds a VIP receives the frames sent to it for the VIP's
// port on an AF_PACKET socket and sends each one on, unchanged but for its
// Ethernet addresses, to the chosen server on the same link. Where the
// kernel allows it, an XDP program (fastpath.go, xdp_linux.go) forwards
// the later packets of the flows placed that way without user space. The
// servers hold the VIP on a loopback and answer the client themselves, so
// replies never cross the director and the servers see the client's
// address.
//
// A flow table keeps every flow on its server while servers come and go;
// new flows use the backend's algorithm (maglev by default: a consistent
// hash of the 5-tuple, so that the other director, on a failover, places
// an established flow where this one did). Health, admin states, weights
// and counters are the proxy's (the backend and its servers are the same
// objects): Options.Backend hands them in.
//
// The kernel must not own the VIP (it would answer or reset the packets
// itself): the VRRP master answers ARP for it instead of adding it to an
// interface (cluster/vrrp), and the kernel drops what it does not own.
package dr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/balance"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// Pool is a backend as the director uses it: the proxy's backend (its
// servers' health, admin state and weights, its algorithm) and counters.
type Pool struct {
	Pick     func(r *balance.Request) *upstream.Server
	Servers  []*upstream.Server
	Counters *upstream.Counters
}

// Options configure a Director.
type Options struct {
	Log  *slog.Logger
	Node *config.Node
	// Backend returns the live backend by name (ok false: none).
	Backend func(name string) (Pool, bool)
	// Open opens an interface's datapath (default: AF_PACKET).
	Open func(ifname string) (Link, error)
}

// Link is one interface's frame I/O.
type Link interface {
	// Read reads one frame into b, waiting at most until deadline.
	Read(b []byte, deadline time.Time) (n int, err error)
	// Write sends the frame Read returned last, rewritten in place, to
	// the hardware address dst (with what the kernel said of it on
	// receipt: aggregated segments, checksum to compute).
	Write(f []byte, dst [6]byte) error
	// Filter limits what Read returns to IPv4 frames for these addresses,
	// addressed to this host's MAC.
	Filter(vips []netip.Addr) error
	// MAC is the interface's hardware address.
	MAC() [6]byte
	// Resolve finds a neighbour's hardware address (ok false: unknown yet).
	Resolve(ip netip.Addr) ([6]byte, bool)
	// OnLink reports whether ip is reached directly on this link (no router).
	OnLink(ip netip.Addr) bool
	// Blackhole keeps the kernel from routing the VIPs' packets itself
	// when IPv4 forwarding is on for the link (blackhole routes, removed
	// by Close); it reports whether it installed any.
	Blackhole(vips []netip.Addr) (bool, error)
	Close() error
}

// service is one mode dr frontend.
type service struct {
	name    string
	backend string
	key     svcKey
	persist time.Duration // stick on src expiry (persistence_timeout), 0 = none
	// shutdown names the servers whose flows end when they go down
	// (on_marked_down: shutdown-sessions).
	shutdown map[string]bool
	servers  map[netip.Addr]bool // the configured servers' addresses
}

type svcKey struct {
	vip   [4]byte
	port  uint16
	proto uint8
}

// Director forwards the packets of the mode dr frontends.
type Director struct {
	o   Options
	log *slog.Logger

	// xdpOK: the links are the kernel's interfaces (the default Open), to
	// which an XDP program can be attached.
	xdpOK bool

	mu      sync.Mutex
	ctx     context.Context
	want    map[string][]*service // by interface
	links   map[string]*linkRunner
	started bool
}

// New makes a director; Apply gives it its frontends, Run starts it.
func New(o Options) *Director {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	xdpOK := o.Open == nil
	if o.Open == nil {
		o.Open = OpenPacket
	}
	return &Director{o: o, log: o.Log.With("sub", "dr"), links: map[string]*linkRunner{}, xdpOK: xdpOK}
}

// Name implements the node's subsystem interface.
func (d *Director) Name() string { return "dr" }

// Services builds the mode dr frontends of c for the node, by interface.
func Services(c *config.Cluster, node *config.Node) (map[string][]*service, error) {
	name := ""
	if node != nil {
		name = node.Name
	}
	c = c.ForNode(node)
	out := map[string][]*service{}
	var errs []error
	for i := range c.Frontends {
		f := &c.Frontends[i]
		if f.Mode != config.ModeDR || f.Disabled {
			continue
		}
		vip, ok := c.DRFrontendVIP(f, name)
		if !ok {
			errs = append(errs, fmt.Errorf("frontend %q: no vrrp instance of this node holds %s", f.Name, strings.Join(f.Bind, " ")))
			continue
		}
		s := &service{name: f.Name, backend: f.DefaultBackend, shutdown: map[string]bool{}, servers: map[netip.Addr]bool{}}
		s.key.vip = vip.Addr.Addr().As4()
		s.key.port = vip.Addr.Port()
		s.key.proto = protoTCP
		if f.Protocol == config.ProtoUDP {
			s.key.proto = protoUDP
		}
		if b := c.Backend(f.DefaultBackend); b != nil {
			if b.Stick != nil && b.Stick.On == config.StickOnSrc {
				s.persist = 30 * time.Minute
				for _, t := range c.StickTables {
					if t.Name == b.Stick.Table && t.Expire > 0 {
						s.persist = t.Expire.D()
					}
				}
			}
			for _, sv := range b.Servers {
				if sv.OnMarkedDown == "shutdown-sessions" {
					s.shutdown[sv.Name] = true
				}
				if ap, err := netip.ParseAddrPort(sv.Address); err == nil {
					s.servers[ap.Addr()] = true
				}
			}
		}
		out[vip.Interface] = append(out[vip.Interface], s)
	}
	return out, errors.Join(errs...)
}

// Apply reconciles the forwarded services to c. Flows of kept services
// stay where they are.
func (d *Director) Apply(c *config.Cluster) error {
	want, err := Services(c, d.o.Node)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.want = want
	if d.started {
		if rerr := d.reconcileLocked(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

func (d *Director) reconcileLocked() error {
	var errs []error
	for name, l := range d.links {
		if len(d.want[name]) == 0 {
			l.stop()
			delete(d.links, name)
		}
	}
	for name, svcs := range d.want {
		l := d.links[name]
		if l == nil {
			lk, err := d.o.Open(name)
			if err != nil {
				errs = append(errs, fmt.Errorf("mode dr on %s: %w", name, err))
				continue
			}
			l = newLinkRunner(d, name, lk)
			d.fastPath(l)
			d.links[name] = l
			l.setServices(svcs)
			l.start(d.ctx)
			continue
		}
		l.setServices(svcs)
	}
	return errors.Join(errs...)
}

// Run forwards until ctx ends.
func (d *Director) Run(ctx context.Context) error {
	d.mu.Lock()
	d.ctx, d.started = ctx, true
	if err := d.reconcileLocked(); err != nil {
		d.log.Error("direct routing: some interfaces did not start", "err", err)
	}
	d.mu.Unlock()
	<-ctx.Done()
	d.mu.Lock()
	for name, l := range d.links {
		l.stop()
		delete(d.links, name)
	}
	// An Apply after Run has returned must not open links that nothing
	// will ever close.
	d.started = false
	d.mu.Unlock()
	return nil
}

// linkRunner is one interface: its reader (which owns the flow table) and
// its neighbour resolver.
type linkRunner struct {
	d      *Director
	name   string
	link   Link
	mac    [6]byte
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	svcs  map[svcKey]*service // replaced whole on Apply
	neigh map[netip.Addr]*neighbour
	poke  chan struct{}

	// Owned by the reader goroutine.
	flows *flowTable
	tmpl  map[string]*templates // by frontend
	// drops by reason, for the log (reader only).
	noMAC, noServer, full, oversize uint64
	// aggregated counts frames above the Ethernet MTU (GRO), sent on as
	// segments by the kernel (reader only, for the debug log).
	aggregated uint64
	// nflows is the flow table's size at the last sweep, and forwarded
	// and dropped the frames so far (for Status).
	nflows             atomic.Int64
	forwarded, dropped atomic.Uint64

	// xdp is the fast path (nil: AF_PACKET alone), datapath its name for
	// Status, kc its counter slots (reader only) and xdpForwarded what it
	// forwarded, as of the last sweep.
	xdp          *xdpPath
	datapath     string
	kc           kernelCounters
	xdpForwarded atomic.Uint64
}

// LinkStatus is one interface of the director, for the admin API's
// status section "dr".
type LinkStatus struct {
	Interface string `json:"interface"`
	// Datapath is how frames are forwarded: xdp (the XDP fast path, with
	// AF_PACKET for what it passes on) or af_packet.
	Datapath string `json:"datapath"`
	// XDPMode is where the XDP program is attached: native (in the
	// driver) or generic.
	XDPMode  string   `json:"xdp_mode,omitempty"`
	Services []string `json:"services"`
	Flows    int64    `json:"flows"`
	// Forwarded counts every frame sent on, XDPForwarded those of them
	// the XDP program sent (read each second).
	Forwarded    uint64 `json:"forwarded_frames"`
	XDPForwarded uint64 `json:"xdp_forwarded_frames"`
	Dropped      uint64 `json:"dropped_frames"`
}

// Status lists the interfaces the director forwards on, sorted.
func (d *Director) Status() []LinkStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []LinkStatus{}
	for name, l := range d.links {
		x := l.xdpForwarded.Load()
		st := LinkStatus{Interface: name, Datapath: l.datapath, Flows: l.nflows.Load(), Forwarded: l.forwarded.Load() + x, XDPForwarded: x, Dropped: l.dropped.Load()}
		if l.xdp != nil {
			st.XDPMode = l.xdp.mode
		}
		for _, s := range d.want[name] {
			st.Services = append(st.Services, s.name)
		}
		slices.Sort(st.Services)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b LinkStatus) int { return strings.Compare(a.Interface, b.Interface) })
	return out
}

func newLinkRunner(d *Director, name string, l Link) *linkRunner {
	return &linkRunner{d: d, name: name, link: l, mac: l.MAC(), neigh: map[netip.Addr]*neighbour{}, poke: make(chan struct{}, 1),
		flows: newFlowTable(), tmpl: map[string]*templates{}, datapath: config.DatapathAFPacket}
}

func (l *linkRunner) setServices(svcs []*service) {
	m := map[svcKey]*service{}
	var vips []netip.Addr
	addrs := map[netip.Addr]bool{}
	for _, s := range svcs {
		m[s.key] = s
		if a := netip.AddrFrom4(s.key.vip); !slices.Contains(vips, a) {
			vips = append(vips, a)
		}
		for a := range s.servers {
			addrs[a] = true
		}
	}
	// A new map each time: the reader and the resolver keep reading the
	// one they took (snapshot) without the lock. Known neighbours carry
	// over with their addresses.
	l.mu.Lock()
	neigh := make(map[netip.Addr]*neighbour, len(addrs))
	for a := range addrs {
		if n := l.neigh[a]; n != nil {
			neigh[a] = n
		} else {
			neigh[a] = &neighbour{addr: a}
		}
	}
	l.svcs, l.neigh = m, neigh
	l.mu.Unlock()
	if err := l.link.Filter(vips); err != nil {
		l.d.log.Error("direct routing: socket filter", "interface", l.name, "err", err)
	}
	if on, err := l.link.Blackhole(vips); err != nil {
		l.d.log.Error("direct routing: IPv4 forwarding is on for the interface and the VIPs' blackhole routes could not be installed: the kernel will also route their packets (duplicates, ICMP errors); set net.ipv4.conf."+l.name+".forwarding=0",
			"interface", l.name, "err", err)
	} else if on {
		l.d.log.Info("direct routing: IPv4 forwarding is on for the interface: the VIPs are routed to a blackhole, so that the kernel does not route their packets beside the director", "interface", l.name, "vips", vips)
	}
	l.wake()
}

func (l *linkRunner) wake() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

func (l *linkRunner) start(ctx context.Context) {
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		l.read(ctx)
	}()
	go func() {
		defer wg.Done()
		l.resolve(ctx)
	}()
	go func() {
		wg.Wait()
		close(l.done)
	}()
}

func (l *linkRunner) stop() {
	l.cancel()
	<-l.done
	if l.xdp != nil {
		if err := l.xdp.close(); err != nil {
			l.d.log.Error("direct routing: detaching the XDP program", "interface", l.name, "err", err)
		}
	}
	_ = l.link.Close()
}

// services and neighbours as the reader sees them.
func (l *linkRunner) snapshot() (map[svcKey]*service, map[netip.Addr]*neighbour) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.svcs, l.neigh
}

// read is the hot path: a frame in, a frame out.
func (l *linkRunner) read(ctx context.Context) {
	buf := make([]byte, 1<<16)
	svcs, neigh := l.snapshot()
	lastSweep := time.Now()
	for ctx.Err() == nil {
		n, err := l.link.Read(buf, time.Now().Add(time.Second))
		now := time.Now()
		if now.Sub(lastSweep) >= time.Second {
			svcs, neigh = l.snapshot()
			l.sweep(now, svcs, neigh)
			lastSweep = now
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
				continue
			}
			l.d.log.Error("direct routing: read", "interface", l.name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		l.forward(buf[:n], svcs, neigh, now.UnixNano())
	}
	// The program and its map go with stop: not one delete per flow
	// (up to a million system calls) before that.
	l.flows.kernel = nil
	l.flows.clear()
	l.kernelCount(nil)
}

// forward sends one frame on, or drops it.
func (l *linkRunner) forward(f []byte, svcs map[svcKey]*service, neigh map[netip.Addr]*neighbour, now int64) {
	pi, ok := parse(f)
	if !ok {
		return
	}
	svc := svcs[svcKey{vip: pi.key.dst, port: pi.key.dport, proto: pi.key.proto}]
	if svc == nil {
		return
	}
	fl := l.flows.lookup(pi.key, now)
	if fl != nil && fl.newConnection(pi.key.proto, pi.tcpFlags) {
		l.flows.remove(pi.key, fl, now)
		fl = nil
	}
	tabled := true // fl is the table's entry
	if fl == nil {
		srv, counters := l.place(svc, pi.key, now)
		if srv == nil {
			l.noServer++
			l.dropped.Add(1)
			return
		}
		if fl, ok = l.flows.add(pi.key, srv, counters, now); !ok {
			l.full++
			fl = &flow{srv: srv, backend: counters}
			tabled = false
		}
	}
	fl.touch(pi.key.proto, pi.tcpFlags, now)
	if svc.persist > 0 {
		t := l.templates(svc).put(pi.key.client(), fl.srv, now, int64(svc.persist))
		if tabled && fl.tmpl == nil && t != nil {
			fl.tmpl = t
			t.flows++
		}
	}
	nb := neigh[serverAddr(fl.srv)]
	var mac [6]byte
	if nb == nil || !nb.get(&mac) {
		l.noMAC++
		l.dropped.Add(1)
		l.wake()
		return
	}
	if len(f) > ethHeader+1500 {
		l.aggregated++
	}
	// Into the kernel's map before the frame goes: the client's next
	// packet (the handshake's ACK) cannot exist before this one is sent,
	// so it cannot take user space while later ones take XDP and overtake it.
	if tabled && l.xdp != nil && (!fl.inKernel || fl.mac != mac) {
		l.toKernel(pi.key, fl, mac)
	}
	rewrite(f, mac, l.mac)
	if err := l.link.Write(f, mac); err != nil {
		l.dropped.Add(1)
		l.oversize++
		if l.oversize == 1 || l.oversize%10000 == 0 {
			l.d.log.Warn("direct routing: cannot send a frame on",
				"interface", l.name, "len", len(f), "err", err, "count", l.oversize)
		}
		return
	}
	l.forwarded.Add(1)
	fl.srv.Counters.PacketsIn.Add(1)
	fl.srv.Counters.BytesIn.Add(uint64(pi.ipLen))
	if fl.backend != nil {
		fl.backend.PacketsIn.Add(1)
		fl.backend.BytesIn.Add(uint64(pi.ipLen))
	}
}

// place chooses the server of a new flow: the client's template
// (persistence), else the backend's algorithm.
func (l *linkRunner) place(svc *service, k flowKey, now int64) (*upstream.Server, *upstream.Counters) {
	pool, ok := l.d.o.Backend(svc.backend)
	if !ok {
		return nil, nil
	}
	if svc.persist > 0 {
		if s := l.templates(svc).get(k.client(), now); s != nil && s.UsableForPersistence() && slices.Contains(pool.Servers, s) {
			return s, pool.Counters
		}
	}
	return pool.Pick(&balance.Request{Client: k.client(), Flow: k.hash()}), pool.Counters
}

func (l *linkRunner) templates(svc *service) *templates {
	t := l.tmpl[svc.name]
	if t == nil {
		t = &templates{}
		l.tmpl[svc.name] = t
	}
	return t
}

// sweep expires flows and templates, and forgets the flows whose server is
// no longer configured or went down with shutdown-sessions.
func (l *linkRunner) sweep(now time.Time, svcs map[svcKey]*service, neigh map[netip.Addr]*neighbour) {
	live := map[*upstream.Server]bool{}
	shut := map[*upstream.Server]bool{}
	names := map[string]bool{}
	for _, s := range svcs {
		names[s.name] = true
		pool, ok := l.d.o.Backend(s.backend)
		if !ok {
			continue
		}
		for _, sv := range pool.Servers {
			live[sv] = true
			if s.shutdown[sv.Name] {
				shut[sv] = true
			}
		}
	}
	// A flow of a frontend no longer forwarded goes too: user space would
	// not forward its packets any more, and the XDP program must not.
	l.flows.sweep(now.UnixNano(), func(k flowKey, s *upstream.Server) bool {
		return !live[s] || (shut[s] && s.Health() == upstream.Down) || svcs[svcKey{vip: k.dst, port: k.dport, proto: k.proto}] == nil
	})
	if l.xdp != nil {
		l.kernelCount(live)
		l.kernelMACs(neigh)
	}
	l.nflows.Store(int64(l.flows.len()))
	for name, t := range l.tmpl {
		if !names[name] {
			delete(l.tmpl, name)
			continue
		}
		t.sweep(now.UnixNano())
	}
	if l.noMAC+l.noServer+l.full+l.aggregated > 0 {
		l.d.log.Debug("direct routing: last second", "interface", l.name, "dropped_no_mac", l.noMAC, "dropped_no_server", l.noServer,
			"table_full", l.full, "aggregated_frames", l.aggregated)
		l.noMAC, l.noServer, l.full, l.aggregated = 0, 0, 0, 0
	}
}

// serverAddr is a server's IP address (its configured "ip:port").
func serverAddr(s *upstream.Server) netip.Addr {
	ap, err := netip.ParseAddrPort(s.Addr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// neighbour is a server's hardware address, found by the resolver.
type neighbour struct {
	addr netip.Addr
	mu   sync.Mutex
	mac  [6]byte
	ok   bool
	// moved: the address changed since the reader last asked (the XDP
	// fast path's flows to the server must follow).
	moved bool
	// warned: the server is not on this link (logged once).
	warned bool
}

func (n *neighbour) get(mac *[6]byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	*mac = n.mac
	return n.ok
}

func (n *neighbour) set(mac [6]byte) {
	n.mu.Lock()
	if n.ok && n.mac != mac {
		n.moved = true
	}
	n.mac, n.ok = mac, true
	n.mu.Unlock()
}

// resolve keeps the servers' hardware addresses current: at once when the
// reader misses one, and every second (a replaced server's new MAC).
func (l *linkRunner) resolve(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		_, neigh := l.snapshot()
		for _, n := range neigh {
			if !l.link.OnLink(n.addr) {
				if !n.warned {
					n.warned = true
					l.d.log.Error("direct routing: a server is not on the director's link (direct routing reaches only servers on the same L2 segment, without a router between)",
						"interface", l.name, "server", n.addr)
				}
				continue
			}
			if mac, ok := l.link.Resolve(n.addr); ok {
				n.set(mac)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.poke:
		}
	}
}
