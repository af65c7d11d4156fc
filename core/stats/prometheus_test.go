package stats

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeSource struct {
	fe []Row
	be []BackendRow
}

func (f fakeSource) FrontendRows() []Row       { return f.fe }
func (f fakeSource) BackendRows() []BackendRow { return f.be }

func testSource() fakeSource {
	now := time.Now()
	return fakeSource{
		fe: []Row{{Name: "web", Status: "OPEN", Rate: 3, RateMax: 9}},
		be: []BackendRow{{
			Row: Row{Name: "app", Status: "UP", Act: 1, Bck: 1},
			Servers: []Row{
				{Name: "a", Status: "UP", Act: 1, CheckCode: "L7OK", CheckSecs: 0.002, LastChange: now, HTTP: [6]uint64{0, 0, 5}},
				{Name: "b", Status: "DOWN", Act: 1, CheckCode: "L4CON", CheckSecs: 0.001, ChkFail: 4, Downtime: 12, LastChange: now, Downs: 1},
				{Name: "c", Status: "UP", Bck: 1, LastChange: now}, // not checked
			},
		}},
	}
}

// TestCollectorNaming checks both naming schemes on the same rows: the
// names, the labels and the values of the metrics an HAProxy user's
// dashboards and alert rules read.
func TestCollectorNaming(t *testing.T) {
	tests := []struct {
		naming Naming
		want   string
		names  []string
	}{
		{NamingVipgate, `
# HELP vipgate_backend_active_servers Active servers that are UP.
# TYPE vipgate_backend_active_servers gauge
vipgate_backend_active_servers{backend="app"} 1
# HELP vipgate_backend_backup_servers Backup servers that are UP.
# TYPE vipgate_backend_backup_servers gauge
vipgate_backend_backup_servers{backend="app"} 1
# HELP vipgate_server_check_failures_total Failed health checks.
# TYPE vipgate_server_check_failures_total counter
vipgate_server_check_failures_total{backend="app",server="a"} 0
vipgate_server_check_failures_total{backend="app",server="b"} 4
vipgate_server_check_failures_total{backend="app",server="c"} 0
# HELP vipgate_server_check_duration_seconds Duration of the last health check.
# TYPE vipgate_server_check_duration_seconds gauge
vipgate_server_check_duration_seconds{backend="app",server="a"} 0.002
vipgate_server_check_duration_seconds{backend="app",server="b"} 0.001
# HELP vipgate_server_downtime_seconds_total Time the server has spent DOWN.
# TYPE vipgate_server_downtime_seconds_total counter
vipgate_server_downtime_seconds_total{backend="app",server="a"} 0
vipgate_server_downtime_seconds_total{backend="app",server="b"} 12
vipgate_server_downtime_seconds_total{backend="app",server="c"} 0
# HELP vipgate_frontend_current_session_rate Sessions in the last second.
# TYPE vipgate_frontend_current_session_rate gauge
vipgate_frontend_current_session_rate{frontend="web"} 3
# HELP vipgate_frontend_max_session_rate Most sessions started in one second.
# TYPE vipgate_frontend_max_session_rate gauge
vipgate_frontend_max_session_rate{frontend="web"} 9
# HELP vipgate_frontend_status 1 when the frontend is accepting (OPEN), 0 when stopped.
# TYPE vipgate_frontend_status gauge
vipgate_frontend_status{frontend="web"} 1
`, []string{"vipgate_backend_active_servers", "vipgate_backend_backup_servers", "vipgate_server_check_failures_total",
			"vipgate_server_check_duration_seconds", "vipgate_server_downtime_seconds_total", "vipgate_frontend_current_session_rate",
			"vipgate_frontend_max_session_rate", "vipgate_frontend_status"}},
		{NamingHAProxy, `
# HELP haproxy_backend_status Current status of the service, per state label value.
# TYPE haproxy_backend_status gauge
haproxy_backend_status{proxy="app",state="DOWN"} 0
haproxy_backend_status{proxy="app",state="UP"} 1
# HELP haproxy_frontend_status Current status of the service, per state label value.
# TYPE haproxy_frontend_status gauge
haproxy_frontend_status{proxy="web",state="DOWN"} 0
haproxy_frontend_status{proxy="web",state="UP"} 1
# HELP haproxy_server_check_up_down_total Times the server was marked down.
# TYPE haproxy_server_check_up_down_total counter
haproxy_server_check_up_down_total{proxy="app",server="a"} 0
haproxy_server_check_up_down_total{proxy="app",server="b"} 1
haproxy_server_check_up_down_total{proxy="app",server="c"} 0
# HELP haproxy_server_http_responses_total HTTP responses by status class.
# TYPE haproxy_server_http_responses_total counter
haproxy_server_http_responses_total{code="2xx",proxy="app",server="a"} 5
# HELP haproxy_backend_active_servers Active servers that are UP.
# TYPE haproxy_backend_active_servers gauge
haproxy_backend_active_servers{proxy="app"} 1
`, []string{"haproxy_backend_status", "haproxy_frontend_status", "haproxy_server_check_up_down_total",
			"haproxy_server_http_responses_total", "haproxy_backend_active_servers"}},
	}
	for _, tc := range tests {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(NewCollector(testSource(), tc.naming))
		if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), tc.names...); err != nil {
			t.Errorf("naming %d: %v", tc.naming, err)
		}
	}
}

// TestCheckStatus: one series per HAProxy code, 1 on the last result's,
// none for a server without checks.
func TestCheckStatus(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(testSource(), NamingHAProxy))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ones := map[string]string{}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "haproxy_server_check_status" {
			continue
		}
		for _, m := range mf.Metric {
			n++
			l := map[string]string{}
			for _, p := range m.Label {
				l[p.GetName()] = p.GetValue()
			}
			if l["server"] == "c" {
				t.Errorf("check_status for a server without checks: %v", l)
			}
			if m.Gauge.GetValue() == 1 {
				ones[l["server"]] = l["state"]
			}
		}
	}
	if n != 2*len(CheckStates) {
		t.Errorf("%d check_status series, want %d", n, 2*len(CheckStates))
	}
	if ones["a"] != "L7OK" || ones["b"] != "L4CON" {
		t.Errorf("check_status set to 1: %v, want a=L7OK b=L4CON", ones)
	}
}

// TestCollectorLint: the names and help pass Prometheus' own linter.
func TestCollectorLint(t *testing.T) {
	for _, n := range []Naming{NamingVipgate, NamingHAProxy} {
		probs, err := testutil.CollectAndLint(NewCollector(testSource(), n))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range probs {
			t.Errorf("naming %d: %s: %s", n, p.Metric, p.Text)
		}
	}
}
