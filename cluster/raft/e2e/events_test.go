package e2e

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testenv"
)

// clusterEvents is this process's event stream, reduced to what cluster
// state publishes (raft.*, config.*, dc.*), as "kind subject/version".
func (p *proc) clusterEvents(t *testing.T) []string {
	t.Helper()
	var evs []events.Event
	if err := get(p.admin, "/api/v1/events?n=1000", &evs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		k := string(e.Kind)
		if !strings.HasPrefix(k, "raft.") && !strings.HasPrefix(k, "config.") && !strings.HasPrefix(k, "dc.") {
			continue
		}
		what := e.Subject
		if v := e.Attr("version"); v != "" {
			what = "v" + v
		}
		out = append(out, k+" "+what)
	}
	return out
}

// eventsUntil applies version v through p (a marker: events are published
// in order, so once its config.applied is there, whatever the start
// published is too) and returns p's cluster events up to it.
func (c *cluster) eventsUntil(t *testing.T, p *proc, v int) []string {
	t.Helper()
	if out, err := cli(t, p, "apply", "-f", c.writeDoc("mark.yaml", backendsDoc(1, 100+v))); err != nil || !strings.Contains(out, fmt.Sprintf("committed version %d", v)) {
		t.Fatalf("apply version %d: %v\n%s", v, err, out)
	}
	mark := fmt.Sprintf("config.applied v%d", v)
	var evs []string
	testenv.Eventually(t, 20*time.Second, mark, func() bool {
		evs = p.clusterEvents(t)
		return slices.Contains(evs, mark)
	})
	return evs
}

// Events say what happened now: a cold start reports the leader and the
// seed, no quorum loss before any leader was seen and no failback for the
// first document; a restart (SIGTERM or SIGKILL) reports the election and
// nothing it replays from its log (configuration versions, a failover and a
// failback committed before it).
func TestProcessesEventsAfterColdStartAndRestart(t *testing.T) {
	c := newCluster(t)
	p := c.add("n1", "dc1", "gateway", backendsDoc(1, 1))
	c.waitAll("version 1", func(p *proc) bool { return p.version() == 1 })
	got := c.eventsUntil(t, p, 2)
	want := []string{"raft.leader n1", "config.applied v1", "config.applied v2"}
	if !slices.Equal(got, want) {
		t.Fatalf("cold start events:\n got %q\nwant %q", got, want)
	}
	for _, dc := range []string{"dc2", "dc1"} {
		if out, err := cli(t, p, "dc", "failover", dc, "--force"); err != nil {
			t.Fatalf("failover to %s: %v\n%s", dc, err, out)
		}
	}
	testenv.Eventually(t, 20*time.Second, "failover and failback published", func() bool {
		evs := p.clusterEvents(t)
		return slices.Contains(evs, "dc.failover dc2") && slices.Contains(evs, "dc.failback dc1")
	})
	v := 3
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		c.stop(p, sig)
		c.start(p)
		c.waitAll("restarted", func(p *proc) bool { return p.version() == uint64(v-1) })
		got := c.eventsUntil(t, p, v)
		want := []string{"raft.leader n1", fmt.Sprintf("config.applied v%d", v)}
		if !slices.Equal(got, want) {
			t.Fatalf("events after a restart (%v):\n got %q\nwant %q", sig, got, want)
		}
		v++
	}
}

// In a 3-node cluster: a member that joins learns the versions committed
// before it started as history (no config.applied for them), and the
// leader killed and restarted reports the election it sees and nothing it
// replays.
func TestProcessesEventsOfAJoinerAndARestartedLeader(t *testing.T) {
	c := newCluster(t)
	ps := []*proc{c.add("n1", "dc1", "gateway", backendsDoc(1, 1))}
	c.waitAll("version 1", func(p *proc) bool { return p.version() == 1 })
	ps = append(ps, c.add("n2", "dc2", "gateway", ""), c.add("n3", "dc1", "gateway", ""))
	c.waitAll("three members with version 1", func(p *proc) bool { return p.members() == 3 && p.version() == 1 })
	got := c.eventsUntil(t, ps[1], 2)
	if want := []string{"raft.leader n1", "config.applied v2"}; !slices.Equal(got, want) {
		t.Fatalf("events of a member that joined after version 1:\n got %q\nwant %q", got, want)
	}
	old := c.leader()
	c.stop(old, syscall.SIGKILL)
	c.leader() // elected without it
	c.start(old)
	c.waitAll("the old leader caught up", func(p *proc) bool { return p.version() == 2 && p.members() == 3 })
	got = c.eventsUntil(t, old, 3)
	// A busy machine may hold one more election after the restart: each
	// is reported, and nothing else but the new version.
	rest := slices.DeleteFunc(slices.Clone(got), func(e string) bool { return strings.HasPrefix(e, "raft.leader ") })
	if !slices.Equal(rest, []string{"config.applied v3"}) || !strings.HasPrefix(got[0], "raft.leader ") {
		t.Fatalf("events of the leader restarted after SIGKILL:\n got %q\nwant raft.leader (and any later election), then config.applied v3", got)
	}
}
