package config

// ServesNothing reports whether the document leaves node with no listener,
// no VRRP instance and no DNS zone: applied, it would close everything the
// node serves. That is what a truncated file looks like (an editor or a
// config-management tool writing in place while a reload fires:
// `defaults: {mode: http}` is a valid document), so a reload and `vipgate
// apply` refuse it unless told otherwise, and `vipgate check` warns. With
// node nil the question is asked for every node: the document has none of
// the three at all.
func (c *Cluster) ServesNothing(node *Node) bool {
	if len(c.Frontends) > 0 || len(c.DNS.Zones) > 0 {
		return false
	}
	for i := range c.VRRP.Instances {
		if node == nil || c.VRRP.Instances[i].Runs(node) {
			return false
		}
	}
	return true
}

// ServesNothingMsg says what ServesNothing found, for errors and warnings.
const ServesNothingMsg = "the document has no frontend, no VRRP instance and no DNS zone for this node: applied, it would close every listener (a truncated file?)"
