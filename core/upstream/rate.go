package upstream

import "sync/atomic"

// Rate counts events per second the way HAProxy's freq_ctr does (the
// "rate" and "rate_max" columns of `show stat`): the current second's count
// and the previous second's, the read-out weighting the previous one by
// the part of it still inside the sliding one-second window. Add is a few
// atomic operations on memory the event already touches, with the clock
// the caller read anyway; no goroutine samples it.
//
// Concurrent Adds racing a second boundary may lose a few events of the
// boundary: a rate for display and alerting, not an accounting counter
// (TotalSessions is that).
type Rate struct {
	sec  atomic.Int64 // unix second of cur
	cur  atomic.Uint32
	prev atomic.Uint32 // events of second sec-1
	max  atomic.Uint32 // highest per-second count seen
}

// Add counts one event at now (unix nano).
func (r *Rate) Add(now int64) {
	s := now / 1e9
	if old := r.sec.Load(); old != s && s > old && r.sec.CompareAndSwap(old, s) {
		c := r.cur.Swap(0)
		if s == old+1 {
			r.prev.Store(c)
		} else {
			r.prev.Store(0)
		}
	}
	n := r.cur.Add(1)
	for {
		m := r.max.Load()
		if n <= m || r.max.CompareAndSwap(m, n) {
			return
		}
	}
}

// Read returns the events of the last second at now (unix nano).
func (r *Rate) Read(now int64) float64 {
	s, sub := now/1e9, now%1e9
	left := 1 - float64(sub)/1e9 // the part of the previous second still in the window
	switch r.sec.Load() {
	case s:
		return float64(r.cur.Load()) + float64(r.prev.Load())*left
	case s - 1:
		return float64(r.cur.Load()) * left
	}
	return 0
}

// Max is the highest number of events counted in one second.
func (r *Rate) Max() uint64 { return uint64(r.max.Load()) }
