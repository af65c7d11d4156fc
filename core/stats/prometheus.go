package stats

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipgate/vipgate/core/upstream"
)

// Naming is how the proxy's metrics are named: vipgate's own scheme
// (vipgate_* with frontend/backend/server labels) or HAProxy 2.x's built-in
// exporter's (haproxy_* with proxy/server labels, addons/promex), so that
// dashboards and alert rules written for HAProxy work unchanged.
type Naming int

const (
	// NamingVipgate: vipgate_frontend_*{frontend}, vipgate_backend_*{backend},
	// vipgate_server_*{backend,server}.
	NamingVipgate Naming = iota
	// NamingHAProxy: haproxy_frontend_*{proxy}, haproxy_backend_*{proxy},
	// haproxy_server_*{proxy,server}, with promex's names where a metric
	// means the same.
	NamingHAProxy
)

// ParseNaming reads the node file's metrics.labels value.
func ParseNaming(s string) (Naming, bool) {
	switch s {
	case "", "vipgate":
		return NamingVipgate, true
	case "haproxy":
		return NamingHAProxy, true
	}
	return 0, false
}

// CheckStates are the check status codes a check_status metric reports
// (promex: every HAProxy status whose result is at least "failed").
var CheckStates = []string{"HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
	"L7TOUT", "L7RSP", "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK"}

// ServerStates are the values of a server status metric's state label.
var ServerStates = []string{"UP", "DOWN", "MAINT", "DRAIN", "NOLB"}

// Collector exposes a Source as Prometheus metrics, read at scrape time
// (no second set of counters on the data path).
type Collector struct {
	src    Source
	naming Naming
	now    func() time.Time

	fe, be, srv []desc
	resp        [3]*prometheus.Desc // frontend, backend, server
	hist        [3][3]*prometheus.Desc
	feStatus    *prometheus.Desc // haproxy: {state}; vipgate: 1/0
	beStatus    *prometheus.Desc // haproxy only: {state}
	srvStatus   *prometheus.Desc
	checkStatus *prometheus.Desc
}

type desc struct {
	d *prometheus.Desc
	t prometheus.ValueType
	f func(r *Row) float64
	// checked: only for servers with a check result (as promex).
	checked bool
}

// NewCollector makes a collector for src, its metrics named by n.
func NewCollector(src Source, n Naming) *Collector {
	c := &Collector{src: src, naming: n, now: time.Now}
	prefix, feL, beL, srvL := "vipgate", []string{"frontend"}, []string{"backend"}, []string{"backend", "server"}
	if n == NamingHAProxy {
		prefix, feL, beL, srvL = "haproxy", []string{"proxy"}, []string{"proxy"}, []string{"proxy", "server"}
	}
	name := func(sub, vg, hap string) string {
		if n == NamingHAProxy && hap != "" {
			vg = hap
		}
		return prometheus.BuildFQName(prefix, sub, vg)
	}
	mk := func(sub, vg, hap, help string, t prometheus.ValueType, l []string, f func(r *Row) float64) desc {
		return desc{d: prometheus.NewDesc(name(sub, vg, hap), help, l, nil), t: t, f: f}
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	common := func(sub string, l []string) []desc {
		return []desc{
			mk(sub, "current_sessions", "", "Current sessions.", gauge, l, func(r *Row) float64 { return float64(r.CurSess) }),
			mk(sub, "max_sessions", "", "Highest number of concurrent sessions seen.", gauge, l, func(r *Row) float64 { return float64(r.MaxSess) }),
			mk(sub, "limit_sessions", "", "Configured session limit (maxconn), 0 if none.", gauge, l, func(r *Row) float64 { return float64(r.Limit) }),
			mk(sub, "sessions_total", "", "Sessions since start.", counter, l, func(r *Row) float64 { return float64(r.TotalSess) }),
			mk(sub, "current_session_rate", "", "Sessions in the last second.", gauge, l, func(r *Row) float64 { return r.Rate }),
			mk(sub, "max_session_rate", "", "Most sessions started in one second.", gauge, l, func(r *Row) float64 { return float64(r.RateMax) }),
			mk(sub, "bytes_in_total", "", "Bytes received from clients (and forwarded to servers).", counter, l, func(r *Row) float64 { return float64(r.BytesIn) }),
			mk(sub, "bytes_out_total", "", "Bytes sent to clients.", counter, l, func(r *Row) float64 { return float64(r.BytesOut) }),
			mk(sub, "packets_in_total", "", "Packets forwarded to servers by direct routing (mode dr, whose sessions are flows).", counter, l, func(r *Row) float64 { return float64(r.PacketsIn) }),
			mk(sub, "denied_total", "requests_denied_total", "Sessions or requests denied.", counter, l, func(r *Row) float64 { return float64(r.Denied) }),
		}
	}
	serverSide := func(sub string, l []string) []desc {
		return []desc{
			mk(sub, "connection_errors_total", "", "Failed connections to servers.", counter, l, func(r *Row) float64 { return float64(r.ConnErrors) }),
			mk(sub, "response_errors_total", "", "Invalid or failed server responses.", counter, l, func(r *Row) float64 { return float64(r.RespErrors) }),
			mk(sub, "retry_warnings_total", "", "Connection retries.", counter, l, func(r *Row) float64 { return float64(r.Retries) }),
			mk(sub, "redispatch_warnings_total", "", "Redispatches to another server.", counter, l, func(r *Row) float64 { return float64(r.Redisp) }),
			mk(sub, "current_queue", "", "Connections waiting for a server slot.", gauge, l, func(r *Row) float64 { return float64(r.Queued) }),
			mk(sub, "max_queue", "", "Highest queue length seen.", gauge, l, func(r *Row) float64 { return float64(r.QueueMax) }),
			mk(sub, "queue_timeouts_total", "", "Connections that timed out in the queue.", counter, l, func(r *Row) float64 { return float64(r.QTimeouts) }),
			mk(sub, "weight", "", "Effective weight.", gauge, l, func(r *Row) float64 { return float64(r.Weight) }),
		}
	}
	up := func(sub string, l []string) desc {
		return mk(sub, "up", "", "1 when the "+sub+" takes traffic (status UP), else 0.", gauge, l, func(r *Row) float64 { return b2f(r.Status == "UP") })
	}
	c.fe = common("frontend", feL)
	c.be = append(common("backend", beL), serverSide("backend", beL)...)
	c.be = append(c.be,
		mk("backend", "active_servers", "", "Active servers that are UP.", gauge, beL, func(r *Row) float64 { return float64(r.Act) }),
		mk("backend", "backup_servers", "", "Backup servers that are UP.", gauge, beL, func(r *Row) float64 { return float64(r.Bck) }))
	c.srv = append(common("server", srvL), serverSide("server", srvL)...)
	c.srv = append(c.srv,
		mk("server", "check_down_transitions_total", "check_up_down_total", "Times the server was marked down.", counter, srvL, func(r *Row) float64 { return float64(r.Downs) }),
		mk("server", "check_failures_total", "", "Failed health checks.", counter, srvL, func(r *Row) float64 { return float64(r.ChkFail) }),
		mk("server", "downtime_seconds_total", "", "Time the server has spent DOWN.", counter, srvL, func(r *Row) float64 { return r.Downtime }),
		mk("server", "check_last_change_seconds", "", "Seconds since the server's last state change.", gauge, srvL, func(r *Row) float64 {
			return max(0, c.now().Sub(r.LastChange).Seconds())
		}),
		mk("server", "active", "", "1 for an active server, 0 for a backup one.", gauge, srvL, func(r *Row) float64 { return float64(r.Act) }),
		mk("server", "backup", "", "1 for a backup server, 0 for an active one.", gauge, srvL, func(r *Row) float64 { return float64(r.Bck) }))
	dur := mk("server", "check_duration_seconds", "", "Duration of the last health check.", gauge, srvL, func(r *Row) float64 { return r.CheckSecs })
	dur.checked = true
	c.srv = append(c.srv, dur)
	if n == NamingVipgate {
		c.be = append(c.be, up("backend", beL))
		c.srv = append(c.srv, up("server", srvL))
		c.feStatus = prometheus.NewDesc(name("frontend", "status", ""), "1 when the frontend is accepting (OPEN), 0 when stopped.", feL, nil)
	} else {
		c.feStatus = prometheus.NewDesc(name("frontend", "status", ""), "Current status of the service, per state label value.", append(feL, "state"), nil)
		c.beStatus = prometheus.NewDesc(name("backend", "status", ""), "Current status of the service, per state label value.", append(beL, "state"), nil)
	}
	c.srvStatus = prometheus.NewDesc(name("server", "status", ""), "Server state: 1 for the current one of UP, DOWN, MAINT, DRAIN, NOLB.", append(srvL, "state"), nil)
	c.checkStatus = prometheus.NewDesc(name("server", "check_status", ""), "Status of the last health check, per state label value (HAProxy's codes).", append(srvL, "state"), nil)
	for i, l := range [][]string{feL, beL, srvL} {
		sub := [3]string{"frontend", "backend", "server"}[i]
		c.resp[i] = prometheus.NewDesc(name(sub, "http_responses_total", ""), "HTTP responses by status class.", append(l, "code"), nil)
		c.hist[i] = [3]*prometheus.Desc{
			prometheus.NewDesc(name(sub, "connect_time_seconds", ""), "Time to connect to a server (Tc).", l, nil),
			prometheus.NewDesc(name(sub, "request_time_seconds", ""), "Total time of an http request, or of a tcp session (Tt).", l, nil),
			prometheus.NewDesc(name(sub, "queue_time_seconds", ""), "Time spent waiting for a server slot (Tw).", l, nil),
		}
	}
	return c
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var codes = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, ds := range [][]desc{c.fe, c.be, c.srv} {
		for _, d := range ds {
			ch <- d.d
		}
	}
	for i := range c.resp {
		ch <- c.resp[i]
		for _, d := range c.hist[i] {
			ch <- d
		}
	}
	ch <- c.feStatus
	if c.beStatus != nil {
		ch <- c.beStatus
	}
	ch <- c.srvStatus
	ch <- c.checkStatus
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(level int, ds []desc, r *Row, labels ...string) {
		for _, d := range ds {
			if d.checked && r.CheckCode == "" {
				continue // promex: no check metrics without a check result
			}
			ch <- prometheus.MustNewConstMetric(d.d, d.t, d.f(r), labels...)
		}
		for i, n := range r.HTTP {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(c.resp[level], prometheus.CounterValue, float64(n), append(labels, codes[i])...)
			}
		}
		for i, h := range []Hist{r.ConnectTime, r.RequestTime, r.QueueTime} {
			if level == 0 && i != 1 {
				continue // frontends do not connect or queue
			}
			buckets := make(map[float64]uint64, len(upstream.HistogramBounds))
			for j, b := range upstream.HistogramBounds {
				if j < len(h.Buckets) {
					buckets[b] = h.Buckets[j]
				}
			}
			ch <- prometheus.MustNewConstHistogram(c.hist[level][i], h.Count, h.Sum, buckets, labels...)
		}
	}
	states := func(d *prometheus.Desc, current string, all []string, labels ...string) {
		for _, st := range all {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, b2f(current == st), append(labels, st)...)
		}
	}
	for _, f := range c.src.FrontendRows() {
		emit(0, c.fe, &f, f.Name)
		if c.naming == NamingHAProxy {
			st := "DOWN"
			if f.Status == "OPEN" {
				st = "UP"
			}
			states(c.feStatus, st, []string{"DOWN", "UP"}, f.Name)
		} else {
			ch <- prometheus.MustNewConstMetric(c.feStatus, prometheus.GaugeValue, b2f(f.Status == "OPEN"), f.Name)
		}
	}
	for _, b := range c.src.BackendRows() {
		emit(1, c.be, &b.Row, b.Name)
		if c.beStatus != nil {
			states(c.beStatus, b.Status, []string{"DOWN", "UP"}, b.Name)
		}
		for _, s := range b.Servers {
			emit(2, c.srv, &s, b.Name, s.Name)
			states(c.srvStatus, s.Status, ServerStates, b.Name, s.Name)
			if s.CheckCode != "" {
				states(c.checkStatus, s.CheckCode, CheckStates, b.Name, s.Name)
			}
		}
	}
}

var _ prometheus.Collector = (*Collector)(nil)
