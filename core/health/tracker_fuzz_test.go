package health

import (
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/upstream"
)

// FuzzTracker compares the tracker with the definition: the state flips
// exactly when the last `fall` (while UP) or `rise` (while DOWN) results,
// counted since the previous flip, all went the other way.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{1, 1, 0, 0, 0, 1, 0, 1, 1}, uint8(2), uint8(3), false)
	f.Add([]byte{0, 0, 0, 0}, uint8(1), uint8(1), true)
	f.Fuzz(func(t *testing.T, results []byte, rise, fall uint8, up bool) {
		r, fl := int(rise%8)+1, int(fall%8)+1
		initial := upstream.Down
		if up {
			initial = upstream.Up
		}
		tr := NewTracker(initial, r, fl, time.Second, time.Millisecond, time.Minute)
		state, run := initial, 0
		for i, b := range results {
			ok := b&1 == 1
			changed := tr.Observe(ok)
			// Reference model.
			wantChange := false
			if ok != (state == upstream.Up) {
				run++
				need := fl
				if state == upstream.Down {
					need = r
				}
				if run == need {
					wantChange, run = true, 0
					if state == upstream.Up {
						state = upstream.Down
					} else {
						state = upstream.Up
					}
				}
			} else {
				run = 0
			}
			if changed != wantChange || tr.State() != state || tr.Streak() != run {
				t.Fatalf("result %d (%v): changed %v state %v streak %d, want %v %v %d",
					i, ok, changed, tr.State(), tr.Streak(), wantChange, state, run)
			}
			want := time.Second
			switch {
			case run > 0:
				want = time.Millisecond
			case state == upstream.Down:
				want = time.Minute
			}
			if tr.Interval() != want {
				t.Fatalf("result %d: interval %v, want %v", i, tr.Interval(), want)
			}
		}
	})
}
