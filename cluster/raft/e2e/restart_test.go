package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// A real process killed (SIGKILL) or stopped (SIGTERM) after `vipgate
// apply` comes back with the applied document, not the seed its node file
// still names. The in-process form with many more cycles is
// TestRestartsNeverUndoACommit in cluster/raft (make test-restarts).
func TestProcessesRestartKeepsTheAppliedDocument(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d nodes", size), func(t *testing.T) {
			c := newCluster(t)
			ps := []*proc{c.add("n1", "dc1", "gateway", backendsDoc(1, 1))}
			for i := 2; i <= size; i++ {
				ps = append(ps, c.add(fmt.Sprintf("n%d", i), fmt.Sprintf("dc%d", 2-i%2), "gateway", ""))
			}
			c.waitAll("joined with version 1", func(p *proc) bool { return p.members() == size && p.version() == 1 })
			version := uint64(1)
			for cycle, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL} {
				w := 10 + cycle
				out, err := cli(t, ps[cycle%size], "apply", "-f", c.writeDoc("v.yaml", backendsDoc(1, w)))
				version++
				if err != nil || !strings.Contains(out, fmt.Sprintf("committed version %d", version)) {
					t.Fatalf("cycle %d: apply: %v\n%s", cycle, err, out)
				}
				// The whole cluster goes down and comes back.
				for _, p := range ps {
					c.stop(p, sig)
				}
				for _, p := range ps {
					c.start(p)
				}
				c.waitAll(fmt.Sprintf("cycle %d: version %d after %v", cycle, version, sig), func(p *proc) bool { return p.version() >= version })
				for _, p := range ps {
					if v := p.version(); v != version {
						t.Fatalf("cycle %d: %s has version %d after %v, want %d", cycle, p.id, v, sig, version)
					}
					out, err := cli(t, p, "config", "show")
					if err != nil || !strings.Contains(out, fmt.Sprintf("weight: %d}", w)) {
						t.Fatalf("cycle %d: %s serves another document after %v: %v\n%s", cycle, p.id, sig, err, out)
					}
				}
			}
		})
	}
}
