package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/plugins/alert/email"
)

// newAlerts wires the e-mail alerter into a node: it subscribes to the bus
// at once (events published while the node starts are queued), keeps its
// durable queue in the node's data dir, and exposes its counters as the
// "alerts" status section, /api/v1/alerts, Prometheus metrics, and the
// test endpoint behind `vipgate alerts test`.
func newAlerts(e *env) (subsystem, error) {
	var sv email.StateView
	if e.Proxy != nil { // a witness has no proxy: mails then say nothing about backends
		sv = e.Proxy
	}
	a, err := email.New(email.Options{
		Bus: e.Bus, DataDir: e.Node.DataDir, Log: e.Log.With("sub", "alerts"),
		IsLeader: e.IsLeader, Node: e.Node.Name,
		LeaderSeen: func() time.Time {
			if e.LeaderContact == nil {
				return time.Time{}
			}
			return e.LeaderContact()
		}, DC: e.Node.Datacenter, State: sv,
	})
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	e.Admin.Section("alerts", func() any { return a.Stats() })
	e.Admin.HandleFunc("GET /api/v1/alerts", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, a.Stats())
	})
	e.Admin.HandleFunc("POST /api/v1/alerts/test", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var req alertTestRequest
		if err := admin.DecodeJSON(r, &req); err != nil && !errors.Is(err, io.EOF) {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, a.Test(r.Context(), req.To))
	})
	e.Admin.HandleFunc("GET /api/v1/alerts/dead", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, a.DeadLetters(0))
	})
	e.Admin.HandleFunc("POST /api/v1/alerts/dead", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var req deadLetterRequest
		if err := admin.DecodeJSON(r, &req); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		if req.Action != "retry" && req.Action != "discard" {
			admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("action %q: want retry or discard", req.Action))
			return
		}
		if req.Action == "discard" && len(req.IDs) == 0 && !req.All {
			admin.WriteError(w, http.StatusBadRequest, errors.New("discard needs ids or all: true"))
			return
		}
		n, err := a.RetryDead(req.IDs, req.Action == "discard")
		if err != nil {
			admin.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]int{"count": n})
	})
	if e.Metrics != nil {
		registerAlertMetrics(e.Metrics, a)
	}
	return a, nil
}

// deadLetterRequest is the body of POST /api/v1/alerts/dead.
type deadLetterRequest struct {
	Action string   `json:"action"` // retry | discard
	IDs    []uint64 `json:"ids,omitempty"`
	// All is required to discard every dead letter (none named).
	All bool `json:"all,omitempty"`
}

// alertTestRequest is the body of POST /api/v1/alerts/test.
type alertTestRequest struct {
	// To overrides the recipients (default: every rule's).
	To []string `json:"to,omitempty"`
}

func registerAlertMetrics(reg *prometheus.Registry, a *email.Alerter) {
	gauge := func(name, help string, f func(email.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(a.Stats()) })
	}
	counter := func(name, help string, f func(email.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(a.Stats()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("vipgate_alerts_queued", "Alert mails waiting for delivery.", func(s email.Stats) float64 { return float64(s.Queued) }),
		gauge("vipgate_alerts_pending_events", "Events held in coalescing windows.", func(s email.Stats) float64 { return float64(s.PendingEvents) }),
		counter("vipgate_alerts_sent_total", "Alert mails delivered.", func(s email.Stats) float64 { return float64(s.Sent) }),
		counter("vipgate_alerts_failed_total", "Delivery attempts that left a recipient without the mail.", func(s email.Stats) float64 { return float64(s.Failed) }),
		counter("vipgate_alerts_rejected_total", "Recipients that refused an alert for good (5xx); each is kept as a dead letter.", func(s email.Stats) float64 { return float64(s.Rejected) }),
		gauge("vipgate_alerts_dead_letters", "Alert mails kept for recipients that refused them (retry or discard them).", func(s email.Stats) float64 { return float64(s.DeadLetters) }),
		counter("vipgate_alerts_dropped_total", "Alerts dropped (queue cap, corrupt records, bus overflow); each drop is itself mailed.", func(s email.Stats) float64 { return float64(s.Dropped) }),
		counter("vipgate_alerts_bus_dropped_total", "Events the bus could not hand to the alerter.", func(s email.Stats) float64 { return float64(s.BusDropped) }),
	} {
		// A second registration (tests building several nodes on one
		// registry) must not take the node down.
		_ = reg.Register(c)
	}
}
