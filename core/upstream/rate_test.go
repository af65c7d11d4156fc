package upstream

import (
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	const s = int64(time.Second)
	base := int64(1_700_000_000) * s
	tests := []struct {
		name   string
		events []int64 // offsets from base
		at     int64
		want   float64
		max    uint64
	}{
		{"none", nil, 0, 0, 0},
		{"this second", []int64{0, 1, 2}, s / 2, 3, 3},
		{"previous second weighted by what is left of it", []int64{0, 1, 2, 3}, s + s/4, 3, 4},
		{"both seconds", []int64{0, 1, 2, 3, s, s + 1}, s + s/2, 2 + 2, 4},
		{"stale", []int64{0, 1}, 3 * s, 0, 2},
		{"a gap resets the previous second", []int64{0, 1, 2, 5 * s}, 5*s + s/2, 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Rate
			for _, e := range tc.events {
				r.Add(base + e)
			}
			if got := r.Read(base + tc.at); got != tc.want {
				t.Errorf("Read = %v, want %v", got, tc.want)
			}
			if got := r.Max(); got != tc.max {
				t.Errorf("Max = %v, want %v", got, tc.max)
			}
		})
	}
}

func TestServerDowntimeAndCheckFailures(t *testing.T) {
	s := NewServer("be", "a", "127.0.0.1:1", 1)
	if d := s.Downtime(time.Now()); d != 0 {
		t.Fatalf("a new server has downtime %v", d)
	}
	s.SetHealth(Down, "test")
	time.Sleep(20 * time.Millisecond)
	s.SetHealth(Up, "test")
	d1 := s.Downtime(time.Now())
	if d1 < 20*time.Millisecond {
		t.Fatalf("downtime %v after 20ms down", d1)
	}
	if d2 := s.Downtime(time.Now().Add(time.Hour)); d2 != d1 {
		t.Fatalf("downtime grew while UP: %v then %v", d1, d2)
	}
	s.SetHealth(Down, "test")
	if d := s.Downtime(time.Now().Add(time.Hour)); d < time.Hour {
		t.Fatalf("downtime while DOWN does not count the current outage: %v", d)
	}
	s.SetLastCheck(CheckResult{OK: true})
	s.SetLastCheck(CheckResult{OK: false})
	s.SetLastCheck(CheckResult{OK: false})
	if n := s.CheckFailures(); n != 2 {
		t.Fatalf("CheckFailures = %d, want 2", n)
	}
}

// BenchmarkSessionStart is the per-session cost of the counters, the
// session rate included.
func BenchmarkSessionStart(b *testing.B) {
	var c Counters
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.SessionStartAt(time.Now().UnixNano())
			c.CurSessions.Add(-1)
		}
	})
}

// BenchmarkRateAdd is what the session rate adds to each session start.
func BenchmarkRateAdd(b *testing.B) {
	var r Rate
	now := time.Now().UnixNano()
	for i := 0; i < b.N; i++ {
		r.Add(now + int64(i)*1000)
	}
}
