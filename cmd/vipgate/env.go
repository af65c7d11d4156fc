package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipgate/vipgate/cluster/state"
	"github.com/vipgate/vipgate/cluster/vrrp"
	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/core/proxy"
)

// env is what the node hands every subsystem it wires. It is built once by
// `vipgate run` (cmd_run.go).
type env struct {
	Node  *config.Node
	Log   *slog.Logger
	Bus   *events.Bus
	Admin *admin.Server
	// Proxy is the live data plane (nil on a witness node).
	Proxy *proxy.Proxy
	// Checks is the registry of health-check kinds; plugins register into it.
	Checks *health.Registry
	// Source delivers the config snapshots and pushes the committed
	// decisions (Subscribe); built before every subsystem.
	Source configSource
	// VRRPStatus lists this node's VRRP instances (nil when VRRP is not
	// wired, as on a witness). Set before any subsystem runs.
	VRRPStatus func() []vrrp.Status
	// IsLeader reports whether this node reports cluster-wide events (the
	// raft leader; always true without raft).
	IsLeader func() bool
	// LeaderContact is when this node last heard from a raft leader (nil
	// without raft).
	LeaderContact func() time.Time

	// Metrics is the node's Prometheus registry (served on /metrics);
	// subsystems may register their own collectors.
	Metrics *prometheus.Registry
	// LogLevel changes the log level at runtime.
	LogLevel *slog.LevelVar
	// AccessLog receives the proxy's access lines (node.yaml log.access).
	AccessLog *slog.Logger

	// configMetrics records each config snapshot's apply.
	configMetrics *configMetrics

	// healthCtl turns a server's checks on or off at runtime.
	healthCtl interface {
		SetEnabled(serverKey string, on bool)
	}
}

// subsystem is one long-running part of a node. Apply is called with the
// first validated snapshot before Run, and again on every change (old →
// new); it must reconcile without dropping established connections.
type subsystem interface {
	Name() string
	Apply(c *config.Cluster) error
	Run(ctx context.Context) error
}

// configSource delivers validated cluster snapshots and pushes committed
// decisions: from a file (standalone, cluster/state.Static) or from raft
// (cluster/state.Cluster).
type configSource interface {
	// Updates delivers each new snapshot; the first arrives as soon as one is known.
	Updates() <-chan *config.Cluster
	// Subscribe adds a follower of the committed decisions.
	Subscribe(s state.Subscriber)
	Run(ctx context.Context) error
}
