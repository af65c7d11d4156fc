package scripting

import (
	"sync"
	"time"
)

// Lua logging limits: one request must not write megabytes or thousands of
// lines (a loop around log.info wrote 100,000 lines from one call).
const (
	// maxLogLine bounds one line's message and attributes, in bytes.
	maxLogLine = 16 << 10
	// maxLogLinesPerCall bounds the lines one call (or a plugin's top
	// level) writes.
	maxLogLinesPerCall = 100
	// maxLogLinesPerSecond bounds the lines all scripts of the runtime
	// write in a second.
	maxLogLinesPerSecond = 1000
)

// logAllowed counts a line against the call's and the runtime's limits.
// Dropped lines are counted, and reported by a warning at most once a
// second (and in Stats).
func (s *state) logAllowed() bool {
	s.logLines++
	if s.logLines > maxLogLinesPerCall {
		s.logDropped++
		return false
	}
	return s.g.rt.logs.allow(s.g.rt)
}

// logLimiter is the runtime-wide rate: a fixed one-second window.
type logLimiter struct {
	mu      sync.Mutex
	window  time.Time
	lines   int
	pending int // dropped lines not yet reported
	total   uint64
}

// allow takes a line from the current window; on the first line of a new
// window it reports the lines dropped before.
func (l *logLimiter) allow(r *Runtime) bool {
	now := r.now()
	l.mu.Lock()
	report := 0
	if now.Sub(l.window) >= time.Second || now.Before(l.window) {
		l.window, l.lines = now, 0
		report, l.pending = l.pending, 0
	}
	ok := l.lines < maxLogLinesPerSecond
	if ok {
		l.lines++
	} else {
		l.pending++
		l.total++
	}
	l.mu.Unlock()
	if report > 0 {
		r.log.Warn("lua: log lines dropped", "dropped", report,
			"limits", "100 lines per call, 1000 per second, 16 KiB per line")
	}
	return ok
}

// drop records lines a call was not allowed to write.
func (l *logLimiter) drop(n int) {
	l.mu.Lock()
	l.pending += n
	l.total += uint64(n)
	l.mu.Unlock()
}

func (l *logLimiter) dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
