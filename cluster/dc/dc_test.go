package dc

import (
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/core/config"
)

func mustState(t *testing.T, src string, active string) *raft.State {
	t.Helper()
	c, err := config.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return &raft.State{Config: c, Source: c.Source, Version: 1, Active: raft.DCDecision{DC: active, Author: "auto"}}
}

const twoDC = `datacenters:
  - {name: dc1, role: primary}
  - {name: dc2, role: standby}
failover: {mode: auto, hold_down: 30s, failback: true, failback_hold_down: 5m}
`

func TestRollup(t *testing.T) {
	now := time.Unix(1000, 0)
	fresh, old := now.Add(-time.Second), now.Add(-time.Minute)
	tests := []struct {
		name    string
		reps    []raft.HealthReport
		at      []time.Time
		dc1     bool
		reason1 string
	}{
		{"no reports", nil, nil, false, "no report from any gateway"},
		{"healthy without vrrp", []raft.HealthReport{{Node: "a", Datacenter: "dc1", Healthy: true}}, []time.Time{fresh}, true, "a healthy"},
		{"stale", []raft.HealthReport{{Node: "a", Datacenter: "dc1", Healthy: true}}, []time.Time{old}, false, "a: report too old"},
		{"unhealthy", []raft.HealthReport{{Node: "a", Datacenter: "dc1", Reason: "backend web has no server up"}}, []time.Time{fresh}, false, "a: backend web has no server up"},
		{"vrrp but no master", []raft.HealthReport{{Node: "a", Datacenter: "dc1", Healthy: true, VRRP: true}, {Node: "b", Datacenter: "dc1", Healthy: true, VRRP: true}}, []time.Time{fresh, fresh}, false, "no VRRP master: a: healthy, VRRP backup; b: healthy, VRRP backup"},
		{"one master healthy", []raft.HealthReport{{Node: "a", Datacenter: "dc1", Healthy: true, VRRP: true}, {Node: "b", Datacenter: "dc1", Healthy: true, VRRP: true, Master: true}}, []time.Time{fresh, fresh}, true, "b healthy"},
		// The sender's interval decides, not the leader's (a witness leader
		// with the default 2s must not wait 6s for 500ms reporters).
		{"stale by the sender's interval", []raft.HealthReport{{Node: "a", Datacenter: "dc1", Healthy: true, Interval: 200 * time.Millisecond}}, []time.Time{fresh}, false, "a: report too old"},
		{"fresh by the sender's interval", []raft.HealthReport{{Node: "a", Datacenter: "dc1", Healthy: true, Interval: time.Second}}, []time.Time{fresh}, true, "a healthy"},
		{"other dc ignored", []raft.HealthReport{{Node: "c", Datacenter: "dcX", Healthy: true}}, []time.Time{fresh}, false, "no report from any gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Rollup([]string{"dc1", "dc2"}, tt.reps, tt.at, now, 10*time.Second)
			if r["dc1"].Healthy != tt.dc1 || r["dc1"].Reason != tt.reason1 {
				t.Fatalf("dc1 = %+v, want healthy=%v reason %q", r["dc1"], tt.dc1, tt.reason1)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	now := time.Unix(10000, 0)
	h := func(a, b bool) map[string]Health { return map[string]Health{"dc1": {Healthy: a}, "dc2": {Healthy: b}} }
	timers := func(lastHealthy1, since1 time.Duration) Timers {
		tm := Timers{LastHealthy: map[string]time.Time{"dc1": now.Add(-lastHealthy1), "dc2": now}, HealthySince: map[string]time.Time{}}
		if since1 >= 0 {
			tm.HealthySince["dc1"] = now.Add(-since1)
		}
		return tm
	}
	tests := []struct {
		name   string
		doc    string
		active string
		roll   map[string]Health
		t      Timers
		want   string // "" = no decision
	}{
		{"active healthy", twoDC, "", h(true, true), timers(0, time.Hour), ""},
		{"inside hold-down", twoDC, "", h(false, true), timers(29*time.Second, -1), ""},
		{"after hold-down", twoDC, "", h(false, true), timers(30*time.Second, -1), "dc2"},
		{"nowhere to go", twoDC, "", h(false, false), timers(time.Hour, -1), ""},
		{"manual mode", twoDC + "  mode: manual\n", "", h(false, true), timers(time.Hour, -1), ""},
		{"failback too early", twoDC, "dc2", h(true, true), timers(0, 4*time.Minute), ""},
		{"failback", twoDC, "dc2", h(true, true), timers(0, 5*time.Minute), "dc1"},
		{"no failback after a manual choice", twoDC, "dc2!", h(true, true), timers(0, time.Hour), ""},
		{"no failback configured", "datacenters: [{name: dc1}, {name: dc2}]\nfailover: {hold_down: 30s}\n", "dc2", h(true, true), timers(0, time.Hour), ""},
		{"standby fails, primary back", twoDC, "dc2", map[string]Health{"dc1": {Healthy: true}, "dc2": {}}, Timers{LastHealthy: map[string]time.Time{"dc2": now.Add(-time.Minute)}}, "dc1"},
		// A forced manual failover to an unhealthy datacenter holds, however
		// long that datacenter has been unhealthy.
		{"operator's hold", twoDC, "dc2!hold", map[string]Health{"dc1": {Healthy: true}, "dc2": {}}, Timers{LastHealthy: map[string]time.Time{"dc2": now.Add(-time.Hour)}}, ""},
		{"operator's hold over", twoDC, "dc2!held", map[string]Health{"dc1": {Healthy: true}, "dc2": {}}, Timers{LastHealthy: map[string]time.Time{"dc2": now.Add(-time.Hour)}}, "dc1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if tt.name == "manual mode" {
				doc = "datacenters: [{name: dc1}, {name: dc2}]\nfailover: {mode: manual, hold_down: 30s}\n"
			}
			active, mark, manual := strings.Cut(tt.active, "!")
			st := mustState(t, doc, active)
			st.Active.Index = 7
			if manual {
				st.Active.Author = "alice"
			}
			switch mark {
			case "hold":
				st.Active.HoldUntil = now.Add(time.Second)
			case "held":
				st.Active.HoldUntil = now
			}
			got := Decide(st, tt.roll, tt.t, now)
			switch {
			case tt.want == "" && got != nil:
				t.Fatalf("unexpected decision %+v", got)
			case tt.want != "" && (got == nil || got.DC != tt.want):
				t.Fatalf("decision %+v, want %s", got, tt.want)
			case got != nil && (got.IfActive != st.ActiveDatacenter() || got.IfDecision != 7):
				t.Fatalf("decision not guarded by the current active datacenter and decision: %+v", got)
			}
		})
	}
}

// Without raft, one gateway's view decides: a VRRP backup hears a master,
// so the VIP is held; FAULT (neither master nor backup) is not.
func TestLocalAlone(t *testing.T) {
	tests := []struct {
		name string
		l    Local
		want bool
		why  string
	}{
		{"proxy down", Local{Reason: "backend web has no server up", VRRP: true, Master: true}, false, "backend web has no server up"},
		{"no vrrp, proxy up", Local{Healthy: true, Reason: "ok"}, true, "ok"},
		{"master", Local{Healthy: true, VRRP: true, Master: true}, true, "VRRP master here"},
		{"backup", Local{Healthy: true, VRRP: true, Backup: true}, true, "VRRP master elsewhere"},
		{"fault", Local{Healthy: true, VRRP: true}, false, "no VRRP master"},
		{"no frontends, master", Local{Healthy: true, VRRP: true, Master: true, Reason: "no frontends"}, true, "no frontends"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.l.Alone()
			if h.Healthy != tt.want || !strings.Contains(h.Reason, tt.why) {
				t.Fatalf("%+v → %+v, want healthy=%v reason with %q", tt.l, h, tt.want, tt.why)
			}
		})
	}
}
