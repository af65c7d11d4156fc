package certexpiry

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the last check of each certificate to Prometheus.
type Collector struct {
	w              *Watcher
	expiry, unread *prometheus.Desc
}

// NewCollector makes a collector for w.
func NewCollector(w *Watcher) *Collector {
	l := []string{"file", "used_by"}
	return &Collector{w: w,
		expiry: prometheus.NewDesc("vipgate_cert_expiry_timestamp_seconds", "When the certificate expires (unix time, its notAfter).", append(l, "subject"), nil),
		unread: prometheus.NewDesc("vipgate_cert_unreadable", "1 when the certificate file cannot be read or parsed.", l, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiry
	ch <- c.unread
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.w.Status() {
		used := strings.Join(s.UsedBy, ",")
		if s.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.unread, prometheus.GaugeValue, 1, s.File, used)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.unread, prometheus.GaugeValue, 0, s.File, used)
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(s.NotAfter.Unix()), s.File, used, s.Subject)
	}
}

var _ prometheus.Collector = (*Collector)(nil)
