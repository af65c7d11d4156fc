package raft

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkCommitToAppliedAllNodes measures, on 3 nodes over loopback
// mutual TLS, a config document proposed through a follower (as `vipgate
// apply` to any node does) until every node has applied it (parsed and
// validated it in its FSM). It reports two spans per document:
//   - commit-p50/p99-ms: from the first node's apply (the leader's, at the
//     commit) to the last node's: how long the rest of the cluster lags
//     behind a commit — the figure the followers' commit-index latency
//     decides;
//   - p50/p99-ms: from the proposal to the last node's apply, which adds
//     the forward to the leader, its disk write and the replication round
//     that commits the entry.
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
	// Each node's apply time per version, taken as its FSM publishes it.
	var mu sync.Mutex
	applied := make([]map[uint64]time.Time, len(nodes))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		applied[i] = make(map[uint64]time.Time, b.N)
		w := n.FSM().Watch()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-w:
				}
				v := n.State().Version
				mu.Lock()
				if _, ok := applied[i][v]; !ok {
					applied[i][v] = time.Now()
				}
				mu.Unlock()
			}
		}()
	}
	lat := make([]time.Duration, 0, b.N)
	var versions []uint64
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		a, err := via.Propose(ctx, putDoc(1+(i+1)%256))
		if err != nil {
			b.Fatal(err)
		}
		// Wait until every node's watcher has recorded this version.
		for {
			mu.Lock()
			all := true
			for j := range nodes {
				if _, ok := applied[j][a.Version]; !ok {
					all = false
				}
			}
			mu.Unlock()
			if all {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
		versions = append(versions, a.Version)
	}
	b.StopTimer()
	close(done)
	wg.Wait()
	spread := make([]time.Duration, 0, len(versions))
	for _, v := range versions {
		first, last := applied[0][v], applied[0][v]
		for j := range nodes {
			t := applied[j][v]
			if t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
		spread = append(spread, last.Sub(first))
	}
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(spread, 0.50), "commit-p50-ms")
	b.ReportMetric(pct(spread, 0.99), "commit-p99-ms")
	b.ReportMetric(pct(lat, 0.50), "p50-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
}
