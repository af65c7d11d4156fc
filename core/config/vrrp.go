package config

// Section owned by the vrrp subsystem; placeholder until it lands.
type VRRP struct{}

func (c *Cluster) applyVRRPDefaults() {}

func (c *Cluster) validateVRRP(p *Problems) {}
