package balance

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

func servers(weights ...int) []*upstream.Server {
	out := make([]*upstream.Server, len(weights))
	for i, w := range weights {
		s := upstream.NewServer("b", fmt.Sprintf("s%d", i), fmt.Sprintf("127.0.0.1:%d", 9000+i), w)
		s.SetSettings(upstream.Settings{Index: i, Weight: w})
		out[i] = s
	}
	return out
}

func mustNew(t testing.TB, alg, hashType string) Policy {
	t.Helper()
	p, err := New(config.Balance{Algorithm: alg, HashType: hashType, Draws: 2})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func clientN(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// TestProportions: picks over weights 1:2:3 land within 1% of 1/6:2/6:3/6.
func TestProportions(t *testing.T) {
	cases := []struct {
		alg, hashType string
		picks         int
		req           func(i int) *Request
	}{
		{"roundrobin", "", 10000, func(int) *Request { return &Request{} }},
		{"static-rr", "", 10000, func(int) *Request { return &Request{} }},
		// Random and hashing are statistical: with 200k picks one standard
		// deviation of a share is under 0.1%, so 1% is a >10σ bound.
		{"random", "", 200000, func(int) *Request { return &Request{} }},
		{"source", "map-based", 200000, func(i int) *Request { return &Request{Client: clientN(i)} }},
		{"source", "consistent", 200000, func(i int) *Request { return &Request{Client: clientN(i)} }},
		{"uri", "map-based", 200000, func(i int) *Request { return &Request{Key: fmt.Sprintf("/p/%d", i), HasKey: true} }},
		{"uri", "consistent", 200000, func(i int) *Request { return &Request{Key: fmt.Sprintf("/p/%d", i), HasKey: true} }},
		// Without a key the hashing algorithms round-robin, as HAProxy.
		{"hdr", "map-based", 10000, func(i int) *Request { return &Request{} }},
	}
	for _, c := range cases {
		t.Run(c.alg+"/"+c.hashType, func(t *testing.T) {
			srv := servers(1, 2, 3)
			p := mustNew(t, c.alg, c.hashType)
			p.Update(srv)
			counts := map[*upstream.Server]int{}
			for i := 0; i < c.picks; i++ {
				s := p.Pick(c.req(i))
				if s == nil {
					t.Fatalf("pick %d: nil", i)
				}
				counts[s]++
			}
			for i, s := range srv {
				got := float64(counts[s]) / float64(c.picks)
				want := float64(i+1) / 6
				const tol = 0.01
				if math.Abs(got-want) > tol {
					t.Errorf("server %s: share %.4f, want %.4f±%.2f", s.Name, got, want, tol)
				}
			}
		})
	}
}

func TestNeverPicksDownOrExcluded(t *testing.T) {
	for _, alg := range []string{"roundrobin", "static-rr", "leastconn", "first", "source", "random", "uri"} {
		for _, ht := range []string{"map-based", "consistent"} {
			t.Run(alg+"/"+ht, func(t *testing.T) {
				srv := servers(1, 1, 1)
				p := mustNew(t, alg, ht)
				p.Update(srv)
				srv[1].SetHealth(upstream.Down, "test")
				// No Update: Pick must still re-check live state.
				for i := 0; i < 1000; i++ {
					s := p.Pick(&Request{Client: clientN(i), Key: fmt.Sprint(i), HasKey: true, Exclude: srv[0]})
					if s != srv[2] {
						t.Fatalf("pick %d: got %v, want s2 (s0 excluded, s1 down)", i, s)
					}
				}
				srv[2].SetAdmin(upstream.Maint)
				if s := p.Pick(&Request{Client: clientN(1), Exclude: srv[0]}); s != nil {
					t.Fatalf("all unusable: got %s", s.Name)
				}
			})
		}
	}
}

func TestWeightZeroAndDrainNotPicked(t *testing.T) {
	srv := servers(1, 0, 1)
	srv[2].SetAdmin(upstream.Drain)
	p := mustNew(t, "roundrobin", "")
	p.Update(srv)
	for i := 0; i < 100; i++ {
		if s := p.Pick(&Request{}); s != srv[0] {
			t.Fatalf("got %v, want s0", s)
		}
	}
}

func TestDynamicWeight(t *testing.T) {
	srv := servers(1, 1)
	p := mustNew(t, "roundrobin", "")
	p.Update(srv)
	if err := srv[1].SetWeight(3); err != nil {
		t.Fatal(err)
	}
	counts := map[*upstream.Server]int{}
	for i := 0; i < 4000; i++ {
		counts[p.Pick(&Request{})]++
	}
	if counts[srv[0]] != 1000 || counts[srv[1]] != 3000 {
		t.Fatalf("after set weight 3: %d/%d, want 1000/3000", counts[srv[0]], counts[srv[1]])
	}
}

func TestSmoothInterleave(t *testing.T) {
	// Smooth WRR over 5:1:1 gives a a b a c a a, never five a's in a row.
	srv := servers(5, 1, 1)
	p := mustNew(t, "roundrobin", "")
	p.Update(srv)
	run := 0
	for i := 0; i < 70; i++ {
		if p.Pick(&Request{}) == srv[0] {
			run++
			if run > 4 {
				t.Fatalf("server a picked %d times in a row", run)
			}
		} else {
			run = 0
		}
	}
}

func TestLeastConn(t *testing.T) {
	srv := servers(1, 1, 2)
	srv[0].Counters.CurSessions.Store(5)
	srv[1].Counters.CurSessions.Store(2)
	srv[2].Counters.CurSessions.Store(3) // 3/2 = 1.5 per weight: least
	p := mustNew(t, "leastconn", "")
	p.Update(srv)
	if s := p.Pick(&Request{}); s != srv[2] {
		t.Fatalf("got %s, want s2", s.Name)
	}
	srv[2].Counters.CurSessions.Store(10)
	if s := p.Pick(&Request{}); s != srv[1] {
		t.Fatalf("got %s, want s1", s.Name)
	}
	// Ties rotate.
	for _, s := range srv {
		s.Counters.CurSessions.Store(0)
	}
	seen := map[*upstream.Server]bool{}
	for i := 0; i < 10; i++ {
		seen[p.Pick(&Request{})] = true
	}
	if len(seen) < 2 {
		t.Fatalf("equal servers did not take turns: %v", seen)
	}
}

func TestFirstFillsInOrder(t *testing.T) {
	srv := servers(1, 1, 1)
	for i, s := range srv {
		s.SetSettings(upstream.Settings{Index: i, Weight: 1, MaxConn: 2})
	}
	p := mustNew(t, "first", "")
	p.Update(srv)
	var order []string
	for i := 0; i < 6; i++ {
		s := p.Pick(&Request{})
		s.Counters.SessionStart()
		order = append(order, s.Name)
	}
	want := "[s0 s0 s1 s1 s2 s2]"
	if fmt.Sprint(order) != want {
		t.Fatalf("order %v, want %s", order, want)
	}
	if s := p.Pick(&Request{}); s != nil {
		t.Fatalf("all full: got %s", s.Name)
	}
	srv[0].Counters.SessionEnd()
	if s := p.Pick(&Request{}); s != srv[0] {
		t.Fatalf("slot freed on s0: got %v", s)
	}
}

// TestConsistentFewKeysMove: when one of four servers goes down, a
// consistent ring moves only that server's keys; map-based moves most.
func TestConsistentFewKeysMove(t *testing.T) {
	const keys = 20000
	moved := func(ht string) (movedOther, movedTotal int) {
		srv := servers(1, 1, 1, 1)
		p := mustNew(t, "source", ht)
		p.Update(srv)
		before := make([]*upstream.Server, keys)
		for i := range before {
			before[i] = p.Pick(&Request{Client: clientN(i)})
		}
		srv[3].SetHealth(upstream.Down, "test")
		p.Update(srv)
		for i := range before {
			after := p.Pick(&Request{Client: clientN(i)})
			if after != before[i] {
				movedTotal++
				if before[i] != srv[3] {
					movedOther++
				}
			}
		}
		return
	}
	other, total := moved("consistent")
	if other != 0 {
		t.Errorf("consistent: %d keys of live servers moved, want 0", other)
	}
	if total < keys/6 || total > keys/3 {
		t.Errorf("consistent: %d keys moved, want about a quarter of %d", total, keys)
	}
	_, mtotal := moved("map-based")
	if mtotal < keys/2 {
		t.Errorf("map-based: only %d of %d keys moved; expected most (documented trade-off)", mtotal, keys)
	}
}

// TestConsistentDeadServerKeysSpread: the keys of a server that went down
// go to the others in proportion to their weights (1:3 here), not all to
// one neighbour; and a table built while a server ramps up (slowstart) has
// its full weight, since the table is static until the next change.
func TestConsistentDeadServerKeysSpread(t *testing.T) {
	const keys = 200000
	srv := servers(1, 2, 3)
	srv[2].SetSlowStart(time.Hour)
	srv[2].SetHealth(upstream.Down, "test")
	srv[2].SetHealth(upstream.Up, "test") // ramping for an hour from here
	p := mustNew(t, "source", "consistent")
	p.Update(srv)
	before := make([]*upstream.Server, keys)
	share := map[*upstream.Server]int{}
	for i := range before {
		before[i] = p.Pick(&Request{Client: clientN(i)})
		share[before[i]]++
	}
	if got := float64(share[srv[2]]) / keys; math.Abs(got-3.0/6) > 0.01 {
		t.Errorf("s2 in slowstart: share %.4f, want 3/6 (the table ignores the ramp)", got)
	}
	srv[1].SetHealth(upstream.Down, "test")
	p.Update(srv)
	to := map[*upstream.Server]int{}
	moved := 0
	for i := range before {
		if before[i] != srv[1] {
			continue
		}
		moved++
		to[p.Pick(&Request{Client: clientN(i)})]++
	}
	if to[srv[1]] != 0 {
		t.Fatalf("%d keys still on the down server", to[srv[1]])
	}
	if got := float64(to[srv[0]]) / float64(moved); math.Abs(got-0.25) > 0.03 {
		t.Errorf("dead server's keys: %.3f went to s0 (weight 1 of 4), want 0.25±0.03", got)
	}
}

// TestConsistentRebuildsOnlyOnMembership: a health change keeps the table
// (a rebuild per flap is wasted work on a big backend); a weight change
// rebuilds it.
func TestConsistentRebuildsOnlyOnMembership(t *testing.T) {
	srv := servers(1, 2, 3)
	p := mustNew(t, "source", "consistent").(*hashed)
	p.Update(srv)
	before := p.st.Load()
	srv[1].SetHealth(upstream.Down, "test")
	p.Update(srv)
	if p.st.Load() != before {
		t.Error("a health change rebuilt the table")
	}
	if err := srv[1].SetWeight(5); err != nil {
		t.Fatal(err)
	}
	p.Update(srv)
	if p.st.Load() == before {
		t.Error("a weight change kept the old table")
	}
}

// TestHashStableAcrossInstances: two gateways with the same config send a
// client to the same server.
func TestHashStableAcrossInstances(t *testing.T) {
	for _, ht := range []string{"map-based", "consistent"} {
		a, b := mustNew(t, "source", ht), mustNew(t, "source", ht)
		sa, sb := servers(1, 2, 3), servers(1, 2, 3)
		a.Update(sa)
		b.Update(sb)
		for i := 0; i < 1000; i++ {
			x, y := a.Pick(&Request{Client: clientN(i)}), b.Pick(&Request{Client: clientN(i)})
			if x.Name != y.Name {
				t.Fatalf("%s: client %d → %s vs %s", ht, i, x.Name, y.Name)
			}
		}
	}
}

func TestUnknownAlgorithm(t *testing.T) {
	if _, err := New(config.Balance{Algorithm: "fastest"}); err == nil {
		t.Fatal("want error")
	}
}

func BenchmarkPick(b *testing.B) {
	for _, c := range []struct{ alg, ht string }{
		{"roundrobin", ""}, {"static-rr", ""}, {"leastconn", ""}, {"first", ""},
		{"source", "map-based"}, {"source", "consistent"}, {"random", ""}, {"uri", "consistent"},
	} {
		b.Run(c.alg+"/"+c.ht, func(b *testing.B) {
			srv := servers(1, 2, 3, 1, 2, 3, 1, 2)
			p := mustNew(b, c.alg, c.ht)
			p.Update(srv)
			req := &Request{Client: clientN(12345), Key: "/index.html", HasKey: true}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if p.Pick(req) == nil {
						b.Fatal("nil")
					}
				}
			})
		})
	}
}
