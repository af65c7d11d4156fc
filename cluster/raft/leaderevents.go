package raft

import (
	"fmt"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
)

// LeaderEvents turns what a node sees of the raft leader, observation by
// observation, into the events that say what happened: raft.leader for each
// new leader; raft.quorum_lost when the leader it knew has been gone longer
// than an election takes (Patience: an election is not a lost quorum);
// raft.quorum_regained when one is back after that. A node that has just
// started and knows no leader yet has lost nothing (every start would page
// someone otherwise): it reports quorum_lost only if no leader shows up
// within Grace of its first observation.
type LeaderEvents struct {
	Patience, Grace time.Duration

	start  time.Time
	leader string
	gone   time.Time // when the known leader was last seen gone
	seen   bool      // a leader was known at some point
	lost   bool      // quorum_lost was published and not yet regained
}

// Observe takes the leader known now ("" for none) and returns the events
// to publish, in order.
func (l *LeaderEvents) Observe(leader string, now time.Time) []events.Event {
	if l.start.IsZero() {
		l.start = now
	}
	var out []events.Event
	if leader != "" {
		if leader != l.leader {
			out = append(out, events.Event{Kind: events.RaftLeader, Level: events.Notice, Subject: leader,
				Message: fmt.Sprintf("raft leader is %s", leader), Attrs: map[string]string{"leader": leader}})
		}
		if l.lost {
			out = append(out, events.Event{Kind: events.QuorumRegained, Level: events.Notice, Subject: "raft", Message: "raft quorum regained"})
		}
		l.leader, l.seen, l.lost = leader, true, false
		return out
	}
	if l.leader != "" {
		l.leader, l.gone = "", now
	}
	if l.lost {
		return nil
	}
	var msg string
	switch {
	case l.seen && now.Sub(l.gone) >= l.Patience:
		msg = fmt.Sprintf("raft quorum lost: no leader for %s", now.Sub(l.gone).Round(time.Second))
	case !l.seen && now.Sub(l.start) >= l.Grace:
		msg = fmt.Sprintf("no raft leader since this node started %s ago", now.Sub(l.start).Round(time.Second))
	default:
		return nil
	}
	l.lost = true
	return []events.Event{{Kind: events.QuorumLost, Level: events.Crit, Subject: "raft",
		Message: msg + ": no configuration change or datacenter decision can be committed"}}
}

// LeaderPatience is how long a node waits for an election before it calls
// the quorum lost (three election timeouts, at least 2 s: writes give up
// after as long, see toLeader).
func LeaderPatience(r config.NodeRaft) time.Duration {
	return max(3*r.ElectionTimeout.D(), 2*time.Second)
}
