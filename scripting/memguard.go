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
)

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
}

// begin marks a call as started on g.
func (m *memGuard) begin(g *callGuard, cancel *context.CancelFunc) {
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

// run polls until ctx ends.
func (m *memGuard) run(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	m.heap.Store(heapBytes(sample))
	t := time.NewTicker(guardTick)
	defer t.Stop()
	var long []*callGuard
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
		m.mu.Lock()
		for g := range m.states {
			if st := g.start.Load(); st != 0 && now-st >= int64(guardLongCall) && !g.paused.Load() {
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
	}
}
