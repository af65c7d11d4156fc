package raft

import (
	"time"

	hraft "github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes this member's view of raft to Prometheus, read from
// hashicorp/raft at scrape time: who leads, the term, the commit and
// applied indexes, the last contact with the leader, the membership and the
// committed config version. (hashicorp/raft's own timings go through
// go-metrics; the node installs a Prometheus sink for them.)
type Collector struct {
	n   *Node
	now func() time.Time

	state, leader, hasLeader, term, commit, applied, contact, members, version *prometheus.Desc
}

// NewCollector makes a collector for n.
func NewCollector(n *Node) *Collector {
	d := func(name, help string, l ...string) *prometheus.Desc {
		return prometheus.NewDesc("vipgate_raft_"+name, help, l, nil)
	}
	return &Collector{n: n, now: time.Now,
		state:     d("state", "1 for this member's raft state (Follower, Candidate, Leader, Shutdown), 0 for the others.", "state"),
		leader:    d("leader", "1 when this member is the raft leader."),
		hasLeader: d("has_leader", "1 when this member knows a leader (0: no quorum, or an election is under way)."),
		term:      d("term", "Current raft term."),
		commit:    d("commit_index", "Highest log index known committed."),
		applied:   d("applied_index", "Highest log index applied to this member's state machine."),
		contact:   d("last_contact_seconds", "Seconds since this member last heard from the leader (0 on the leader)."),
		members:   d("members", "Members of the raft configuration, by suffrage.", "suffrage"),
		version:   prometheus.NewDesc("vipgate_config_version", "Version of the committed cluster document this member applied.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.leader, c.hasLeader, c.term, c.commit, c.applied, c.contact, c.members, c.version} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	r := c.n.raft
	g := prometheus.GaugeValue
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	cur := r.State()
	for _, s := range []hraft.RaftState{hraft.Follower, hraft.Candidate, hraft.Leader, hraft.Shutdown} {
		ch <- prometheus.MustNewConstMetric(c.state, g, b2f(cur == s), s.String())
	}
	ch <- prometheus.MustNewConstMetric(c.leader, g, b2f(cur == hraft.Leader))
	id, _ := c.n.Leader()
	ch <- prometheus.MustNewConstMetric(c.hasLeader, g, b2f(id != ""))
	ch <- prometheus.MustNewConstMetric(c.term, g, float64(r.CurrentTerm()))
	ch <- prometheus.MustNewConstMetric(c.commit, g, float64(r.CommitIndex()))
	ch <- prometheus.MustNewConstMetric(c.applied, g, float64(r.AppliedIndex()))
	since := 0.0
	if lc := r.LastContact(); cur != hraft.Leader && !lc.IsZero() {
		since = c.now().Sub(lc).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.contact, g, since)
	voters, nonvoters := 0, 0
	if f := r.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == hraft.Voter {
				voters++
			} else {
				nonvoters++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.members, g, float64(voters), "voter")
	ch <- prometheus.MustNewConstMetric(c.members, g, float64(nonvoters), "nonvoter")
	ch <- prometheus.MustNewConstMetric(c.version, g, float64(c.n.State().Version))
}

var _ prometheus.Collector = (*Collector)(nil)
