package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testsmtp"
)

func alertsDoc(version int, sink string) string {
	return backendsDoc(version, 1) + fmt.Sprintf(`alerts:
  from: vipgate@example.test
  mailers: [{name: sink, address: %q, connect_timeout: 1s}]
  queue: {retry_min: 200ms, retry_max: 1s}
  rules:
    - {events: [config.applied, server.admin], min_level: notice, to: ops@example.test, coalesce: 0}
`, sink)
}

type alertStats struct {
	Queued         int    `json:"queued"`
	Failed         uint64 `json:"failed_attempts"`
	AwaitingLeader int    `json:"awaiting_leader"`
}

func (p *proc) alerts() alertStats {
	var s alertStats
	if err := get(p.admin, "/api/v1/alerts", &s); err != nil {
		return alertStats{Queued: -1}
	}
	return s
}

// TestProcessesClusterEventMailedOnce: a config change (a cluster-wide
// event, seen by every node) is mailed once, by the raft leader, while the
// others hold it; a node-local event is mailed by the node it happened on.
// When the leader dies before its mail could leave (the relay deferred it),
// the new leader mails the event.
func TestProcessesClusterEventMailedOnce(t *testing.T) {
	sink := testsmtp.Start(t)
	c := newCluster(t)
	ps := []*proc{
		c.add("n1", "dc1", "gateway", alertsDoc(1, sink.Addr)),
		c.add("n2", "dc2", "gateway", ""),
		c.add("n3", "", "witness", ""),
	}
	c.waitAll("every node joined and has version 1", func(p *proc) bool { return p.members() == 3 && p.version() == 1 })
	leader := c.leader()
	var follower *proc
	for _, p := range ps {
		if p != leader && p.role == "gateway" {
			follower = p
		}
	}

	if out, err := cli(t, follower, "apply", "-f", c.writeDoc("v2.yaml", alertsDoc(2, sink.Addr))); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	testenv.Eventually(t, 30*time.Second, "the version 2 mail", func() bool { return len(sink.With("version 2 applied")) > 0 })
	c.waitAll("the others hold the event for the leader", func(p *proc) bool {
		s := p.alerts()
		return p == leader && s.Queued == 0 || p != leader && s.AwaitingLeader == 1
	})
	if m := sink.With("version 2 applied"); len(m) != 1 || m[0].Header.Get("X-Vipgate-Node") != leader.id {
		t.Errorf("version 2 mails %+v, want one from the leader %s", m, leader.id)
	}

	// A node-local event: mailed by the follower it happened on.
	post(t, follower, "/api/v1/servers/app/s1/state", map[string]string{"state": "drain"}, 200)
	testenv.Eventually(t, 30*time.Second, "the drain mail", func() bool { return len(sink.With("set to drain")) > 0 })
	if m := sink.With("set to drain"); len(m) != 1 || m[0].Header.Get("X-Vipgate-Node") != follower.id {
		t.Errorf("drain mails %+v, want one from %s", m, follower.id)
	}

	// The leader's mail cannot leave; the leader dies with it.
	sink.DeferHelo(leader.id)
	if out, err := cli(t, follower, "apply", "-f", c.writeDoc("v3.yaml", alertsDoc(3, sink.Addr))); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	testenv.Eventually(t, 30*time.Second, "the leader's mail deferred", func() bool {
		s := leader.alerts()
		return s.Queued == 1 && s.Failed > 0
	})
	c.waitAll("the others hold version 3 for the leader", func(p *proc) bool { return p == leader || p.alerts().AwaitingLeader >= 1 })
	c.stop(leader, syscall.SIGKILL)
	next := c.leader()
	testenv.Eventually(t, 30*time.Second, "the version 3 mail from the new leader", func() bool { return len(sink.With("version 3 applied")) > 0 })
	if m := sink.With("version 3 applied"); len(m) != 1 || m[0].Header.Get("X-Vipgate-Node") != next.id {
		t.Errorf("version 3 mails %+v, want one from the new leader %s", m, next.id)
	}
}
