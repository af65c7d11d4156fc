package config

import (
	"slices"
	"strings"
)

// Placement: one replicated document describes every node, and what
// differs between nodes is said in one of two shapes, used the same way
// everywhere:
//
//   - where an element runs: `datacenter: DC` and/or `nodes: [..]` on a
//     VRRP instance, a frontend, a backend, naming nodes wins, neither
//     means every gateway node. A server's `datacenter` says where the
//     server is (a preference); with `local_only` it is also where it runs;
//   - a per-node value: a map by node name beside the shared value, as
//     `priorities` beside `priority` (a VRRP instance's `interfaces`,
//     `unicast_src_ips`, `vip_devs`).
//
// Each node applies its own view (ForNode): it serves only its frontends,
// backends and servers, and runs VRRP on its own NIC.

// runsOn is the placement rule: named in nodes, else in datacenter dc,
// else everywhere. A witness runs nothing.
func runsOn(dc string, nodes []string, node *Node) bool {
	if node == nil || node.Role == RoleWitness {
		return false
	}
	if len(nodes) > 0 {
		return slices.Contains(nodes, node.Name)
	}
	return dc == "" || dc == node.Datacenter
}

// Runs reports whether the frontend is served on the node.
func (f *Frontend) Runs(node *Node) bool { return runsOn(f.Datacenter, f.Nodes, node) }

// Runs reports whether the backend exists on the node.
func (b *Backend) Runs(node *Node) bool { return runsOn(b.Datacenter, b.Nodes, node) }

// Runs reports whether the node sends traffic to the server. A server's
// datacenter is a preference (local servers first), a limit only with
// local_only.
func (s *Server) Runs(node *Node) bool { return runsOn(s.placedDC(), s.Nodes, node) }

// placedDC is the datacenter the server is limited to, if any.
func (s *Server) placedDC() string {
	if s.LocalOnly {
		return s.Datacenter
	}
	return ""
}

// placed reports whether anything is limited to some nodes.
func (c *Cluster) placed() bool {
	for i := range c.Frontends {
		if c.Frontends[i].Datacenter != "" || len(c.Frontends[i].Nodes) > 0 {
			return true
		}
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		if b.Datacenter != "" || len(b.Nodes) > 0 {
			return true
		}
		for j := range b.Servers {
			if len(b.Servers[j].Nodes) > 0 || b.Servers[j].LocalOnly {
				return true
			}
		}
	}
	return false
}

// ForNode is the proxy's view of the document on node: the frontends,
// backends and servers placed elsewhere are left out. The result shares
// everything else with c and must not be modified; without placements it
// is c itself.
func (c *Cluster) ForNode(node *Node) *Cluster {
	if node == nil || !c.placed() {
		return c
	}
	v := *c
	v.Frontends = nil
	for i := range c.Frontends {
		if c.Frontends[i].Runs(node) {
			v.Frontends = append(v.Frontends, c.Frontends[i])
		}
	}
	v.Backends = nil
	for i := range c.Backends {
		b := c.Backends[i]
		if !b.Runs(node) {
			continue
		}
		b.Servers = nil
		for _, s := range c.Backends[i].Servers {
			if s.Runs(node) {
				b.Servers = append(b.Servers, s)
			}
		}
		v.Backends = append(v.Backends, b)
	}
	return &v
}

// ForNode is the instance as the named node runs it: its own interface,
// unicast source address and VIP device where the per-node maps say so.
func (in VRRPInstance) ForNode(node string) VRRPInstance {
	if s, ok := in.Interfaces[node]; ok {
		in.Interface = s
	}
	if s, ok := in.UnicastSrcIPs[node]; ok {
		in.UnicastSrcIP = s
	}
	if dev, ok := in.VIPDevs[node]; ok {
		vips := make(StringList, len(in.VIPs))
		for i, s := range in.VIPs {
			vips[i] = s
			if v, err := ParseVIP(s); err == nil && v.Dev != "" {
				v.Dev = dev
				vips[i] = v.String()
			}
		}
		in.VIPs = vips
	}
	return in
}

// validatePlacement checks the `datacenter` and `nodes` of frontends,
// backends and servers, and that a frontend only uses backends that exist
// wherever it runs.
func (c *Cluster) validatePlacement(p *Problems) {
	check := func(path, dc string, nodes []string) {
		if dc != "" && len(c.Datacenters) > 0 && c.Datacenter(dc) == nil {
			p.Addf(Path(path, "datacenter"), "unknown datacenter %q", dc)
		}
		for j, n := range nodes {
			if !ValidName(n) {
				p.Addf(Path(path, "nodes", j), "node name %q: use letters, digits, '_', '.', '-'", n)
			}
		}
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		check(Path("backends", i), b.Datacenter, b.Nodes)
		for j := range b.Servers {
			s := &b.Servers[j]
			path := Path("backends", i, "servers", j)
			check(path, "", s.Nodes)
			if len(b.Nodes) > 0 {
				for k, n := range s.Nodes {
					if !slices.Contains(b.Nodes, n) {
						p.Addf(Path(path, "nodes", k), "node %q: backend %q does not run there", n, b.Name)
					}
				}
			}
			switch {
			case !s.LocalOnly:
			case s.Datacenter == "":
				p.Addf(Path(path, "local_only"), "server %q: local_only needs the server's datacenter", s.Name)
			case len(s.Nodes) > 0:
				p.Addf(Path(path, "local_only"), "server %q: local_only and nodes both say where the server is used: give one", s.Name)
			case b.Datacenter != "" && len(b.Nodes) == 0 && b.Datacenter != s.Datacenter:
				p.Addf(Path(path, "local_only"), "server %q: backend %q runs only in datacenter %q, the server only in %q: no node would use it", s.Name, b.Name, b.Datacenter, s.Datacenter)
			}
		}
	}
	for i := range c.Frontends {
		f := &c.Frontends[i]
		check(Path("frontends", i), f.Datacenter, f.Nodes)
		use := func(path, name string) {
			b := c.Backend(name)
			if b == nil || covers(b.Datacenter, b.Nodes, f.Datacenter, f.Nodes) {
				return
			}
			p.Addf(path, "backend %q does not run everywhere frontend %q does: give the frontend the backend's datacenter or a subset of its nodes", name, f.Name)
		}
		use(Path("frontends", i, "default_backend"), f.DefaultBackend)
		for j := range f.Rules {
			if f.Rules[j].Backend != "" {
				use(Path("frontends", i, "rules", j, "backend"), f.Rules[j].Backend)
			}
		}
	}
}

// covers reports whether an element placed at (dc, nodes) certainly runs
// wherever one placed at (odc, onodes) does. A node's datacenter is in
// its own file, so nodes are only known to be in a datacenter when that
// is all that is said.
func covers(dc string, nodes []string, odc string, onodes []string) bool {
	switch {
	case len(nodes) > 0:
		if len(onodes) == 0 {
			return false
		}
		for _, n := range onodes {
			if !slices.Contains(nodes, n) {
				return false
			}
		}
		return true
	case dc != "":
		return len(onodes) == 0 && odc == dc
	}
	return true
}

// String writes the VIP back in the form ParseVIP reads.
func (v VIP) String() string {
	b := []string{v.Prefix.String()}
	if v.Prefix.IsSingleIP() {
		b[0] = v.Prefix.Addr().String()
	}
	if v.Dev != "" {
		b = append(b, "dev", v.Dev)
	}
	if v.Label != "" {
		b = append(b, "label", v.Label)
	}
	return strings.Join(b, " ")
}

// overlap reports whether two placements certainly share a node.
func overlap(dc string, nodes []string, odc string, onodes []string) bool {
	everywhere := func(dc string, nodes []string) bool { return len(nodes) == 0 && dc == "" }
	switch {
	case everywhere(dc, nodes) || everywhere(odc, onodes):
		return true
	case len(nodes) > 0 && len(onodes) > 0:
		for _, x := range nodes {
			if slices.Contains(onodes, x) {
				return true
			}
		}
		return false
	case len(nodes) == 0 && len(onodes) == 0:
		return dc == odc
	}
	return false // nodes vs datacenter: a node's datacenter is in its own file
}
