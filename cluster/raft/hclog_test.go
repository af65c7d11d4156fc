package raft

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/vipgate/vipgate/internal/testenv"
)

// records decodes a slog JSON handler's lines.
func records(t testing.TB, j *testenv.LogBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(j.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHclogAdapter(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level // the handler's
		log   func(l hclog.Logger)
		want  []map[string]any // subsets of each record
	}{
		{"levels and key/values", slog.LevelDebug - 4, func(l hclog.Logger) {
			l.Trace("t", "k", 1)
			l.Debug("d")
			l.Info("entering leader state", "leader", "n1", "term", 3)
			l.Warn("failed to contact", "server-id", "n2", "err", errors.New("refused"))
			l.Error("e", "odd")
		}, []map[string]any{
			{"level": "DEBUG-4", "msg": "t", "k": 1.0, "sub": "raft"},
			{"level": "DEBUG", "msg": "d"},
			{"level": "INFO", "msg": "entering leader state", "leader": "n1", "term": 3.0},
			{"level": "WARN", "msg": "failed to contact", "server-id": "n2", "err": "refused"},
			{"level": "ERROR", "msg": "e", "EXTRA_VALUE_AT_END": "odd"},
		}},
		{"ordinary warnings are info", slog.LevelInfo, func(l hclog.Logger) {
			l.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "")
			l.Debug("hidden")
		}, []map[string]any{
			{"level": "INFO", "msg": "heartbeat timeout reached, starting election", "last-leader-addr": ""},
		}},
		{"named and with", slog.LevelInfo, func(l hclog.Logger) {
			n := l.Named("snapshot").With("id", "x")
			n.Info("created", "format", hclog.Fmt("%d-%s", 1, "a"))
			l.ResetNamed("other").Info("plain")
			if n.Name() != "raft.snapshot" || len(n.ImpliedArgs()) != 2 {
				t.Errorf("name %q implied %v", n.Name(), n.ImpliedArgs())
			}
		}, []map[string]any{
			{"msg": "created", "sub": "raft.snapshot", "id": "x", "format": "1-a"},
			{"msg": "plain", "sub": "other"},
		}},
		{"set level", slog.LevelDebug, func(l hclog.Logger) {
			l.SetLevel(hclog.Warn)
			if l.IsInfo() || !l.IsWarn() || l.GetLevel() != hclog.Warn {
				t.Errorf("after SetLevel(Warn): IsInfo %v IsWarn %v GetLevel %v", l.IsInfo(), l.IsWarn(), l.GetLevel())
			}
			l.Info("dropped")
			l.Error("kept")
		}, []map[string]any{{"msg": "kept"}}},
		{"standard logger", slog.LevelDebug, func(l hclog.Logger) {
			l.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[WARN] from stdlib")
			l.StandardLogger(nil).Print("[ERR] untouched")
		}, []map[string]any{
			{"level": "WARN", "msg": "from stdlib"},
			{"level": "INFO", "msg": "[ERR] untouched"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out testenv.LogBuffer
			tc.log(hclogAdapter(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: tc.level}))))
			got := records(t, &out)
			if len(got) != len(tc.want) {
				t.Fatalf("%d records, want %d: %v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				for k, v := range w {
					if got[i][k] != v {
						t.Errorf("record %d: %s = %v (%T), want %v", i, k, got[i][k], got[i][k], v)
					}
				}
			}
		})
	}
}

// A real cluster's start: raft's lines arrive as records with their own
// attributes (not text to scrape), the election at INFO, and none of the
// ordinary start-up lines at WARN.
func TestRaftStartLogsStructured(t *testing.T) {
	c := newTCluster(t)
	var out testenv.LogBuffer
	c.tune = func(o *Options) {
		o.Log = slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", o.ID)
	}
	nodes := c.boot(3)
	c.leader(nodes)
	won := 0
	for _, r := range records(t, &out) {
		if r["sub"] != "raft" {
			continue
		}
		msg, _ := r["msg"].(string)
		if strings.HasPrefix(msg, "[") || strings.Contains(msg, "raft: ") {
			t.Errorf("raft line scraped from text: %v", r)
		}
		if (ordinary[msg] || msg == "failed to get previous log" && r["last-index"] == 0.0) && r["level"] != "INFO" {
			t.Errorf("ordinary line at %v: %v", r["level"], r)
		}
		if msg == "election won" {
			won++
			if r["level"] != "INFO" || r["term"] == nil {
				t.Errorf("election line: %v", r)
			}
		}
	}
	if won == 0 {
		t.Errorf("no \"election won\" line among %d records", len(records(t, &out)))
	}
}
