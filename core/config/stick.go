package config

// Stick tables and persistence rules. Owned by the stick subsystem
// (core/stick); placeholders until it lands.

// StickTable is a named table (HAProxy stick-table).
type StickTable struct{}

// StickRule is a backend's persistence rule (HAProxy stick on / store-response).
type StickRule struct{}

func (c *Cluster) applyStickDefaults() {}

func (c *Cluster) validateStick(p *Problems) {}

// NodePeers is this node's stick-table sync listener and peers (bootstrap file).
type NodePeers struct{}

func (n *Node) applyPeersDefaults()       {}
func (n *Node) validatePeers(p *Problems) {}
