package config

import (
	"net"
	"time"
)

// Datacenter is one site of the cluster. The order of `datacenters` is the
// failover order.
type Datacenter struct {
	Name string `yaml:"name" json:"name"`
	// Role: primary or standby.
	Role string `yaml:"role,omitempty" json:"role,omitempty"`
	// Networks are the client networks inside this datacenter (VDI, office),
	// used by the DNS topology policy.
	Networks StringList `yaml:"networks,omitempty" json:"networks,omitempty"`
	// Weight is the relative share for weighted DNS answers (default 1).
	Weight int `yaml:"weight,omitempty" json:"weight,omitempty"`
}

// DCFailover is the active-datacenter policy (raft-committed decisions).
type DCFailover struct {
	// Mode: auto (the raft leader fails over after hold_down) or manual.
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// HoldDown: how long the active datacenter must be unhealthy before failover.
	HoldDown Duration `yaml:"hold_down,omitempty" json:"hold_down,omitempty"`
	// Failback returns to the primary once it is healthy again for FailbackHoldDown.
	Failback         bool     `yaml:"failback,omitempty" json:"failback,omitempty"`
	FailbackHoldDown Duration `yaml:"failback_hold_down,omitempty" json:"failback_hold_down,omitempty"`
}

// Datacenter roles.
const (
	DCPrimary = "primary"
	DCStandby = "standby"
)

// Datacenter returns the named datacenter or nil.
func (c *Cluster) Datacenter(name string) *Datacenter {
	for i := range c.Datacenters {
		if c.Datacenters[i].Name == name {
			return &c.Datacenters[i]
		}
	}
	return nil
}

// PrimaryDatacenter returns the first datacenter with role primary (or the
// first one), "" when none are defined.
func (c *Cluster) PrimaryDatacenter() string {
	for _, d := range c.Datacenters {
		if d.Role == DCPrimary {
			return d.Name
		}
	}
	if len(c.Datacenters) > 0 {
		return c.Datacenters[0].Name
	}
	return ""
}

func (c *Cluster) applyDatacenterDefaults() {
	for i := range c.Datacenters {
		d := &c.Datacenters[i]
		if d.Role == "" {
			d.Role = DCStandby
			if i == 0 {
				d.Role = DCPrimary
			}
		}
		if d.Weight == 0 {
			d.Weight = 1
		}
	}
	f := &c.Failover
	if f.Mode == "" {
		f.Mode = "auto"
	}
	if f.HoldDown == 0 {
		f.HoldDown = Duration(30 * time.Second)
	}
	if f.FailbackHoldDown == 0 {
		f.FailbackHoldDown = Duration(5 * time.Minute)
	}
}

func (c *Cluster) validateDatacenters(p *Problems) {
	seen := map[string]int{}
	primaries := 0
	for i := range c.Datacenters {
		d := &c.Datacenters[i]
		path := Path("datacenters", i)
		switch {
		case d.Name == "":
			p.Addf(path, "datacenter has no name")
		case !ValidName(d.Name):
			p.Addf(Path(path, "name"), "datacenter name %q: use letters, digits, '_', '.', '-'", d.Name)
		default:
			if j, dup := seen[d.Name]; dup {
				p.Addf(Path(path, "name"), "duplicate datacenter %q (first at datacenters.%d)", d.Name, j)
			}
			seen[d.Name] = i
		}
		switch d.Role {
		case DCPrimary:
			primaries++
		case DCStandby:
		default:
			p.Addf(Path(path, "role"), "role %q: want primary or standby", d.Role)
		}
		for j, n := range d.Networks {
			if _, err := ParsePrefix(n); err != nil {
				p.Addf(Path(path, "networks", j), "%v", err)
			}
		}
		if d.Weight < 0 {
			p.Addf(Path(path, "weight"), "weight %d must not be negative", d.Weight)
		}
	}
	if primaries > 1 {
		p.Addf("datacenters", "%d datacenters have role primary; want at most one", primaries)
	}
	if m := c.Failover.Mode; m != "auto" && m != "manual" {
		p.Addf("failover.mode", "mode %q: want auto or manual", m)
	}
	for i := range c.Backends {
		for j, s := range c.Backends[i].Servers {
			if s.Datacenter != "" && len(c.Datacenters) > 0 {
				if _, ok := seen[s.Datacenter]; !ok {
					p.Addf(Path("backends", i, "servers", j, "datacenter"), "datacenter %q is not defined", s.Datacenter)
				}
			}
		}
	}
}

// NodeRaft is the node's raft membership settings (bootstrap file). A node
// file without `raft.listen` runs standalone (no replication).
type NodeRaft struct {
	// Listen is the raft (and cluster RPC) address, e.g. 0.0.0.0:9901.
	Listen string `yaml:"listen,omitempty"`
	// Advertise is the address other nodes dial (default: Listen, which then
	// must not be a wildcard).
	Advertise string `yaml:"advertise,omitempty"`
	// Bootstrap makes this node found a new cluster when it has no raft
	// state yet. Set it on exactly one node, once.
	Bootstrap bool `yaml:"bootstrap,omitempty"`
	// Join lists raft addresses of existing members; a node without state
	// asks them (any member, the request is forwarded to the leader) to add it.
	Join StringList `yaml:"join,omitempty"`
	// Nonvoter joins as a non-voting member (replicates, never votes).
	Nonvoter bool `yaml:"nonvoter,omitempty"`
	// TLS is mandatory: raft traffic is mutual TLS; peers must present a
	// certificate signed by CA.
	TLS TLSFiles `yaml:"tls"`

	HeartbeatTimeout   Duration `yaml:"heartbeat_timeout,omitempty"`
	ElectionTimeout    Duration `yaml:"election_timeout,omitempty"`
	LeaderLeaseTimeout Duration `yaml:"leader_lease_timeout,omitempty"`
	CommitTimeout      Duration `yaml:"commit_timeout,omitempty"`
	// SnapshotThreshold is how many log entries trigger a snapshot (and
	// compaction); SnapshotInterval how often the check runs.
	SnapshotThreshold uint64   `yaml:"snapshot_threshold,omitempty"`
	SnapshotInterval  Duration `yaml:"snapshot_interval,omitempty"`
	// TrailingLogs are kept after a snapshot so slow followers catch up
	// from the log instead of a full snapshot.
	TrailingLogs uint64 `yaml:"trailing_logs,omitempty"`
	// ReportInterval is how often a gateway reports its datacenter health
	// to the leader.
	ReportInterval Duration `yaml:"report_interval,omitempty"`
}

// Enabled reports whether the node runs raft.
func (r *NodeRaft) Enabled() bool { return r.Listen != "" }

// AdvertiseAddr is the address peers dial.
func (r *NodeRaft) AdvertiseAddr() string {
	if r.Advertise != "" {
		return r.Advertise
	}
	return r.Listen
}

// Raft timeout defaults are sized for a WAN link between datacenters (RTT up
// to ~100 ms, occasional loss): hashicorp/raft's LAN defaults (1 s / 1 s /
// 500 ms) would trigger needless elections on a lossy inter-DC link, and a
// slower election costs little next to the failover hold-down (30 s).
const (
	DefaultRaftHeartbeat   = 2 * time.Second
	DefaultRaftElection    = 2 * time.Second
	DefaultRaftLeaderLease = 1 * time.Second
	DefaultRaftCommit      = 50 * time.Millisecond
)

func (n *Node) applyRaftDefaults() {
	r := &n.Raft
	if !r.Enabled() {
		return
	}
	if r.HeartbeatTimeout == 0 {
		r.HeartbeatTimeout = Duration(DefaultRaftHeartbeat)
	}
	if r.ElectionTimeout == 0 {
		r.ElectionTimeout = Duration(DefaultRaftElection)
	}
	if r.LeaderLeaseTimeout == 0 {
		r.LeaderLeaseTimeout = Duration(DefaultRaftLeaderLease)
		if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
			r.LeaderLeaseTimeout = r.HeartbeatTimeout
		}
	}
	if r.CommitTimeout == 0 {
		r.CommitTimeout = Duration(DefaultRaftCommit)
	}
	if r.SnapshotThreshold == 0 {
		r.SnapshotThreshold = 1024
	}
	if r.SnapshotInterval == 0 {
		r.SnapshotInterval = Duration(2 * time.Minute)
	}
	if r.TrailingLogs == 0 {
		r.TrailingLogs = 1024
	}
	if r.ReportInterval == 0 {
		r.ReportInterval = Duration(2 * time.Second)
	}
}

func (n *Node) validateRaft(p *Problems) {
	r := &n.Raft
	if !r.Enabled() {
		if r.Bootstrap || len(r.Join) > 0 || r.TLS.Cert != "" {
			p.Addf("raft.listen", "raft needs a listen address")
		}
		return
	}
	if err := checkHostPort(r.Listen, true); err != nil {
		p.Addf("raft.listen", "listen %q: %v", r.Listen, err)
	}
	adv := r.AdvertiseAddr()
	if err := checkHostPort(adv, false); err != nil {
		p.Addf("raft.advertise", "advertise %q: %v", adv, err)
	} else if h, _, _ := net.SplitHostPort(adv); h == "" || h == "0.0.0.0" || h == "::" {
		p.Addf("raft.advertise", "advertise %q: peers cannot dial a wildcard address; set raft.advertise", adv)
	}
	for i, j := range r.Join {
		if err := checkHostPort(j, false); err != nil {
			p.Addf(Path("raft", "join", i), "join %q: %v", j, err)
		}
	}
	if r.Bootstrap && r.Nonvoter {
		p.Addf("raft.nonvoter", "a bootstrap node must be a voter")
	}
	if !r.Bootstrap && len(r.Join) == 0 {
		p.Addf("raft", "set bootstrap: true on the first node, or join: [addresses of members] on the others")
	}
	if r.TLS.CA == "" || r.TLS.Cert == "" || r.TLS.Key == "" {
		p.Addf("raft.tls", "raft traffic is mutual TLS: set raft.tls.ca, raft.tls.cert and raft.tls.key")
	}
	if n.Role == RoleWitness && r.Nonvoter {
		p.Addf("raft.nonvoter", "a witness exists to vote; it cannot be a nonvoter")
	}
	min := Duration(5 * time.Millisecond)
	if r.HeartbeatTimeout < min {
		p.Addf("raft.heartbeat_timeout", "heartbeat_timeout %s is below 5ms", r.HeartbeatTimeout.D())
	}
	if r.ElectionTimeout < r.HeartbeatTimeout {
		p.Addf("raft.election_timeout", "election_timeout %s must be at least heartbeat_timeout %s", r.ElectionTimeout.D(), r.HeartbeatTimeout.D())
	}
	if r.LeaderLeaseTimeout < min || r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		p.Addf("raft.leader_lease_timeout", "leader_lease_timeout %s must be between 5ms and heartbeat_timeout %s", r.LeaderLeaseTimeout.D(), r.HeartbeatTimeout.D())
	}
	if r.CommitTimeout < Duration(time.Millisecond) {
		p.Addf("raft.commit_timeout", "commit_timeout %s is below 1ms", r.CommitTimeout.D())
	}
}
