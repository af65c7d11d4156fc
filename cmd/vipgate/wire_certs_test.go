package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/certexpiry"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testcert"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestNodeReportsExpiringCertificate: a node whose TLS frontend serves a
// certificate that expires in five days publishes cert.expiring (err) as
// it loads the config, and shows it under /api/v1/certs.
func TestNodeReportsExpiringCertificate(t *testing.T) {
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "web.pem")
	testcert.Write(t, testcert.Cert{CN: "www.example.test", DNS: []string{"www.example.test"}, NotAfter: time.Now().Add(5 * 24 * time.Hour)}, pemFile, "")
	n := startNode(t, fmt.Sprintf(`
frontends: [{name: web, mode: http, bind: "127.0.0.1:%d", default_backend: be, tls: {certificates: [{cert: %q}]}}]
backends: [{name: be, mode: http, servers: [{name: s1, address: "127.0.0.1:9"}]}]
`, testenv.FreePort(t), pemFile))
	var evs []events.Event
	testenv.Eventually(t, 5*time.Second, "cert.expiring among the events", func() bool {
		evs = nil
		if err := n.get("/api/v1/events", &evs); err != nil {
			return false
		}
		for _, e := range evs {
			if e.Kind == events.CertExpiring {
				if e.Level != events.Err || e.Subject != pemFile || e.Attr("used_by") != "frontend web" || e.Attr("days_left") != "4" {
					t.Errorf("event %+v", e)
				}
				return true
			}
		}
		return false
	})
	var st []certexpiry.Status
	if err := n.get("/api/v1/certs", &st); err != nil || len(st) != 1 || st[0].State != "expiring" || st[0].Subject != "CN=www.example.test" {
		t.Errorf("/api/v1/certs: %+v, %v", st, err)
	}
}
