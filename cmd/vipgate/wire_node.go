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
	"github.com/vipgate/vipgate/core/config"
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

// logTargetCollector exposes each log target's sent and dropped lines (a
// target that drops has a receiver too slow or absent); the frontends'
// targets come and go with the config.
type logTargetCollector struct {
	logs   *logtarget.Set
	router *logtarget.Router
}

var (
	logSentDesc = prometheus.NewDesc("vipgate_log_lines_sent_total", "Log lines written to a log target.",
		[]string{"target", "facility", "stream"}, nil)
	logDroppedDesc = prometheus.NewDesc("vipgate_log_lines_dropped_total",
		"Log lines a log target lost: its queue was full (receiver slow or absent) or a write failed.",
		[]string{"target", "facility", "stream"}, nil)
)

func (c logTargetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- logSentDesc
	ch <- logDroppedDesc
}

func (c logTargetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range append(c.logs.Targets(), c.router.Targets()...) {
		ch <- prometheus.MustNewConstMetric(logSentDesc, prometheus.CounterValue, float64(t.Sent()), t.Name(), t.Facility(), t.Stream())
		ch <- prometheus.MustNewConstMetric(logDroppedDesc, prometheus.CounterValue, float64(t.Dropped()), t.Name(), t.Facility(), t.Stream())
	}
}

// accessLogRouter runs the frontends' log targets as a subsystem.
type accessLogRouter struct{ r *logtarget.Router }

func (a accessLogRouter) Name() string                  { return "access-log" }
func (a accessLogRouter) Apply(c *config.Cluster) error { a.r.Apply(c); return nil }
func (a accessLogRouter) Run(ctx context.Context) error { return a.r.Run(ctx) }
