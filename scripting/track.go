package scripting

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/health"
)

// TrackConfig is keepalived's vrrp_script: run every Interval with
// Timeout; Rise consecutive successes make it good, Fall consecutive
// failures make it bad; Weight adjusts the instance priority.
type TrackConfig struct {
	Name     string
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
	// Weight > 0 adds Weight to the priority while good; < 0 adds it while
	// bad; 0 puts the instance in FAULT while bad (keepalived semantics).
	Weight int
	// InitFail starts bad (keepalived init_fail); otherwise one success
	// makes it good and one failure bad.
	InitFail bool
}

// TrackState is a track script's current verdict.
type TrackState struct {
	Known  bool   // at least one run finished
	Good   bool   // result >= rise
	Fault  bool   // bad and weight 0: the instance must go to FAULT
	Delta  int    // priority change to apply now
	Reason string // of the last run
}

// Track runs a checker (typically a `kind: lua` check of this runtime) as
// a VRRP track script. It is safe for concurrent use; Run drives it.
type Track struct {
	cfg      TrackConfig
	check    health.Checker
	onChange func(TrackState)

	mu       sync.Mutex
	result   int // keepalived's vscript->result: 0..rise+fall-1, good when >= rise
	known    bool
	reason   string
	dynDelta *int // a delta the script returned overrides weight
}

// NewTrack validates cfg. onChange (may be nil) is called from Run
// whenever the verdict or delta changes.
func NewTrack(cfg TrackConfig, check health.Checker, onChange func(TrackState)) (*Track, error) {
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("track %q: interval must be positive", cfg.Name)
	}
	if cfg.Rise < 1 {
		cfg.Rise = 1
	}
	if cfg.Fall < 1 {
		cfg.Fall = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = cfg.Interval
	}
	if cfg.Weight < -253 || cfg.Weight > 253 {
		return nil, fmt.Errorf("track %q: weight %d out of range -253..253", cfg.Name, cfg.Weight)
	}
	t := &Track{cfg: cfg, check: check, onChange: onChange}
	if !cfg.InitFail {
		t.result = cfg.Rise - 1
	}
	return t, nil
}

// Observe feeds one result (Run calls it; tests may too) and returns the
// new state and whether it changed.
func (t *Track) Observe(r health.Result) (TrackState, bool) {
	t.mu.Lock()
	before := t.stateLocked()
	c := t.cfg
	top := c.Rise + c.Fall - 1
	if r.OK {
		if t.result < c.Rise-1 {
			t.result++
		} else if t.result != top {
			t.result = top
		}
	} else {
		if t.result > c.Rise {
			t.result--
		} else {
			t.result = 0
		}
	}
	t.known = true
	t.reason = r.Reason
	if r.HasDelta {
		d := r.PriorityDelta
		t.dynDelta = &d
	} else {
		t.dynDelta = nil
	}
	after := t.stateLocked()
	t.mu.Unlock()
	changed := after.Known != before.Known || after.Good != before.Good || after.Delta != before.Delta || after.Fault != before.Fault
	return after, changed
}

// State returns the current verdict.
func (t *Track) State() TrackState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stateLocked()
}

func (t *Track) stateLocked() TrackState {
	st := TrackState{Known: t.known, Good: t.result >= t.cfg.Rise, Reason: t.reason}
	switch {
	case t.dynDelta != nil:
		st.Delta = *t.dynDelta
	case st.Good && t.cfg.Weight > 0:
		st.Delta = t.cfg.Weight
	case !st.Good && t.cfg.Weight < 0:
		st.Delta = t.cfg.Weight
	}
	st.Fault = t.known && !st.Good && t.cfg.Weight == 0 && t.dynDelta == nil
	return st
}

// Run checks every interval until ctx ends.
func (t *Track) Run(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
		r := t.check.Check(cctx, health.Target{Server: t.cfg.Name})
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if st, changed := t.Observe(r); changed && t.onChange != nil {
			t.onChange(st)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
