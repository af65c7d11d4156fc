package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testnet"
)

const monitoringDir = "../../packaging/monitoring"

// TestShippedRules: the alert rules load in Prometheus (promtool check
// rules) and fire as their unit tests say (promtool test rules).
func TestShippedRules(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "vipgate-rules.yml"}, {"test", "rules", "vipgate-rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = monitoringDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

var metricName = regexp.MustCompile(`\bvipgate_[a-z0-9_]+`)

// shippedMetrics lists the metric families the shipped rules and dashboard
// read (a histogram's _bucket/_sum/_count named by its family).
func shippedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(file, expr string) {
		for _, m := range metricName.FindAllString(expr, -1) {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				m = strings.TrimSuffix(m, suf)
			}
			if !slices.Contains(out[m], file) {
				out[m] = append(out[m], file)
			}
		}
	}
	rules, err := os.ReadFile(filepath.Join(monitoringDir, "vipgate-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "summary:") {
			add("vipgate-rules.yml", l)
		}
	}
	data, err := os.ReadFile(filepath.Join(monitoringDir, "vipgate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("vipgate-dashboard.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			add("vipgate-dashboard.json", tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		add("vipgate-dashboard.json", v.Definition)
	}
	if len(out) < 20 {
		t.Fatalf("only %d metrics found in the rules and dashboard: the extraction is broken", len(out))
	}
	return out
}

// TestShippedMetricsExist runs a raft gateway (VRRP on a real segment, DNS,
// an http proxy with checks) in a network namespace, sends it HTTP and DNS
// traffic, and checks that every metric the shipped alert rules and
// Grafana dashboard read is in its live /metrics.
func TestShippedMetricsExist(t *testing.T) {
	testenv.Short(t)
	want := shippedMetrics(t)
	n := testnet.New(t)
	h := n.AddHost("gw", "198.18.99.1/24")

	dir := t.TempDir()
	bin := buildVipgate(t, dir)
	ca, err := rafttest.NewCA(dir, "raft")
	if err != nil {
		t.Fatal(err)
	}
	tf, err := ca.Issue("gw1")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) string { return writeFile(t, dir, name, s) }
	cluster := write("cluster.yaml", `
datacenters: [{name: dc1, role: primary}, {name: dc2}]
vrrp:
  instances:
    - {name: vi1, datacenter: dc1, interface: eth0, vrid: 51, priority: 100, vips: [198.18.99.100/24]}
frontends: [{name: web, mode: http, bind: "198.18.99.1:8080", default_backend: app}]
backends:
  - name: app
    mode: http
    check: {kind: http, inter: 200ms, http: {path: /health}}
    servers: [{name: demo, address: "127.0.0.1:18081"}, {name: gone, address: "127.0.0.1:18082"}]
dns:
  zones:
    - name: example.com
      ns: [ns1.example.com]
      records: [{name: ns1, type: A, data: 198.18.99.53}]
      services:
        - {name: mail, policy: failover, vips: {dc1: [198.18.99.100], dc2: [198.18.98.100]}}
`)
	node := write("node.yaml", fmt.Sprintf(`name: gw1
datacenter: dc1
data_dir: %s
config: %s
admin: {listen: "198.18.99.1:9900", read_tokens: [%s]}
dns: {listen: ["198.18.99.1:5353"]}
raft:
  listen: "198.18.99.1:9901"
  bootstrap: true
  tls: {ca: %q, cert: %q, key: %q}
`, filepath.Join(dir, "data"), cluster, readTok, tf.CA, tf.Cert, tf.Key))
	done, logs := runInNS(t, h, bin, "run", "--node", node, "--demo-backends", "127.0.0.1:18081")

	hc := nsClient(h)
	scrape := func() (map[string]bool, error) {
		req, _ := http.NewRequest("GET", "http://198.18.99.1:9900/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+readTok)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for name := range fams {
			have[name] = true
		}
		return have, nil
	}
	traffic := func() {
		if resp, err := hc.Get("http://198.18.99.1:8080/"); err == nil {
			resp.Body.Close()
		}
		if c, err := h.Dial("udp", "", "198.18.99.1:5353", 2*time.Second); err == nil {
			m := new(mdns.Msg)
			m.SetQuestion("mail.example.com.", mdns.TypeA)
			dc := &mdns.Conn{Conn: c}
			_ = dc.WriteMsg(m)
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, _ = dc.ReadMsg()
			c.Close()
		}
	}
	var missing []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		traffic()
		have, err := scrape()
		missing = missing[:0]
		for m, files := range want {
			if err != nil || !have[m] {
				missing = append(missing, fmt.Sprintf("%s (%s)", m, strings.Join(files, ", ")))
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-done:
			t.Fatalf("the node stopped:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			slices.Sort(missing)
			t.Fatalf("metrics the shipped rules and dashboard read are not in the node's /metrics (scrape error %v):\n  %s", err, strings.Join(missing, "\n  "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// buildVipgate builds the binary into dir (the lab's namespaces run it).
func buildVipgate(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "vipgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runInNS runs bin with args in h's namespace until the test ends (then
// SIGINT, SIGKILL after 15s). done closes when it exits; its output is in
// logs, printed when the test failed.
func runInNS(t *testing.T, h *testnet.Host, bin string, args ...string) (done chan struct{}, logs *testenv.LogBuffer) {
	t.Helper()
	cmd := h.Command(bin, args...)
	logs = &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", h.Name, logs.String())
		}
	})
	return done, logs
}

// nsClient is an HTTP client whose connections start in h's namespace.
func nsClient(h *testnet.Host) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return h.Dial(network, "", addr, 5*time.Second)
		},
		DisableKeepAlives: true,
	}}
}

// writeFile writes s to dir/name (0600) and returns its path.
func writeFile(t *testing.T, dir, name, s string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
