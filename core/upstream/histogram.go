package upstream

import (
	"sync/atomic"
	"time"
)

// HistogramBounds are the upper bounds (seconds) of the latency buckets
// shared by every histogram, chosen for LAN/WAN proxy latencies: 0.5 ms to 30 s.
var HistogramBounds = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Histogram is a lock-free latency histogram for the data path: one atomic
// add per observation plus the sum. Buckets are not cumulative here; the
// Prometheus read-out accumulates them.
type Histogram struct {
	buckets [len(HistogramBounds) + 1]atomic.Uint64 // last = +Inf
	sumNS   atomic.Uint64
	count   atomic.Uint64
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(HistogramBounds) && s > HistogramBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	if d > 0 {
		h.sumNS.Add(uint64(d))
	}
	h.count.Add(1)
}

// Snapshot returns cumulative bucket counts (by HistogramBounds), the sum in
// seconds and the count.
func (h *Histogram) Snapshot() (cumulative []uint64, sum float64, count uint64) {
	cumulative = make([]uint64, len(HistogramBounds))
	var acc uint64
	for i := range HistogramBounds {
		acc += h.buckets[i].Load()
		cumulative[i] = acc
	}
	count = acc + h.buckets[len(HistogramBounds)].Load()
	return cumulative, float64(h.sumNS.Load()) / 1e9, count
}
