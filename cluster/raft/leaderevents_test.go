package raft

import (
	"slices"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/events"
)

func TestLeaderEvents(t *testing.T) {
	type obs struct {
		at     time.Duration // since the first observation
		leader string
		want   []events.Kind
	}
	const (
		leader   = events.RaftLeader
		lost     = events.QuorumLost
		regained = events.QuorumRegained
	)
	tests := []struct {
		name string
		obs  []obs
	}{
		{"a start before the first election is no loss", []obs{
			{0, "", nil}, {time.Second, "", nil}, {2 * time.Second, "n1", []events.Kind{leader}}, {3 * time.Second, "n1", nil},
		}},
		{"no leader within the grace after start", []obs{
			{0, "", nil}, {19 * time.Second, "", nil}, {20 * time.Second, "", []events.Kind{lost}}, {25 * time.Second, "", nil},
			{26 * time.Second, "n2", []events.Kind{leader, regained}},
		}},
		{"an election is no loss", []obs{
			{0, "n1", []events.Kind{leader}}, {time.Second, "", nil}, {2 * time.Second, "n2", []events.Kind{leader}},
		}},
		{"no leader longer than an election takes", []obs{
			{0, "n1", []events.Kind{leader}}, {time.Second, "", nil}, {3 * time.Second, "", nil}, {4 * time.Second, "", []events.Kind{lost}},
			{9 * time.Second, "", nil}, {10 * time.Second, "n1", []events.Kind{leader, regained}}, {11 * time.Second, "n1", nil},
		}},
		{"the patience counts from when the leader went", []obs{
			{0, "n1", []events.Kind{leader}}, {30 * time.Second, "", nil}, {32 * time.Second, "", nil}, {33 * time.Second, "", []events.Kind{lost}},
		}},
	}
	t0 := time.Unix(1700000000, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := LeaderEvents{Patience: 3 * time.Second, Grace: 20 * time.Second}
			for _, o := range tt.obs {
				var got []events.Kind
				for _, ev := range l.Observe(o.leader, t0.Add(o.at)) {
					got = append(got, ev.Kind)
				}
				if !slices.Equal(got, o.want) {
					t.Fatalf("at %s leader %q: events %v, want %v", o.at, o.leader, got, o.want)
				}
			}
		})
	}
}
