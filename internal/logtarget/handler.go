package logtarget

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// handler is a slog.Handler writing to one Target.
type handler struct {
	t     *Target
	level slog.Leveler
	// access: the records are access lines; in text their message, the
	// HAProxy line, is the whole syslog message.
	access bool
	json   bool
	// ops are the WithAttrs/WithGroup calls, replayed onto each encoder.
	ops  []func(slog.Handler) slog.Handler
	pool *sync.Pool
}

// encoder formats one record at a time into buf with slog's own handler.
type encoder struct {
	buf bytes.Buffer
	h   slog.Handler
}

func newHandler(t *Target, level slog.Leveler, access bool, ops []func(slog.Handler) slog.Handler) *handler {
	h := &handler{t: t, level: level, access: access, json: t.cfg.Encoding == "json", ops: ops}
	// The syslog header has the time and the severity; stderr keeps them.
	var replace func([]string, slog.Attr) slog.Attr
	if t.network != "" {
		replace = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		}
	}
	h.pool = &sync.Pool{New: func() any {
		e := &encoder{}
		opts := &slog.HandlerOptions{Level: slog.LevelDebug - 8, ReplaceAttr: replace}
		var sh slog.Handler
		if h.json {
			sh = slog.NewJSONHandler(&e.buf, opts)
		} else {
			sh = slog.NewTextHandler(&e.buf, opts)
		}
		for _, op := range h.ops {
			sh = op(sh)
		}
		e.h = sh
		return e
	}}
	return h
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	msgid := ""
	if h.access {
		msgid = "access"
	}
	ts := r.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	if h.access && !h.json {
		h.t.send(r.Level, ts, []byte(r.Message), msgid)
		return nil
	}
	e := h.pool.Get().(*encoder)
	e.buf.Reset()
	err := e.h.Handle(ctx, r)
	if err == nil {
		h.t.send(r.Level, ts, bytes.TrimRight(e.buf.Bytes(), "\n"), msgid)
	}
	if e.buf.Cap() <= 64<<10 {
		h.pool.Put(e)
	}
	return err
}

func (h *handler) with(op func(slog.Handler) slog.Handler) *handler {
	return newHandler(h.t, h.level, h.access, append(append([]func(slog.Handler) slog.Handler(nil), h.ops...), op))
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(func(sh slog.Handler) slog.Handler { return sh.WithAttrs(as) })
}

func (h *handler) WithGroup(name string) slog.Handler {
	return h.with(func(sh slog.Handler) slog.Handler { return sh.WithGroup(name) })
}

// fanout sends each record to every handler that wants it.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

// Set is the node's loggers and the targets behind them.
type Set struct {
	// Log is the node's logger; Access receives the access lines.
	Log, Access *slog.Logger
	targets     []*Target
}

// New builds the loggers of c. Without targets the node logs to stderr as
// slog's text or JSON handler writes it, synchronously, and the access
// lines go to stderr through a queue; with targets each line goes to each
// target's queue. Access lines go to c.Access when set,
// else wherever the node's log goes. level is the node's level, which the
// admin API may change at run time; a target's own level is fixed.
func New(c config.NodeLog, level *slog.LevelVar, stderr io.Writer) *Set {
	if stderr == nil {
		stderr = nopWriter{}
	}
	s := &Set{}
	targets := func(ts []config.LogTarget, stream string) []*Target {
		var out []*Target
		for _, tc := range ts {
			var std io.Writer
			if tc.Address == "stderr" {
				std = stderr
			}
			t := NewTarget(tc, std)
			t.stream = stream
			s.targets = append(s.targets, t)
			out = append(out, t)
		}
		return out
	}
	build := func(ts []*Target, access bool) slog.Handler {
		if len(ts) == 0 {
			opts := &slog.HandlerOptions{Level: level}
			if c.Format == "json" {
				return slog.NewJSONHandler(stderr, opts)
			}
			return slog.NewTextHandler(stderr, opts)
		}
		var hs fanout
		for _, t := range ts {
			var lv slog.Leveler = level
			if t.cfg.Level != "" {
				v := new(slog.LevelVar)
				_ = v.UnmarshalText([]byte(t.cfg.Level))
				lv = v
			}
			hs = append(hs, newHandler(t, lv, access, nil))
		}
		if len(hs) == 1 {
			return hs[0]
		}
		return hs
	}
	node := targets(c.Targets, "node")
	s.Log = slog.New(build(node, false))
	switch {
	case len(c.Access) > 0:
		s.Access = slog.New(build(targets(c.Access, "access"), true))
	case len(c.Targets) > 0:
		s.Access = slog.New(build(node, true))
	default:
		// The access lines are the volume: even on stderr they go through
		// a queue, so that a stalled reader (journald) drops lines, counted,
		// instead of stalling the proxy.
		s.Access = slog.New(build(targets([]config.LogTarget{{Address: "stderr", Encoding: c.Format, Buffer: 10000}}, "access"), true))
	}
	return s
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// Targets are the set's targets (for counters).
func (s *Set) Targets() []*Target { return s.targets }

// Run runs the targets' senders until ctx ends, and every 10 s warns on
// log (rate-limited: one line per target and period) when a target lost
// lines.
func (s *Set) Run(ctx context.Context, log *slog.Logger) error {
	var wg sync.WaitGroup
	for _, t := range s.targets {
		wg.Add(1)
		go func() { defer wg.Done(); _ = t.Run(ctx) }()
	}
	last := make([]uint64, len(s.targets))
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-tick.C:
			for i, t := range s.targets {
				if d := t.Dropped(); d != last[i] {
					log.Warn("log lines dropped: the target is slow or unreachable", "target", t.Name(), "dropped", d-last[i], "total", d)
					last[i] = d
				}
			}
		}
	}
}
