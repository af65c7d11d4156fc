package config

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// Direct routing (mode dr, LVS-DR): a frontend whose VIP is a VRRP VIP of
// this node; the master forwards the VIP's packets to a server on the same
// link by rewriting the destination MAC, and the servers answer the client
// themselves (docs/forwarding.md).

// Protocols of a mode dr frontend.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
)

// DRAlgorithms are the balance algorithms a mode dr backend may use:
// maglev (the default: a consistent hash of the flow, the same on both
// directors, so flows survive a failover), and the LVS-like roundrobin
// (wrr), static-rr, leastconn (wlc, by flow count) and source (sh).
var DRAlgorithms = []string{"maglev", "roundrobin", "static-rr", "leastconn", "source"}

// applyDRDefaults gives the backends of mode dr frontends the maglev
// algorithm when they do not choose one (before defaults.balance applies:
// the default of a proxy is not the default of a director), and the
// frontends their protocol.
func (c *Cluster) applyDRDefaults() {
	for i := range c.Frontends {
		f := &c.Frontends[i]
		if f.Mode != ModeDR {
			continue
		}
		if f.Protocol == "" {
			f.Protocol = ProtoTCP
		}
		if b := c.Backend(f.DefaultBackend); b != nil && b.Balance.Algorithm == "" {
			b.Balance.Algorithm = "maglev"
		}
	}
}

// DRVIP is the VIP of a mode dr frontend and the VRRP instance it belongs
// to (as the named node runs it).
type DRVIP struct {
	Addr      netip.AddrPort
	Instance  VRRPInstance
	Interface string // where the VIP lives: its dev, else the instance's interface
}

// DRFrontendVIP finds the VRRP instance holding the frontend's VIP on the
// named node; ok is false when there is none (validation refuses that).
func (c *Cluster) DRFrontendVIP(f *Frontend, node string) (DRVIP, bool) {
	if len(f.Bind) != 1 {
		return DRVIP{}, false
	}
	ap, err := netip.ParseAddrPort(f.Bind[0])
	if err != nil {
		return DRVIP{}, false
	}
	for i := range c.VRRP.Instances {
		in := c.VRRP.Instances[i]
		if !overlap(in.Datacenter, in.Nodes, f.Datacenter, f.Nodes) {
			continue
		}
		if node != "" {
			in = in.ForNode(node)
		}
		for _, s := range in.VIPs {
			v, err := ParseVIP(s)
			if err != nil || v.Prefix.Addr() != ap.Addr() {
				continue
			}
			dev := v.Dev
			if dev == "" {
				dev = in.Interface
			}
			return DRVIP{Addr: ap, Instance: in, Interface: dev}, true
		}
	}
	return DRVIP{}, false
}

// DRAddrs lists the VIP addresses that mode dr frontends use: the VRRP
// master answers ARP for them instead of adding them to an interface.
func (c *Cluster) DRAddrs() []netip.Addr {
	var out []netip.Addr
	for i := range c.Frontends {
		f := &c.Frontends[i]
		if f.Mode != ModeDR || len(f.Bind) != 1 {
			continue
		}
		if ap, err := netip.ParseAddrPort(f.Bind[0]); err == nil && !slices.Contains(out, ap.Addr()) {
			out = append(out, ap.Addr())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// validateDR checks what direct routing needs: one IPv4 VIP:port that a
// VRRP instance holds, a tcp backend of servers addressed by IP on the
// same port, and none of the options of a proxy.
func (c *Cluster) validateDR(p *Problems) {
	drVIPs := map[netip.Addr][]int{}
	for i := range c.Frontends {
		f := &c.Frontends[i]
		path := Path("frontends", i)
		if f.Mode != ModeDR {
			if f.Protocol != "" && f.Protocol != ProtoTCP {
				p.Addf(Path(path, "protocol"), "protocol %s needs mode dr (the proxy modes are tcp only)", f.Protocol)
			}
			continue
		}
		if f.Protocol != ProtoTCP && f.Protocol != ProtoUDP {
			p.Addf(Path(path, "protocol"), "protocol %q: want tcp or udp", f.Protocol)
		}
		for _, k := range []string{"rules", "route", "accept_proxy", "inspect_delay", "http", "tls", "monitor", "log", "tcp_keepalive", "maxconn"} {
			if p.written(Path(path, k)) {
				p.Addf(Path(path, k), "%s has no meaning in mode dr: the director forwards packets, it does not see connections or requests", k)
			}
		}
		if len(f.Bind) != 1 {
			p.Addf(Path(path, "bind"), "mode dr needs exactly one bind address (the VIP and port), got %d", len(f.Bind))
			continue
		}
		ap, err := netip.ParseAddrPort(f.Bind[0])
		if err != nil || !ap.Addr().Is4() || ap.Port() == 0 {
			p.Addf(Path(path, "bind", 0), "bind %q: mode dr needs an IPv4 VIP and a port (e.g. 198.18.0.10:80)", f.Bind[0])
			continue
		}
		vip, ok := c.DRFrontendVIP(f, "")
		if !ok {
			p.Addf(Path(path, "bind", 0), "bind %q: mode dr forwards a VRRP VIP, and %s is in no vrrp instance's vips (on the frontend's nodes)", f.Bind[0], ap.Addr())
			continue
		}
		if vip.Instance.UseVMAC {
			p.Addf(Path(path, "bind", 0), "bind %q: the VIP's vrrp instance %q uses use_vmac, which mode dr does not support (the director answers ARP for the VIP with its interface's own address)", f.Bind[0], vip.Instance.Name)
		}
		for _, j := range drVIPs[ap.Addr()] {
			o := &c.Frontends[j]
			if o.Bind[0] == f.Bind[0] && o.Protocol == f.Protocol {
				p.Addf(Path(path, "bind", 0), "bind %q (%s) is already forwarded by frontend %q", f.Bind[0], f.Protocol, o.Name)
			}
		}
		drVIPs[ap.Addr()] = append(drVIPs[ap.Addr()], i)
		b := c.Backend(f.DefaultBackend)
		if b == nil {
			continue // reported by validateProxy
		}
		c.validateDRBackend(p, f, b, vip)
	}
	// A VIP forwarded by a director is not a local address there: a proxy
	// frontend cannot listen on it.
	for i := range c.Frontends {
		f := &c.Frontends[i]
		if f.Mode == ModeDR {
			continue
		}
		for j, a := range f.Bind {
			host, _, err := net.SplitHostPort(a)
			if err != nil {
				continue
			}
			if ad, err := netip.ParseAddr(host); err == nil {
				if fes := drVIPs[ad]; len(fes) > 0 {
					p.Addf(Path("frontends", i, "bind", j), "%s is forwarded in mode dr by frontend %q: it is not a local address of the director, so a proxy cannot listen on it", ad, c.Frontends[fes[0]].Name)
				}
			}
		}
	}
}

func (c *Cluster) validateDRBackend(p *Problems, f *Frontend, b *Backend, vip DRVIP) {
	bi := slices.IndexFunc(c.Backends, func(x Backend) bool { return x.Name == b.Name })
	path := Path("backends", bi)
	why := "backend " + strconv.Quote(b.Name) + " of mode dr frontend " + strconv.Quote(f.Name)
	if b.Mode != ModeTCP {
		p.Addf(Path(path, "mode"), "%s: mode %s; a director forwards packets, use mode tcp (the default)", why, b.Mode)
	}
	if !slices.Contains(DRAlgorithms, b.Balance.Algorithm) {
		p.Addf(Path(path, "balance", "algorithm"), "%s: balance %s: mode dr chooses by %s", why, b.Balance.Algorithm, orList(DRAlgorithms))
	}
	if b.SendProxy != "" {
		p.Addf(Path(path, "send_proxy"), "%s: send_proxy: a director does not open connections to the servers (they see the client's address anyway)", why)
	}
	if b.Stick != nil && b.Stick.On != StickOnSrc {
		p.Addf(Path(path, "stick", "on"), "%s: mode dr persists on src only (keepalived persistence_timeout)", why)
	}
	for _, k := range []string{"http", "cookie", "ssl", "source"} {
		if p.written(Path(path, k)) {
			p.Addf(Path(path, k), "%s: %s has no meaning in mode dr", why, k)
		}
	}
	for i := range b.Servers {
		s := &b.Servers[i]
		sp := Path(path, "servers", i, "address")
		ap, err := netip.ParseAddrPort(s.Address)
		if err != nil {
			p.Addf(sp, "%s: server address %q: mode dr needs an IPv4 address and port (the director finds the server's MAC by its address)", why, s.Address)
			continue
		}
		if !ap.Addr().Is4() {
			p.Addf(sp, "%s: server address %q: mode dr is IPv4 only", why, s.Address)
		}
		if p.written(Path(path, "servers", i, "source")) {
			p.Addf(Path(path, "servers", i, "source"), "%s: source has no meaning in mode dr: the packets keep the client's address", why)
		}
		if ap.Port() != vip.Addr.Port() {
			p.Addf(sp, "%s: server port %d differs from the VIP's %d: direct routing does not change the packet, the server receives it on the VIP's port", why, ap.Port(), vip.Addr.Port())
		}
		if pv, err := ParseVIP(firstVIP(vip)); err == nil && pv.Prefix.Bits() < 32 && !pv.Prefix.Masked().Contains(ap.Addr()) {
			p.Addf(sp, "%s: server %s is not on the VIP's network %s: direct routing reaches servers on the same link only", why, ap.Addr(), pv.Prefix.Masked())
		}
	}
}

// firstVIP is the instance's vips entry for the frontend's VIP.
func firstVIP(v DRVIP) string {
	for _, s := range v.Instance.VIPs {
		if pv, err := ParseVIP(s); err == nil && pv.Prefix.Addr() == v.Addr.Addr() {
			return s
		}
	}
	return ""
}
