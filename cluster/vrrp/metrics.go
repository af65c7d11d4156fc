package vrrp

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the instances' state to Prometheus, read from their
// status at scrape time. Labels are the instance name, its VRID and
// interface, so that a rule can count the MASTERs of one VRID across nodes
// (two of them: a split brain on that segment).
type Collector struct {
	status                              func() []Status
	state, prio, eff, trans, sent, recv *prometheus.Desc
}

// NewCollector reads status (the Manager's Status) at each scrape.
func NewCollector(status func() []Status) *Collector {
	l := []string{"vrrp_instance", "vrid", "interface"}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc("vipgate_vrrp_"+name, help, append(append([]string{}, l...), extra...), nil)
	}
	return &Collector{
		status: status,
		state:  d("state", "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT, STOP), 0 for the others.", "state"),
		prio:   d("priority", "Configured priority of this node in the instance."),
		eff:    d("effective_priority", "Priority advertised now: the configured one changed by track sources."),
		trans:  d("transitions_total", "State changes since the instance started."),
		sent:   d("adverts_sent_total", "VRRP advertisements sent."),
		recv:   d("adverts_received_total", "VRRP advertisements received."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.prio, c.eff, c.trans, c.sent, c.recv} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	g, ct := prometheus.GaugeValue, prometheus.CounterValue
	for _, s := range c.status() {
		l := []string{s.Name, strconv.Itoa(s.VRID), s.Interface}
		for i, n := range stateNames {
			v := 0.0
			if State(i) == s.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.state, g, v, append(l, n)...)
		}
		ch <- prometheus.MustNewConstMetric(c.prio, g, float64(s.BasePriority), l...)
		ch <- prometheus.MustNewConstMetric(c.eff, g, float64(s.Priority), l...)
		ch <- prometheus.MustNewConstMetric(c.trans, ct, float64(s.Transitions), l...)
		ch <- prometheus.MustNewConstMetric(c.sent, ct, float64(s.Sent), l...)
		ch <- prometheus.MustNewConstMetric(c.recv, ct, float64(s.Received), l...)
	}
}

var _ prometheus.Collector = (*Collector)(nil)
