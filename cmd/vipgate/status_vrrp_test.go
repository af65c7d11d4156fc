package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/vrrp"
)

// `vipgate status` shows each instance's state, effective priority, master
// and last transition, from the JSON the vrrp manager serves.
func TestPrintVRRP(t *testing.T) {
	st := []vrrp.Status{
		{Name: "vi-dc1", VRID: 51, Interface: "eth1", State: vrrp.Master, Priority: 150, BasePriority: 150,
			Master: "198.18.1.11", LastTransition: time.Now().Add(-90 * time.Second), LastReason: "no advertisement from 198.18.1.12",
			VIPs: []string{"198.18.1.100/24"}, Dropped: map[string]uint64{"other_vrid": 40}},
		{Name: "vi-dc1-b", VRID: 52, Interface: "eth1", State: vrrp.Backup, Priority: 40, BasePriority: 100,
			Master: "198.18.1.12", MasterNode: "gw-a2", LastTransition: time.Now().Add(-time.Hour), LastReason: "higher priority master 198.18.1.12 (priority 100)",
			VIPs: []string{"198.18.1.101/24"}, Tracks: []vrrp.TrackStatus{{Name: "haproxy", Up: false, Weight: -60, Reason: "no process haproxy"}},
			Dropped: map[string]uint64{"auth": 3}},
	}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if code := printSection(&b, "vrrp", raw); code != 0 {
		t.Fatalf("exit %d", code)
	}
	out := b.String()
	for _, want := range []string{
		"INSTANCE", "MASTER", "LAST TRANSITION",
		"vi-dc1 ", "51", "MASTER", "150 ", "198.18.1.11", "1m30s ago", "no advertisement from 198.18.1.12", "198.18.1.100/24",
		"BACKUP", "40 (base 100)", "gw-a2 (198.18.1.12)", "1h0m0s ago",
		"vi-dc1-b: track haproxy failing: no process haproxy",
		"vi-dc1-b: 3 adverts dropped (auth)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "other_vrid") {
		t.Errorf("other virtual routers' adverts shown as a problem:\n%s", out)
	}
}
