package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// A forced manual failover to a datacenter the cluster sees as unhealthy,
// with failover.mode auto, holds for --hold (here longer than hold_down,
// which the unhealthy datacenter passed long ago): no automatic decision
// before its end, whatever the leader sees; after it, auto mode moves back.
// The CLI says so.
func TestProcessesForcedFailoverHolds(t *testing.T) {
	backend := startHTTPBackends(t, 1)[0]
	c := newCluster(t)
	n1 := c.add("n1", "dc1", "gateway", dcDoc(backend)) // hold_down 2s; dc2 has no gateway
	c.waitAll("dc1 healthy, dc2 not", func(p *proc) bool {
		v := p.dcState()
		return v.healthy("dc1") && !v.healthy("dc2") && v.Active == "dc1"
	})
	if out, err := cli(t, n1, "dc", "failover", "dc2"); err == nil || !strings.Contains(out, "unhealthy") {
		t.Fatalf("failover to an unhealthy datacenter without --force: %v\n%s", err, out)
	}
	out, err := cli(t, n1, "dc", "failover", "dc2", "--force", "--hold", "6s", "--reason", "drill")
	if err != nil || !strings.Contains(out, "active datacenter: dc2") || !strings.Contains(out, "held until") ||
		!strings.Contains(out, "(6s): automatic failover (failover.mode: auto) will not change it before then") {
		t.Fatalf("forced failover: %v\n%s", err, out)
	}
	var d struct {
		Decision struct {
			DC        string
			HoldUntil time.Time `json:"hold_until"`
		} `json:"decision"`
	}
	if err := get(n1.admin, "/api/v1/dc", &d); err != nil || d.Decision.DC != "dc2" || d.Decision.HoldUntil.IsZero() {
		t.Fatalf("decision %+v (%v)", d, err)
	}
	if out, err := cli(t, n1, "dc", "status"); err != nil || !strings.Contains(out, "held until") {
		t.Errorf("dc status does not show the hold: %v\n%s", err, out)
	}
	// Until the hold ends, dc2 stays active. The leader refuses any
	// automatic decision dated before the end, so a state read that began
	// before it must still show dc2.
	testenv.Eventually(t, 40*time.Second, "auto mode moves back to dc1 once the hold is over", func() bool {
		asked := time.Now()
		v := n1.dcState()
		if v.Active != "dc2" && asked.Before(d.Decision.HoldUntil) {
			b, _ := json.Marshal(v)
			t.Fatalf("%s before the hold's end %s: active %s: %s", asked, d.Decision.HoldUntil, v.Active, b)
		}
		return v.Active == "dc1" && v.Decision.Author == "auto"
	})
}
