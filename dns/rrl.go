package dns

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// rrl is response rate limiting against reflection and amplification: a
// token bucket per client network (/24 or /56 by default) and kind of
// response, as BIND's RRL: answers per (name, type), empty answers per
// name, answers from a wildcard per wildcard, referrals per delegation,
// NXDOMAIN per zone, errors (REFUSED, FORMERR, ...) per network. Every key
// comes from the zone, so random names or types do not make fresh buckets
// for a spoofed victim, while a resolver asking for many names on behalf
// of many users is not limited as one client. It keeps
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

// rrlToken is what a response is counted as, besides its client network.
type rrlToken struct {
	kind  rrlKind
	qtype uint16 // answers only
	// name: answers and empty answers: the name that answered (a
	// wildcard's own); referrals: the delegation; NXDOMAIN: the zone apex.
	name string
}

type rrlKind uint8

const (
	rrlError rrlKind = iota
	rrlAnswer
	rrlNoData
	rrlNXDomain
	rrlReferral
)

type rrlKey struct {
	net   netip.Prefix
	kind  rrlKind
	qtype uint16
	name  uint64 // hash of the token's name: no string kept per bucket
}

type rrlBucket struct {
	key     rrlKey
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

func (r *rrl) check(a netip.Addr, tok rrlToken, now time.Time) rrlVerdict {
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
	pfx, _ := a.Prefix(bits)
	key := rrlKey{net: pfx, kind: tok.kind, qtype: tok.qtype}
	if tok.name != "" {
		key.name = maphash.String(r.seed, tok.name)
	}
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
