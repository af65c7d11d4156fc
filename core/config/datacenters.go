package config

import "time"

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

// NodeRaft is the node's raft membership settings (bootstrap file). Owned by
// cluster/raft; placeholder until it lands.
type NodeRaft struct{}

func (n *Node) applyRaftDefaults()       {}
func (n *Node) validateRaft(p *Problems) {}
