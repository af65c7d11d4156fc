package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/proxy"
)

// stopRequest is a soft stop asked through the admin API, with its grace
// when it gave one.
type stopRequest struct {
	mu sync.Mutex
	d  time.Duration
	// set: the request named a grace (0 included: cut at once).
	set bool
}

// grace is the request's grace, else def (the node's hard_stop_after).
func (r *stopRequest) grace(def time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set {
		return r.d
	}
	return def
}

// registerStopAdmin adds POST /api/v1/stop: a soft stop, as SIGUSR1 (the
// process exits once done; under systemd, Restart=always starts it again,
// which is what a rolling restart wants). {"grace": "5s"} overrides
// hard_stop_after for this stop.
func registerStopAdmin(e *env, stop context.CancelFunc) *stopRequest {
	req := &stopRequest{}
	e.Admin.HandleFunc("POST /api/v1/stop", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Grace string `json:"grace,omitempty"`
		}
		if err := admin.DecodeJSON(r, &body); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		grace := e.Node.HardStopAfter.D()
		if body.Grace != "" {
			d, err := time.ParseDuration(body.Grace)
			if err != nil || d < 0 {
				admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("grace %q: want a duration such as 30s", body.Grace))
				return
			}
			req.mu.Lock()
			req.d, req.set, grace = d, true, d
			req.mu.Unlock()
		}
		conns := 0
		if e.Proxy != nil {
			conns = e.Proxy.Conns()
		}
		e.Log.Info("soft stop requested", "client", r.RemoteAddr, "grace", grace)
		admin.WriteJSON(w, http.StatusAccepted, map[string]any{"scope": admin.ScopeNode, "grace": grace.String(), "connections": conns})
		stop()
	})
	return req
}

// resignBound bounds the wait for VRRP to hand its VIPs over.
const resignBound = 3 * time.Second

// awaitResigned waits (up to resignBound) for VRRP to have resigned: a
// master keeps its VIPs until the backup's first advert, and refusing the
// connections that still reach it meanwhile would fail clients the backup
// serves a moment later. done is nil without VRRP.
func awaitResigned(done <-chan struct{}, log *slog.Logger) {
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(resignBound):
		log.Warn("stopping: VRRP has not resigned yet; closing the listeners anyway", "after", resignBound)
	}
}

// gracefulStop is HAProxy's soft-stop bounded by hard-stop-after: p
// accepts nothing new, its idle keep-alive connections close, the others
// have up to grace to finish; then what is left is cut. A SIGTERM or
// SIGINT during the wait cuts at once (a second Ctrl-C).
func gracefulStop(p *proxy.Proxy, grace time.Duration, log *slog.Logger) {
	hard := make(chan os.Signal, 1)
	signal.Notify(hard, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(hard)
	p.Drain()
	start := time.Now()
	n := p.Conns()
	log.Info("stopping: new connections refused, open ones may finish", "connections", n, "hard_stop_after", grace)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for p.Conns() > 0 {
		select {
		case <-tick.C:
			continue
		case <-deadline.C:
		case sig := <-hard:
			log.Warn("stopping: cut at once", "signal", sig.String())
		}
		log.Warn("stopping: connections cut", "connections", p.CloseConns(), "after", time.Since(start).Round(time.Millisecond))
		return
	}
	if n > 0 {
		log.Info("stopping: every connection finished", "connections", n, "after", time.Since(start).Round(time.Millisecond))
	}
}
