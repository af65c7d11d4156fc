package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/vipgate/vipgate/cluster/dc"
	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/cluster/state"
	"github.com/vipgate/vipgate/core/config"
)

// newRaftSource returns the raft-backed config source when the node
// bootstrap file configures raft, or nil for standalone operation. It is
// built before any subsystem: they subscribe to it.
func newRaftSource(e *env) (*raftSource, error) {
	nr := e.Node.Raft
	if !nr.Enabled() {
		return nil, nil
	}
	var seed []byte
	if e.Node.Config != "" {
		data, err := os.ReadFile(e.Node.Config)
		if err != nil {
			return nil, fmt.Errorf("seed config: %w", err)
		}
		if _, err := config.ParseKnown(e.Node.Config, data, knownNames()); err != nil {
			return nil, fmt.Errorf("seed config %s:\n%w", e.Node.Config, err)
		}
		if seed, err = raft.InlineFiles(data, filepath.Dir(e.Node.Config)); err != nil {
			return nil, fmt.Errorf("seed config %s: %w", e.Node.Config, err)
		}
	}
	n, err := raft.New(raft.Options{
		ID: e.Node.Name, Datacenter: e.Node.Datacenter, Role: e.Node.Role, Admin: e.Node.Admin.Listen,
		DataDir: e.Node.DataDir, Raft: nr, Seed: seed, Log: e.Log,
	})
	if err != nil {
		return nil, err
	}
	s := &raftSource{e: e, n: n,
		Cluster: state.New(state.Options{Node: n, Bus: e.Bus, Log: e.Log, CheckFiles: fileProblems, LeaderPatience: raft.LeaderPatience(nr)}),
		mgr:     dc.NewManager(n, nr.ReportInterval.D(), e.Log),
	}
	registerClusterAdmin(e, s)
	if e.Metrics != nil {
		registerRaftMetrics(e, n)
	}
	return s, nil
}

// raftSource is a raft node's config source: the raft member, the cluster
// state that pushes snapshots, decisions and events from it
// (cluster/state), the datacenter manager, and this gateway's health
// reports.
type raftSource struct {
	*state.Cluster
	e   *env
	n   *raft.Node
	mgr *dc.Manager
}

// fileProblems checks the files c names on this node: one line per problem,
// positioned in the committed document (as vipgate check positions them).
func fileProblems(c *config.Cluster) []string {
	err := c.CheckFiles("cluster.yaml")
	if err == nil {
		return nil
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		out = append(out, p.String())
	}
	return out
}

func (s *raftSource) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				select {
				case errc <- err:
				default:
				}
				cancel()
			}
		}()
	}
	goRun(s.n.Run)
	goRun(s.mgr.Run)
	if s.e.Node.Role != config.RoleWitness && s.e.Proxy != nil {
		rep := &dc.Reporter{Node: s.e.Node.Name, Datacenter: s.e.Node.Datacenter, Interval: s.e.Node.Raft.ReportInterval.D(),
			Local: s.local, Send: s.n.Report, Log: s.e.Log}
		goRun(rep.Run)
	}
	goRun(s.Cluster.Run)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// local is this gateway's own health report (see gatewayHealth).
func (s *raftSource) local() dc.Local { return gatewayHealth(s.e, s.n.State().Config) }
