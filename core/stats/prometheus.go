package stats

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipgate/vipgate/core/upstream"
)

// Collector exposes a Source as Prometheus metrics, read at scrape time
// (no second set of counters on the data path). Names follow the
// Prometheus conventions; labels are frontend, backend, server, code, state.
type Collector struct {
	src Source
}

// NewCollector makes a collector for src.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

const ns = "vipgate"

type desc struct {
	d *prometheus.Desc
	t prometheus.ValueType
	f func(r *Row) float64
}

func mk(sub, name, help string, t prometheus.ValueType, labels []string, f func(r *Row) float64) desc {
	return desc{d: prometheus.NewDesc(prometheus.BuildFQName(ns, sub, name), help, labels, nil), t: t, f: f}
}

var (
	feL  = []string{"frontend"}
	beL  = []string{"backend"}
	srvL = []string{"backend", "server"}
)

// common are the counters every level has.
func common(sub string, l []string) []desc {
	return []desc{
		mk(sub, "current_sessions", "Current sessions.", prometheus.GaugeValue, l, func(r *Row) float64 { return float64(r.CurSess) }),
		mk(sub, "max_sessions", "Highest number of concurrent sessions seen.", prometheus.GaugeValue, l, func(r *Row) float64 { return float64(r.MaxSess) }),
		mk(sub, "limit_sessions", "Configured session limit (maxconn), 0 if none.", prometheus.GaugeValue, l, func(r *Row) float64 { return float64(r.Limit) }),
		mk(sub, "sessions_total", "Sessions since start.", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.TotalSess) }),
		mk(sub, "bytes_in_total", "Bytes received from clients (and forwarded to servers).", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.BytesIn) }),
		mk(sub, "bytes_out_total", "Bytes sent to clients.", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.BytesOut) }),
		mk(sub, "denied_total", "Sessions or requests denied.", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.Denied) }),
	}
}

func serverSide(sub string, l []string) []desc {
	return []desc{
		mk(sub, "connection_errors_total", "Failed connections to servers.", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.ConnErrors) }),
		mk(sub, "response_errors_total", "Invalid or failed server responses.", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.RespErrors) }),
		mk(sub, "retry_warnings_total", "Connection retries.", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.Retries) }),
		mk(sub, "redispatch_warnings_total", "Redispatches to another server.", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.Redisp) }),
		mk(sub, "current_queue", "Connections waiting for a server slot.", prometheus.GaugeValue, l, func(r *Row) float64 { return float64(r.Queued) }),
		mk(sub, "max_queue", "Highest queue length seen.", prometheus.GaugeValue, l, func(r *Row) float64 { return float64(r.QueueMax) }),
		mk(sub, "queue_timeouts_total", "Connections that timed out in the queue.", prometheus.CounterValue, l, func(r *Row) float64 { return float64(r.QTimeouts) }),
		mk(sub, "weight", "Effective weight.", prometheus.GaugeValue, l, func(r *Row) float64 { return float64(r.Weight) }),
		mk(sub, "up", "1 when the "+sub+" takes traffic (status UP), else 0.", prometheus.GaugeValue, l, func(r *Row) float64 {
			if r.Status == "UP" {
				return 1
			}
			return 0
		}),
	}
}

var (
	frontendDescs = append(common("frontend", feL),
		mk("frontend", "status", "1 when the frontend is accepting (OPEN), 0 when stopped.", prometheus.GaugeValue, feL, func(r *Row) float64 {
			if r.Status == "OPEN" {
				return 1
			}
			return 0
		}))
	backendDescs = append(common("backend", beL), serverSide("backend", beL)...)
	serverDescs  = append(append(common("server", srvL), serverSide("server", srvL)...),
		mk("server", "check_down_transitions_total", "Times the server was marked down.", prometheus.CounterValue, srvL, func(r *Row) float64 { return float64(r.Downs) }))

	respDesc = map[string]*prometheus.Desc{
		"frontend": prometheus.NewDesc(ns+"_frontend_http_responses_total", "HTTP responses by status class.", []string{"frontend", "code"}, nil),
		"backend":  prometheus.NewDesc(ns+"_backend_http_responses_total", "HTTP responses by status class.", []string{"backend", "code"}, nil),
		"server":   prometheus.NewDesc(ns+"_server_http_responses_total", "HTTP responses by status class.", []string{"backend", "server", "code"}, nil),
	}
	serverStateDesc = prometheus.NewDesc(ns+"_server_status", "Server state: 1 for the current one of UP, DOWN, MAINT, DRAIN, NOLB.", []string{"backend", "server", "state"}, nil)
	histDescs       = map[string][3]*prometheus.Desc{}
)

func init() {
	// Descriptors are immutable values computed once; not mutable state.
	for sub, l := range map[string][]string{"frontend": feL, "backend": beL, "server": srvL} {
		histDescs[sub] = [3]*prometheus.Desc{
			prometheus.NewDesc(ns+"_"+sub+"_connect_time_seconds", "Time to connect to a server (Tc).", l, nil),
			prometheus.NewDesc(ns+"_"+sub+"_request_time_seconds", "Total time of an http request, or of a tcp session (Tt).", l, nil),
			prometheus.NewDesc(ns+"_"+sub+"_queue_time_seconds", "Time spent waiting for a server slot (Tw).", l, nil),
		}
	}
}

var codes = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, ds := range [][]desc{frontendDescs, backendDescs, serverDescs} {
		for _, d := range ds {
			ch <- d.d
		}
	}
	for _, d := range respDesc {
		ch <- d
	}
	for _, h := range histDescs {
		for _, d := range h {
			ch <- d
		}
	}
	ch <- serverStateDesc
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(sub string, ds []desc, r *Row, labels ...string) {
		for _, d := range ds {
			ch <- prometheus.MustNewConstMetric(d.d, d.t, d.f(r), labels...)
		}
		for i, n := range r.HTTP {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(respDesc[sub], prometheus.CounterValue, float64(n), append(labels, codes[i])...)
			}
		}
		hd := histDescs[sub]
		for i, h := range []Hist{r.ConnectTime, r.RequestTime, r.QueueTime} {
			if sub == "frontend" && i != 1 {
				continue // frontends do not connect or queue
			}
			buckets := make(map[float64]uint64, len(upstream.HistogramBounds))
			for j, b := range upstream.HistogramBounds {
				if j < len(h.Buckets) {
					buckets[b] = h.Buckets[j]
				}
			}
			ch <- prometheus.MustNewConstHistogram(hd[i], h.Count, h.Sum, buckets, labels...)
		}
	}
	for _, f := range c.src.FrontendRows() {
		emit("frontend", frontendDescs, &f, f.Name)
	}
	for _, b := range c.src.BackendRows() {
		emit("backend", backendDescs, &b.Row, b.Name)
		for _, s := range b.Servers {
			emit("server", serverDescs, &s, b.Name, s.Name)
			for _, st := range []string{"UP", "DOWN", "MAINT", "DRAIN", "NOLB"} {
				v := 0.0
				if s.Status == st {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(serverStateDesc, prometheus.GaugeValue, v, b.Name, s.Name, st)
			}
		}
	}
}

var _ prometheus.Collector = (*Collector)(nil)
