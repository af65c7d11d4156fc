package state

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vipgate/vipgate/cluster/raft"
)

// TestMetrics: a configured datacenter without a report still shows as
// inactive; each change of the active datacenter counts one failover, the
// first decision none.
func TestMetrics(t *testing.T) {
	m := NewMetrics(func() []string { return []string{"dc1", "dc2", "dc3"} })
	m.Decide(&Decisions{Active: "dc1", Health: map[string]raft.DCHealth{"dc1": {Healthy: true}}})
	m.Decide(&Decisions{Active: "dc2", ActiveDecided: time.Unix(1700000000, 0),
		Health: map[string]raft.DCHealth{"dc1": {Healthy: false}, "dc2": {Healthy: true}}})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	want := `
# HELP vipgate_dc_active 1 for the active datacenter (the committed decision this node follows), 0 for the others.
# TYPE vipgate_dc_active gauge
vipgate_dc_active{datacenter="dc1"} 0
vipgate_dc_active{datacenter="dc2"} 1
vipgate_dc_active{datacenter="dc3"} 0
# HELP vipgate_dc_healthy 1 when the datacenter's committed health roll-up is healthy, 0 when not (absent while unknown).
# TYPE vipgate_dc_healthy gauge
vipgate_dc_healthy{datacenter="dc1"} 0
vipgate_dc_healthy{datacenter="dc2"} 1
# HELP vipgate_dc_failovers_total Changes of the active datacenter this node followed since it started.
# TYPE vipgate_dc_failovers_total counter
vipgate_dc_failovers_total 1
# HELP vipgate_dc_last_decision_timestamp_seconds When the current active datacenter was decided (unix time; absent while the primary is active by default).
# TYPE vipgate_dc_last_decision_timestamp_seconds gauge
vipgate_dc_last_decision_timestamp_seconds 1.7e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
