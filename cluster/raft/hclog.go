package raft

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// ordinary are messages raft logs at WARN that every healthy cluster shows
// on a start, a join or a leader change: at WARN they would train
// operators to ignore warnings, so they are logged at INFO.
var ordinary = map[string]bool{
	"heartbeat timeout reached, starting election":  true,
	"Election timeout reached, restarting election": true,
	"no known peers, aborting election":             true,
	"heartbeat timeout reached, not part of a stable configuration or a non-voter, not triggering a leader election": true,
	"rejecting vote request since we have a leader":                                                                  true,
	"rejecting pre-vote request since we have a leader":                                                              true,
	"appendEntries rejected, sending older logs":                                                                     true,
	"pre-vote is disabled because it is not supported by the Transport":                                              true,
}

// isOrdinary reports whether a raft WARN line is part of normal operation.
// A follower with an empty log (just joined) missing the leader's previous
// entry is how every join starts; with entries it may be a real problem.
func isOrdinary(msg string, args []any) bool {
	if ordinary[msg] {
		return true
	}
	if msg == "failed to get previous log" {
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "last-index" {
				n, ok := args[i+1].(uint64)
				return ok && n == 0
			}
		}
	}
	return false
}

// hclogSlog is an hclog.Logger writing to slog: hclog's levels map onto
// slog's (trace below debug), the key/value arguments become attributes,
// and Named/With become the "sub" attribute (raft, raft.name) and bound
// attributes.
type hclogSlog struct {
	log     *slog.Logger
	name    string
	implied []any
	// min is a floor set by SetLevel (hclog.NoLevel: none); the slog
	// handler's own level still applies.
	min *atomic.Int32
}

var _ hclog.Logger = (*hclogSlog)(nil)

// hclogAdapter gives raft (and its transport and snapshot store) a logger
// named "raft" that writes to log.
func hclogAdapter(log *slog.Logger) hclog.Logger {
	min := new(atomic.Int32)
	min.Store(int32(hclog.NoLevel))
	return &hclogSlog{log: log, name: "raft", min: min}
}

// levelTrace is hclog's TRACE, one step below slog's DEBUG.
const levelTrace = slog.LevelDebug - 4

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (l *hclogSlog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	if level == hclog.Warn && isOrdinary(msg, args) {
		level = hclog.Info
	}
	if m := hclog.Level(l.min.Load()); m != hclog.NoLevel && level < m {
		return
	}
	sl := slogLevel(level)
	ctx := context.Background()
	if !l.log.Enabled(ctx, sl) {
		return
	}
	l.log.LogAttrs(ctx, sl, msg, append([]slog.Attr{slog.String("sub", l.name)}, attrs(args)...)...)
}

// attrs turns hclog's alternating keys and values into attributes. A
// value without a key is kept, as hclog keeps it, under EXTRA_VALUE_AT_END.
func attrs(args []any) []slog.Attr {
	out := make([]slog.Attr, 0, (len(args)+1)/2)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			out = append(out, slog.Any("EXTRA_VALUE_AT_END", value(args[i])))
			break
		}
		k, ok := args[i].(string)
		if !ok {
			k = fmt.Sprint(args[i])
		}
		out = append(out, slog.Any(k, value(args[i+1])))
	}
	return out
}

// value renders hclog's own value types as hclog would.
func value(v any) any {
	switch v := v.(type) {
	case hclog.Format:
		if len(v) == 0 {
			return ""
		}
		f, ok := v[0].(string)
		if !ok {
			return fmt.Sprint(v...)
		}
		return fmt.Sprintf(f, v[1:]...)
	case hclog.Hex:
		return fmt.Sprintf("0x%x", int(v))
	case hclog.Octal:
		return fmt.Sprintf("0%o", int(v))
	case hclog.Binary:
		return fmt.Sprintf("0b%b", int(v))
	case hclog.Quote:
		return string(v)
	case error:
		return v.Error()
	}
	return v
}

func (l *hclogSlog) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *hclogSlog) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *hclogSlog) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *hclogSlog) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *hclogSlog) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *hclogSlog) enabled(level hclog.Level) bool {
	if m := hclog.Level(l.min.Load()); m != hclog.NoLevel && level < m {
		return false
	}
	return l.log.Enabled(context.Background(), slogLevel(level))
}

func (l *hclogSlog) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *hclogSlog) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *hclogSlog) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *hclogSlog) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *hclogSlog) IsError() bool { return l.enabled(hclog.Error) }

func (l *hclogSlog) ImpliedArgs() []any { return l.implied }

func (l *hclogSlog) With(args ...any) hclog.Logger {
	c := *l
	c.implied = append(append([]any(nil), l.implied...), args...)
	as := attrs(args)
	anys := make([]any, len(as))
	for i, a := range as {
		anys[i] = a
	}
	c.log = l.log.With(anys...)
	return &c
}

func (l *hclogSlog) Name() string { return l.name }

func (l *hclogSlog) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return l.ResetNamed(name)
}

func (l *hclogSlog) ResetNamed(name string) hclog.Logger {
	c := *l
	c.name = name
	return &c
}

func (l *hclogSlog) SetLevel(level hclog.Level) { l.min.Store(int32(level)) }

func (l *hclogSlog) GetLevel() hclog.Level {
	if m := hclog.Level(l.min.Load()); m != hclog.NoLevel {
		return m
	}
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if l.log.Enabled(context.Background(), slogLevel(lv)) {
			return lv
		}
	}
	return hclog.Off
}

func (l *hclogSlog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter is for code that logs through the standard library: each
// write is one line, at opts.ForceLevel, or at the level its [LEVEL] prefix
// names when opts.InferLevels, else at INFO.
func (l *hclogSlog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	return &stdWriter{l: l, opts: *opts}
}

type stdWriter struct {
	l    *hclogSlog
	opts hclog.StandardLoggerOptions
}

var levelPrefixes = []struct {
	prefix string
	level  hclog.Level
}{
	{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
	{"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error},
}

func (w *stdWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, " \t\r\n"))
	level := hclog.Info
	if w.opts.ForceLevel != hclog.NoLevel || w.opts.InferLevels {
		for _, lp := range levelPrefixes {
			if rest, ok := strings.CutPrefix(msg, lp.prefix); ok {
				msg, level = strings.TrimSpace(rest), lp.level
				break
			}
		}
	}
	if w.opts.ForceLevel != hclog.NoLevel {
		level = w.opts.ForceLevel
	}
	w.l.Log(level, msg)
	return len(p), nil
}
