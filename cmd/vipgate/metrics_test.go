package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/stats"
	"github.com/vipgate/vipgate/internal/testenv"
)

// scrape reads n's /metrics as metric families.
func scrape(t *testing.T, n *node) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := n.do(t, call{method: "GET", path: "/metrics", token: readTok})
	if code != 200 {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return fams
}

// value is the value of the series of fam whose labels include want.
func value(fam *dto.MetricFamily, want map[string]string) (float64, bool) {
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		l := map[string]string{}
		for _, p := range m.Label {
			l[p.GetName()] = p.GetValue()
		}
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// TestDecisionMetrics: a raft gateway exports the decisions it follows
// (active datacenter, raft leadership, config apply, build) beside the
// proxy's, and a manual failover shows in them.
func TestDecisionMetrics(t *testing.T) {
	testenv.Short(t)
	a := startGreeter(t, "a", "127.0.0.1:0")
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	n := startRaftNode(t, fmt.Sprintf(`
datacenters: [{name: dc1, role: primary}, {name: dc2}]
failover: {mode: manual}
frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    check: {kind: tcp, inter: 50ms}
    servers: [{name: a, address: %q}]
`, fe, a.addr), fmt.Sprintf("tokens: [%s], read_tokens: [%s]", writeTok, readTok))

	testenv.Eventually(t, 10*time.Second, "raft leader in the metrics", func() bool {
		v, ok := value(scrape(t, n)["vipgate_raft_leader"], nil)
		return ok && v == 1
	})
	fams := scrape(t, n)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vipgate_raft_has_leader", nil, 1},
		{"vipgate_raft_state", map[string]string{"state": "Leader"}, 1},
		{"vipgate_raft_members", map[string]string{"suffrage": "voter"}, 1},
		{"vipgate_config_version", nil, 1},
		{"vipgate_config_last_apply_success", nil, 1},
		{"vipgate_dc_active", map[string]string{"datacenter": "dc1"}, 1},
		{"vipgate_dc_active", map[string]string{"datacenter": "dc2"}, 0},
		{"vipgate_dc_failovers_total", nil, 0},
		{"vipgate_build_info", map[string]string{"version": version}, 1},
	} {
		got, ok := value(fams[tc.name], tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	for _, name := range []string{"vipgate_raft_term", "vipgate_raft_commit_index", "vipgate_raft_applied_index",
		"vipgate_raft_last_contact_seconds", "vipgate_config_last_apply_timestamp_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("metric family %s missing", name)
		}
	}
	// hashicorp/raft's own timings, through the go-metrics sink.
	found := false
	for name := range fams {
		if strings.HasPrefix(name, "vipgate_raft_") && strings.Contains(name, "commitTime") {
			found = true
		}
	}
	if !found {
		t.Errorf("no hashicorp/raft timing (vipgate_raft_*commitTime*) in /metrics")
	}

	code, body := n.do(t, call{method: "POST", path: "/api/v1/dc/failover", token: writeTok, body: `{"datacenter": "dc2", "force": true}`})
	if code != 200 {
		t.Fatalf("failover: HTTP %d %s", code, body)
	}
	testenv.Eventually(t, 10*time.Second, "dc2 active in the metrics", func() bool {
		f := scrape(t, n)
		v, _ := value(f["vipgate_dc_active"], map[string]string{"datacenter": "dc2"})
		c, _ := value(f["vipgate_dc_failovers_total"], nil)
		_, decided := f["vipgate_dc_last_decision_timestamp_seconds"]
		return v == 1 && c == 1 && decided
	})
}

// TestStatsCSV: the page's URI plus ";csv" is HAProxy's CSV export, behind
// a read token.
func TestStatsCSV(t *testing.T) {
	n, _ := apiNode(t)
	n.waitUpAndChecked("be", "a")
	if code, _ := n.do(t, call{method: "GET", path: "/stats;csv"}); code != 401 {
		t.Errorf("anonymous CSV: HTTP %d, want 401", code)
	}
	code, body := n.do(t, call{method: "GET", path: "/stats;csv", token: readTok})
	if code != 200 {
		t.Fatalf("HTTP %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if !strings.HasPrefix(lines[0], "# pxname,svname,qcur,") || len(lines) != 4 {
		t.Fatalf("CSV:\n%s", body)
	}
	for _, want := range []string{"fe,FRONTEND,", "be,a,", "be,BACKEND,"} {
		if !strings.Contains(body, "\n"+want) {
			t.Errorf("no %q row in\n%s", want, body)
		}
	}
	if !strings.Contains(body, ",L4OK,") {
		t.Errorf("server a's check_status is not L4OK:\n%s", body)
	}
}

// TestSessionRate: the stats API's rate (always 0 before) counts the
// sessions of the last second, per frontend, backend and server, and
// rate_max keeps the busiest second.
func TestSessionRate(t *testing.T) {
	n, fe := apiNode(t)
	n.waitUpAndChecked("be", "a")
	testenv.Eventually(t, 10*time.Second, "a session rate on the frontend, backend and server", func() bool {
		if name, err := dialName(fe); err != nil || name != "a" {
			t.Fatalf("dial: %q %v", name, err)
		}
		var s stats.Snapshot
		if n.get("/api/v1/stats", &s) != nil {
			return false
		}
		f, b, sv := s.Frontends[0], s.Backends[0].Row, s.Backends[0].Servers[0]
		return f.Rate > 0 && b.Rate > 0 && sv.Rate > 0 && f.RateMax >= 1 && sv.RateMax >= 1
	})
}

// TestHAProxyNaming: with metrics.labels: haproxy the node exports the
// proxy's metrics under HAProxy's exporter names and labels, and keeps the
// cluster's under vipgate's.
func TestHAProxyNaming(t *testing.T) {
	a := startGreeter(t, "a", "127.0.0.1:0")
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	n := startNodeFile(t, fmt.Sprintf(`
frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    check: {kind: tcp, inter: 50ms}
    servers: [{name: a, address: %q}]
`, fe, a.addr), fmt.Sprintf("tokens: [%s], read_tokens: [%s]", writeTok, readTok), "metrics: {labels: haproxy}\n")
	n.waitUpAndChecked("be", "a")
	fams := scrape(t, n)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"haproxy_server_check_status", map[string]string{"proxy": "be", "server": "a", "state": "L4OK"}, 1},
		{"haproxy_server_status", map[string]string{"proxy": "be", "server": "a", "state": "UP"}, 1},
		{"haproxy_backend_active_servers", map[string]string{"proxy": "be"}, 1},
		{"haproxy_backend_status", map[string]string{"proxy": "be", "state": "UP"}, 1},
		{"haproxy_frontend_status", map[string]string{"proxy": "fe", "state": "UP"}, 1},
		{"vipgate_config_version", nil, 1},
	} {
		if got, ok := value(fams[tc.name], tc.labels); !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "vipgate_server_") || strings.HasPrefix(name, "vipgate_backend_") || strings.HasPrefix(name, "vipgate_frontend_") {
			t.Errorf("%s exported with labels: haproxy", name)
		}
	}
}

// TestConfigReloadMetrics: a standalone node's refused reload shows in
// vipgate_config_last_reload_success and _reloads_refused_total, and the
// next good one clears the first.
func TestConfigReloadMetrics(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	good := "frontends: [{name: fe, bind: '127.0.0.1:0', default_backend: be}]\nbackends: [{name: be, servers: [{name: s, address: 'h:1'}]}]\n"
	if err := os.WriteFile(f, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	src := newFileSource(f, &config.Node{Name: "t1", Datacenter: "dc1"}, slog.New(slog.DiscardHandler))
	m := newConfigMetrics(true)
	m.file = src
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx)
	<-src.Updates()
	m.applied(true)
	gauge := func(name string) float64 {
		t.Helper()
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(m)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				v, _ := value(mf, nil)
				return v
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	if gauge("vipgate_config_last_reload_success") != 1 || gauge("vipgate_config_reloads_refused_total") != 0 {
		t.Fatal("a node that never reloaded reports a refused reload")
	}
	if err := os.WriteFile(f, []byte("frontends: [{name: fe, bnid: x}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src.Reload()
	testenv.Eventually(t, 5*time.Second, "the refused reload in the metrics", func() bool {
		return gauge("vipgate_config_last_reload_success") == 0 && gauge("vipgate_config_reloads_refused_total") == 1
	})
	if err := os.WriteFile(f, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	src.Reload()
	<-src.Updates()
	if gauge("vipgate_config_last_reload_success") != 1 || gauge("vipgate_config_reloads_refused_total") != 1 {
		t.Error("a good reload after a refused one: last_reload_success not 1, or the refused count changed")
	}
}
