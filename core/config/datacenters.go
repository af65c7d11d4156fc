package config

// Section owned by the datacenters subsystem; placeholder until it lands.
type Datacenter struct{}

type DCFailover struct{}

func (c *Cluster) applyDatacenterDefaults() {}

func (c *Cluster) validateDatacenters(p *Problems) {}

// NodeRaft is the node's raft membership settings (bootstrap file).
type NodeRaft struct{}

func (n *Node) applyRaftDefaults()       {}
func (n *Node) validateRaft(p *Problems) {}
