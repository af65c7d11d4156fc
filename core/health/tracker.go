package health

import (
	"time"

	"github.com/vipgate/vipgate/core/upstream"
)

// Tracker turns a stream of check results into a server state, the way
// HAProxy's rise/fall do, but counting consecutive results only: a server
// that is UP goes DOWN after Fall consecutive failures, a DOWN server comes
// UP after Rise consecutive successes, and any result in the other direction
// resets the count. (HAProxy's single hysteresis counter lets a flapping
// server drift; operators expect "3 failures in a row", so that is what this
// counts.)
//
// A Tracker is not safe for concurrent use; its worker owns it.
type Tracker struct {
	Rise, Fall int
	// Inter is the interval while UP and stable, FastInter while the state
	// is changing (UP but failing, DOWN but succeeding), DownInter while
	// DOWN and failing.
	Inter, FastInter, DownInter time.Duration

	state upstream.Health
	// streak counts consecutive results that push towards the other state.
	streak int
	// seenDown is set once the server was UP and then went DOWN: slowstart
	// only applies to a recovery, not to the first rise after start (as
	// HAProxy, so that a restart does not throttle healthy servers).
	seenDown bool
}

// NewTracker starts in the given state with no streak.
func NewTracker(initial upstream.Health, rise, fall int, inter, fastinter, downinter time.Duration) *Tracker {
	if rise < 1 {
		rise = 1
	}
	if fall < 1 {
		fall = 1
	}
	if fastinter <= 0 {
		fastinter = inter
	}
	if downinter <= 0 {
		downinter = inter
	}
	return &Tracker{Rise: rise, Fall: fall, Inter: inter, FastInter: fastinter, DownInter: downinter, state: initial}
}

// State is the current state.
func (t *Tracker) State() upstream.Health { return t.state }

// Streak is the number of consecutive results against the current state.
func (t *Tracker) Streak() int { return t.streak }

// Recovered reports whether the server has gone DOWN at least once after
// having been UP under this tracker (slowstart applies to its next rise).
func (t *Tracker) Recovered() bool { return t.seenDown }

// Observe records one result and reports whether the state changed.
func (t *Tracker) Observe(ok bool) (changed bool) {
	if ok == (t.state == upstream.Up) {
		t.streak = 0
		return false
	}
	t.streak++
	need := t.Fall
	if t.state == upstream.Down {
		need = t.Rise
	}
	if t.streak < need {
		return false
	}
	t.streak = 0
	if t.state == upstream.Up {
		t.state = upstream.Down
		t.seenDown = true
	} else {
		t.state = upstream.Up
	}
	return true
}

// MarkDown takes an UP server DOWN at once (passive health's mark-down),
// as a recovery-to-be: its next rise is slow-started. It reports whether
// the state changed.
func (t *Tracker) MarkDown() bool {
	if t.state != upstream.Up {
		return false
	}
	t.state, t.streak, t.seenDown = upstream.Down, 0, true
	return true
}

// SuddenDeath is passive health's sudden-death, as HAProxy's: a failed
// check counted from no further than two failures short of DOWN, so an UP
// server is left one failed check from DOWN, and one already there (or
// with fall 1) goes DOWN now. It reports whether the state changed.
func (t *Tracker) SuddenDeath() bool {
	if t.state == upstream.Up {
		t.streak = max(t.streak, t.Fall-2)
	}
	return t.Observe(false)
}

// Force sets the state without counting (runtime enable/disable).
func (t *Tracker) Force(h upstream.Health) {
	t.state = h
	t.streak = 0
}

// Interval is how long to wait before the next check.
func (t *Tracker) Interval() time.Duration {
	switch {
	case t.streak > 0:
		return t.FastInter
	case t.state == upstream.Down:
		return t.DownInter
	}
	return t.Inter
}
