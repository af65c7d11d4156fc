package config

import (
	"net"
	"net/netip"
)

// UseSrcClientIP is HAProxy's `usesrc clientip`: a connection to a server
// comes from the client's address (transparent source).
const UseSrcClientIP = "clientip"

// Source is where connections to a backend's servers come from (HAProxy
// `source ADDR` and `source 0.0.0.0 usesrc clientip`). Health checks are
// not affected: they always come from the node's own address, so a check
// needs no special routing on the servers.
//
// With usesrc clientip the node binds each server connection to the
// client's address (IP_TRANSPARENT): servers that decide by the peer's
// address (Exchange receive connectors, which read no PROXY protocol) see
// the real client. Their replies go to the client's address, so the
// servers must route them through this node (their default route), and
// the node must hand them to its own stack rather than forward them:
// SetupRouting installs that (docs/forwarding.md).
type Source struct {
	// Address is a fixed local source address (an IP, no port).
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// UseSrc is "clientip" or empty.
	UseSrc string `yaml:"usesrc,omitempty" json:"usesrc,omitempty"`
	// SetupRouting makes the node install (and remove on exit) the policy
	// routing that delivers the servers' replies to client addresses to
	// its own sockets. Without it, the operator installs it.
	SetupRouting bool `yaml:"setup_routing,omitempty" json:"setup_routing,omitempty"`
}

// ClientIP reports whether connections take the client's address.
func (s *Source) ClientIP() bool { return s != nil && s.UseSrc == UseSrcClientIP }

// ServerSource is the source of connections to server s (one of b's):
// its own, else the backend's; nil means the kernel's choice.
func (b *Backend) ServerSource(s *Server) *Source {
	if s.Source != nil {
		return s.Source
	}
	return b.Source
}

// TransparentRouting reports whether any backend this document places on
// the node asks for the transparent-source routing (setup_routing).
func (c *Cluster) TransparentRouting(node *Node) bool {
	for i := range c.Backends {
		b := &c.Backends[i]
		if node != nil && !b.Runs(node) {
			continue
		}
		if b.Source.ClientIP() && b.Source.SetupRouting {
			return true
		}
		for j := range b.Servers {
			s := &b.Servers[j]
			if (node == nil || s.Runs(node)) && s.Source.ClientIP() && s.Source.SetupRouting {
				return true
			}
		}
	}
	return false
}

// validateSource checks a source block; servers are the ones it applies to
// (a fixed address of one family cannot reach a server of the other).
func validateSource(p *Problems, path string, src *Source, servers []Server) {
	switch src.UseSrc {
	case "", UseSrcClientIP:
	default:
		p.Addf(Path(path, "usesrc"), "usesrc %q: want clientip (the client's address; HAProxy's usesrc client, with the client's port, is not supported)", src.UseSrc)
	}
	if src.SetupRouting && !src.ClientIP() {
		p.Addf(Path(path, "setup_routing"), "setup_routing is for usesrc clientip (a fixed or the node's own address needs no special routing)")
	}
	if src.Address == "" {
		if src.UseSrc == "" {
			p.Addf(path, "source needs an address or usesrc clientip")
		}
		return
	}
	if src.ClientIP() {
		p.Addf(Path(path, "address"), "address and usesrc clientip exclude each other: with usesrc clientip a connection comes from its client's address")
		return
	}
	a, err := netip.ParseAddr(src.Address)
	if err != nil || a.Zone() != "" {
		p.Addf(Path(path, "address"), "address %q: want an IP address (no port)", src.Address)
		return
	}
	if a.IsUnspecified() || a.IsMulticast() {
		p.Addf(Path(path, "address"), "address %s: want a unicast address of this node", a)
		return
	}
	for _, s := range servers {
		if s.Source != nil && s.Source != src {
			continue // the server's own source applies
		}
		host, _, err := net.SplitHostPort(s.Address)
		if err != nil {
			continue
		}
		if sa, err := netip.ParseAddr(host); err == nil && sa.Unmap().Is4() != a.Unmap().Is4() {
			p.Addf(Path(path, "address"), "address %s cannot reach server %q at %s (another address family)", a, s.Name, s.Address)
		}
	}
}

// ClientSourceBackends names the backends that connect to some server from
// the client's address, with whether they set up the routing themselves.
func (c *Cluster) ClientSourceBackends() (names []string, routing []bool) {
	for i := range c.Backends {
		b := &c.Backends[i]
		clientIP, setup := false, false
		for j := range b.Servers {
			if src := b.ServerSource(&b.Servers[j]); src.ClientIP() {
				clientIP = true
				setup = setup || src.SetupRouting
			}
		}
		if clientIP {
			names = append(names, b.Name)
			routing = append(routing, setup)
		}
	}
	return names, routing
}
