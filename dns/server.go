package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vipgate/vipgate/core/accept"
	"github.com/vipgate/vipgate/core/config"
)

// Options configure a Server.
type Options struct {
	// Listen are host:port addresses served on UDP and TCP. Port 0 picks
	// one free port shared by every socket of that address.
	Listen []string
	// Sockets per UDP address, spread by the kernel with SO_REUSEPORT
	// (default: one per CPU).
	Sockets int
	State   State
	Log     *slog.Logger
}

// Server is the authoritative DNS server. Apply hands it a config; Run
// serves until the context ends.
type Server struct {
	log     *slog.Logger
	state   State
	listen  []string
	sockets int
	stats   *Stats
	snap    atomic.Pointer[snapshot]
	hooks   atomic.Pointer[HookResolver]

	// hookLogged rate-limits hook error logs (unix nanoseconds).
	hookLogged atomic.Int64

	tcpPool sync.Pool
	// tcpCfg is the TCP connection limits of the config applied last.
	tcpCfg atomic.Pointer[config.DNSTCP]
	// tcpClients counts open TCP connections by client (tcpClientKey).
	tcpMu      sync.Mutex
	tcpClients map[netip.Addr]int
	// notifyCh carries zones whose serial changed to the notifier (Run).
	notifyCh chan string

	mu      sync.Mutex
	serials map[string]serialState
	rrlCfg  config.DNSRRL
	rrl     *rrl
	udp     []*net.UDPConn
	tcp     []net.Listener
}

type serialState struct {
	hash   [32]byte
	serial uint32
}

// New returns a server; it does not listen until Listen or Run.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Sockets <= 0 {
		o.Sockets = runtime.NumCPU()
	}
	if o.State == nil {
		o.State = &StaticState{}
	}
	return &Server{log: o.Log, state: o.State, listen: o.Listen, sockets: o.Sockets, stats: newStats(), serials: map[string]serialState{}, tcpClients: map[netip.Addr]int{}, notifyCh: make(chan string, 64)}
}

// Name implements the node's subsystem interface.
func (s *Server) Name() string { return "dns" }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return s.stats }

// SetHookResolver installs the resolver of service hooks (Lua).
func (s *Server) SetHookResolver(r HookResolver) {
	if r == nil {
		s.hooks.Store(nil)
		return
	}
	s.hooks.Store(&r)
}

// Apply compiles the DNS section of c and switches to it atomically. A
// zone's serial moves forward whenever what it serves changed.
func (s *Server) Apply(c *config.Cluster) error {
	snap, err := compile(c, s.stats)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	tcp := c.DNS.TCP
	s.tcpCfg.Store(&tcp)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var notify []string
	for _, z := range snap.zones {
		prev, had := s.serials[z.apex]
		serial := z.soa.Serial
		repl := c.ZoneSerials[z.apex]
		switch {
		case serial != 0: // set by the operator
		case repl != 0 && (!had || repl == prev.serial || serialGreater(repl, prev.serial)):
			// Decided in the replicated state: the same on every node.
			serial = repl
		case had && prev.hash == z.hash:
			serial = prev.serial
		default:
			serial = config.NextSerial(prev.serial, had, now)
		}
		z.soa.Serial = serial
		neg := *z.soa
		neg.Hdr.Ttl = min(z.soa.Hdr.Ttl, z.soa.Minttl)
		z.negSOA = &neg
		s.serials[z.apex] = serialState{hash: z.hash, serial: serial}
		if (!had || prev.serial != serial) && len(z.notify) > 0 {
			notify = append(notify, z.apex)
		}
	}
	if s.rrl == nil || !rrlEqual(s.rrlCfg, c.DNS.RRL) {
		s.rrl, s.rrlCfg = newRRL(c.DNS.RRL), c.DNS.RRL
	}
	snap.rrl = s.rrl
	s.snap.Store(snap)
	s.stats.retain(snap)
	for _, apex := range notify {
		select {
		case s.notifyCh <- apex:
		default:
			s.log.Warn("dns notify queue full; secondaries will poll", "zone", apex)
		}
	}
	return nil
}

func rrlEqual(a, b config.DNSRRL) bool {
	sa, sb := -1, -1
	if a.Slip != nil {
		sa = *a.Slip
	}
	if b.Slip != nil {
		sb = *b.Slip
	}
	return a.ResponsesPerSecond == b.ResponsesPerSecond && a.Burst == b.Burst && sa == sb && a.IPv4Prefix == b.IPv4Prefix && a.IPv6Prefix == b.IPv6Prefix
}

// logHookError logs at most one hook failure per 10 seconds: a broken
// script must not flood the log at query rate (hook_errors counts them all).
func (s *Server) logHookError(svc *service, err error) {
	now := time.Now().UnixNano()
	last := s.hookLogged.Load()
	if now-last < int64(10*time.Second) || !s.hookLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("dns hook failed; answering by policy", "service", svc.cfgName, "hook", svc.hook, "err", err, "errors_total", s.stats.HookErrors.Load())
}

// Serial returns the current serial of zone apex (for tests and status).
func (s *Server) Serial(apex string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serials[mdns.Fqdn(apex)].serial
}

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// Listen opens the sockets; Run calls it when it was not called before.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.udp) > 0 || len(s.tcp) > 0 {
		return nil
	}
	lc := net.ListenConfig{Control: reusePort}
	for _, a := range s.listen {
		var err error
		for try := 0; try < 20; try++ {
			err = s.listenOne(lc, a)
			if err == nil || !errors.Is(err, errPortRace) {
				break
			}
		}
		if err != nil {
			s.closeLocked()
			return err
		}
	}
	return nil
}

var errPortRace = errors.New("port free for TCP is taken for UDP")

func (s *Server) listenOne(lc net.ListenConfig, a string) error {
	ctx := context.Background()
	// TCP first: with port 0 the kernel then picks a port free for TCP,
	// where ephemeral ports of busy client connections live; UDP ports
	// are rarely taken. Every other socket binds the port it got.
	// One TCP socket, without SO_REUSEPORT: sharing the port is for the
	// UDP sockets (one per core). With it, a frontend of this process
	// bound to the same address (with its own SO_REUSEPORT sockets) would
	// silently split the connections with DNS instead of failing.
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", a)
	if err != nil {
		return fmt.Errorf("dns listen tcp %s: %w", a, err)
	}
	bound := ln.Addr().String()
	var udp []*net.UDPConn
	for i := 0; i < s.sockets; i++ {
		pc, err := lc.ListenPacket(ctx, "udp", bound)
		if err != nil {
			ln.Close()
			for _, c := range udp {
				c.Close()
			}
			if _, port, _ := net.SplitHostPort(a); port == "0" && i == 0 {
				return errPortRace
			}
			return fmt.Errorf("dns listen udp %s (socket %d): %w", bound, i+1, err)
		}
		udp = append(udp, pc.(*net.UDPConn))
	}
	s.udp = append(s.udp, udp...)
	s.tcp = append(s.tcp, ln)
	return nil
}

func (s *Server) closeLocked() {
	for _, c := range s.udp {
		c.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
	s.udp, s.tcp = nil, nil
}

// Addrs returns the bound addresses (one per listen address, UDP and TCP
// share it).
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []netip.AddrPort
	for _, l := range s.tcp {
		out = append(out, l.Addr().(*net.TCPAddr).AddrPort())
	}
	return out
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	udp, tcp := s.udp, s.tcp
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range udp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveUDP(ctx, c)
		}()
	}
	for _, l := range tcp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveTCP(ctx, l)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.notifier(ctx)
	}()
	s.log.Info("dns serving", "addrs", s.Addrs(), "udp_sockets", len(udp))
	<-ctx.Done()
	s.mu.Lock()
	s.closeLocked()
	s.mu.Unlock()
	wg.Wait()
	return nil
}

// udpBatch is how many datagrams one recvmmsg/sendmmsg moves: under load
// the system calls, not the answers, are the cost (see the profile in
// docs/dns.md), and batching divides them.
const udpBatch = 32

// batchConn is what x/net's ipv4/ipv6 PacketConn offer (the same Message
// type for both).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func (s *Server) serveUDP(ctx context.Context, c *net.UDPConn) {
	var bc batchConn
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
		bc = ipv4.NewPacketConn(c)
	} else {
		bc = ipv6.NewPacketConn(c)
	}
	w := newWorker(s)
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 65535)}
		out[i].Buffers = [][]byte{make([]byte, 0, 65535)}
	}
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("dns udp read", "err", err)
			continue
		}
		s.stats.UDP.Add(uint64(n))
		snap := s.snap.Load()
		k := 0
		for i := 0; i < n; i++ {
			ua, ok := in[i].Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			src := ua.AddrPort()
			reply := w.handle(in[i].Buffers[0][:in[i].N], src.Addr(), false)
			if reply == nil {
				continue
			}
			if snap != nil && snap.rrl != nil {
				switch snap.rrl.check(src.Addr(), w.rrl, time.Now()) {
				case rrlDrop:
					s.stats.RRLDropped.Add(1)
					continue
				case rrlSlip:
					s.stats.RRLSlipped.Add(1)
					if reply = w.slipped(); reply == nil {
						continue
					}
				}
			}
			out[k].Buffers[0] = append(out[k].Buffers[0][:0], reply...)
			out[k].Addr = ua
			k++
		}
		for sent := 0; sent < k; {
			m, err := bc.WriteBatch(out[sent:k], 0)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Debug("dns udp write", "err", err)
				}
				// Skip the datagram that failed (e.g. an unreachable
				// client) and go on with the rest.
				m = max(m, 1)
			}
			sent += m
		}
	}
}

// tcpLimits are the TCP limits in force: the applied config's, or its
// defaults before the first Apply.
func (s *Server) tcpLimits() config.DNSTCP {
	if t := s.tcpCfg.Load(); t != nil {
		return *t
	}
	return config.DNSTCP{
		PerClient: config.DefaultDNSTCPPerClient, MaxConnections: config.DefaultDNSTCPMaxConnections,
		IdleTimeout: config.Duration(config.DefaultDNSTCPIdleTimeout),
	}
}

// tcpClientKey is what the per-client limit counts by: the address, or
// for IPv6 its /64 (one host commonly holds a whole /64, so counting
// addresses would not bound it).
func tcpClientKey(c net.Conn) netip.Addr {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	a := ta.AddrPort().Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// tcpAdmit takes one of the client's connection slots; false when it holds
// them all.
func (s *Server) tcpAdmit(k netip.Addr, limit int) bool {
	s.tcpMu.Lock()
	defer s.tcpMu.Unlock()
	if s.tcpClients[k] >= limit {
		return false
	}
	s.tcpClients[k]++
	return true
}

func (s *Server) tcpRelease(k netip.Addr) {
	s.tcpMu.Lock()
	defer s.tcpMu.Unlock()
	if s.tcpClients[k] <= 1 {
		delete(s.tcpClients, k)
		return
	}
	s.tcpClients[k]--
}

// serveTCP accepts on l. One client may hold dns.tcp.per_client
// connections and the listener dns.tcp.max_connections: past either, a new
// connection is closed at once (idle or slow clients cannot exhaust
// memory, and one client cannot take the slots of every other one:
// RFC 7766 section 10).
func (s *Server) serveTCP(ctx context.Context, l net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var open atomic.Int64
	for {
		c, err := accept.Next(ctx, l, s.log)
		if err != nil {
			return
		}
		lim := s.tcpLimits()
		k := tcpClientKey(c)
		if open.Load() >= int64(lim.MaxConnections) || !s.tcpAdmit(k, lim.PerClient) {
			s.stats.TCPRefused.Add(1)
			c.Close()
			continue
		}
		open.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer open.Add(-1)
			defer s.tcpRelease(k)
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			defer c.Close()
			s.serveConn(c)
		}()
	}
}

// tcpScratch is a worker with its input buffer, borrowed per TCP message
// so that idle connections hold no 64 KB buffers.
type tcpScratch struct {
	w  *worker
	in []byte
}

func (s *Server) serveConn(c net.Conn) {
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	var hdr [2]byte
	for {
		c.SetDeadline(time.Now().Add(s.tcpLimits().IdleTimeout.D()))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		if !s.serveTCPMessage(c, src, int(binary.BigEndian.Uint16(hdr[:]))) {
			return
		}
	}
}

// serveTCPMessage reads, answers and writes one message; false ends the
// connection.
func (s *Server) serveTCPMessage(c net.Conn, src netip.Addr, n int) bool {
	sc, _ := s.tcpPool.Get().(*tcpScratch)
	if sc == nil {
		sc = &tcpScratch{w: newWorker(s), in: make([]byte, 65535)}
	}
	defer s.tcpPool.Put(sc)
	if _, err := io.ReadFull(c, sc.in[:n]); err != nil {
		return false
	}
	s.stats.TCP.Add(1)
	w := sc.w
	out := w.handle(sc.in[:n], src, true)
	if w.axfr != nil {
		if err := s.transfer(c, w); err != nil {
			s.log.Warn("dns zone transfer failed", "zone", w.axfr.apex, "client", src, "err", err)
			return false
		}
		return true
	}
	if out == nil {
		return true
	}
	return writeTCP(c, out) == nil
}

func writeTCP(c net.Conn, msg []byte) error {
	buf := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	copy(buf[2:], msg)
	_, err := c.Write(buf)
	return err
}

// transfer sends the zone (AXFR, RFC 5936): SOA, every record, SOA.
// Service names carry the answer of their policy for a client without an
// address (the failover answer): a secondary serves a snapshot, so list
// the gateway nodes themselves as NS for live answers.
func (s *Server) transfer(c net.Conn, w *worker) error {
	z := w.axfr
	s.stats.Transfers.Add(1)
	z.other.count(mdns.TypeAXFR, mdns.RcodeSuccess)
	rrs := []mdns.RR{z.soa}
	names := make([]string, 0, len(z.nodes))
	for n := range z.nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		n := z.nodes[name]
		for _, t := range n.types {
			if t == mdns.TypeSOA {
				continue
			}
			rrs = append(rrs, n.rrsets[t]...)
		}
		if n.svc != nil {
			idx, _ := n.svc.choose(s.state, clientInfo{}, nil)
			rrs = n.svc.appendRRs(rrs, idx, mdns.TypeA)
			rrs = n.svc.appendRRs(rrs, idx, mdns.TypeAAAA)
		}
	}
	rrs = append(rrs, z.soa)
	req := &w.req
	for first := true; len(rrs) > 0; first = false {
		m := &mdns.Msg{MsgHdr: mdns.MsgHdr{Id: req.Id, Response: true, Authoritative: true}, Compress: true}
		if first {
			m.Question = req.Question
		}
		// Fill a message up to ~16 KB, well below the 64 KB TCP limit.
		for len(rrs) > 0 {
			m.Answer = append(m.Answer, rrs[0])
			if len(m.Answer) > 1 && m.Len() > 16000 {
				m.Answer = m.Answer[:len(m.Answer)-1]
				break
			}
			rrs = rrs[1:]
		}
		out, err := m.Pack()
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(s.tcpLimits().IdleTimeout.D()))
		if err := writeTCP(c, out); err != nil {
			return err
		}
	}
	return nil
}

// Status is the admin status section.
func (s *Server) Status() any {
	snap := s.snap.Load()
	zones := []map[string]any{}
	if snap != nil {
		for _, z := range snap.zones {
			zones = append(zones, map[string]any{"zone": z.apex, "serial": z.soa.Serial, "names": len(z.nodes)})
		}
	}
	out := s.stats.Snapshot()
	out["zones"] = zones
	out["listen"] = s.Addrs()
	out["services"] = s.Answers()
	return out
}

// notifier sends NOTIFY (RFC 1996) to a zone's secondaries after its serial
// changed, so that they transfer it at once instead of at `refresh`.
func (s *Server) notifier(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case apex := <-s.notifyCh:
			snap := s.snap.Load()
			var z *zone
			if snap != nil {
				z = snap.zoneFor(apex)
			}
			if z == nil || z.apex != apex {
				continue
			}
			for _, target := range z.notify {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := s.sendNotify(ctx, z, target); err != nil && ctx.Err() == nil {
						s.log.Warn("dns notify failed", "zone", apex, "secondary", target, "err", err)
					}
				}()
			}
		}
	}
}

// sendNotify tries a few times, as RFC 1996 §3.6 asks, until the secondary
// acknowledges.
func (s *Server) sendNotify(ctx context.Context, z *zone, target netip.AddrPort) error {
	m := new(mdns.Msg)
	m.SetNotify(z.apex)
	m.Authoritative = true
	m.Answer = []mdns.RR{z.soa}
	c := &mdns.Client{Timeout: 2 * time.Second}
	var err error
	for try := 0; try < 3; try++ {
		var r *mdns.Msg
		r, _, err = c.ExchangeContext(ctx, m, target.String())
		if err == nil {
			if r.Rcode != mdns.RcodeSuccess {
				return fmt.Errorf("answered %s", mdns.RcodeToString[r.Rcode])
			}
			s.stats.Notifies.Add(1)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return err
}
