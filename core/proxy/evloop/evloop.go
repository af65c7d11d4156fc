// Package evloop is an epoll event loop for the proxy's hot paths that
// parks in Go's own netpoller.
//
// A goroutine per connection costs, on every message, a read that finds
// nothing (Go's net package always tries the socket before it waits, so each
// direction ends each message with an EAGAIN), a park and a wake-up through
// the scheduler, and at set-up the net package's per-socket look-ups
// (getsockname, getpeername, SO_ERROR) and an EPOLL_CTL_DEL at close. A Loop
// instead owns an epoll instance of its own, registered edge-triggered, and
// its handlers read until a short read, as HAProxy does: one epoll_wait
// returns the events of many connections and no system call finds nothing.
//
// The loop's goroutine does not block in epoll_wait, which would hold an OS
// thread (and, past sysmon's patience, a P) in a system call. It waits for
// its epoll descriptor to become readable through Go's netpoller, like any
// goroutine waiting on a socket, and then calls epoll_wait with a zero
// timeout itself: an idle loop is an ordinary parked goroutine, a busy one
// never parks. Timers are the descriptor's read deadline.
package evloop

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handler receives a registered descriptor's events (EPOLLIN, EPOLLOUT,
// EPOLLRDHUP, EPOLLHUP, EPOLLERR bits). It runs on the loop's goroutine.
type Handler interface {
	Event(ev uint32)
}

// Token names one registration. It carries a generation, so that an event
// fetched for a registration that has since been removed (and its slot
// reused) within the same batch is dropped rather than delivered to the
// slot's new owner.
type Token uint64

// Timer is a deadline on the loop. The owner embeds it and keeps it; its
// function runs on the loop's goroutine.
type Timer struct {
	at  int64 // loop clock, nanoseconds
	idx int   // in the heap; -1: not scheduled
	f   func()
}

// NewTimer returns a timer that runs f when it fires.
func NewTimer(f func()) Timer { return Timer{idx: -1, f: f} }

// Loop is one epoll instance and the goroutine that serves it.
type Loop struct {
	epfd  int
	file  *os.File
	rc    syscall.RawConn
	evfd  int
	evtok Token

	events []epollEvent
	slots  []slot
	free   []uint32
	n      int // live registrations

	again, againNext []Handler
	timers           timerHeap
	base             time.Time
	now              int64
	deadline         int64 // read deadline armed on file (0: none)
	yielded          int64 // when the loop last parked or yielded

	// Posted work from other goroutines. sleeping says the loop may be
	// parked: a poster then writes the eventfd to wake it.
	mu       sync.Mutex
	posted   []func()
	closed   bool
	sleeping atomic.Bool

	// OnPanic is called when a handler panics; the loop goes on. It gets
	// the handler (nil for a timer or posted function) and the value.
	OnPanic func(h Handler, v any)
}

type slot struct {
	h   Handler
	gen uint32
}

// New makes a loop. Close releases it when Run is not used.
func New() (*Loop, error) {
	l := &Loop{base: time.Now()}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// Now is the loop's clock (nanoseconds since the loop was made), read once
// per batch of events: cheaper than time.Now per message, and precise enough
// for timeouts counted in milliseconds.
func (l *Loop) Now() int64 { return l.now }

// Time turns a loop clock reading into a time.Time.
func (l *Loop) Time(at int64) time.Time { return l.base.Add(time.Duration(at)) }

func (l *Loop) clock() int64 { return int64(time.Since(l.base)) }

// Len is the number of live registrations (the loop's own eventfd excluded).
func (l *Loop) Len() int { return l.n }

func (l *Loop) alloc(h Handler) (uint32, uint32) {
	var i uint32
	if k := len(l.free); k > 0 {
		i = l.free[k-1]
		l.free = l.free[:k-1]
	} else {
		l.slots = append(l.slots, slot{})
		i = uint32(len(l.slots) - 1)
	}
	s := &l.slots[i]
	s.gen++
	s.h = h
	return i, s.gen
}

func (l *Loop) release(t Token) {
	i := uint32(t)
	if int(i) >= len(l.slots) || l.slots[i].gen != uint32(t>>32) || l.slots[i].h == nil {
		return
	}
	l.slots[i].h = nil
	l.slots[i].gen++
	l.free = append(l.free, i)
}

// Forget ends a registration whose descriptor is already closed: closing a
// descriptor removes it from the epoll set, so no system call is needed
// (and none may be made: the number may already belong to another file).
func (l *Loop) Forget(t Token) {
	if int(uint32(t)) < len(l.slots) && l.slots[uint32(t)].h != nil && l.slots[uint32(t)].gen == uint32(t>>32) {
		l.n--
	}
	l.release(t)
}

// Again runs h.Event(0) on the next turn of the loop: for a handler that
// stopped early (a fairness budget) while its descriptor still has data,
// which an edge-triggered registration will not report again.
func (l *Loop) Again(h Handler) { l.againNext = append(l.againNext, h) }

// Schedule (re)arms t to fire at the loop time at.
func (l *Loop) Schedule(t *Timer, at int64) {
	t.at = at
	if t.idx >= 0 {
		heap.Fix(&l.timers, t.idx)
		return
	}
	heap.Push(&l.timers, t)
}

// Stop disarms t.
func (l *Loop) Stop(t *Timer) {
	if t.idx >= 0 {
		heap.Remove(&l.timers, t.idx)
	}
}

// Post runs f on the loop's goroutine, soon. Safe from any goroutine.
func (l *Loop) Post(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return // Run is over: nothing is registered any more to act on
	}
	l.posted = append(l.posted, f)
	// Under the lock: close cannot free the eventfd's number meanwhile.
	if l.sleeping.Load() {
		l.wake()
	}
}

// Run serves the loop until ctx ends and nothing is registered any more
// (the connections it carries end on their own, as goroutines would), then
// closes it.
func (l *Loop) Run(ctx context.Context) error {
	defer l.close()
	stopped := false
	go func() {
		<-ctx.Done()
		l.Post(func() { stopped = true })
	}()
	for {
		err := l.rc.Read(func(uintptr) bool { return l.turn(&stopped) })
		switch {
		case stopped && l.n == 0:
			return nil
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			l.deadline = -1 // Go's deadline is spent: arm the next one afresh
		default:
			return fmt.Errorf("event loop: %w", err)
		}
		l.armDeadline()
	}
}

// turn is one pass: timers, posted work, handlers to run again, then the
// ready events. It returns false when there is nothing to do (the
// goroutine then parks in the netpoller until the epoll descriptor is
// readable or the next timer's deadline) and true to leave Read (to stop,
// or to re-arm the deadline).
func (l *Loop) turn(stopped *bool) bool {
	for {
		l.sleeping.Store(false)
		l.now = l.clock()
		l.runTimers()
		l.runPosted()
		l.runAgain()
		if *stopped && l.n == 0 {
			return true
		}
		n := l.poll()
		if n > 0 {
			l.dispatch(n)
			l.yield()
			continue
		}
		if len(l.againNext) > 0 {
			l.yield()
			continue
		}
		if want := l.nextDeadline(); want != l.deadline {
			return true // re-arm outside Read
		}
		// Park: say so first, then look once more for posted work, so a
		// Post that came after runPosted either is seen here or wakes us.
		l.sleeping.Store(true)
		l.mu.Lock()
		pending := len(l.posted) > 0
		l.mu.Unlock()
		if pending {
			continue
		}
		if n := l.poll(); n > 0 {
			l.dispatch(n)
			continue
		}
		l.yielded = l.now
		return false
	}
}

// yieldEvery is how long a busy loop runs before it lets the scheduler
// run other goroutines (health checks, VRRP adverts, the admin API): a
// loop that never parks would otherwise hold its P until sysmon preempts
// it, 10ms on, with a signal that also interrupts its system calls.
const yieldEvery = int64(time.Millisecond)

func (l *Loop) yield() {
	if l.now-l.yielded < yieldEvery {
		return
	}
	runtime.Gosched()
	l.now = l.clock()
	l.yielded = l.now
}

func (l *Loop) nextDeadline() int64 {
	if len(l.timers) == 0 {
		return 0
	}
	return l.timers[0].at
}

// armDeadline sets the descriptor's read deadline to the next timer. Timers
// already due run first: a deadline in the past would make every Read fail
// at once, before the loop could run them.
func (l *Loop) armDeadline() {
	want := l.nextDeadline()
	for want != 0 && want <= l.clock() {
		l.now = l.clock()
		l.runTimers()
		want = l.nextDeadline()
	}
	if want == l.deadline {
		return
	}
	l.deadline = want
	var t time.Time
	if want != 0 {
		t = l.Time(want)
	}
	_ = l.file.SetReadDeadline(t)
}

func (l *Loop) runTimers() {
	for len(l.timers) > 0 && l.timers[0].at <= l.now {
		t := heap.Pop(&l.timers).(*Timer)
		l.safely(t.f)
	}
}

func (l *Loop) runPosted() {
	l.mu.Lock()
	p := l.posted
	l.posted = nil
	l.mu.Unlock()
	for _, f := range p {
		l.safely(f)
	}
}

func (l *Loop) runAgain() {
	if len(l.againNext) == 0 {
		return
	}
	l.again, l.againNext = l.againNext, l.again[:0]
	for _, h := range l.again {
		l.deliver(h, 0)
	}
	clear(l.again)
}

func (l *Loop) dispatch(n int) {
	for i := range n {
		e := &l.events[i]
		t := tokenOf(e)
		if t == l.evtok {
			l.drainWake()
			continue
		}
		s := &l.slots[uint32(t)]
		if s.h == nil || s.gen != uint32(t>>32) {
			continue // removed earlier in this batch
		}
		l.deliver(s.h, e.Events)
	}
}

func (l *Loop) deliver(h Handler, ev uint32) {
	defer l.recoverHandler(h)
	h.Event(ev)
}

func (l *Loop) safely(f func()) {
	defer l.recoverHandler(nil)
	f()
}

func (l *Loop) recoverHandler(h Handler) {
	if v := recover(); v != nil && l.OnPanic != nil {
		l.OnPanic(h, v)
	}
}

// timerHeap orders timers by deadline.
type timerHeap []*Timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*Timer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}
