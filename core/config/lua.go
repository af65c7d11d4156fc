package config

// Section owned by the lua subsystem; placeholder until it lands.
type Lua struct{}

func (c *Cluster) applyLuaDefaults() {}

func (c *Cluster) validateLua(p *Problems) {}
