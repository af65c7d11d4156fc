// Package stick implements persistence: stick tables (typed keys, bounded
// size with LRU eviction, expiry refreshed on use) and the per-backend
// rules that use them in tcp mode (SSL session ID, source address, SNI +
// source, Lua-computed key). Peer sync lives in stick/peers.
package stick

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// Update is one entry as it is stored or synced: the key in the table's
// canonical form, the server name, and how long the entry has left.
type Update struct {
	Table  string
	Key    []byte
	Server string
	TTL    time.Duration
}

// Counters are a table's activity since it was created.
type Counters struct {
	Lookups   atomic.Uint64
	Hits      atomic.Uint64
	Stores    atomic.Uint64
	Evictions atomic.Uint64 // removed to make room (LRU)
	Expired   atomic.Uint64 // removed because unused for expire
	Synced    atomic.Uint64 // stored from a peer
}

// Table is one stick table. All methods are safe for concurrent use: the
// entries are split in shards, each with its own lock, map and LRU list.
type Table struct {
	Name   string
	Type   string
	KeyLen int // string/binary: at most this many bytes are kept
	Counters

	peers atomic.Bool

	expire atomic.Int64 // ns
	shards []shard
	seed   maphash.Seed
	// now is the table's time in nanoseconds: every exp and peerExp is on
	// this scale. It must not follow the wall clock (see monotonic).
	now func() int64
	// notify, when set, sees every local store (peer sync).
	notify atomic.Pointer[func(Update)]
}

type shard struct {
	mu    sync.Mutex
	m     map[string]*entry
	root  entry // LRU list sentinel: root.next is the most recent
	limit int
	// unordered is set when an entry expires before one behind it in the
	// LRU list (a peer's entry carries its remaining lifetime): Sweep then
	// scans the whole list instead of stopping at the first live entry,
	// until the list is in expiry order again.
	unordered bool
}

type entry struct {
	key    string
	server string
	exp    int64
	// peerExp is when the peers' copy expires (as of the last update sent
	// or received): a store is sent again once it has less than half its
	// lifetime left, however often lookups refreshed exp here.
	peerExp    int64
	prev, next *entry
}

// NewTable builds an empty table from its (defaulted, validated) config.
func NewTable(c config.StickTable) *Table {
	t := &Table{Name: c.Name, Type: c.Type, KeyLen: c.Len, seed: maphash.MakeSeed(),
		now: monotonic(time.Now())}
	t.peers.Store(c.Peers)
	// Small tables use one shard so that size is an exact LRU bound; big
	// ones spread the lock over 32 shards (the size bound stays exact: the
	// shard limits add up to size).
	n := 1
	if c.Size >= 4096 {
		n = 32
	}
	t.shards = make([]shard, n)
	for i := range t.shards {
		s := &t.shards[i]
		s.m = make(map[string]*entry)
		s.root.next, s.root.prev = &s.root, &s.root
	}
	t.resize(c.Size)
	t.expire.Store(int64(c.Expire.D()))
	return t
}

// monotonic is a clock for expiry: the time elapsed since start on Go's
// monotonic clock (start must come from time.Now, which carries that
// reading). A step of the wall clock (NTP, date -s, a VM resumed from a
// snapshot) does not move it, so it neither expires every session at once
// nor keeps them for as long as the clock went back. What leaves the table
// (Each, Update.TTL, the peers' wire) is a remaining lifetime, never a
// reading of this clock, so it keeps its meaning in another process.
func monotonic(start time.Time) func() int64 {
	return func() int64 { return int64(time.Since(start)) }
}

// Compatible reports whether the table can take config c in place (same
// key type), keeping its entries.
func (t *Table) Compatible(c config.StickTable) bool {
	return t.Type == c.Type && t.KeyLen == c.Len
}

// Reconfigure applies a new size/expire/peers in place; entries beyond the
// new size are evicted, and a shorter expire applies to the entries
// already stored (clamping keeps the list in expiry order).
func (t *Table) Reconfigure(c config.StickTable) {
	exp := int64(c.Expire.D())
	if old := t.expire.Swap(exp); exp < old {
		limit := t.now() + exp
		for i := range t.shards {
			s := &t.shards[i]
			s.mu.Lock()
			for e := s.root.next; e != &s.root; e = e.next {
				e.exp = min(e.exp, limit)
			}
			s.mu.Unlock()
		}
	}
	t.peers.Store(c.Peers)
	t.resize(c.Size)
}

func (t *Table) resize(size int) {
	n := len(t.shards)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.limit = size / n
		if i < size%n {
			s.limit++
		}
		for len(s.m) > s.limit {
			s.remove(s.root.prev)
			t.Evictions.Add(1)
		}
		s.mu.Unlock()
	}
}

// Size is the table's maximum number of entries.
func (t *Table) Size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.limit
		s.mu.Unlock()
	}
	return n
}

// Peers reports whether the table is synced with the node's peers.
func (t *Table) Peers() bool { return t.peers.Load() }

// Expire is how long an unused entry lives.
func (t *Table) Expire() time.Duration { return time.Duration(t.expire.Load()) }

// SetNotify installs the local-store observer (nil removes it).
func (t *Table) SetNotify(f func(Update)) {
	if f == nil {
		t.notify.Store(nil)
		return
	}
	t.notify.Store(&f)
}

func (t *Table) shard(key []byte) *shard {
	if len(t.shards) == 1 {
		return &t.shards[0]
	}
	return &t.shards[maphash.Bytes(t.seed, key)&uint64(len(t.shards)-1)]
}

func (s *shard) remove(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(s.m, e.key)
}

func (s *shard) front(e *entry) {
	if s.root.next == e {
		return
	}
	if e.prev != nil {
		e.prev.next, e.next.prev = e.next, e.prev
	}
	e.prev, e.next = &s.root, s.root.next
	s.root.next.prev = e
	s.root.next = e
}

// Lookup returns the server stored for key. A hit refreshes the entry's
// expiry and LRU position (the session is in use).
func (t *Table) Lookup(key []byte) (server string, ok bool) {
	t.Lookups.Add(1)
	s := t.shard(key)
	now := t.now()
	s.mu.Lock()
	e := s.m[string(key)]
	if e != nil && e.exp <= now {
		s.remove(e)
		t.Expired.Add(1)
		e = nil
	}
	if e != nil {
		e.exp = now + t.expire.Load()
		s.front(e)
		server = e.server
	}
	s.mu.Unlock()
	if e == nil {
		return "", false
	}
	t.Hits.Add(1)
	return server, true
}

// Store points key at server (insert or overwrite) and tells the peers.
func (t *Table) Store(key []byte, server string) {
	if len(key) == 0 {
		return
	}
	t.Stores.Add(1)
	exp := t.expire.Load()
	if !t.put(key, server, exp, false) {
		return
	}
	if f := t.notify.Load(); f != nil {
		(*f)(Update{Table: t.Name, Key: key, Server: server, TTL: time.Duration(exp)})
	}
}

// Apply stores an update received from a peer; it is not sent on again.
func (t *Table) Apply(u Update) {
	if len(u.Key) == 0 || u.TTL <= 0 || u.Server == "" {
		return
	}
	ttl := min(int64(u.TTL), t.expire.Load())
	t.put(t.fit(u.Key), u.Server, ttl, true)
	t.Synced.Add(1)
}

// put returns whether the peers should be told: the server changed, or
// their copy has less than half its lifetime left (a refresh before that
// is not worth a sync message). fromPeer: the update came from a peer,
// which therefore knows it.
func (t *Table) put(key []byte, server string, ttl int64, fromPeer bool) bool {
	s := t.shard(key)
	now := t.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit == 0 {
		return false
	}
	if e := s.m[string(key)]; e != nil {
		// Not e.exp: the lookup that found this session just refreshed
		// it, and the peers would never hear of a session in use.
		changed := e.server != server || e.peerExp < now+ttl/2
		e.server, e.exp = server, now+ttl
		if changed || fromPeer {
			e.peerExp = e.exp
		}
		s.front(e)
		s.checkOrder(e)
		return changed
	}
	// Make room: expired entries first (they sit at the tail, since
	// expiry follows last use; those a peer's shorter lifetime put
	// further up are removed by Sweep), then the least recently used.
	for len(s.m) >= s.limit {
		old := s.root.prev
		if old.exp <= now {
			t.Expired.Add(1)
		} else {
			t.Evictions.Add(1)
		}
		s.remove(old)
	}
	e := &entry{key: string(key), server: server, exp: now + ttl, peerExp: now + ttl}
	s.m[e.key] = e
	s.front(e)
	s.checkOrder(e)
	return true
}

// checkOrder notes when e, just put in front, expires before the entry
// behind it.
func (s *shard) checkOrder(e *entry) {
	if e.next != &s.root && e.next.exp > e.exp {
		s.unordered = true
	}
}

// Delete removes key; it reports whether it was there.
func (t *Table) Delete(key []byte) bool {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(key)]
	if e == nil {
		return false
	}
	s.remove(e)
	return true
}

// Sweep drops expired entries; it returns how many.
func (t *Table) Sweep() int {
	now := t.now()
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for s.root.prev != &s.root && s.root.prev.exp <= now {
			s.remove(s.root.prev)
			n++
		}
		if s.unordered {
			// Expired entries may sit in front of live ones: look at all.
			ordered := true
			for e := s.root.next; e != &s.root; {
				next := e.next
				if e.exp <= now {
					s.remove(e)
					n++
				} else if next != &s.root && next.exp > e.exp {
					ordered = false
				}
				e = next
			}
			s.unordered = !ordered
		}
		s.mu.Unlock()
	}
	t.Expired.Add(uint64(n))
	return n
}

// Len is the number of entries (expired ones not yet swept included).
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Each calls f for every live entry, shard by shard, most recent first.
// f must not call back into the table.
func (t *Table) Each(f func(Update) bool) {
	now := t.now()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for e := s.root.next; e != &s.root; e = e.next {
			if e.exp <= now {
				continue
			}
			if !f(Update{Table: t.Name, Key: []byte(e.key), Server: e.server, TTL: time.Duration(e.exp - now)}) {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
}

// fit truncates a string/binary key to the table's length.
func (t *Table) fit(k []byte) []byte {
	if (t.Type == config.StickString || t.Type == config.StickBinary) && t.KeyLen > 0 && len(k) > t.KeyLen {
		return k[:t.KeyLen]
	}
	return k
}

// KeyBytes is the key of a byte string (binary/string tables).
func (t *Table) KeyBytes(b []byte) []byte {
	switch t.Type {
	case config.StickString, config.StickBinary:
		return t.fit(b)
	}
	return nil
}

// KeyAddr is the key of an address: 4 bytes in an ip table (IPv4 only),
// 16 in the others.
func (t *Table) KeyAddr(a netip.Addr) []byte {
	a = a.Unmap()
	switch t.Type {
	case config.StickIP:
		if !a.Is4() {
			return nil
		}
		b := a.As4()
		return b[:]
	case config.StickIPv6, config.StickString, config.StickBinary:
		b := a.As16()
		return t.fit(b[:])
	}
	return nil
}

// ParseKey reads a key as an operator writes it: an address for ip/ipv6,
// a decimal number for integer, text for string, hex for binary.
func (t *Table) ParseKey(s string) ([]byte, error) {
	switch t.Type {
	case config.StickIP, config.StickIPv6:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("key %q: want an IP address: %w", s, err)
		}
		k := t.KeyAddr(a)
		if k == nil {
			return nil, fmt.Errorf("key %q: table %s holds IPv4 addresses", s, t.Name)
		}
		return k, nil
	case config.StickInteger:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("key %q: want an integer", s)
		}
		return binary.BigEndian.AppendUint64(nil, uint64(n)), nil
	case config.StickString:
		return t.fit([]byte(s)), nil
	default:
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("key %q: want hex digits", s)
		}
		return t.fit(b), nil
	}
}

// FormatKey is the inverse of ParseKey, for display.
func (t *Table) FormatKey(k []byte) string {
	switch t.Type {
	case config.StickIP, config.StickIPv6:
		if a, ok := netip.AddrFromSlice(k); ok {
			if t.Type == config.StickIP {
				return a.String()
			}
			return a.Unmap().String()
		}
	case config.StickInteger:
		if len(k) == 8 {
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(k)), 10)
		}
	case config.StickString:
		return string(k)
	}
	return hex.EncodeToString(k)
}

// Clear removes every entry; it returns how many there were.
func (t *Table) Clear() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		clear(s.m)
		s.root.next, s.root.prev = &s.root, &s.root
		s.unordered = false
		s.mu.Unlock()
	}
	return n
}
