package state

import (
	"context"

	"github.com/vipgate/vipgate/core/config"
)

// Static is the decisions of a node without raft: the config file's
// primary datacenter is active, nothing else is decided. Placed among the
// node's subsystems, it pushes them on each snapshot it is given.
type Static struct{ pusher }

// Name implements the node's subsystem.
func (s *Static) Name() string { return "decisions" }

// Apply pushes the decisions c implies.
func (s *Static) Apply(c *config.Cluster) error {
	s.push(&Decisions{Active: c.PrimaryDatacenter()})
	return nil
}

// Run has nothing to do between snapshots.
func (s *Static) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
