package config

// Section owned by the dns subsystem; placeholder until it lands.
type DNS struct{}

func (c *Cluster) applyDNSDefaults() {}

func (c *Cluster) validateDNS(p *Problems) {}

// NodeDNS is where this node's DNS server listens (bootstrap file).
type NodeDNS struct{}

func (n *Node) applyDNSDefaults()       {}
func (n *Node) validateDNS(p *Problems) {}
