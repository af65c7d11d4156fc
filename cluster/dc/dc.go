// Package dc is the datacenter model: each gateway reports its datacenter's
// health to the raft leader; the leader rolls the reports up per
// datacenter, commits roll-up changes, and — only while it holds quorum —
// commits "active datacenter = X" after the active one has been unhealthy
// for the configured hold-down (and fails back to the primary when
// configured, after its own hold-down). A partitioned minority has no
// quorum, so it never promotes itself.
package dc

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/core/config"
)

// Raft is what the manager needs from the raft node.
type Raft interface {
	IsLeader() bool
	VerifyQuorum() bool
	State() *raft.State
	Propose(ctx context.Context, cmd raft.Command) (raft.Applied, error)
	OnReport(func(raft.HealthReport))
}

// Health is a datacenter's roll-up.
type Health struct {
	Healthy bool
	Reason  string
}

// received is a report with the leader's receive time (staleness is judged
// on the leader's clock, not the sender's).
type received struct {
	raft.HealthReport
	at time.Time
}

// Rollup computes each datacenter's health from fresh reports: a
// datacenter is healthy when at least one of its gateways reports its
// frontends and backends usable and — where VRRP runs — holds the VIP as
// master. No fresh report means unhealthy (a datacenter that went silent is
// as good as down from the cluster's point of view). A report is fresh for
// three of its sender's intervals; stale applies to reports that carry none.
func Rollup(dcs []string, reports []raft.HealthReport, at []time.Time, now time.Time, stale time.Duration) map[string]Health {
	out := make(map[string]Health, len(dcs))
	why := map[string][]string{}
	for _, d := range dcs {
		out[d] = Health{}
	}
	for i, r := range reports {
		if _, ok := out[r.Datacenter]; !ok {
			continue
		}
		limit := stale
		if r.Interval > 0 {
			limit = 3 * r.Interval
		}
		if now.Sub(at[i]) > limit {
			why[r.Datacenter] = append(why[r.Datacenter], r.Node+": report too old")
			continue
		}
		switch {
		case !r.Healthy:
			why[r.Datacenter] = append(why[r.Datacenter], r.Node+": "+orDefault(r.Reason, "unhealthy"))
		case r.VRRP && !r.Master:
			why[r.Datacenter] = append(why[r.Datacenter], r.Node+": healthy, VRRP backup")
		default:
			out[r.Datacenter] = Health{Healthy: true, Reason: r.Node + " healthy"}
		}
	}
	for d, h := range out {
		if h.Healthy {
			continue
		}
		w := why[d]
		sort.Strings(w)
		switch {
		case len(w) == 0:
			h.Reason = "no report from any gateway"
		case allBackups(w):
			h.Reason = "no VRRP master: " + strings.Join(w, "; ")
		default:
			h.Reason = strings.Join(w, "; ")
		}
		out[d] = h
	}
	return out
}

func allBackups(w []string) bool {
	for _, s := range w {
		if !strings.HasSuffix(s, "VRRP backup") {
			return false
		}
	}
	return true
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Timers is what the leader remembers between evaluations.
type Timers struct {
	// LastHealthy is when each datacenter was last seen healthy (starts at
	// the moment this node became leader: a new leader waits a full
	// hold-down before acting).
	LastHealthy map[string]time.Time
	// HealthySince is when each datacenter's current healthy streak began
	// (zero while unhealthy).
	HealthySince map[string]time.Time
}

// Decide returns the active-datacenter change to commit now, or nil.
func Decide(st *raft.State, roll map[string]Health, t Timers, now time.Time) *raft.SetActiveDC {
	c := st.Config
	if c == nil || len(c.Datacenters) < 2 || c.Failover.Mode != "auto" {
		return nil
	}
	// An operator's failover holds (even to a datacenter seen unhealthy):
	// the hold-down of the datacenter it chose counts from that choice.
	if now.Before(st.Active.HoldUntil) {
		return nil
	}
	active := st.ActiveDatacenter()
	primary := c.PrimaryDatacenter()
	if !roll[active].Healthy {
		down := now.Sub(t.LastHealthy[active])
		if down < c.Failover.HoldDown.D() {
			return nil
		}
		for _, d := range c.Datacenters {
			if d.Name != active && roll[d.Name].Healthy {
				return &raft.SetActiveDC{DC: d.Name, IfActive: active, IfDecision: st.Active.Index, Author: raft.AutoAuthor, Time: now.UTC(),
					Reason: fmt.Sprintf("datacenter %s unhealthy for %s (%s); %s is healthy", active, down.Round(time.Second), roll[active].Reason, d.Name)}
			}
		}
		return nil
	}
	// Fail back only from an automatic failover: an operator's manual
	// choice stays until the operator (or an outage) changes it.
	if c.Failover.Failback && active != primary && roll[primary].Healthy && st.Active.Author == raft.AutoAuthor {
		up := now.Sub(t.HealthySince[primary])
		if !t.HealthySince[primary].IsZero() && up >= c.Failover.FailbackHoldDown.D() {
			return &raft.SetActiveDC{DC: primary, IfActive: active, IfDecision: st.Active.Index, Author: raft.AutoAuthor, Time: now.UTC(),
				Reason: fmt.Sprintf("failback: primary %s healthy for %s", primary, up.Round(time.Second))}
		}
	}
	return nil
}

// Manager runs the leader's side on every node (it acts only while leader).
type Manager struct {
	r        Raft
	log      *slog.Logger
	interval time.Duration // report interval; reports older than 3× are stale
	now      func() time.Time

	mu      sync.Mutex
	reports map[string]received

	leaderSince time.Time
	timers      Timers
}

// NewManager makes a manager; interval is the gateways' report interval.
func NewManager(r Raft, interval time.Duration, log *slog.Logger) *Manager {
	m := &Manager{r: r, log: log.With("sub", "dc"), interval: interval, now: time.Now, reports: map[string]received{}}
	r.OnReport(m.observe)
	return m
}

func (m *Manager) observe(r raft.HealthReport) {
	m.mu.Lock()
	m.reports[r.Node] = received{HealthReport: r, at: m.now()}
	m.mu.Unlock()
}

// Rollup is the leader's current view ("" map when not leader).
func (m *Manager) Rollup() map[string]Health {
	st := m.r.State()
	if st.Config == nil {
		return nil
	}
	return m.rollup(st.Config, m.now())
}

func (m *Manager) rollup(c *config.Cluster, now time.Time) map[string]Health {
	var dcs []string
	for _, d := range c.Datacenters {
		dcs = append(dcs, d.Name)
	}
	m.mu.Lock()
	var reps []raft.HealthReport
	var at []time.Time
	for _, r := range m.reports {
		reps = append(reps, r.HealthReport)
		at = append(at, r.at)
	}
	m.mu.Unlock()
	return Rollup(dcs, reps, at, now, 3*m.interval)
}

// Run evaluates every half report interval until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(max(m.interval/2, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		m.step(ctx)
	}
}

func (m *Manager) step(ctx context.Context) {
	now := m.now()
	if !m.r.IsLeader() {
		m.leaderSince = time.Time{}
		return
	}
	st := m.r.State()
	if st.Config == nil || len(st.Config.Datacenters) == 0 {
		return
	}
	if m.leaderSince.IsZero() {
		m.leaderSince = now
		m.timers = Timers{LastHealthy: map[string]time.Time{}, HealthySince: map[string]time.Time{}}
	}
	roll := m.rollup(st.Config, now)
	for d, h := range roll {
		if _, ok := m.timers.LastHealthy[d]; !ok {
			m.timers.LastHealthy[d] = m.leaderSince
		}
		if h.Healthy {
			m.timers.LastHealthy[d] = now
			if m.timers.HealthySince[d].IsZero() {
				m.timers.HealthySince[d] = now
			}
		} else {
			m.timers.HealthySince[d] = time.Time{}
		}
	}
	// Give every gateway time to report to a new leader before judging.
	if now.Sub(m.leaderSince) < 3*m.interval {
		return
	}
	if !m.r.VerifyQuorum() {
		return
	}
	for _, d := range st.Config.Datacenters {
		h := roll[d.Name]
		if old, ok := st.Health[d.Name]; !ok || old.Healthy != h.Healthy {
			m.propose(ctx, &raft.SetDCHealth{DC: d.Name, Healthy: h.Healthy, Reason: h.Reason, Time: now.UTC()})
		}
	}
	if cmd := Decide(st, roll, m.timers, now); cmd != nil {
		m.log.Warn("changing the active datacenter", "from", cmd.IfActive, "to", cmd.DC, "reason", cmd.Reason)
		m.propose(ctx, cmd)
	}
}

func (m *Manager) propose(ctx context.Context, cmd raft.Command) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := m.r.Propose(ctx, cmd); err != nil {
		m.log.Warn("committing a datacenter decision", "err", err)
	}
}

// Local is this node's own view, gathered by the caller.
type Local struct {
	// Healthy: the local proxy serves (frontends listening, each backend
	// with a usable server), or there are no frontends to serve.
	Healthy bool
	// VRRP: VRRP instances run here; Master: one of them holds its VIPs;
	// Backup: one of them is a backup, so it hears a master elsewhere.
	VRRP, Master, Backup bool
	Reason               string
}

// Alone judges the datacenter from this gateway's view only, as a node
// without raft must (no other gateway reports to it). It is Rollup's rule
// with one report, except that a VRRP backup counts: a backup hears a
// master's adverts (or it would have taken over), so the VIP is held in
// this datacenter. A VRRP instance in FAULT or not yet started holds
// nothing and hears nobody: unhealthy.
func (l Local) Alone() Health {
	switch {
	case !l.Healthy:
		return Health{Reason: orDefault(l.Reason, "unhealthy")}
	case l.VRRP && l.Master:
		return Health{Healthy: true, Reason: "VRRP master here; " + orDefault(l.Reason, "healthy")}
	case l.VRRP && l.Backup:
		return Health{Healthy: true, Reason: "VRRP master elsewhere; " + orDefault(l.Reason, "healthy")}
	case l.VRRP:
		return Health{Reason: "no VRRP master: no instance here is master or backup"}
	}
	return Health{Healthy: true, Reason: orDefault(l.Reason, "healthy")}
}

// Reporter sends this gateway's health to the leader every interval.
type Reporter struct {
	Node, Datacenter string
	Interval         time.Duration
	Local            func() Local
	Send             func(context.Context, raft.HealthReport) error
	Log              *slog.Logger
}

// Run reports until ctx ends. A failed send (no leader) is retried at the
// next interval; the leader treats a silent datacenter as unhealthy.
func (r *Reporter) Run(ctx context.Context) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		l := r.Local()
		cctx, cancel := context.WithTimeout(ctx, r.Interval)
		err := r.Send(cctx, raft.HealthReport{Node: r.Node, Datacenter: r.Datacenter, Healthy: l.Healthy,
			Master: l.Master, VRRP: l.VRRP, Reason: l.Reason, Time: time.Now().UTC(), Interval: r.Interval})
		cancel()
		if err != nil && ctx.Err() == nil && r.Log != nil {
			r.Log.Debug("health report not delivered", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
