package vrrp

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/core/upstream"
)

// TrackSource is one thing a VRRP instance tracks. Check must honour ctx
// (the track timeout).
type TrackSource interface {
	Check(ctx context.Context) health.Result
}

// TrackFunc adapts a function to TrackSource.
type TrackFunc func(ctx context.Context) health.Result

// Check implements TrackSource.
func (f TrackFunc) Check(ctx context.Context) health.Result { return f(ctx) }

// Track is a source with keepalived's rise/fall/weight semantics.
type Track struct {
	Name     string
	Source   TrackSource
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
	Weight   int
	// FaultBelow253: a source delta below -253 is FAULT (keepalived's
	// track_file rule); other sources' deltas only move the priority.
	FaultBelow253 bool
}

// trackState is the debounced state of one track. The rise/fall count is
// health's Tracker (consecutive results, a contrary one resets); only the
// start differs, as keepalived's: see observe.
type trackState struct {
	tr     *health.Tracker
	delta  int // last dynamic delta from a Lua script (HasDelta)
	hasD   bool
	reason string
}

func (s *trackState) up() bool { return s.tr.State() == upstream.Up }

// observe folds one result in and reports whether the debounced state
// changed. keepalived starts a script in the failed state unless it
// passes rise times; a track here takes its first result as its state
// without counting (the runner takes it before the instance leaves Init,
// so a healthy node does not start at a lowered priority and flap).
func (s *trackState) observe(r health.Result, first bool) bool {
	changed := false
	if first {
		h := upstream.Down
		if r.OK {
			h = upstream.Up
		}
		s.tr.Force(h)
		changed = true
	} else {
		changed = s.tr.Observe(r.OK)
	}
	if r.HasDelta != s.hasD || r.PriorityDelta != s.delta {
		s.hasD, s.delta = r.HasDelta, r.PriorityDelta
		changed = true
	}
	if !r.OK {
		s.reason = r.Reason
	}
	return changed
}

// TrackVerdict is what all tracks of an instance add up to.
type TrackVerdict struct {
	Delta int    // added to the base priority
	Fault string // non-empty: a weight-0 track is failing
}

// verdict applies keepalived's weights: a positive weight is added while
// the track is up, a negative one while it is down, weight 0 turns a
// failure into FAULT. A source's own delta (a Lua script's, a track
// file's) replaces its weight; a track file's below -253 is FAULT.
func verdict(tracks []Track, st []trackState) TrackVerdict {
	var v TrackVerdict
	var faults []string
	for i := range tracks {
		t, s := &tracks[i], &st[i]
		switch {
		case s.hasD && s.delta < -253 && t.FaultBelow253:
			// keepalived's track_file rule: no priority is that low.
			r := s.reason
			if r == "" {
				r = fmt.Sprintf("priority delta %d", s.delta)
			}
			faults = append(faults, fmt.Sprintf("track %s: %s", t.Name, r))
		case s.hasD:
			v.Delta += s.delta
		case t.Weight == 0 && !s.up():
			r := s.reason
			if r == "" {
				r = "failed"
			}
			faults = append(faults, fmt.Sprintf("track %s: %s", t.Name, r))
		case t.Weight > 0 && s.up():
			v.Delta += t.Weight
		case t.Weight < 0 && !s.up():
			v.Delta += t.Weight
		}
	}
	sort.Strings(faults)
	v.Fault = strings.Join(faults, "; ")
	return v
}

// trackRunner runs every track of an instance on its own interval and
// sends the verdict on each change.
type trackRunner struct {
	tracks []Track
	mu     sync.Mutex
	st     []trackState
	seen   []bool
	out    chan TrackVerdict
}

func newTrackRunner(tracks []Track) *trackRunner {
	st := make([]trackState, len(tracks))
	for i, t := range tracks {
		st[i].tr = health.NewTracker(upstream.Down, t.Rise, t.Fall, t.Interval, 0, 0)
	}
	return &trackRunner{tracks: tracks, st: st, seen: make([]bool, len(tracks)), out: make(chan TrackVerdict, 1)}
}

// initial runs every track once (concurrently) so the instance starts with
// a known priority instead of flapping through a wrong first state.
func (r *trackRunner) initial(ctx context.Context) TrackVerdict {
	var wg sync.WaitGroup
	for i := range r.tracks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.once(ctx, i)
		}()
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return verdict(r.tracks, r.st)
}

func (r *trackRunner) once(ctx context.Context, i int) bool {
	t := &r.tracks[i]
	cctx, cancel := context.WithTimeout(ctx, t.Timeout)
	res := t.Source.Check(cctx)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	if cctx.Err() != nil && !res.OK && res.Reason == "" {
		res.Reason = "timed out after " + t.Timeout.String()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	first := !r.seen[i]
	r.seen[i] = true
	return r.st[i].observe(res, first)
}

func (r *trackRunner) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range r.tracks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(r.tracks[i].Interval)
			defer tk.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
				if r.once(ctx, i) {
					r.mu.Lock()
					v := verdict(r.tracks, r.st)
					r.mu.Unlock()
					r.publish(v)
				}
			}
		}()
	}
	wg.Wait()
}

// publish hands v to the instance; the latest verdict wins over an unread
// one.
func (r *trackRunner) publish(v TrackVerdict) {
	select {
	case <-r.out:
	default:
	}
	select {
	case r.out <- v:
	default:
	}
}

// TrackStatus is one track in `vipgate status`.
type TrackStatus struct {
	Name   string `json:"name"`
	Up     bool   `json:"up"`
	Weight int    `json:"weight"`
	Reason string `json:"reason,omitempty"`
}

func (r *trackRunner) status() []TrackStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TrackStatus, len(r.tracks))
	for i, t := range r.tracks {
		out[i] = TrackStatus{Name: t.Name, Up: r.st[i].up(), Weight: t.Weight}
		if !r.st[i].up() {
			out[i].Reason = r.st[i].reason
		}
	}
	return out
}

// TrackFactory builds the source for one configured track. The node wires
// one that knows every kind (plugins/track, the health registry, the proxy).
type TrackFactory func(t *config.VRRPTrack) (TrackSource, error)

func buildTracks(f TrackFactory, cfg []config.VRRPTrack) ([]Track, error) {
	out := make([]Track, 0, len(cfg))
	for i := range cfg {
		c := &cfg[i]
		if f == nil {
			return nil, fmt.Errorf("track %s: no track sources are available in this build", c.Name)
		}
		src, err := f(c)
		if err != nil {
			return nil, fmt.Errorf("track %s: %w", c.Name, err)
		}
		out = append(out, Track{Name: c.Name, Source: src, Interval: c.Interval.D(), Timeout: c.Timeout.D(), Rise: c.Rise, Fall: c.Fall, Weight: c.Weight,
			FaultBelow253: c.Kind == "file"})
	}
	return out, nil
}
