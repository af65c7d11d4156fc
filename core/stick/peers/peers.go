// Package peers replicates stick-table entries between the gateway nodes of
// a datacenter (HAProxy's `peers`), so that the node taking over the VIP
// already knows the clients' sessions.
//
// Protocol (over TCP, or TLS for mutual-TLS peers), every message a frame:
//
//	u32 length | u8 type | payload | [16-byte HMAC-SHA256 tag]
//
// The dialer sends HELLO (magic "VGP1", its name, a 32-byte nonce); the
// acceptor answers HELLO (its name, its nonce, proof); the dialer sends
// AUTH (proof). With a shared secret, proof = HMAC(secret, role|nonces|
// names) and every later frame carries a tag HMAC(direction key, seq|type|
// payload) with a per-direction counter, so frames cannot be forged,
// replayed or reordered. Then each side sends its full tables (UPDATES
// frames, then DUMP_DONE); afterwards the dialer's side streams its new
// entries in UPDATES batches and both send PING when idle.
//
// UPDATES: u16 count, then per entry: u8 len + table name, u16 len + key,
// u8 len + server name, u32 remaining lifetime in ms.
//
// Sync never blocks the data path: a store only queues the update for each
// peer in a bounded queue; when a queue overflows the updates are dropped
// and that peer gets a full dump instead once it has room.
package peers

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/accept"
	"github.com/vipgate/vipgate/core/stick"
)

// Frame types.
const (
	frameHello    = 1
	frameAuth     = 2
	frameUpdates  = 3
	frameDumpDone = 4
	framePing     = 5
)

const (
	magic        = "VGP1"
	tagLen       = 16
	maxFrame     = 1 << 20
	batchMax     = 512 // updates per frame
	queueLen     = 16384
	pingEvery    = 5 * time.Second
	readTimeout  = 3 * pingEvery
	handshakeMax = 5 * time.Second
)

// Source is the node's tables (a *stick.Manager).
type Source interface {
	Table(name string) *stick.Table
	Tables() []*stick.Table
}

// Peer is one other node.
type Peer struct {
	Name    string
	Address string
}

// Config configures a Syncer.
type Config struct {
	// Node is this node's name, as the peers list it.
	Node   string
	Listen string
	// Secret enables HMAC authentication; ServerTLS/ClientTLS mutual TLS.
	// At least one of the two.
	Secret    []byte
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	Peers     []Peer
	Log       *slog.Logger
	// Redial bounds the reconnect backoff (default 5s).
	Redial time.Duration
	// MaxRate bounds the entries sent per second on one link, dumps
	// included (default 50000, about 4 MB/s with 32-byte keys).
	MaxRate int
}

// pacer spreads sends so that a link averages at most rate entries/s,
// allowing bursts of a tenth of a second.
type pacer struct {
	rate float64
	next time.Time
}

func (p *pacer) wait(n int) {
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	if d := time.Until(p.next) - 100*time.Millisecond; d > 0 {
		time.Sleep(d)
	}
}

// Syncer runs the listener and one outbound link per peer.
type Syncer struct {
	cfg   Config
	src   Source
	log   *slog.Logger
	links []*link
	addr  atomic.Pointer[string]
	ready chan struct{}
}

// link is the outbound side towards one peer, and its counters.
type link struct {
	peer     Peer
	queue    chan stick.Update
	overflow atomic.Bool
	// wake is signalled on overflow so the writer sends a dump soon.
	wake      chan struct{}
	connected atomic.Bool
	sent      atomic.Uint64
	received  atomic.Uint64
	dropped   atomic.Uint64
	mu        sync.Mutex
	lastErr   string
}

// New builds a Syncer; call Notify from the tables (Manager.SetNotify).
func New(cfg Config, src Source) (*Syncer, error) {
	if len(cfg.Secret) == 0 && cfg.ServerTLS == nil {
		return nil, errors.New("peers: need a secret or TLS")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Redial <= 0 {
		cfg.Redial = 5 * time.Second
	}
	if cfg.MaxRate <= 0 {
		cfg.MaxRate = 50000
	}
	s := &Syncer{cfg: cfg, src: src, log: cfg.Log, ready: make(chan struct{})}
	for _, p := range cfg.Peers {
		s.links = append(s.links, &link{peer: p, queue: make(chan stick.Update, queueLen), wake: make(chan struct{}, 1)})
	}
	return s, nil
}

// Notify queues a local store for every peer. It never blocks.
func (s *Syncer) Notify(u stick.Update) {
	u.Key = bytes.Clone(u.Key)
	for _, l := range s.links {
		if !l.connected.Load() {
			// Not connected: the peer gets a full dump when it is.
			continue
		}
		select {
		case l.queue <- u:
		default:
			l.dropped.Add(1)
			if !l.overflow.Swap(true) {
				select {
				case l.wake <- struct{}{}:
				default:
				}
			}
		}
	}
}

// Addr is the listener's address once Run has bound it.
func (s *Syncer) Addr() string {
	<-s.ready
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return ""
}

// Run listens and keeps the links up until ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		close(s.ready)
		return fmt.Errorf("peers: listen %s: %w", s.cfg.Listen, err)
	}
	a := ln.Addr().String()
	s.addr.Store(&a)
	close(s.ready)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		ln.Close()
	}()
	for _, l := range s.links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.dialLoop(ctx, l)
		}()
	}
	var conns sync.WaitGroup
	// Bounds the connections (and their buffers) strangers can hold open.
	slots := make(chan struct{}, 4*len(s.links)+4)
	for {
		c, err := accept.Next(ctx, ln, s.log)
		if err != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer func() { <-slots }()
			if err := s.serveInbound(ctx, c); err != nil && ctx.Err() == nil {
				s.log.Info("peers: inbound link ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
	conns.Wait()
	wg.Wait()
	return nil
}

// conn is an authenticated framed connection.
type conn struct {
	c        net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	sendKey  []byte
	recvKey  []byte
	sendSeq  uint64
	recvSeq  uint64
	peerName string
	// limit bounds an incoming frame; small until the peer is
	// authenticated, so that strangers cannot make us allocate.
	limit int
	pace  pacer
}

func (c *conn) writeFrame(typ byte, payload []byte) error {
	n := 1 + len(payload)
	if c.sendKey != nil {
		n += tagLen
	}
	// A stuck peer must fail the link, not hold the writer forever.
	_ = c.c.SetWriteDeadline(time.Now().Add(readTimeout))
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(n))
	hdr[4] = typ
	if _, err := c.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := c.w.Write(payload); err != nil {
		return err
	}
	if c.sendKey != nil {
		if _, err := c.w.Write(tag(c.sendKey, c.sendSeq, typ, payload)); err != nil {
			return err
		}
		c.sendSeq++
	}
	return nil
}

func (c *conn) readFrame() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:4]))
	least := 1
	if c.recvKey != nil {
		least += tagLen
	}
	if n < least || n > c.limit {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	body := make([]byte, n-1)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, err
	}
	if c.recvKey != nil {
		payload, got := body[:len(body)-tagLen], body[len(body)-tagLen:]
		if !hmac.Equal(got, tag(c.recvKey, c.recvSeq, hdr[4], payload)) {
			return 0, nil, errors.New("frame authentication failed")
		}
		c.recvSeq++
		body = payload
	}
	return hdr[4], body, nil
}

func tag(key []byte, seq uint64, typ byte, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	var b [9]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	b[8] = typ
	m.Write(b[:])
	m.Write(payload)
	return m.Sum(nil)[:tagLen]
}

func mac(secret []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, secret)
	for _, p := range parts {
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(p)))
		m.Write(l[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

func helloPayload(name string, nonce, proof []byte) []byte {
	b := append([]byte(magic), byte(len(name)))
	b = append(b, name...)
	b = append(b, nonce...)
	return append(b, proof...)
}

func parseHello(b []byte) (name string, nonce, proof []byte, err error) {
	if len(b) < 5 || string(b[:4]) != magic {
		return "", nil, nil, errors.New("not a vipgate peer (bad magic)")
	}
	n := int(b[4])
	if len(b) < 5+n+32 {
		return "", nil, nil, errors.New("short hello")
	}
	return string(b[5 : 5+n]), b[5+n : 5+n+32], b[5+n+32:], nil
}

// handshake authenticates both ends; dialer says which side this is.
func (s *Syncer) handshake(raw net.Conn, dialer bool, want string) (*conn, error) {
	_ = raw.SetDeadline(time.Now().Add(handshakeMax))
	defer raw.SetDeadline(time.Time{})
	c := &conn{c: raw, r: bufio.NewReaderSize(raw, 64<<10), w: bufio.NewWriterSize(raw, 64<<10), limit: 1024,
		pace: pacer{rate: float64(s.cfg.MaxRate)}}
	defer func() { c.limit = maxFrame }()
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	secret := s.cfg.Secret
	keys := func(dn, an, dname, aname []byte) {
		if len(secret) == 0 {
			return
		}
		d2a := mac(secret, []byte("d2a"), dn, an, dname, aname)
		a2d := mac(secret, []byte("a2d"), dn, an, dname, aname)
		if dialer {
			c.sendKey, c.recvKey = d2a, a2d
		} else {
			c.sendKey, c.recvKey = a2d, d2a
		}
	}
	me := []byte(s.cfg.Node)
	if dialer {
		if err := c.writeFrame(frameHello, helloPayload(s.cfg.Node, nonce, nil)); err != nil {
			return nil, err
		}
		if err := c.w.Flush(); err != nil {
			return nil, err
		}
		typ, b, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		if typ != frameHello {
			return nil, fmt.Errorf("expected HELLO, got frame %d", typ)
		}
		name, an, proof, err := parseHello(b)
		if err != nil {
			return nil, err
		}
		if want != "" && name != want {
			return nil, fmt.Errorf("peer says it is %q, expected %q", name, want)
		}
		if len(secret) > 0 && !hmac.Equal(proof, mac(secret, []byte("acceptor"), nonce, an, me, []byte(name))) {
			return nil, errors.New("peer failed authentication (wrong secret?)")
		}
		var my []byte
		if len(secret) > 0 {
			my = mac(secret, []byte("dialer"), nonce, an, me, []byte(name))
		}
		if err := c.writeFrame(frameAuth, my); err != nil {
			return nil, err
		}
		keys(nonce, an, me, []byte(name))
		c.peerName = name
		return c, c.w.Flush()
	}
	typ, b, err := c.readFrame()
	if err != nil {
		return nil, err
	}
	if typ != frameHello {
		return nil, fmt.Errorf("expected HELLO, got frame %d", typ)
	}
	name, dn, _, err := parseHello(b)
	if err != nil {
		return nil, err
	}
	if !s.knownPeer(name) {
		return nil, fmt.Errorf("unknown peer %q", name)
	}
	var proof []byte
	if len(secret) > 0 {
		proof = mac(secret, []byte("acceptor"), dn, nonce, []byte(name), me)
	}
	if err := c.writeFrame(frameHello, helloPayload(s.cfg.Node, nonce, proof)); err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	typ, b, err = c.readFrame()
	if err != nil {
		return nil, err
	}
	if typ != frameAuth {
		return nil, fmt.Errorf("expected AUTH, got frame %d", typ)
	}
	if len(secret) > 0 && !hmac.Equal(b, mac(secret, []byte("dialer"), dn, nonce, []byte(name), me)) {
		return nil, fmt.Errorf("peer %q failed authentication (wrong secret?)", name)
	}
	keys(dn, nonce, []byte(name), me)
	c.peerName = name
	return c, nil
}

func (s *Syncer) knownPeer(name string) bool {
	for _, p := range s.cfg.Peers {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (s *Syncer) linkFor(name string) *link {
	for _, l := range s.links {
		if l.peer.Name == name {
			return l
		}
	}
	return nil
}

func (s *Syncer) dialLoop(ctx context.Context, l *link) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := s.runOutbound(ctx, l)
		l.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		l.mu.Lock()
		l.lastErr = err.Error()
		l.mu.Unlock()
		s.log.Debug("peers: link down", "peer", l.peer.Name, "err", err)
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.Redial)
	}
}

func (s *Syncer) runOutbound(ctx context.Context, l *link) error {
	d := net.Dialer{Timeout: handshakeMax}
	raw, err := d.DialContext(ctx, "tcp", l.peer.Address)
	if err != nil {
		return err
	}
	if s.cfg.ClientTLS != nil {
		cfg := s.cfg.ClientTLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = l.peer.Name
		}
		raw = tls.Client(raw, cfg)
	}
	defer raw.Close()
	c, err := s.handshake(raw, true, l.peer.Name)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	// Drain what queued while disconnected: the dump below covers it.
	for len(l.queue) > 0 {
		<-l.queue
	}
	l.overflow.Store(false)
	l.connected.Store(true)
	l.mu.Lock()
	l.lastErr = ""
	l.mu.Unlock()
	s.log.Info("peers: connected", "peer", l.peer.Name, "addr", l.peer.Address)

	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- s.readLoop(c, l) }()
	if err := s.dump(c, l); err != nil {
		return err
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	batch := make([]stick.Update, 0, batchMax)
	for {
		select {
		case err := <-errc:
			return err
		case <-ping.C:
			if err := c.writeFrame(framePing, nil); err != nil {
				return err
			}
			if err := c.w.Flush(); err != nil {
				return err
			}
		case <-l.wake:
			if l.overflow.Swap(false) {
				if err := s.dump(c, l); err != nil {
					return err
				}
			}
		case u := <-l.queue:
			batch = append(batch[:0], u)
		fill:
			for len(batch) < batchMax {
				select {
				case u := <-l.queue:
					batch = append(batch, u)
				default:
					break fill
				}
			}
			if err := s.sendBatch(c, l, batch); err != nil {
				return err
			}
			if err := c.w.Flush(); err != nil {
				return err
			}
		}
	}
}

// peerCertIs checks that the client certificate of tc names peer.
func peerCertIs(tc *tls.Conn, peer string) error {
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return fmt.Errorf("peer %q presented no certificate", peer)
	}
	if err := certs[0].VerifyHostname(peer); err != nil {
		return fmt.Errorf("peer %q: its certificate is not for that name: %w", peer, err)
	}
	return nil
}

func (s *Syncer) serveInbound(ctx context.Context, raw net.Conn) error {
	if s.cfg.ServerTLS != nil {
		raw = tls.Server(raw, s.cfg.ServerTLS)
	}
	defer raw.Close()
	c, err := s.handshake(raw, false, "")
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if tc, ok := raw.(*tls.Conn); ok {
		// As the dialer checks the acceptor's certificate against the
		// peer's name, the acceptor checks the dialer's against the name
		// it claims: a certificate from the same CA issued to another
		// node does not make its holder this peer.
		if err := peerCertIs(tc, c.peerName); err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
	}
	l := s.linkFor(c.peerName)
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- s.readLoop(c, l) }()
	// A (re)started peer pulls everything we have.
	if err := s.dump(c, nil); err != nil {
		return err
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-ping.C:
			if err := c.writeFrame(framePing, nil); err != nil {
				return err
			}
			if err := c.w.Flush(); err != nil {
				return err
			}
		}
	}
}

// dump sends every live entry of the synced tables, then DUMP_DONE. Each
// table is copied out first so that no table lock is held while writing.
func (s *Syncer) dump(c *conn, l *link) error {
	for _, t := range s.src.Tables() {
		if !t.Peers() {
			continue
		}
		var all []stick.Update
		t.Each(func(u stick.Update) bool {
			all = append(all, u)
			return true
		})
		// Least remaining lifetime first: the receiver puts each entry in
		// front of its LRU list, so it ends up with the sessions in use
		// most recently in front and evicts the oldest first when full
		// (sent most recent first, the new master would evict its hottest
		// sessions first). Each yields most recent first: reversed, ties
		// (the wire has millisecond TTLs) keep that order.
		slices.Reverse(all)
		slices.SortStableFunc(all, func(a, b stick.Update) int { return cmp.Compare(a.TTL, b.TTL) })
		for len(all) > 0 {
			k := min(len(all), batchMax)
			if err := s.sendBatch(c, l, all[:k]); err != nil {
				return err
			}
			all = all[k:]
		}
	}
	if err := c.writeFrame(frameDumpDone, nil); err != nil {
		return err
	}
	return c.w.Flush()
}

func (s *Syncer) sendBatch(c *conn, l *link, batch []stick.Update) error {
	b := make([]byte, 2, 64*len(batch))
	n := 0
	for _, u := range batch {
		if len(u.Table) > 255 || len(u.Server) > 255 || len(u.Key) > 65535 {
			continue
		}
		ms := u.TTL.Milliseconds()
		if ms <= 0 {
			continue
		}
		b = append(b, byte(len(u.Table)))
		b = append(b, u.Table...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(u.Key)))
		b = append(b, u.Key...)
		b = append(b, byte(len(u.Server)))
		b = append(b, u.Server...)
		b = binary.BigEndian.AppendUint32(b, uint32(min(ms, 1<<32-1)))
		n++
	}
	binary.BigEndian.PutUint16(b[:2], uint16(n))
	if l != nil {
		l.sent.Add(uint64(n))
	}
	// Only this link's writer waits: the data path only ever queues.
	c.pace.wait(n)
	return c.writeFrame(frameUpdates, b)
}

// DecodeUpdates parses an UPDATES payload (exported for the fuzz test).
func DecodeUpdates(b []byte) ([]stick.Update, error) {
	if len(b) < 2 {
		return nil, errors.New("short UPDATES")
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	out := make([]stick.Update, 0, n)
	for i := 0; i < n; i++ {
		var u stick.Update
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, errors.New("truncated table name")
		}
		u.Table, b = string(b[1:1+int(b[0])]), b[1+int(b[0]):]
		if len(b) < 2 {
			return nil, errors.New("truncated key")
		}
		kl := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+kl {
			return nil, errors.New("truncated key")
		}
		u.Key, b = b[2:2+kl], b[2+kl:]
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, errors.New("truncated server name")
		}
		u.Server, b = string(b[1:1+int(b[0])]), b[1+int(b[0]):]
		if len(b) < 4 {
			return nil, errors.New("truncated ttl")
		}
		u.TTL, b = time.Duration(binary.BigEndian.Uint32(b))*time.Millisecond, b[4:]
		out = append(out, u)
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes after updates")
	}
	return out, nil
}

func (s *Syncer) readLoop(c *conn, l *link) error {
	for {
		_ = c.c.SetReadDeadline(time.Now().Add(readTimeout))
		typ, b, err := c.readFrame()
		if err != nil {
			return err
		}
		switch typ {
		case frameUpdates:
			us, err := DecodeUpdates(b)
			if err != nil {
				return fmt.Errorf("peer %s: %w", c.peerName, err)
			}
			for _, u := range us {
				if t := s.src.Table(u.Table); t != nil && t.Peers() {
					t.Apply(u)
				}
			}
			if l != nil {
				l.received.Add(uint64(len(us)))
			}
		case frameDumpDone, framePing:
		default:
			return fmt.Errorf("peer %s: unexpected frame %d", c.peerName, typ)
		}
	}
}

// PeerStatus is one peer's link state for the admin API.
type PeerStatus struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Connected bool   `json:"connected"`
	Sent      uint64 `json:"sent"`
	Received  uint64 `json:"received"`
	Dropped   uint64 `json:"dropped"`
	LastError string `json:"last_error,omitempty"`
}

// Status reads out the links.
func (s *Syncer) Status() []PeerStatus {
	out := make([]PeerStatus, 0, len(s.links))
	for _, l := range s.links {
		l.mu.Lock()
		e := l.lastErr
		l.mu.Unlock()
		out = append(out, PeerStatus{Name: l.peer.Name, Address: l.peer.Address, Connected: l.connected.Load(),
			Sent: l.sent.Load(), Received: l.received.Load(), Dropped: l.dropped.Load(), LastError: e})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
