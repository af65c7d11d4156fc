package main

import (
	"runtime"
	"sync"
	"time"

	gometrics "github.com/armon/go-metrics"
	gmprom "github.com/armon/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/cluster/state"
	"github.com/vipgate/vipgate/core/config"
)

// configMetrics records what the node did with each config snapshot it
// was handed (the node's apply loop is the one place that knows), as
// Prometheus' own prometheus_config_last_reload_successful does.
type configMetrics struct {
	// standalone: the node counts its documents itself (a raft node
	// exports the committed version, vipgate_raft's collector), and its
	// file source says how its reloads went (nil on a raft node).
	standalone bool
	file       *fileSource

	mu                 sync.Mutex
	ok                 bool
	last, lastSuccess  time.Time
	applies, failures  uint64
	lastOK, at, atOK   *prometheus.Desc
	appliesD, failedD  *prometheus.Desc
	version, buildInfo *prometheus.Desc
	reloadOK, refused  *prometheus.Desc
}

func newConfigMetrics(standalone bool) *configMetrics {
	return &configMetrics{standalone: standalone,
		lastOK:    prometheus.NewDesc("vipgate_config_last_apply_success", "1 when every subsystem applied the last config snapshot, 0 when one refused it.", nil, nil),
		at:        prometheus.NewDesc("vipgate_config_last_apply_timestamp_seconds", "When the last config snapshot was applied (unix time).", nil, nil),
		atOK:      prometheus.NewDesc("vipgate_config_last_apply_success_timestamp_seconds", "When a config snapshot was last applied by every subsystem (unix time).", nil, nil),
		appliesD:  prometheus.NewDesc("vipgate_config_applies_total", "Config snapshots applied (the first, reloads, committed changes).", nil, nil),
		failedD:   prometheus.NewDesc("vipgate_config_apply_failures_total", "Config snapshots that a subsystem refused (it kept its previous state).", nil, nil),
		version:   prometheus.NewDesc("vipgate_config_version", "Version of the cluster document in use (raft: the committed version; standalone: documents loaded since start).", nil, nil),
		buildInfo: prometheus.NewDesc("vipgate_build_info", "Always 1; the labels say which vipgate runs.", []string{"version", "goversion"}, nil),
		reloadOK:  prometheus.NewDesc("vipgate_config_last_reload_success", "Standalone node: 0 when the last reload (SIGHUP) was refused (the running config is kept; the log says why), else 1.", nil, nil),
		refused:   prometheus.NewDesc("vipgate_config_reloads_refused_total", "Standalone node: reloads refused (a file that does not validate, is empty, or serves nothing).", nil, nil),
	}
}

func (m *configMetrics) applied(ok bool) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ok, m.last = ok, now
	m.applies++
	if ok {
		m.lastSuccess = now
	} else {
		m.failures++
	}
}

func (m *configMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.lastOK, m.at, m.atOK, m.appliesD, m.failedD, m.buildInfo} {
		ch <- d
	}
	if m.standalone {
		ch <- m.version
		ch <- m.reloadOK
		ch <- m.refused
	}
}

func (m *configMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(m.buildInfo, g, 1, version, runtime.Version())
	ch <- prometheus.MustNewConstMetric(m.appliesD, prometheus.CounterValue, float64(m.applies))
	ch <- prometheus.MustNewConstMetric(m.failedD, prometheus.CounterValue, float64(m.failures))
	if m.standalone {
		ch <- prometheus.MustNewConstMetric(m.version, g, float64(m.applies))
	}
	if m.file != nil {
		ok := 1.0
		if m.file.lastRefused.Load() {
			ok = 0
		}
		ch <- prometheus.MustNewConstMetric(m.reloadOK, g, ok)
		ch <- prometheus.MustNewConstMetric(m.refused, prometheus.CounterValue, float64(m.file.rejected.Load()))
	}
	if m.last.IsZero() {
		return
	}
	ok := 0.0
	if m.ok {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(m.lastOK, g, ok)
	ch <- prometheus.MustNewConstMetric(m.at, g, float64(m.last.UnixNano())/1e9)
	if !m.lastSuccess.IsZero() {
		ch <- prometheus.MustNewConstMetric(m.atOK, g, float64(m.lastSuccess.UnixNano())/1e9)
	}
}

// registerDecisionMetrics adds the metrics every node exports about its
// config and the decisions it follows; src must exist (they subscribe).
func registerDecisionMetrics(e *env, src configSource, datacenters func() []string) {
	_, raftNode := src.(*raftSource)
	e.configMetrics = newConfigMetrics(!raftNode)
	e.configMetrics.file, _ = src.(*fileSource)
	dm := state.NewMetrics(datacenters)
	src.Subscribe(dm)
	for _, c := range []prometheus.Collector{e.configMetrics, dm} {
		// A second node on one registry (tests) keeps the first's.
		_ = e.Metrics.Register(c)
	}
}

// registerRaftMetrics exports the raft member's state, and hashicorp/raft's
// own timings and counters: raft reports them through armon/go-metrics'
// process-wide sink (its API, not ours to choose), so a Prometheus sink is
// installed there and registered with the node's registry
// (vipgate_raft_commitTime, vipgate_raft_replication_appendEntries_rpc…).
// With several nodes in one process (tests) the last one gets them.
func registerRaftMetrics(e *env, n *raft.Node) {
	_ = e.Metrics.Register(raft.NewCollector(n))
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Expiration: time.Minute, Registerer: e.Metrics, Name: "vipgate_raft_sink"})
	if err != nil {
		e.Log.Warn("raft timings will not be exported", "err", err)
		return
	}
	conf := gometrics.DefaultConfig("vipgate")
	conf.EnableHostname, conf.EnableRuntimeMetrics, conf.EnableHostnameLabel = false, false, false
	if _, err := gometrics.NewGlobal(conf, sink); err != nil {
		e.Log.Warn("raft timings will not be exported", "err", err)
	}
}

// clusterDatacenters names the datacenters of the document c returns.
func clusterDatacenters(c func() *config.Cluster) func() []string {
	return func() []string {
		cl := c()
		if cl == nil {
			return nil
		}
		out := make([]string, 0, len(cl.Datacenters))
		for _, d := range cl.Datacenters {
			out = append(out, d.Name)
		}
		return out
	}
}
