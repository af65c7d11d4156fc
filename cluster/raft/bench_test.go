package raft

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkCommitToAppliedAllNodes measures, on 3 nodes over loopback
// mutual TLS, the time from proposing a config document (through a
// follower, as `vipgate apply` to any node does) until every node has
// applied it (parsed and validated it in its FSM). Reports p50/p99.
func BenchmarkCommitToAppliedAllNodes(b *testing.B) {
	c := newTCluster(b)
	nodes := c.boot(3)
	l := c.leader(nodes)
	var via *tnode
	for _, n := range nodes {
		if n != l {
			via = n
		}
	}
	watches := make([]<-chan struct{}, len(nodes))
	for i, n := range nodes {
		watches[i] = n.FSM().Watch()
	}
	lat := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		a, err := via.Propose(ctx, putDoc(1+(i+1)%256))
		if err != nil {
			b.Fatal(err)
		}
		for j, n := range nodes {
			for n.State().Version < a.Version {
				<-watches[j]
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
