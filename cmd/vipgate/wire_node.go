package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/stats"
	"github.com/vipgate/vipgate/internal/logtarget"
)

// registerNodeAdmin exposes what every node has: identity, events, the log
// level, Prometheus metrics. Event streams end with ctx.
func registerNodeAdmin(ctx context.Context, e *env) {
	node := e.Node
	e.Admin.Section("node", func() any {
		return map[string]any{"name": node.Name, "datacenter": node.Datacenter, "role": node.Role,
			"version": version, "log_level": strings.ToLower(e.LogLevel.Level().String())}
	})
	e.Admin.HandleFunc("GET /api/v1/events", admin.Read, serveEvents(ctx.Done(), e.Bus))
	page := stats.PageHandler(func(r *http.Request) bool { return e.Admin.Authorized(r, admin.Read) })
	e.Admin.HandlePublic("GET /stats", page)
	e.Admin.HandlePublic("GET /{$}", http.RedirectHandler("/stats", http.StatusFound))
	e.Admin.Handle("GET /metrics", admin.Read, promhttp.HandlerFor(e.Metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(e.Log.Handler(), slog.LevelWarn)}))
	e.Admin.HandleFunc("GET /api/v1/log", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, map[string]string{"level": strings.ToLower(e.LogLevel.Level().String())})
	})
	e.Admin.HandleFunc("PUT /api/v1/log", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Level string `json:"level"`
		}
		if err := admin.DecodeJSON(r, &body); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		var lv slog.Level
		switch strings.ToLower(body.Level) {
		case "debug", "info", "warn", "error":
			_ = lv.UnmarshalText([]byte(body.Level))
		default:
			admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("level %q: want debug, info, warn or error", body.Level))
			return
		}
		e.LogLevel.Set(lv)
		e.Log.Info("log level changed", "level", body.Level)
		admin.WriteJSON(w, http.StatusOK, map[string]any{"scope": admin.ScopeNode, "level": strings.ToLower(body.Level)})
	})
}

// registerLogTargetMetrics exposes each log target's sent and dropped
// lines: a target that drops is a receiver too slow or absent.
func registerLogTargetMetrics(reg *prometheus.Registry, logs *logtarget.Set) {
	for _, t := range logs.Targets() {
		labels := prometheus.Labels{"target": t.Name(), "facility": t.Facility(), "stream": t.Stream()}
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vipgate_log_lines_sent_total", Help: "Log lines written to a log target.", ConstLabels: labels},
				func() float64 { return float64(t.Sent()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vipgate_log_lines_dropped_total", Help: "Log lines a log target lost: its queue was full (receiver slow or absent) or a write failed.", ConstLabels: labels},
				func() float64 { return float64(t.Dropped()) }),
		)
	}
}
