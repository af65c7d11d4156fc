// Package stats reads the proxy's counters out as one snapshot (the JSON of
// the admin API, `vipgate status`, the stats page and Prometheus all render
// the same snapshot), with HAProxy's `show stat` fields where they exist.
package stats

import (
	"time"

	"github.com/vipgate/vipgate/core/upstream"
)

// Source is what stats reads: the live proxy.
type Source interface {
	FrontendRows() []Row
	BackendRows() []BackendRow
}

// Row is one frontend, backend or server line.
type Row struct {
	Name       string    `json:"name"`
	Status     string    `json:"status"` // OPEN/STOP (frontends), UP/DOWN (backends, servers), MAINT, DRAIN, NOLB
	Mode       string    `json:"mode,omitempty"`
	CurSess    int64     `json:"scur"`
	MaxSess    int64     `json:"smax"`
	Limit      int       `json:"slim"`
	TotalSess  uint64    `json:"stot"`
	BytesIn    uint64    `json:"bin"`
	BytesOut   uint64    `json:"bout"`
	PacketsIn  uint64    `json:"pin,omitempty"` // forwarded packets (mode dr)
	Denied     uint64    `json:"dreq"`
	ConnErrors uint64    `json:"econ"`
	RespErrors uint64    `json:"eresp"`
	Retries    uint64    `json:"wretr"`
	Redisp     uint64    `json:"wredis"`
	Queued     int64     `json:"qcur"`
	QueueMax   int64     `json:"qmax"`
	QTimeouts  uint64    `json:"qtime_outs"`
	HTTP       [6]uint64 `json:"hrsp,omitempty"` // other,1xx..5xx
	Rate       float64   `json:"rate"`           // sessions/s over the last second (HAProxy's rate)
	RateMax    uint64    `json:"rate_max"`       // most sessions in one second
	// Act and Bck are HAProxy's act/bck: on a server 1 for an active
	// (backup) server; on a backend the number of them that are UP.
	Act int `json:"act"`
	Bck int `json:"bck"`
	// Server-only fields.
	Weight      int    `json:"weight,omitempty"`
	Backup      bool   `json:"backup,omitempty"`
	Admin       string `json:"admin,omitempty"`
	Health      string `json:"health,omitempty"`
	Checked     bool   `json:"check,omitempty"`
	CheckOK     *bool  `json:"check_ok,omitempty"`
	CheckReason string `json:"check_status,omitempty"`
	CheckDur    string `json:"check_duration,omitempty"`
	// CheckCode is HAProxy's check status code (L4OK, L4CON, L7STS…) and
	// CheckSecs the last check's duration in seconds.
	CheckCode string  `json:"check_code,omitempty"`
	CheckSecs float64 `json:"check_duration_seconds,omitempty"`
	// ChkFail counts failed checks; Downtime is the seconds spent DOWN.
	ChkFail    uint64    `json:"chkfail,omitempty"`
	Downtime   float64   `json:"downtime,omitempty"`
	LastChange time.Time `json:"last_change,omitempty"`
	Downs      uint64    `json:"chkdown,omitempty"`
	Address    string    `json:"addr,omitempty"`
	SlowStart  bool      `json:"slowstart,omitempty"`

	// Latency histograms, for Prometheus (not in the JSON).
	ConnectTime Hist `json:"-"`
	RequestTime Hist `json:"-"`
	QueueTime   Hist `json:"-"`
}

// Hist is a histogram read-out: cumulative counts per upstream.HistogramBounds.
type Hist struct {
	Buckets []uint64
	Sum     float64
	Count   uint64
}

func hist(h *upstream.Histogram) Hist {
	b, s, c := h.Snapshot()
	return Hist{Buckets: b, Sum: s, Count: c}
}

// BackendRow is a backend and its servers.
type BackendRow struct {
	Row
	Servers []Row `json:"servers"`
}

// Snapshot is the whole read-out.
type Snapshot struct {
	Time      time.Time    `json:"time"`
	Frontends []Row        `json:"frontends"`
	Backends  []BackendRow `json:"backends"`
}

// Collect takes a snapshot.
func Collect(s Source) Snapshot {
	return Snapshot{Time: time.Now().UTC(), Frontends: s.FrontendRows(), Backends: s.BackendRows()}
}

// CounterRow fills a row's counter fields.
func CounterRow(name string, c *upstream.Counters) Row {
	return counterRow(name, c, time.Now())
}

func counterRow(name string, c *upstream.Counters, now time.Time) Row {
	r := Row{
		Rate:        c.SessionRate.Read(now.UnixNano()),
		RateMax:     c.SessionRate.Max(),
		Name:        name,
		CurSess:     c.CurSessions.Load(),
		MaxSess:     c.MaxSessions.Load(),
		TotalSess:   c.TotalSessions.Load(),
		BytesIn:     c.BytesIn.Load(),
		BytesOut:    c.BytesOut.Load(),
		PacketsIn:   c.PacketsIn.Load(),
		Denied:      c.Denied.Load(),
		ConnErrors:  c.ConnErrors.Load(),
		RespErrors:  c.RespErrors.Load(),
		Retries:     c.Retries.Load(),
		Redisp:      c.Redispatches.Load(),
		Queued:      c.Queued.Load(),
		QueueMax:    c.QueueMax.Load(),
		QTimeouts:   c.QueueTimeouts.Load(),
		ConnectTime: hist(&c.ConnectTime),
		RequestTime: hist(&c.SessionTime),
		QueueTime:   hist(&c.QueueTime),
	}
	for i := range r.HTTP {
		r.HTTP[i] = c.HTTPResponses[i].Load()
	}
	return r
}

// ServerRow renders one server.
func ServerRow(s *upstream.Server) Row {
	now := time.Now()
	r := counterRow(s.Name, &s.Counters, now)
	st := s.Settings()
	r.Weight = s.Weight()
	r.Backup = st.Backup
	r.Limit = st.MaxConn
	r.Admin = s.Admin().String()
	r.Health = s.Health().String()
	r.Checked = s.Checked()
	r.Address = s.Addr
	r.LastChange = s.LastChange().UTC()
	r.Downs = s.DownTransitions()
	r.SlowStart = s.InSlowStart()
	r.ChkFail = s.CheckFailures()
	r.Downtime = s.Downtime(now).Seconds()
	if s.Checked() {
		lc := s.LastCheck()
		if !lc.Time.IsZero() {
			ok := lc.OK
			r.CheckOK = &ok
			r.CheckReason = lc.Reason
			r.CheckDur = lc.Duration.String()
			r.CheckCode = lc.Code
			r.CheckSecs = lc.Duration.Seconds()
		}
	}
	switch {
	case s.Admin() == upstream.Maint:
		r.Status = "MAINT"
	case s.Health() == upstream.Down:
		r.Status = "DOWN"
	case s.Admin() == upstream.Drain:
		r.Status = "DRAIN"
	case s.Weight() == 0:
		r.Status = "NOLB"
	default:
		r.Status = "UP"
	}
	if st.Backup {
		r.Bck = 1
	} else {
		r.Act = 1
	}
	return r
}
