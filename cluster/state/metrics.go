package state

import (
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics follows the pushed decisions (a Subscriber) and exposes them to
// Prometheus: which datacenter is active, which are healthy, how often the
// active one changed on this node and when the current one was decided.
// The same for a standalone node (the file's decisions) and a raft one.
type Metrics struct {
	// datacenters lists the configured datacenters (so that one with
	// no report yet still has vipgate_dc_active 0).
	datacenters func() []string

	mu        sync.Mutex
	last      *Decisions
	failovers uint64

	active, healthy, failoversD, decided *prometheus.Desc
}

// NewMetrics makes the collector; Subscribe it to the config source.
// datacenters (nil: none) names the configured datacenters.
func NewMetrics(datacenters func() []string) *Metrics {
	return &Metrics{datacenters: datacenters,
		active:     prometheus.NewDesc("vipgate_dc_active", "1 for the active datacenter (the committed decision this node follows), 0 for the others.", []string{"datacenter"}, nil),
		healthy:    prometheus.NewDesc("vipgate_dc_healthy", "1 when the datacenter's committed health roll-up is healthy, 0 when not (absent while unknown).", []string{"datacenter"}, nil),
		failoversD: prometheus.NewDesc("vipgate_dc_failovers_total", "Changes of the active datacenter this node followed since it started.", nil, nil),
		decided:    prometheus.NewDesc("vipgate_dc_last_decision_timestamp_seconds", "When the current active datacenter was decided (unix time; absent while the primary is active by default).", nil, nil),
	}
}

// Decide implements Subscriber.
func (m *Metrics) Decide(d *Decisions) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last != nil && m.last.Active != "" && d.Active != m.last.Active {
		m.failovers++
	}
	m.last = d
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.active
	ch <- m.healthy
	ch <- m.failoversD
	ch <- m.decided
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	d, n := m.last, m.failovers
	m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(m.failoversD, prometheus.CounterValue, float64(n))
	if d == nil {
		return
	}
	dcs := map[string]bool{}
	if m.datacenters != nil {
		for _, dc := range m.datacenters() {
			dcs[dc] = true
		}
	}
	if d.Active != "" {
		dcs[d.Active] = true
	}
	for dc, h := range d.Health {
		dcs[dc] = true
		ch <- prometheus.MustNewConstMetric(m.healthy, prometheus.GaugeValue, b2f(h.Healthy), dc)
	}
	for _, dc := range slices.Sorted(maps.Keys(dcs)) {
		ch <- prometheus.MustNewConstMetric(m.active, prometheus.GaugeValue, b2f(dc == d.Active), dc)
	}
	if !d.ActiveDecided.IsZero() {
		ch <- prometheus.MustNewConstMetric(m.decided, prometheus.GaugeValue, float64(d.ActiveDecided.UnixNano())/1e9)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var _ prometheus.Collector = (*Metrics)(nil)
