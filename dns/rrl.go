package dns

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// rrl is response rate limiting per client network (a token bucket per
// /24 or /56 by default), against reflection and amplification. It keeps
// a fixed table: a collision resets the bucket, which errs on the side of
// answering, and nothing is allocated per query.
type rrl struct {
	rate, burst    float64
	slip           int
	v4bits, v6bits int
	seed           maphash.Seed
	shards         [64]rrlShard
}

type rrlShard struct {
	mu      sync.Mutex
	buckets [256]rrlBucket
}

type rrlBucket struct {
	key     netip.Prefix
	tokens  float64
	last    int64
	limited uint32
}

func newRRL(c config.DNSRRL) *rrl {
	if c.ResponsesPerSecond <= 0 {
		return nil
	}
	r := &rrl{rate: float64(c.ResponsesPerSecond), burst: float64(c.Burst), v4bits: c.IPv4Prefix, v6bits: c.IPv6Prefix, seed: maphash.MakeSeed()}
	if r.burst < 1 {
		r.burst = 1
	}
	if c.Slip != nil {
		r.slip = *c.Slip
	}
	return r
}

// rrlVerdict says what to do with a response.
type rrlVerdict int

const (
	rrlSend rrlVerdict = iota
	rrlDrop
	rrlSlip // send an empty truncated answer instead
)

func (r *rrl) check(a netip.Addr, now time.Time) rrlVerdict {
	if r == nil {
		return rrlSend
	}
	// Sockets may report IPv4 clients as ::ffff:a.b.c.d; grouped as IPv6
	// they would all share one bucket.
	a = a.Unmap()
	bits := r.v6bits
	if a.Is4() {
		bits = r.v4bits
	}
	key, _ := a.Prefix(bits)
	h := maphash.Comparable(r.seed, key)
	sh := &r.shards[h%uint64(len(r.shards))]
	ns := now.UnixNano()
	sh.mu.Lock()
	b := &sh.buckets[(h>>8)%uint64(len(sh.buckets))]
	if b.key != key {
		*b = rrlBucket{key: key, tokens: r.burst, last: ns}
	}
	b.tokens += float64(ns-b.last) / 1e9 * r.rate
	if b.tokens > r.burst {
		b.tokens = r.burst
	}
	b.last = ns
	if b.tokens >= 1 {
		b.tokens--
		sh.mu.Unlock()
		return rrlSend
	}
	b.limited++
	n := b.limited
	sh.mu.Unlock()
	if r.slip > 0 && n%uint32(r.slip) == 0 {
		return rrlSlip
	}
	return rrlDrop
}
