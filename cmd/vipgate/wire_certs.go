package main

import (
	"net/http"

	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/certexpiry"
)

// newCertWatch wires the certificate expiry check: cert.expiring events for
// the TLS frontends' certificates and the node file's (admin, raft, stick
// peers), at load and daily; the "certs" status section and
// GET /api/v1/certs show the last check.
func newCertWatch(e *env) subsystem {
	w := certexpiry.New(certexpiry.Options{Bus: e.Bus, Log: e.Log.With("sub", "certs"), Node: e.Node})
	e.Admin.Section("certs", func() any { return w.Status() })
	if e.Metrics != nil {
		_ = e.Metrics.Register(certexpiry.NewCollector(w)) // a second node on one registry (tests) keeps the first's
	}
	e.Admin.HandleFunc("GET /api/v1/certs", admin.Read, func(rw http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(rw, http.StatusOK, w.Status())
	})
	return w
}
