package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A graceful stop is HAProxy's soft-stop: Drain closes the listeners and
// the keep-alive connections waiting for a next request, and lets the
// others finish (a response under way, a TCP relay); CloseConns cuts what
// is left once the operator's grace (hard-stop-after) is over.

// liveConn is one client connection being served.
type liveConn struct {
	c drainConn
	// idle: an HTTP/1 connection waiting for its next request, which a
	// drain may close at once.
	idle atomic.Bool
	// goAway, for an HTTP/2 connection, tells its client to go away
	// gracefully (GOAWAY NO_ERROR): set once the connection is served.
	goAway atomic.Pointer[func()]
	// cut: CloseConns closed it (a tcp session logs KD, as one killed).
	cut atomic.Bool
}

// drainConn is what a graceful stop needs of a client connection: a
// net.Conn, or an event-loop session (tcploop), whose Close is carried out
// on its loop.
type drainConn interface {
	Close() error
	SetReadDeadline(t time.Time) error
}

// liveConns is the set of client connections being served.
type liveConns struct {
	draining atomic.Bool
	mu       sync.Mutex
	conns    map[*liveConn]struct{}
}

func (s *liveConns) add(c drainConn) *liveConn {
	lc := &liveConn{c: c}
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*liveConn]struct{}{}
	}
	s.conns[lc] = struct{}{}
	s.mu.Unlock()
	return lc
}

func (s *liveConns) remove(lc *liveConn) {
	s.mu.Lock()
	delete(s.conns, lc)
	s.mu.Unlock()
}

func (s *liveConns) each(f func(*liveConn)) {
	s.mu.Lock()
	list := make([]*liveConn, 0, len(s.conns))
	for lc := range s.conns {
		list = append(list, lc)
	}
	s.mu.Unlock()
	for _, lc := range list {
		f(lc)
	}
}

type liveConnKey struct{}

func withLiveConn(ctx context.Context, lc *liveConn) context.Context {
	return context.WithValue(ctx, liveConnKey{}, lc)
}

func liveConnOf(ctx context.Context) *liveConn {
	lc, _ := ctx.Value(liveConnKey{}).(*liveConn)
	return lc
}

// Drain starts a graceful stop: the listeners close (new connections are
// refused), HTTP/1 connections idle between requests are closed, and every
// other connection ends after its current request (HTTP) or when either
// side closes it (TCP). A config applied afterwards opens no listener.
// HTTP/2 connections get a GOAWAY: their streams under way finish, and
// CloseConns ends what is left.
func (p *Proxy) Drain() {
	if p.live.draining.Swap(true) {
		return
	}
	p.mu.Lock()
	for addr, l := range p.listeners {
		l.close()
		delete(p.listeners, addr)
	}
	p.mu.Unlock()
	p.live.each(func(lc *liveConn) {
		if lc.idle.Load() {
			_ = lc.c.SetReadDeadline(time.Now())
		}
		if f := lc.goAway.Load(); f != nil {
			(*f)()
		}
	})
}

// Draining reports whether Drain was called.
func (p *Proxy) Draining() bool { return p.live.draining.Load() }

// Conns is the number of client connections being served.
func (p *Proxy) Conns() int {
	p.live.mu.Lock()
	defer p.live.mu.Unlock()
	return len(p.live.conns)
}

// CloseConns closes every client connection still open (the end of a
// graceful stop's grace) and returns how many there were.
func (p *Proxy) CloseConns() int {
	n := 0
	p.live.each(func(lc *liveConn) {
		lc.cut.Store(true)
		_ = lc.c.Close()
		n++
	})
	return n
}
