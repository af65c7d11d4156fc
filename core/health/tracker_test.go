package health

import (
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/upstream"
)

func TestTrackerConsecutive(t *testing.T) {
	const U, D = upstream.Up, upstream.Down
	tests := []struct {
		name    string
		initial upstream.Health
		rise    int
		fall    int
		results string // '+' success, '-' failure
		want    upstream.Health
		changes int
	}{
		{"down rises after rise successes", D, 2, 3, "++", U, 1},
		{"down stays down one short", D, 2, 3, "+", D, 0},
		{"up falls after fall failures", U, 2, 3, "---", D, 1},
		{"up stays up two failures", U, 2, 3, "--", U, 0},
		{"failures interrupted by success do not add up", U, 2, 3, "--+--+--", U, 0},
		{"successes interrupted by failure do not add up", D, 3, 3, "++-++-++", D, 0},
		{"fall then rise", U, 2, 3, "---++", U, 2},
		{"rise 1 fall 1 flips each time", D, 1, 1, "+-+-", D, 4},
		{"long success run while up changes nothing", U, 2, 3, "++++++", U, 0},
		{"failures while down change nothing", D, 2, 3, "------", D, 0},
		{"rise after fall needs fresh streak", U, 3, 2, "--+-+++", U, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.initial, tt.rise, tt.fall, time.Second, time.Second, time.Second)
			changes := 0
			for _, r := range tt.results {
				if tr.Observe(r == '+') {
					changes++
				}
			}
			if tr.State() != tt.want || changes != tt.changes {
				t.Fatalf("after %q: state %v with %d changes, want %v with %d", tt.results, tr.State(), changes, tt.want, tt.changes)
			}
		})
	}
}

func TestTrackerInterval(t *testing.T) {
	const inter, fast, down = 2 * time.Second, 100 * time.Millisecond, 5 * time.Second
	tests := []struct {
		name    string
		initial upstream.Health
		results string
		want    time.Duration
	}{
		{"up and stable uses inter", upstream.Up, "", inter},
		{"up after success uses inter", upstream.Up, "+", inter},
		{"up but failing uses fastinter", upstream.Up, "-", fast},
		{"up failing twice uses fastinter", upstream.Up, "--", fast},
		{"down uses downinter", upstream.Down, "", down},
		{"down but succeeding uses fastinter", upstream.Down, "+", fast},
		{"just went down uses downinter", upstream.Up, "---", down},
		{"just came up uses inter", upstream.Down, "++", inter},
		{"down, success then failure uses downinter", upstream.Down, "+-", down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.initial, 2, 3, inter, fast, down)
			for _, r := range tt.results {
				tr.Observe(r == '+')
			}
			if got := tr.Interval(); got != tt.want {
				t.Fatalf("interval %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTrackerDefaults(t *testing.T) {
	tr := NewTracker(upstream.Down, 0, 0, time.Second, 0, 0)
	if tr.Rise != 1 || tr.Fall != 1 || tr.FastInter != time.Second || tr.DownInter != time.Second {
		t.Fatalf("defaults not applied: %+v", tr)
	}
}

func TestTrackerRecovered(t *testing.T) {
	tr := NewTracker(upstream.Down, 1, 1, time.Second, 0, 0)
	tr.Observe(true)
	if tr.Recovered() {
		t.Fatal("first rise from the initial state counted as a recovery")
	}
	tr.Observe(false)
	tr.Observe(true)
	if !tr.Recovered() {
		t.Fatal("rise after a fall not counted as a recovery")
	}
}

func TestTrackerPassiveActions(t *testing.T) {
	tr := NewTracker(upstream.Up, 2, 3, time.Second, 0, 0)
	if tr.SuddenDeath() || tr.Streak() != 2 || tr.State() != upstream.Up {
		t.Fatalf("sudden-death: streak %d state %v, want 2 (fall-1) and UP", tr.Streak(), tr.State())
	}
	// HAProxy's sudden-death is a failed check: a server already one
	// failure from DOWN goes DOWN.
	if !tr.SuddenDeath() || tr.State() != upstream.Down {
		t.Fatal("sudden-death on a server one failed check from DOWN left it UP")
	}
	if one := NewTracker(upstream.Up, 2, 1, time.Second, 0, 0); !one.SuddenDeath() || one.State() != upstream.Down {
		t.Fatal("sudden-death with fall 1 left the server UP")
	}
	tr.Observe(true) // DOWN, one success towards rise 2
	if tr.SuddenDeath() || tr.Streak() != 0 || tr.State() != upstream.Down {
		t.Fatalf("sudden-death on a rising DOWN server: streak %d state %v, want the rise started over", tr.Streak(), tr.State())
	}
	up := NewTracker(upstream.Up, 2, 3, time.Second, 0, 0)
	if !up.MarkDown() || up.State() != upstream.Down || !up.Recovered() {
		t.Fatalf("mark-down: state %v recovered %v, want DOWN and a slow-started recovery", up.State(), up.Recovered())
	}
	if up.MarkDown() {
		t.Fatal("mark-down of a DOWN server reported a change")
	}
}

func BenchmarkTrackerObserve(b *testing.B) {
	tr := NewTracker(upstream.Up, 2, 3, time.Second, 0, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tr.Observe(i%7 != 0)
		_ = tr.Interval()
	}
}
