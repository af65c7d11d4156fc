package vrrp

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	st := []Status{{Name: "vi1", VRID: 51, Interface: "eth1", State: Master, Priority: 90, BasePriority: 100, Transitions: 2, Sent: 7, Received: 3}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(func() []Status { return st }))
	want := `
# HELP vipgate_vrrp_effective_priority Priority advertised now: the configured one changed by track sources.
# TYPE vipgate_vrrp_effective_priority gauge
vipgate_vrrp_effective_priority{interface="eth1",vrid="51",vrrp_instance="vi1"} 90
# HELP vipgate_vrrp_priority Configured priority of this node in the instance.
# TYPE vipgate_vrrp_priority gauge
vipgate_vrrp_priority{interface="eth1",vrid="51",vrrp_instance="vi1"} 100
# HELP vipgate_vrrp_state 1 for the instance's current state (INIT, BACKUP, MASTER, FAULT, STOP), 0 for the others.
# TYPE vipgate_vrrp_state gauge
vipgate_vrrp_state{interface="eth1",state="BACKUP",vrid="51",vrrp_instance="vi1"} 0
vipgate_vrrp_state{interface="eth1",state="FAULT",vrid="51",vrrp_instance="vi1"} 0
vipgate_vrrp_state{interface="eth1",state="INIT",vrid="51",vrrp_instance="vi1"} 0
vipgate_vrrp_state{interface="eth1",state="MASTER",vrid="51",vrrp_instance="vi1"} 1
vipgate_vrrp_state{interface="eth1",state="STOP",vrid="51",vrrp_instance="vi1"} 0
# HELP vipgate_vrrp_transitions_total State changes since the instance started.
# TYPE vipgate_vrrp_transitions_total counter
vipgate_vrrp_transitions_total{interface="eth1",vrid="51",vrrp_instance="vi1"} 2
# HELP vipgate_vrrp_adverts_sent_total VRRP advertisements sent.
# TYPE vipgate_vrrp_adverts_sent_total counter
vipgate_vrrp_adverts_sent_total{interface="eth1",vrid="51",vrrp_instance="vi1"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vipgate_vrrp_effective_priority", "vipgate_vrrp_priority",
		"vipgate_vrrp_state", "vipgate_vrrp_transitions_total", "vipgate_vrrp_adverts_sent_total"); err != nil {
		t.Error(err)
	}
}
