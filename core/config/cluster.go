package config

// Cluster is the whole replicated configuration document. Each section's
// types, defaults and validation live in the file named after it:
// proxy.go (defaults, frontends, backends), datacenters.go, vrrp.go, dns.go,
// alerts.go, lua.go, stick.go.
type Cluster struct {
	Defaults    Defaults     `yaml:"defaults,omitempty"`
	Frontends   []Frontend   `yaml:"frontends,omitempty"`
	Backends    []Backend    `yaml:"backends,omitempty"`
	Datacenters []Datacenter `yaml:"datacenters,omitempty"`
	Failover    DCFailover   `yaml:"failover,omitempty"`
	VRRP        VRRP         `yaml:"vrrp,omitempty"`
	DNS         DNS          `yaml:"dns,omitempty"`
	Alerts      Alerts       `yaml:"alerts,omitempty"`
	Lua         Lua          `yaml:"lua,omitempty"`
	StickTables []StickTable `yaml:"stick_tables,omitempty"`

	// Source is the document as written, kept for diffs and history.
	Source []byte `yaml:"-" json:"-"`
	// ZoneSerials are the automatic SOA serials of the DNS zones (by apex,
	// absolute, lower case) when the document came through raft: decided
	// once, in the replicated state, so every node serves the same serial.
	// Nil elsewhere: the DNS server then derives serials itself.
	ZoneSerials map[string]uint32 `yaml:"-" json:"-"`
}

// applyDefaults fills unset values from `defaults` and built-in defaults.
// It runs before validate.
func (c *Cluster) applyDefaults() {
	c.applyProxyDefaults()
	c.applyDatacenterDefaults()
	c.applyVRRPDefaults()
	c.applyDNSDefaults()
	c.applyAlertsDefaults()
	c.Lua.Defaults.Fill()
	c.applyStickDefaults()
	c.applyLogTargetDefaults()
}

// validate records every problem in p.
func (c *Cluster) validate(p *Problems) {
	c.validateProxy(p)
	c.validatePlacement(p)
	c.validateDatacenters(p)
	c.validateVRRP(p)
	c.validateDNS(p)
	c.validateAlerts(p)
	c.validateLua(p)
	c.validateStick(p)
	c.validateDR(p)
	c.validateLogTargets(p)
}

// Backend returns the named backend or nil.
func (c *Cluster) Backend(name string) *Backend {
	for i := range c.Backends {
		if c.Backends[i].Name == name {
			return &c.Backends[i]
		}
	}
	return nil
}

// Frontend returns the named frontend or nil.
func (c *Cluster) Frontend(name string) *Frontend {
	for i := range c.Frontends {
		if c.Frontends[i].Name == name {
			return &c.Frontends[i]
		}
	}
	return nil
}
