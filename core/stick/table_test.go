package stick

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// fakeClock is a settable clock for expiry tests (no sleeping).
type fakeClock struct{ ns int64 }

func (c *fakeClock) now() int64          { return c.ns }
func (c *fakeClock) add(d time.Duration) { c.ns += int64(d) }
func newClockedTable(c config.StickTable) (*Table, *fakeClock) {
	clk := &fakeClock{ns: 1e18}
	t := NewTable(c)
	t.now = clk.now
	return t, clk
}

func TestTableStoreLookupExpire(t *testing.T) {
	tb, clk := newClockedTable(config.StickTable{Name: "t", Type: "binary", Len: 32, Size: 10, Expire: config.Duration(10 * time.Second)})
	tb.Store([]byte("a"), "s1")
	if s, ok := tb.Lookup([]byte("a")); !ok || s != "s1" {
		t.Fatalf("lookup: %q %v", s, ok)
	}
	// Use refreshes the expiry: 8s + 8s after the store is still alive.
	clk.add(8 * time.Second)
	if _, ok := tb.Lookup([]byte("a")); !ok {
		t.Fatal("entry expired before expire")
	}
	clk.add(8 * time.Second)
	if _, ok := tb.Lookup([]byte("a")); !ok {
		t.Fatal("a lookup did not refresh the expiry")
	}
	clk.add(10*time.Second + 1)
	if _, ok := tb.Lookup([]byte("a")); ok {
		t.Fatal("entry outlived expire")
	}
	tb.Store([]byte("b"), "s2")
	clk.add(11 * time.Second)
	if n := tb.Sweep(); n != 1 || tb.Len() != 0 {
		t.Fatalf("sweep removed %d, len %d", n, tb.Len())
	}
	if tb.Lookups.Load() != 4 || tb.Hits.Load() != 3 || tb.Stores.Load() != 2 || tb.Expired.Load() != 2 {
		t.Errorf("counters: lookups %d hits %d stores %d expired %d", tb.Lookups.Load(), tb.Hits.Load(), tb.Stores.Load(), tb.Expired.Load())
	}
}

func TestTableLRUBound(t *testing.T) {
	for _, size := range []int{3, 5000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			tb, _ := newClockedTable(config.StickTable{Name: "t", Type: "string", Len: 32, Size: size, Expire: config.Duration(time.Hour)})
			if tb.Size() != size {
				t.Fatalf("Size %d", tb.Size())
			}
			for i := 0; i < 2*size; i++ {
				tb.Store([]byte(fmt.Sprint("k", i)), "s")
				if i == 0 {
					continue
				}
				tb.Lookup([]byte("k0")) // keep k0 hot
			}
			if tb.Len() > size {
				t.Fatalf("len %d > size %d", tb.Len(), size)
			}
			if _, ok := tb.Lookup([]byte("k0")); !ok && size == 3 {
				t.Fatal("the most recently used entry was evicted")
			}
			if tb.Evictions.Load() < uint64(size-1) {
				t.Errorf("evictions %d", tb.Evictions.Load())
			}
			if _, ok := tb.Lookup([]byte(fmt.Sprint("k", 2*size-1))); !ok {
				t.Fatal("newest entry missing")
			}
			// Shrinking evicts down to the new size.
			tb.Reconfigure(config.StickTable{Name: "t", Type: "string", Len: 32, Size: 2, Expire: config.Duration(time.Hour)})
			if tb.Len() > 2 {
				t.Fatalf("len %d after shrink to 2", tb.Len())
			}
		})
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		typ, in, out string
		n            int
		bad          bool
	}{
		{"ip", "192.0.2.1", "192.0.2.1", 4, false},
		{"ip", "2001:db8::1", "", 0, true},
		{"ip", "nope", "", 0, true},
		{"ipv6", "2001:db8::1", "2001:db8::1", 16, false},
		{"ipv6", "192.0.2.1", "192.0.2.1", 16, false},
		{"integer", "-42", "-42", 8, false},
		{"integer", "x", "", 0, true},
		{"string", "hello-world-this-is-long", "hello-wo", 8, false},
		{"binary", "00ff10", "00ff10", 3, false},
		{"binary", "zz", "", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.typ+"/"+tc.in, func(t *testing.T) {
			c := config.StickTable{Name: "t", Type: tc.typ, Size: 1, Expire: 1}
			if tc.typ == "string" || tc.typ == "binary" {
				c.Len = 8
			}
			tb := NewTable(c)
			k, err := tb.ParseKey(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted %q", tc.in)
				}
				return
			}
			if err != nil || len(k) != tc.n || tb.FormatKey(k) != tc.out {
				t.Fatalf("key %x (%v) formats as %q", k, err, tb.FormatKey(k))
			}
		})
	}
	v4 := NewTable(config.StickTable{Name: "t", Type: "ip", Size: 1, Expire: 1})
	if k := v4.KeyAddr(netip.MustParseAddr("::ffff:192.0.2.9")); len(k) != 4 {
		t.Errorf("mapped v4 address in an ip table: %x", k)
	}
}

func TestTableConcurrent(t *testing.T) {
	tb := NewTable(config.StickTable{Name: "t", Type: "binary", Len: 32, Size: 5000, Expire: config.Duration(time.Minute)})
	var synced sync.Map
	tb.SetNotify(func(u Update) { synced.Store(string(u.Key), u.Server) })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				k := []byte(fmt.Sprint(g, "-", i%700))
				tb.Store(k, fmt.Sprint("s", g))
				if s, ok := tb.Lookup(k); ok && s != fmt.Sprint("s", g) {
					t.Errorf("key %s points at %s", k, s)
					return
				}
				if i%97 == 0 {
					tb.Sweep()
					tb.Delete(k)
				}
			}
		}()
	}
	wg.Wait()
	if tb.Len() > 5000 {
		t.Fatalf("len %d over size", tb.Len())
	}
	n := 0
	synced.Range(func(any, any) bool { n++; return true })
	if n != 8*700 {
		t.Errorf("notify saw %d distinct keys, want %d", n, 8*700)
	}
}

func BenchmarkTableLookupParallel(b *testing.B) {
	tb := NewTable(config.StickTable{Name: "t", Type: "binary", Len: 32, Size: 30000, Expire: config.Duration(time.Minute)})
	keys := make([][]byte, 20000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("%032d", i))
		tb.Store(keys[i], "s1")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tb.Lookup(keys[i%len(keys)])
			i += 7
		}
	})
}

func BenchmarkTableStoreParallel(b *testing.B) {
	tb := NewTable(config.StickTable{Name: "t", Type: "binary", Len: 32, Size: 30000, Expire: config.Duration(time.Minute)})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		k := make([]byte, 32)
		for pb.Next() {
			k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
			tb.Store(k, "s1")
			i++
		}
	})
}

// TestTableSweepOutOfOrder: entries from a peer carry their remaining
// lifetime, so the LRU list is not always in expiry order. An expired peer
// entry in front of live local ones is still swept, and does not make a
// live session be evicted in its place when the table is full.
func TestTableSweepOutOfOrder(t *testing.T) {
	tb, clk := newClockedTable(config.StickTable{Name: "t", Type: "string", Len: 32, Size: 2, Expire: config.Duration(10 * time.Second), Peers: true})
	tb.Store([]byte("local"), "s1")
	tb.Apply(Update{Table: "t", Key: []byte("peer"), Server: "s2", TTL: time.Second})
	clk.add(2 * time.Second)
	if n := tb.Sweep(); n != 1 || tb.Len() != 1 {
		t.Fatalf("sweep removed %d, len %d: the expired peer entry must go", n, tb.Len())
	}
	tb.Store([]byte("new"), "s3")
	if s, ok := tb.Lookup([]byte("local")); !ok || s != "s1" {
		t.Errorf("live session evicted (got %q %v) while an expired entry was kept", s, ok)
	}
	// A dump: many peer entries, most recent (longest-lived) first.
	big, clk2 := newClockedTable(config.StickTable{Name: "t", Type: "string", Len: 32, Size: 100, Expire: config.Duration(10 * time.Second), Peers: true})
	for i := range 50 {
		big.Apply(Update{Table: "t", Key: fmt.Appendf(nil, "k%d", i), Server: "s", TTL: time.Duration(10-i/5) * time.Second})
	}
	big.Store([]byte("fresh"), "s")
	clk2.add(5*time.Second + 1)
	if n := big.Sweep(); n != 25 || big.Len() != 26 {
		t.Errorf("sweep removed %d, len %d; want 25 removed, 26 left", n, big.Len())
	}
	clk2.add(5 * time.Second)
	if n := big.Sweep(); n != 26 || big.Len() != 0 {
		t.Errorf("second sweep removed %d, len %d; want all", n, big.Len())
	}
}

// TestTableReconfigureShorterExpire: lowering expire applies to the entries
// already in the table, not only to new ones.
func TestTableReconfigureShorterExpire(t *testing.T) {
	c := config.StickTable{Name: "t", Type: "string", Len: 32, Size: 10, Expire: config.Duration(30 * time.Minute)}
	tb, clk := newClockedTable(c)
	tb.Store([]byte("a"), "s1")
	tb.Store([]byte("b"), "s1")
	c.Expire = config.Duration(10 * time.Second)
	tb.Reconfigure(c)
	clk.add(5 * time.Second)
	if _, ok := tb.Lookup([]byte("a")); !ok {
		t.Fatal("entry gone before the new expire")
	}
	clk.add(11 * time.Second)
	if _, ok := tb.Lookup([]byte("b")); ok {
		t.Error("entry outlived the new, shorter expire")
	}
	if n := tb.Sweep(); n != 1 || tb.Len() != 0 {
		t.Errorf("sweep removed %d, len %d", n, tb.Len())
	}
}

// TestTableSessionInUseIsResent: a session in use is looked up (which
// refreshes it) and stored again on every connection. The peers must hear
// of it again before their copy expires, or the node taking over the VIP
// has forgotten exactly the sessions in use.
func TestTableSessionInUseIsResent(t *testing.T) {
	tb, clk := newClockedTable(config.StickTable{Name: "t", Type: "binary", Len: 32, Size: 10, Expire: config.Duration(10 * time.Second), Peers: true})
	var sent []time.Duration
	tb.SetNotify(func(u Update) { sent = append(sent, u.TTL) })
	use := func() { // one connection of the session: lookup, then store
		if s, ok := tb.Lookup([]byte("sid")); ok && s != "s1" {
			t.Fatalf("lookup %q", s)
		}
		tb.Store([]byte("sid"), "s1")
	}
	use()          // learned: sent
	for range 30 { // a connection every second for 30s
		clk.add(time.Second)
		use()
	}
	// The peer's copy lives 10s: it must be refreshed at least every 10s,
	// and not on every connection.
	if len(sent) < 4 || len(sent) > 8 {
		t.Fatalf("%d updates sent over 30s of use, want one every 5-6s", len(sent))
	}
	// An update from a peer is not echoed, and counts as known there.
	tb.Apply(Update{Table: "t", Key: []byte("other"), Server: "s2", TTL: 10 * time.Second})
	n := len(sent)
	clk.add(time.Second)
	tb.Store([]byte("other"), "s2")
	if len(sent) != n {
		t.Errorf("a store of what the peer just sent was sent back")
	}
	tb.Store([]byte("other"), "s3")
	if len(sent) != n+1 {
		t.Errorf("a changed server was not sent")
	}
}

// TestTableClockIsMonotonic: the table measures expiry on Go's monotonic
// clock, as time elapsed since the table was made, not on the wall clock
// (a date in nanoseconds), so that an NTP step or date -s neither expires
// every session at once nor keeps them too long. The host's wall clock is
// shared and cannot be stepped in a test; what is checked is that the
// table's time is elapsed monotonic time (a wall-clock reading would be
// decades), that the default clock keeps the monotonic reading it needs,
// and that an entry's TTL is counted on it.
func TestTableClockIsMonotonic(t *testing.T) {
	before := time.Now()
	tb := NewTable(config.StickTable{Name: "t", Type: "string", Len: 32, Size: 10, Expire: config.Duration(time.Minute)})
	got := time.Duration(tb.now())
	if bound := time.Since(before); got < 0 || got > bound {
		t.Fatalf("table time %v: want the time since the table was made (at most %v), not a wall-clock date", got, bound)
	}
	start := time.Now()
	if !strings.Contains(start.String(), " m=") {
		t.Fatalf("time.Now() has no monotonic reading: %v", start)
	}
	clk := monotonic(start)
	if a, b := clk(), clk(); a < 0 || b < a {
		t.Fatalf("monotonic clock went back: %d then %d", a, b)
	}
	tb.Store([]byte("a"), "s1")
	var ttl time.Duration
	tb.Each(func(u Update) bool { ttl = u.TTL; return true })
	if ttl <= 0 || ttl > time.Minute {
		t.Fatalf("TTL %v, want at most the 1m expire", ttl)
	}
}
