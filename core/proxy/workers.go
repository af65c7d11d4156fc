package proxy

import (
	"context"
	"net"
	"sync"
)

// workers runs accepted connections on goroutines that outlive a
// connection and take the next one. A new goroutine starts with a small
// stack, and a connection's calls (the HTTP session, the dial, the
// exchange) grow it several times; each growth copies the stack and walks
// every frame (runtime.copystack): 4.5% of the CPU of an HTTP
// one-request-per-connection load, more than its goroutine's creation and
// exit. A worker keeps its grown stack from one connection to the next.
//
// One pool per accept loop (a listener socket's shard): the loop takes a
// worker and the worker gives itself back, so the lock is one loop's and
// its workers', never shared across shards. At most maxIdleWorkers wait;
// the others exit when their connection ends, so a burst of connections
// leaves no crowd of goroutines behind. Idle workers' stacks shrink at GC
// like any goroutine's.
type workers struct {
	mu     sync.Mutex
	idle   []*worker // last in, first out: the warmest stack goes first
	closed bool
	// alive counts the pool's workers, started the goroutines it ever
	// started (what its tests check).
	alive, started int
}

// maxIdleWorkers bounds the workers waiting in one pool: enough for the
// connections one core starts between two of its connections ending, and
// a bounded amount of stack memory: 64 stacks, each as large as the
// deepest connection its worker served made it.
const maxIdleWorkers = 64

type worker struct {
	pool *workers
	jobs chan connJob
}

// connJob is an accepted connection and what serving it needs.
type connJob struct {
	l   *listener
	f   *Frontend // holds one of f's maxconn slots
	ctx context.Context
	lc  *liveConn
	c   net.Conn
}

func (j *connJob) serve() {
	defer func() { <-j.f.slots }()
	defer j.l.p.live.remove(j.lc)
	j.f.serveConn(withLiveConn(j.ctx, j.lc), j.c)
}

// run serves j on an idle worker, or on a new one.
func (p *workers) run(j connJob) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- j // buffered: never blocks
		return
	}
	p.alive++
	p.started++
	p.mu.Unlock()
	w := &worker{pool: p, jobs: make(chan connJob, 1)}
	go w.loop(j)
}

func (w *worker) loop(j connJob) {
	for {
		j.serve()
		j = connJob{} // the connection must not stay reachable
		if !w.pool.park(w) {
			return
		}
		var ok bool
		if j, ok = <-w.jobs; !ok {
			return
		}
	}
}

// park puts w back among the idle; false when it should exit instead.
func (p *workers) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= maxIdleWorkers {
		p.alive--
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// close ends the idle workers; busy ones exit when their connection ends.
func (p *workers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		close(w.jobs)
	}
	p.alive -= len(p.idle)
	p.idle = nil
}

// counts reads the pool's idle, alive and started counts.
func (p *workers) counts() (idle, alive, started int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle), p.alive, p.started
}
