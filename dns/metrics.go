package dns

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the server's counters to Prometheus. It reads the
// atomic counters at scrape time: nothing is added to the query path.
type Collector struct {
	s       *Server
	queries *prometheus.Desc
	answers *prometheus.Desc
	events  *prometheus.Desc
	serial  *prometheus.Desc
}

// NewCollector returns a collector for s (register it with the node's registry).
func NewCollector(s *Server) *Collector {
	return &Collector{
		s:       s,
		queries: prometheus.NewDesc("vipgate_dns_queries_total", "DNS queries received, by transport.", []string{"transport"}, nil),
		answers: prometheus.NewDesc("vipgate_dns_responses_total", "DNS questions answered, by owner name, question type and rcode (names that do not exist count as <nonexistent>.<zone>).", []string{"name", "type", "rcode"}, nil),
		events:  prometheus.NewDesc("vipgate_dns_events_total", "DNS queries refused, malformed, dropped, truncated, rate-limited, hook errors and zone transfers.", []string{"event"}, nil),
		serial:  prometheus.NewDesc("vipgate_dns_zone_serial", "Current SOA serial of each zone.", []string{"zone"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queries
	ch <- c.answers
	ch <- c.events
	ch <- c.serial
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.stats
	ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(st.UDP.Load()), "udp")
	ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(st.TCP.Load()), "tcp")
	for _, n := range st.Names() {
		ch <- prometheus.MustNewConstMetric(c.answers, prometheus.CounterValue, float64(n.Count), n.Name, n.Type, n.Rcode)
	}
	for _, e := range []struct {
		name string
		v    *atomic.Uint64
	}{
		{"refused", &st.Refused}, {"formerr", &st.FormErr}, {"dropped", &st.Dropped}, {"truncated", &st.Truncated},
		{"rrl_dropped", &st.RRLDropped}, {"rrl_slipped", &st.RRLSlipped}, {"hook_error", &st.HookErrors},
		{"transfer", &st.Transfers}, {"transfer_refused", &st.TransfersDeny}, {"notify", &st.Notifies},
		{"tcp_refused", &st.TCPRefused},
	} {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(e.v.Load()), e.name)
	}
	if snap := c.s.snap.Load(); snap != nil {
		for _, z := range snap.zones {
			ch <- prometheus.MustNewConstMetric(c.serial, prometheus.GaugeValue, float64(z.soa.Serial), z.apex)
		}
	}
}
