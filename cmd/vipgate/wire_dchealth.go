package main

import (
	"github.com/vipgate/vipgate/cluster/dc"
	"github.com/vipgate/vipgate/cluster/vrrp"
	"github.com/vipgate/vipgate/core/config"
)

// gatewayHealth is this gateway's own view of its datacenter: what it
// reports to the raft leader (rolled up by dc.Rollup) and, without raft,
// what the static view judges alone (dc.Local.Alone). One rule for both:
//   - the proxy is judged only when the config has frontends, and by its
//     own datacenter's servers (Proxy.DatacenterHealthy): a datacenter that
//     only reaches the other site's servers is failed over after the
//     hold-down. A datacenter
//     whose gateways only move a VIP (keepalived without HAProxy) is not
//     unhealthy for lacking a proxy; its VRRP state decides;
//   - VRRP counts when an instance of c runs on this node: Master when one
//     holds its VIPs here, Backup when one hears a master elsewhere. An
//     instance not started yet is neither.
func gatewayHealth(e *env, c *config.Cluster) dc.Local {
	l := dc.Local{Healthy: true, Reason: "no frontends configured"}
	if c == nil {
		return dc.Local{Reason: "no configuration yet"}
	}
	if len(c.Frontends) > 0 && e.Proxy != nil {
		l.Healthy, l.Reason = e.Proxy.DatacenterHealthy()
	}
	here := map[string]bool{}
	for i := range c.VRRP.Instances {
		if in := &c.VRRP.Instances[i]; in.Runs(e.Node) {
			here[in.Name] = true
			l.VRRP = true
		}
	}
	if e.VRRPStatus != nil && l.VRRP {
		for _, st := range e.VRRPStatus() {
			if !here[st.Name] {
				continue
			}
			l.Master = l.Master || st.State == vrrp.Master
			l.Backup = l.Backup || st.State == vrrp.Backup
		}
	}
	return l
}
