package balance

import (
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vipgate/vipgate/core/upstream"
)

// roundRobin is the smooth weighted round robin (as nginx): every pick adds
// each server's weight to its score and takes the highest, which spreads a
// heavy server's turns evenly instead of in bursts. Weights are read live,
// so slowstart ramps and runtime `set weight` apply at once (HAProxy's
// "dynamic" roundrobin).
type roundRobin struct {
	mu      sync.Mutex
	entries []rrEntry
}

type rrEntry struct {
	s   *upstream.Server
	cur int
}

func (p *roundRobin) Update(servers []*upstream.Server) {
	u := usable(servers)
	p.mu.Lock()
	old := make(map[*upstream.Server]int, len(p.entries))
	for _, e := range p.entries {
		old[e.s] = e.cur
	}
	p.entries = p.entries[:0]
	for _, s := range u {
		p.entries = append(p.entries, rrEntry{s: s, cur: old[s]})
	}
	p.mu.Unlock()
}

func (p *roundRobin) Pick(r *Request) *upstream.Server {
	var ex *upstream.Server
	if r != nil {
		ex = r.Exclude
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	best, total := -1, 0
	for i := range p.entries {
		e := &p.entries[i]
		if !candidate(e.s, ex) {
			continue
		}
		w := e.s.Weight()
		e.cur += w
		total += w
		if best < 0 || e.cur > p.entries[best].cur {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	p.entries[best].cur -= total
	return p.entries[best].s
}

// staticRR walks a fixed weighted sequence built at Update time. As in
// HAProxy, runtime weight changes do not apply (it uses the configured
// weight), which makes it lock-free and the cheapest algorithm.
type staticRR struct {
	seq atomic.Pointer[[]*upstream.Server]
	n   atomic.Uint64
}

func (p *staticRR) Update(servers []*upstream.Server) {
	u := usable(servers)
	// Interleave with the smooth algorithm so weights spread evenly.
	cur := make([]int, len(u))
	total := 0
	for _, s := range u {
		total += s.Settings().Weight
	}
	seq := make([]*upstream.Server, 0, total)
	for k := 0; k < total; k++ {
		best := -1
		for i, s := range u {
			if s.Settings().Weight == 0 {
				continue
			}
			cur[i] += s.Settings().Weight
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, u[best])
	}
	p.seq.Store(&seq)
}

func (p *staticRR) Pick(r *Request) *upstream.Server {
	sp := p.seq.Load()
	if sp == nil || len(*sp) == 0 {
		return nil
	}
	seq := *sp
	var ex *upstream.Server
	if r != nil {
		ex = r.Exclude
	}
	start := p.n.Add(1) - 1
	for i := 0; i < len(seq); i++ {
		s := seq[(start+uint64(i))%uint64(len(seq))]
		if candidate(s, ex) {
			return s
		}
	}
	return nil
}

// leastConn picks the server with the fewest current sessions relative to
// its weight; equal servers take turns (HAProxy rotates among them too).
type leastConn struct {
	list atomic.Pointer[[]*upstream.Server]
	rot  atomic.Uint64
}

func (p *leastConn) Update(servers []*upstream.Server) {
	u := usable(servers)
	p.list.Store(&u)
}

func (p *leastConn) Pick(r *Request) *upstream.Server {
	lp := p.list.Load()
	if lp == nil || len(*lp) == 0 {
		return nil
	}
	list := *lp
	var ex *upstream.Server
	if r != nil {
		ex = r.Exclude
	}
	start := int(p.rot.Add(1) % uint64(len(list)))
	var best *upstream.Server
	var bestC, bestW int64
	for i := range list {
		s := list[(start+i)%len(list)]
		if !candidate(s, ex) {
			continue
		}
		c, w := s.Counters.CurSessions.Load(), int64(s.Weight())
		if w <= 0 {
			continue
		}
		// c/w < bestC/bestW without division.
		if best == nil || c*bestW < bestC*w {
			best, bestC, bestW = s, c, w
		}
	}
	return best
}

// first uses the first server (in configuration order) with a free slot, so
// that the others can be switched off when idle (HAProxy `balance first`,
// meaningful with per-server maxconn).
type first struct {
	list atomic.Pointer[[]*upstream.Server]
}

func (p *first) Update(servers []*upstream.Server) {
	u := usable(servers)
	sort.SliceStable(u, func(i, j int) bool { return u[i].Settings().Index < u[j].Settings().Index })
	p.list.Store(&u)
}

func (p *first) Pick(r *Request) *upstream.Server {
	lp := p.list.Load()
	if lp == nil {
		return nil
	}
	var ex *upstream.Server
	if r != nil {
		ex = r.Exclude
	}
	for _, s := range *lp {
		if candidate(s, ex) {
			return s
		}
	}
	return nil
}

// keyFunc extracts the hash input; ok false means "no key: round robin".
type keyFunc func(r *Request) (uint64, bool)

func sourceKey(r *Request) (uint64, bool) {
	if r == nil || !r.Client.IsValid() {
		return 0, false
	}
	b := r.Client.Unmap().As16()
	return hashBytes(b[:]), true
}

func flowKey(r *Request) (uint64, bool) {
	if r != nil && r.Flow != 0 {
		return r.Flow, true
	}
	return sourceKey(r)
}

func requestKey(r *Request) (uint64, bool) {
	if r == nil || !r.HasKey {
		return 0, false
	}
	return hashString(r.Key), true
}

// hashed implements the hashing algorithms with either HAProxy's map-based
// table (each server present weight times; hash modulo the table) or a
// consistent table (see consistentTable).
type hashed struct {
	key        keyFunc
	consistent bool
	st         atomic.Pointer[hashState]
	fallback   roundRobin
}

type hashState struct {
	table []*upstream.Server // map-based
	ct    consistentTable
}

func newHashed(k keyFunc, consistent bool) *hashed {
	return &hashed{key: k, consistent: consistent}
}

func (p *hashed) Update(servers []*upstream.Server) {
	p.fallback.Update(servers)
	st := &hashState{}
	if p.consistent {
		// Every weighted member is in the table, up or not: a server going
		// down must not move anybody else's keys, so its slots stay and a
		// pick walks past them. Health changes (most updates) therefore
		// keep the table; only members and weights rebuild it.
		if old := p.st.Load(); old != nil && old.ct.sameMembers(servers) {
			return
		}
		st.ct = buildConsistent(servers)
		p.st.Store(st)
		return
	}
	// Interleave by server order so the table is the same on every node
	// given the same config: both gateways of a datacenter send a client
	// to the same server. Static, as HAProxy's map-based: built from the
	// operator's weights, not the slowstart ramp.
	u := usable(servers)
	maxW := 0
	for _, s := range u {
		maxW = max(maxW, s.BaseWeight())
	}
	for round := 0; round < maxW; round++ {
		for _, s := range u {
			if s.BaseWeight() > round {
				st.table = append(st.table, s)
			}
		}
	}
	p.st.Store(st)
}

func (p *hashed) Pick(r *Request) *upstream.Server {
	h, ok := p.key(r)
	if !ok {
		return p.fallback.Pick(r)
	}
	st := p.st.Load()
	if st == nil {
		return nil
	}
	var ex *upstream.Server
	if r != nil {
		ex = r.Exclude
	}
	if p.consistent {
		return st.ct.pick(h, ex)
	}
	n := len(st.table)
	if n == 0 {
		return nil
	}
	i := int(h % uint64(n))
	for k := 0; k < n; k++ {
		if s := st.table[(i+k)%n]; candidate(s, ex) {
			return s
		}
	}
	return nil
}

// consistentTable is a Maglev lookup table (Eisenbud et al., NSDI 2016): a
// prime number of slots, which the members fill by turns, each in the order
// of its own permutation of the slots (derived from its name, so every
// gateway builds the same table). Turns are dealt in proportion to weight,
// so the shares are exact to one slot, where a hash ring is off by several
// percent unless it holds thousands of points per server. A key is a slot;
// when the slot's server cannot take it, the following slots (owned at
// random) decide, which spreads a dead server's keys over the others in
// proportion to their weights and moves no other key.
type consistentTable struct {
	members []*upstream.Server
	weights []int   // members' BaseWeight when built
	slots   []int32 // member index per slot
}

// sameMembers reports whether the table was built from these servers with
// their current weights.
func (ct *consistentTable) sameMembers(servers []*upstream.Server) bool {
	i := 0
	for _, s := range servers {
		w := s.BaseWeight()
		if w <= 0 {
			continue
		}
		if i >= len(ct.members) || ct.members[i] != s || ct.weights[i] != w {
			return false
		}
		i++
	}
	return i == len(ct.members)
}

// maxConsistentWalk bounds how many slots a pick tries before it scans the
// members in order (only when nearly every server is down or full).
const maxConsistentWalk = 64

func buildConsistent(servers []*upstream.Server) consistentTable {
	var ct consistentTable
	for _, s := range servers {
		if w := s.BaseWeight(); w > 0 {
			ct.members = append(ct.members, s)
			ct.weights = append(ct.weights, w)
		}
	}
	weights := ct.weights
	n := len(ct.members)
	if n == 0 {
		return ct
	}
	m := nextPrime(max(1021, 128*n))
	ct.slots = make([]int32, m)
	for i := range ct.slots {
		ct.slots[i] = -1
	}
	offset, skip, next := make([]uint64, n), make([]uint64, n), make([]uint64, n)
	for i, s := range ct.members {
		h := hashString(s.Backend + "/" + s.Name)
		offset[i] = h % uint64(m)
		skip[i] = mix(h)%uint64(m-1) + 1
	}
	// claim gives member i its next preferred free slot.
	claim := func(i int) {
		for {
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			next[i]++
			if ct.slots[c] < 0 {
				ct.slots[c] = int32(i)
				return
			}
		}
	}
	// Whole rounds give every member its weight in turns; the last partial
	// round is dealt by smooth weighted round robin so that no member gets
	// more than one slot beyond its share.
	total := 0
	for _, w := range weights {
		total += w
	}
	filled := 0
	for ; filled+total <= m; filled += total {
		for i, w := range weights {
			for range w {
				claim(i)
			}
		}
	}
	cur := make([]int, n)
	for ; filled < m; filled++ {
		best := 0
		for i, w := range weights {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		claim(best)
	}
	return ct
}

func (ct *consistentTable) pick(h uint64, ex *upstream.Server) *upstream.Server {
	m := len(ct.slots)
	if m == 0 {
		return nil
	}
	i := int(h % uint64(m))
	for k := 0; k < maxConsistentWalk; k++ {
		if s := ct.members[ct.slots[(i+k)%m]]; candidate(s, ex) {
			return s
		}
	}
	n := len(ct.members)
	start := int(h % uint64(n))
	for k := 0; k < n; k++ {
		if s := ct.members[(start+k)%n]; candidate(s, ex) {
			return s
		}
	}
	return nil
}

// nextPrime is the smallest prime >= n (trial division: n is small and this
// runs only when a backend's servers change).
func nextPrime(n int) int {
	for ; ; n++ {
		if n < 2 {
			continue
		}
		prime := true
		for d := 2; d*d <= n; d++ {
			if n%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			return n
		}
	}
}

// random draws `draws` servers at random (weighted) and keeps the least
// loaded: the "power of two choices", which avoids both herd effects and the
// cost of a global leastconn scan.
type random struct {
	draws int
	st    atomic.Pointer[randState]
}

type randState struct {
	servers []*upstream.Server
	cum     []int // cumulative weights
}

func newRandom(draws int) *random { return &random{draws: draws} }

func (p *random) Update(servers []*upstream.Server) {
	u := usable(servers)
	st := &randState{}
	total := 0
	for _, s := range u {
		if w := s.BaseWeight(); w > 0 {
			total += w
			st.servers = append(st.servers, s)
			st.cum = append(st.cum, total)
		}
	}
	p.st.Store(st)
}

func (p *random) Pick(r *Request) *upstream.Server {
	st := p.st.Load()
	if st == nil || len(st.servers) == 0 {
		return nil
	}
	var ex *upstream.Server
	if r != nil {
		ex = r.Exclude
	}
	total := st.cum[len(st.cum)-1]
	var best *upstream.Server
	var bestC, bestW int64
	for d := 0; d < p.draws; d++ {
		x := int(rand.Uint64N(uint64(total)))
		i := sort.SearchInts(st.cum, x+1)
		s := st.servers[i]
		if !candidate(s, ex) {
			continue
		}
		c, w := s.Counters.CurSessions.Load(), int64(max(s.Weight(), 1))
		if best == nil || c*bestW < bestC*w {
			best, bestC, bestW = s, c, w
		}
	}
	if best != nil {
		return best
	}
	// Every draw hit a full or excluded server: scan once.
	for _, s := range st.servers {
		if candidate(s, ex) {
			return s
		}
	}
	return nil
}

// hashBytes is FNV-1a 64 with a splitmix64 finish: stable across processes
// and releases (two gateways must agree), and well mixed for modulo use.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix(h)
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix(h)
}

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Interface guards.
var (
	_ Policy = (*roundRobin)(nil)
	_ Policy = (*staticRR)(nil)
	_ Policy = (*leastConn)(nil)
	_ Policy = (*first)(nil)
	_ Policy = (*hashed)(nil)
	_ Policy = (*random)(nil)
)
