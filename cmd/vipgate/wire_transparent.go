package main

import (
	"context"
	"log/slog"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/transparent"
)

// transparentSub installs the transparent-source routing while a backend
// this node runs asks for it (source: {usesrc: clientip, setup_routing:
// true}) and removes it when none does any more, and on exit.
type transparentSub struct {
	r    *transparent.Routing
	node *config.Node
	log  *slog.Logger
}

func newTransparent(e *env) *transparentSub {
	log := e.Log.With("sub", "transparent")
	return &transparentSub{r: transparent.New(log), node: e.Node, log: log}
}

func (s *transparentSub) Name() string { return "transparent" }

func (s *transparentSub) Apply(c *config.Cluster) error {
	return s.r.Set(c.TransparentRouting(s.node))
}

func (s *transparentSub) Run(ctx context.Context) error {
	<-ctx.Done()
	if err := s.r.Close(); err != nil {
		s.log.Error("removing transparent-source routing", "err", err)
	}
	return nil
}
