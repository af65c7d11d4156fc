package scripting

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestTrackKeepalivedSemantics follows keepalived's vrrp_script result
// counter: rise successes to become good, fall failures to become bad,
// weight applied accordingly.
func TestTrackKeepalivedSemantics(t *testing.T) {
	type step struct {
		ok    bool
		good  bool
		delta int
		fault bool
	}
	for _, tc := range []struct {
		name  string
		cfg   TrackConfig
		steps []step
	}{
		{"one success makes good at start, fall 2", TrackConfig{Rise: 2, Fall: 2, Weight: 10}, []step{
			{true, true, 10, false}, {false, true, 10, false}, {false, false, 0, false}, {true, false, 0, false}, {true, true, 10, false},
		}},
		{"negative weight while bad", TrackConfig{Rise: 1, Fall: 3, Weight: -20}, []step{
			{false, false, -20, false}, {true, true, 0, false}, {false, true, 0, false}, {false, true, 0, false}, {false, false, -20, false},
		}},
		{"weight 0 means fault", TrackConfig{Rise: 1, Fall: 1}, []step{
			{true, true, 0, false}, {false, false, 0, true}, {true, true, 0, false},
		}},
		{"init_fail needs rise successes", TrackConfig{Rise: 3, Fall: 1, Weight: 5, InitFail: true}, []step{
			{true, false, 0, false}, {true, false, 0, false}, {true, true, 5, false}, {false, false, 0, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Interval = time.Second
			tr, err := NewTrack(tc.cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st := tr.State(); st.Known {
				t.Errorf("known before the first run")
			}
			for i, s := range tc.steps {
				st, _ := tr.Observe(health.Result{OK: s.ok})
				if st.Good != s.good || st.Delta != s.delta || st.Fault != s.fault || !st.Known {
					t.Fatalf("step %d (ok=%v): %+v, want good=%v delta=%d fault=%v", i, s.ok, st, s.good, s.delta, s.fault)
				}
			}
		})
	}
}

func TestTrackDynamicDelta(t *testing.T) {
	tr, _ := NewTrack(TrackConfig{Interval: time.Second, Rise: 1, Fall: 1, Weight: 10}, nil, nil)
	st, changed := tr.Observe(health.Result{OK: true, PriorityDelta: -7, HasDelta: true})
	if !changed || st.Delta != -7 {
		t.Errorf("dynamic delta: %+v", st)
	}
	st, changed = tr.Observe(health.Result{OK: true})
	if !changed || st.Delta != 10 {
		t.Errorf("back to weight: %+v", st)
	}
	if _, changed = tr.Observe(health.Result{OK: true}); changed {
		t.Errorf("same verdict reported as a change")
	}
	if _, err := NewTrack(TrackConfig{Interval: time.Second, Weight: 300}, nil, nil); err == nil {
		t.Error("weight 300 accepted")
	}
	if _, err := NewTrack(TrackConfig{}, nil, nil); err == nil {
		t.Error("zero interval accepted")
	}
}

// TestTrackRunsLuaScript drives a Lua track function (the local proxy
// check of examples/lua) through Run, as the VRRP engine will.
func TestTrackRunsLuaScript(t *testing.T) {
	r := newRig(t, `
local n = 0
function track()
  n = n + 1
  if n <= 2 then return true, "fine" end
  return false, "proxy unhealthy", -30
end`)
	ch, err := r.rt.Checker(&config.Check{Kind: "lua", Script: "p.track"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var states []TrackState
	tr, err := NewTrack(TrackConfig{Name: "proxy", Interval: 10 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1, Weight: 10}, ch, func(st TrackState) {
		mu.Lock()
		states = append(states, st)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, "track went bad", func() bool { return tr.State().Known && !tr.State().Good })
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(states) < 2 || !states[0].Good || states[0].Delta != 10 || states[1].Good || states[1].Delta != -30 || states[1].Reason != "proxy unhealthy" {
		t.Errorf("transitions %+v", states)
	}
}
