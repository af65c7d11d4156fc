package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// serverConn is a connection to a server with its read buffer; it lives
// across requests when kept alive.
type serverConn struct {
	bufConn
	srv       *upstream.Server
	idleSince time.Time
	requests  int
	raw       syscall.RawConn // plain TCP only: for the idle check
	rio       rawIO           // bufConn's reads and the request writes, plain TCP only
	// peekFn is sc.peek, bound once per connection: a closure made in
	// every quiet call would be one allocation per reused request.
	peekFn func(fd uintptr) bool
	peekOK bool
	// unchecked: the idle check was left to the request's send
	// (idleOK's later; flushFill makes it).
	unchecked bool
	// private: the server signed this connection in (NTLM or Negotiate
	// answered with a 401/407): it serves only the client connection that
	// signed in and never joins the pool.
	private bool
}

// idleOK checks an idle connection before reuse: the server must not have
// closed it, nor sent anything while no request was pending (a response
// to nothing would be handed to the next client: response desync). One
// non-blocking MSG_PEEK on the socket; over TLS, first a read that cannot
// wait, for records the TLS layer already holds (read along with the end
// of the last response). A legitimate post-handshake message (a late
// session ticket) just costs a new connection.
//
// deadline is the next request's (timeout server), set here, before the
// peek that obeys it: an idle connection keeps its last request's
// deadline, maybe expired by now, rather than paying a timer update to
// clear it when it is parked. With later, a plain TCP connection's peek
// is left to the request's WriteRead (flushFill), which makes it anyway.
func (sc *serverConn) idleOK(deadline time.Time, later bool) bool {
	if tc, ok := sc.Conn.(*tls.Conn); ok {
		// A deadline in the past: the TLS layer decodes only what it has
		// buffered and never touches the socket (a timeout leaves the
		// connection usable).
		_ = tc.SetReadDeadline(time.Unix(1, 0))
		var b [1]byte
		n, err := tc.Read(b[:])
		if n > 0 || !isTimeout(err) {
			return false
		}
	}
	_ = sc.SetDeadline(deadline)
	if later && sc.bufConn.rio != nil {
		sc.unchecked = true
		return true
	}
	return sc.quiet()
}

// spoke reports whether the server has sent something (or closed) that is
// not read yet, without waiting.
func (sc *serverConn) spoke() bool {
	if len(sc.buffered()) > 0 {
		return true
	}
	_ = sc.SetReadDeadline(time.Time{}) // the peek obeys it
	return !sc.quiet()
}

// quiet is the socket half of idleOK: one non-blocking MSG_PEEK (true
// when it cannot tell, on a connection that is not plain TCP beneath).
func (sc *serverConn) quiet() bool {
	if sc.raw == nil {
		return true
	}
	if sc.peekFn == nil {
		sc.peekFn = sc.peek
	}
	sc.peekOK = true
	err := sc.raw.Read(sc.peekFn)
	return sc.peekOK && err == nil
}

// peek is quiet's callback of RawConn.Read.
func (sc *serverConn) peek(fd uintptr) bool {
	sc.peekOK = !pending(fd)
	return true
}

// pending reports whether a socket has something to read (bytes, its end
// or an error), without reading it or waiting: one raw MSG_PEEK of a byte
// (raw, as rawIO's calls: a peek never blocks).
func pending(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}

// errNotIdle: an idle connection had received something (bytes or its
// end) when its next request was to go out (rawIO.WriteRead's idle
// check); nothing was sent.
var errNotIdle = errors.New("server connection not idle")

// discard closes the connection and recycles its buffer; only the owner
// of the connection may call it (a concurrent kill just closes the socket).
func (sc *serverConn) discard(bp *bufPool) {
	_ = sc.Close()
	if sc.buf != nil && bp != nil {
		bp.put(sc.buf)
		sc.buf, sc.r, sc.w = nil, 0, 0
	}
}

// bufPool recycles fixed-size buffers (per handler: no package state).
// Buffers travel in *[]byte holders that are themselves recycled, so a
// get/put pair allocates nothing once warm.
type bufPool struct {
	size    int
	p       sync.Pool // *[]byte holding a buffer
	holders sync.Pool // empty *[]byte
}

func newBufPool(size int) *bufPool { return &bufPool{size: size} }

func (bp *bufPool) get() []byte {
	if h, ok := bp.p.Get().(*[]byte); ok {
		b := *h
		*h = nil
		bp.holders.Put(h)
		return b[:bp.size]
	}
	return make([]byte, bp.size)
}

func (bp *bufPool) put(b []byte) {
	if cap(b) != bp.size {
		return
	}
	h, _ := bp.holders.Get().(*[]byte)
	if h == nil {
		h = new([]byte)
	}
	*h = b[:0]
	bp.p.Put(h)
}

// idlePool holds a server's idle keep-alive connections, most recently used
// first (a warm connection is the least likely to have been closed).
type idlePool struct {
	mu     sync.Mutex
	conns  []*serverConn
	closed bool
}

// poolKey names the connections that may serve each other's requests: one
// server (its identity: backend, name and address) reached the same way
// (connFingerprint). A reload that changes how a server is reached (TLS,
// PROXY header, buffer size) makes a new key, so its new generation never
// gets the old connections.
type poolKey struct {
	srv *upstream.Server
	fp  [sha256.Size]byte
}

// connFingerprint sums what a pooled connection to a backend's servers
// carries from when it was opened: the TLS settings and CA bundle it was
// verified with, the PROXY header, TCP keepalive and the size of its read
// buffer (a response head must fit it whole).
func connFingerprint(bc *config.Backend, bufSize int) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "buf=%d proxy=%q tcpka=%v\n", bufSize, bc.SendProxy, config.Flag(bc.TCPKeepAlive))
	for i := range bc.Servers {
		if src := bc.ServerSource(&bc.Servers[i]); src != nil {
			fmt.Fprintf(h, "source %d=%+v\n", i, *src)
		}
	}
	if s := bc.SSL; s != nil {
		fmt.Fprintf(h, "ssl verify=%q sni=%q ca=%q\n", s.Verify, s.SNI, s.CAFile)
		if s.CAFile != "" {
			// The bundle's content, not only its name: a CA replaced on
			// disk is read again by the reload.
			pem, _ := os.ReadFile(s.CAFile)
			h.Write(pem)
		}
	}
	var fp [sha256.Size]byte
	h.Sum(fp[:0])
	return fp
}

// connPools are the idle server connections of one http frontend (by
// name), by pool key. They outlive reloads: every generation of the
// frontend, and the client connections each one still serves, share them,
// so a reload costs no server connection (HAProxy's master-worker reload
// starts a new process with empty pools; a raft apply here would do that
// on every node at every change). Only keys of the current generation
// exist: retain drops the others, and a connection of a dropped key is
// closed when it is released rather than parked.
type connPools struct {
	mu     sync.Mutex
	pools  map[poolKey]*idlePool
	closed atomic.Bool
	idle   atomic.Int64 // time.Duration: the shortest http_keep_alive among the backends
	bufs   atomic.Pointer[bufPool]
	once   sync.Once
	stop   chan struct{}
}

func newConnPools() *connPools {
	return &connPools{pools: map[poolKey]*idlePool{}, stop: make(chan struct{})}
}

// retain makes keys the live set of the current generation: connections of
// other keys (servers removed, or reached differently now) are closed.
func (cp *connPools) retain(keys map[poolKey]bool, idle time.Duration, bufs *bufPool) {
	cp.idle.Store(int64(idle))
	cp.bufs.Store(bufs)
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for k, p := range cp.pools {
		if keys[k] {
			continue
		}
		delete(cp.pools, k)
		p.closeAll(bufs)
	}
	for k := range keys {
		if cp.pools[k] == nil {
			cp.pools[k] = &idlePool{}
		}
	}
}

// retire closes every idle connection and the reaper: the frontend is gone
// (or no longer in http mode).
func (cp *connPools) retire() {
	if cp.closed.Swap(true) {
		return
	}
	close(cp.stop)
	cp.closeAll()
}

// startReaper runs the reaper once, under the proxy's context.
func (cp *connPools) startReaper(ctx context.Context) {
	cp.once.Do(func() { go cp.reap(ctx) })
}

func (cp *connPools) pool(k poolKey) *idlePool {
	cp.mu.Lock()
	p := cp.pools[k]
	cp.mu.Unlock()
	return p
}

// get returns an idle connection for k that has not outlived the idle time.
// get takes an idle connection for k that passes its idle check, with
// deadline set (see idleOK, and for later).
func (cp *connPools) get(k poolKey, deadline time.Time, later bool) *serverConn {
	p := cp.pool(k)
	if p == nil {
		return nil
	}
	bufs := cp.bufs.Load()
	idle := time.Duration(cp.idle.Load())
	now := time.Now()
	p.mu.Lock()
	for len(p.conns) > 0 {
		sc := p.conns[len(p.conns)-1]
		p.conns = p.conns[:len(p.conns)-1]
		if now.Sub(sc.idleSince) < idle {
			p.mu.Unlock()
			if sc.idleOK(deadline, later) {
				return sc
			}
			sc.discard(bufs)
			p.mu.Lock()
			continue
		}
		sc.discard(bufs)
	}
	p.mu.Unlock()
	return nil
}

// put parks a connection under k; beyond max, on a closed pool or on a key
// the current generation does not have, it is closed.
func (cp *connPools) put(sc *serverConn, k poolKey, max int) {
	bufs := cp.bufs.Load()
	var p *idlePool
	if !cp.closed.Load() && max > 0 && sc.srv.Usable() {
		p = cp.pool(k)
	}
	if p == nil {
		sc.discard(bufs)
		return
	}
	sc.idleSince = time.Now()
	p.mu.Lock()
	if p.closed || len(p.conns) >= max {
		p.mu.Unlock()
		sc.discard(bufs)
		return
	}
	p.conns = append(p.conns, sc)
	p.mu.Unlock()
}

// reap closes expired idle connections until ctx ends or the pools are
// retired, then closes all of them.
func (cp *connPools) reap(ctx context.Context) {
	t := time.NewTicker(max(time.Duration(cp.idle.Load())/2, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			cp.closed.Store(true)
			cp.closeAll()
			return
		case <-cp.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		idle := time.Duration(cp.idle.Load())
		bufs := cp.bufs.Load()
		cp.mu.Lock()
		pools := make([]*idlePool, 0, len(cp.pools))
		for _, p := range cp.pools {
			pools = append(pools, p)
		}
		cp.mu.Unlock()
		for _, p := range pools {
			p.mu.Lock()
			keep := p.conns[:0]
			for _, sc := range p.conns {
				if now.Sub(sc.idleSince) >= idle || !sc.srv.Usable() {
					sc.discard(bufs)
					continue
				}
				keep = append(keep, sc)
			}
			clear(p.conns[len(keep):])
			p.conns = keep
			p.mu.Unlock()
		}
	}
}

func (cp *connPools) closeAll() {
	bufs := cp.bufs.Load()
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, p := range cp.pools {
		p.closeAll(bufs)
	}
}

// closeAll closes the idle connections and refuses new ones (a session
// still holding the pool's key releases its connection into it).
func (p *idlePool) closeAll(bufs *bufPool) {
	p.mu.Lock()
	for _, sc := range p.conns {
		sc.discard(bufs)
	}
	p.conns = nil
	p.closed = true
	p.mu.Unlock()
}

// count is the number of idle connections (tests).
func (cp *connPools) count() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	n := 0
	for _, p := range cp.pools {
		p.mu.Lock()
		n += len(p.conns)
		p.mu.Unlock()
	}
	return n
}

// serverTLSConfig builds the client TLS config toward a backend's servers.
func serverTLSConfig(b *config.Backend) (*tls.Config, error) {
	s := b.SSL
	if s == nil {
		return nil, nil
	}
	cfg := &tls.Config{
		InsecureSkipVerify: s.Verify == "none",
		ServerName:         s.SNI,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
	}
	if s.CAFile != "" {
		pool, err := config.LoadCA(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ssl ca_file: %w", err)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// wrapServerTLS runs the TLS handshake toward a server within the connect timeout.
func wrapServerTLS(ctx context.Context, c net.Conn, base *tls.Config, addr string, d time.Duration) (net.Conn, error) {
	cfg := base
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg = base.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(rawConnOf(c), cfg)
	hctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}
