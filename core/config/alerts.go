package config

// Section owned by the alerts subsystem; placeholder until it lands.
type Alerts struct{}

func (c *Cluster) applyAlertsDefaults() {}

func (c *Cluster) validateAlerts(p *Problems) {}
