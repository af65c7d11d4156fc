package logtarget

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/vipgate/vipgate/core/config"
)

// Router is the access log's handler: a line of a frontend that has its
// own log targets (frontends[].log_targets, HAProxy's per-proxy `log`)
// goes to those, any other to the node's access handler. The frontends'
// targets follow the configuration (Apply) and run while Run does.
type Router struct {
	def    slog.Handler
	level  slog.Leveler
	format string // the node's log.format, for targets without encoding
	routes atomic.Pointer[map[string]slog.Handler]

	mu      sync.Mutex
	ctx     context.Context // set by Run
	running map[string]*routed
}

// routed is one frontend target and its sender.
type routed struct {
	t      *Target
	h      slog.Handler
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRouter routes access lines; def gets those of frontends without
// targets.
func NewRouter(def slog.Handler, level slog.Leveler, format string) *Router {
	r := &Router{def: def, level: level, format: format, running: map[string]*routed{}}
	r.routes.Store(&map[string]slog.Handler{})
	return r
}

func (r *Router) Enabled(ctx context.Context, l slog.Level) bool {
	return r.def.Enabled(ctx, l) || len(*r.routes.Load()) > 0
}

func (r *Router) Handle(ctx context.Context, rec slog.Record) error {
	routes := *r.routes.Load()
	if len(routes) > 0 {
		fe := ""
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key == "frontend" {
				fe = a.Value.String()
				return false
			}
			return true
		})
		if h, ok := routes[fe]; ok {
			if h.Enabled(ctx, rec.Level) {
				return h.Handle(ctx, rec)
			}
			return nil
		}
	}
	if r.def.Enabled(ctx, rec.Level) {
		return r.def.Handle(ctx, rec)
	}
	return nil
}

// WithAttrs and WithGroup apply to the node's access handler only: the
// proxy logs its access lines with every attribute on the record.
func (r *Router) WithAttrs(as []slog.Attr) slog.Handler { return r.def.WithAttrs(as) }
func (r *Router) WithGroup(name string) slog.Handler    { return r.def.WithGroup(name) }

// Apply makes the frontends' targets those of c: a target whose settings
// did not change keeps its sender and queue; a removed one stops.
func (r *Router) Apply(c *config.Cluster) {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := map[string]bool{}
	routes := map[string]slog.Handler{}
	for _, f := range c.Frontends {
		var hs fanout
		for _, tc := range f.LogTargets {
			if tc.Encoding == "" {
				tc.Encoding = r.format
			}
			kb, _ := json.Marshal(tc)
			key := f.Name + "\x00" + string(kb)
			want[key] = true
			rt := r.running[key]
			if rt == nil {
				t := NewTarget(tc, nil)
				t.stream = "frontend/" + f.Name
				var lv slog.Leveler = r.level
				if tc.Level != "" {
					v := new(slog.LevelVar)
					_ = v.UnmarshalText([]byte(tc.Level))
					lv = v
				}
				rt = &routed{t: t, h: newHandler(t, lv, true, nil)}
				r.running[key] = rt
				r.start(rt)
			}
			hs = append(hs, rt.h)
		}
		if len(hs) > 0 {
			routes[f.Name] = hs
		}
	}
	r.routes.Store(&routes)
	for key, rt := range r.running {
		if !want[key] {
			delete(r.running, key)
			if rt.cancel != nil {
				rt.cancel()
			}
		}
	}
}

// start runs rt's sender if Run has started (else Run starts it).
func (r *Router) start(rt *routed) {
	if r.ctx == nil || rt.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	rt.cancel, rt.done = cancel, make(chan struct{})
	go func() { defer close(rt.done); _ = rt.t.Run(ctx) }()
}

// Run runs the frontends' senders until ctx ends.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	r.ctx = ctx
	for _, rt := range r.running {
		r.start(rt)
	}
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	var done []chan struct{}
	for _, rt := range r.running {
		if rt.done != nil {
			done = append(done, rt.done)
		}
	}
	r.mu.Unlock()
	for _, d := range done {
		<-d
	}
	return nil
}

// Targets are the frontends' current targets, by stream and address.
func (r *Router) Targets() []*Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Target, 0, len(r.running))
	for _, rt := range r.running {
		out = append(out, rt.t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].stream != out[j].stream {
			return out[i].stream < out[j].stream
		}
		return out[i].Name()+out[i].Facility() < out[j].Name()+out[j].Facility()
	})
	return out
}
