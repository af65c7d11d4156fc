package scripting

import (
	"context"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The VM executes `s = s .. s` as one instruction, so a doubling loop can
// allocate gigabytes before its deadline stops it. The memory guard
// watches calls that have run for a while and cancels them when the
// process heap has grown by more than max_alloc since it noticed them.
// The heap is process-wide: the guard only acts on long-running calls, the
// likely culprits, and only on growth far beyond what a proxy allocates in
// a few milliseconds.

const (
	guardTick     = 2 * time.Millisecond
	guardLongCall = 2 * time.Millisecond
	// guardIdleAfter: with no call begun or running for this long the
	// guard stops ticking until the next call begins. Ticking every 2ms
	// regardless cost an idle node 2.5% of a core and ~1700 wake-ups a
	// second, on nodes with no Lua at all.
	guardIdleAfter = time.Second
)

const heapMetric = "/memory/classes/heap/objects:bytes"

// callGuard is a state's slot in the guard: set while a call runs.
type callGuard struct {
	start  atomic.Int64 // unix nano of the call start, 0 when idle
	cancel atomic.Pointer[context.CancelFunc]
	killed atomic.Bool
	// baseHeap is the guard's latest heap sample when the call started,
	// or when it last came back from a network wait.
	baseHeap atomic.Uint64
	// While a call waits on the network (net module) the heap grows with
	// the rest of the process's work, not the script's: paused is set and
	// the guard ignores the call; grown keeps the growth seen while the
	// script ran before.
	paused atomic.Bool
	grown  atomic.Uint64
}

type memGuard struct {
	mu     sync.Mutex
	states map[*callGuard]struct{}
	limit  atomic.Uint64 // bytes of growth allowed
	kills  atomic.Uint64
	// heap is the latest sample (at most one tick old while the guard runs).
	heap atomic.Uint64
	// rounds counts finished guard rounds (tests wait on it).
	rounds atomic.Uint64
	// calls counts calls begun; idle is set while the guard sleeps, and a
	// call that begins then sends on wake (see begin and run).
	calls atomic.Uint64
	idle  atomic.Bool
	wake  chan struct{}
}

// begin marks a call as started on g.
func (m *memGuard) begin(g *callGuard, cancel *context.CancelFunc) {
	m.calls.Add(1)
	if m.idle.Load() {
		// The sample is as old as the guard's sleep: take a fresh one for
		// this call's base, then wake the guard.
		m.heap.Store(heapBytes([]metrics.Sample{{Name: heapMetric}}))
		if m.idle.CompareAndSwap(true, false) {
			select {
			case m.wake <- struct{}{}:
			default:
			}
		}
	}
	g.killed.Store(false)
	g.cancel.Store(cancel)
	g.grown.Store(0)
	g.paused.Store(false)
	g.baseHeap.Store(m.heap.Load())
	g.start.Store(time.Now().UnixNano())
}

// pause stops counting heap growth against the call on g: it is about to
// wait on the network.
func (m *memGuard) pause(g *callGuard) {
	if base, heap := g.baseHeap.Load(), m.heap.Load(); base != 0 && heap > base {
		g.grown.Add(heap - base)
	}
	g.paused.Store(true)
}

// resume counts again, from the current heap.
func (m *memGuard) resume(g *callGuard) {
	g.baseHeap.Store(m.heap.Load())
	g.paused.Store(false)
}

// end marks the call on g as finished.
func (m *memGuard) end(g *callGuard) {
	g.start.Store(0)
	g.cancel.Store(nil)
}

func (m *memGuard) add(g *callGuard) {
	m.mu.Lock()
	m.states[g] = struct{}{}
	m.mu.Unlock()
}

func (m *memGuard) remove(g *callGuard) {
	m.mu.Lock()
	delete(m.states, g)
	m.mu.Unlock()
}

func heapBytes(s []metrics.Sample) uint64 {
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}

// run polls until ctx ends: every guardTick while calls begin or run,
// not at all after guardIdleAfter without one.
func (m *memGuard) run(ctx context.Context) {
	sample := []metrics.Sample{{Name: heapMetric}}
	m.heap.Store(heapBytes(sample))
	t := time.NewTicker(guardTick)
	defer t.Stop()
	var long []*callGuard
	quiet, seen := 0, m.calls.Load()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		heap := heapBytes(sample)
		m.heap.Store(heap)
		now := time.Now().UnixNano()
		long = long[:0]
		running := false
		m.mu.Lock()
		for g := range m.states {
			st := g.start.Load()
			running = running || st != 0
			if st != 0 && now-st >= int64(guardLongCall) && !g.paused.Load() {
				long = append(long, g)
			}
		}
		m.mu.Unlock()
		limit := m.limit.Load()
		for _, g := range long {
			base := g.baseHeap.Load()
			if base == 0 {
				// The call started before the guard's first sample.
				g.baseHeap.CompareAndSwap(0, heap)
				continue
			}
			grew := g.grown.Load()
			if heap > base {
				grew += heap - base
			}
			if grew <= limit || g.paused.Load() {
				continue
			}
			if c := g.cancel.Load(); c != nil && g.killed.CompareAndSwap(false, true) {
				m.kills.Add(1)
				(*c)()
			}
		}
		m.rounds.Add(1)
		if c := m.calls.Load(); c != seen || running {
			quiet, seen = 0, c
			continue
		}
		if quiet++; time.Duration(quiet)*guardTick < guardIdleAfter {
			continue
		}
		// Going idle: a call that begins after idle is set wakes the
		// guard; one that began before is seen by the second look at
		// calls.
		m.idle.Store(true)
		if m.calls.Load() != seen {
			m.idle.Store(false)
			quiet = 0
			continue
		}
		t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
		quiet, seen = 0, m.calls.Load()
		t.Reset(guardTick)
	}
}
