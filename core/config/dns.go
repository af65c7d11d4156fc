package config

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// DNS is the authoritative DNS section: zones with static records and
// service records whose answers are computed from the cluster state.
type DNS struct {
	Zones []DNSZone `yaml:"zones,omitempty" json:"zones,omitempty"`
	// RRL is response rate limiting against reflection/amplification (UDP).
	RRL DNSRRL `yaml:"rrl,omitempty" json:"rrl,omitempty"`
	// TCP bounds DNS over TCP connections.
	TCP DNSTCP `yaml:"tcp,omitempty" json:"tcp,omitempty"`
}

// DNSTCP bounds the TCP connections of the DNS server, so that one client
// cannot take every slot (PowerDNS max-tcp-connections-per-client,
// dnsdist setMaxTCPConnectionsPerClient, Unbound tcp-connection-limit;
// BIND tcp-clients and Knot tcp-max-clients are the overall bound).
type DNSTCP struct {
	// PerClient is how many connections one client address (an IPv6
	// client: its /64) may hold at once (default 16); more are closed at
	// once.
	PerClient int `yaml:"per_client,omitempty" json:"per_client,omitempty"`
	// MaxConnections bounds the connections of each listen address
	// (default 1024); more are closed at once.
	MaxConnections int `yaml:"max_connections,omitempty" json:"max_connections,omitempty"`
	// IdleTimeout closes a connection that sends no query for this long
	// (default 10s: Knot's tcp-idle-timeout; RFC 7766 asks for seconds).
	IdleTimeout Duration `yaml:"idle_timeout,omitempty" json:"idle_timeout,omitempty"`
}

// Defaults of DNSTCP.
const (
	DefaultDNSTCPPerClient      = 16
	DefaultDNSTCPMaxConnections = 1024
	DefaultDNSTCPIdleTimeout    = 10 * time.Second
)

// DNSZone is one zone this cluster is authoritative for.
type DNSZone struct {
	// Name is the zone apex, e.g. example.com (a trailing dot is optional).
	Name string `yaml:"name" json:"name"`
	// TTL is the default TTL of static records, in seconds (default 300).
	TTL uint32 `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	SOA DNSSOA `yaml:"soa,omitempty" json:"soa,omitempty"`
	// NS are the zone's name servers (every gateway node may be listed).
	NS StringList `yaml:"ns,omitempty" json:"ns,omitempty"`
	// Records are static records.
	Records []DNSRecord `yaml:"records,omitempty" json:"records,omitempty"`
	// Services are names answered with the VIP a client should use now.
	Services []DNSService `yaml:"services,omitempty" json:"services,omitempty"`
	// Transfer lists the networks (secondaries) allowed to AXFR the zone
	// over TCP. Empty: transfers are refused.
	Transfer StringList `yaml:"transfer,omitempty" json:"transfer,omitempty"`
	// Notify lists secondaries (address or address:port, port 53 by
	// default) sent a NOTIFY (RFC 1996) whenever the zone's serial changes.
	Notify StringList `yaml:"notify,omitempty" json:"notify,omitempty"`
}

// DNSSOA is the SOA record at the apex. Timers are in seconds.
type DNSSOA struct {
	// MName defaults to the first NS; RName (mailbox, "hostmaster.zone.") to hostmaster.<zone>.
	MName string `yaml:"mname,omitempty" json:"mname,omitempty"`
	RName string `yaml:"rname,omitempty" json:"rname,omitempty"`
	// Serial 0 (default): derived by the server, and increased on every
	// change of the zone (RFC 1982 arithmetic).
	Serial  uint32 `yaml:"serial,omitempty" json:"serial,omitempty"`
	Refresh uint32 `yaml:"refresh,omitempty" json:"refresh,omitempty"`
	Retry   uint32 `yaml:"retry,omitempty" json:"retry,omitempty"`
	Expire  uint32 `yaml:"expire,omitempty" json:"expire,omitempty"`
	// Minimum is the negative-caching TTL (RFC 2308), default 60.
	Minimum uint32 `yaml:"minimum,omitempty" json:"minimum,omitempty"`
}

// DNSRecord is one static record. Data is the record's RDATA in zone-file
// syntax ("10 mail.example.com." for MX, "0 issue \"letsencrypt.org\"" for CAA).
type DNSRecord struct {
	// Name relative to the zone ("www", "*.dev", "@" for the apex) or
	// absolute with a trailing dot.
	Name string `yaml:"name" json:"name"`
	Type string `yaml:"type" json:"type"`
	TTL  uint32 `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	// Data is one RDATA, or a list for several records of the same name and type.
	Data StringList `yaml:"data" json:"data"`
}

// DNSService is a name whose A/AAAA answers are computed per query.
type DNSService struct {
	// Name relative to the zone ("mail") or absolute ("mail.example.com.").
	Name string `yaml:"name" json:"name"`
	// Policy: failover (default), topology, weighted, all-healthy.
	Policy string `yaml:"policy,omitempty" json:"policy,omitempty"`
	// TTL of the answers in seconds (default 10): short, so that clients
	// follow a failover quickly.
	TTL uint32 `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	// VIPs per datacenter name.
	VIPs map[string]StringList `yaml:"vips" json:"vips"`
	// Backends whose health counts: a datacenter serves this name only while
	// each of them has a usable server there.
	Backends StringList `yaml:"backends,omitempty" json:"backends,omitempty"`
	// Hook names a Lua function that may override the answer.
	Hook string `yaml:"hook,omitempty" json:"hook,omitempty"`
}

// DNSRRL is response rate limiting, keyed by client network.
type DNSRRL struct {
	// ResponsesPerSecond per client network; 0 (default) turns RRL off.
	ResponsesPerSecond int `yaml:"responses_per_second,omitempty" json:"responses_per_second,omitempty"`
	// Burst is how many responses may be sent at once (default: one second's worth).
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Slip: every Slip-th limited response is sent as an empty truncated
	// answer (so real clients retry over TCP); 0 drops all (default 2).
	Slip *int `yaml:"slip,omitempty" json:"slip,omitempty"`
	// IPv4Prefix / IPv6Prefix group clients (default 24 and 56).
	IPv4Prefix int `yaml:"ipv4_prefix,omitempty" json:"ipv4_prefix,omitempty"`
	IPv6Prefix int `yaml:"ipv6_prefix,omitempty" json:"ipv6_prefix,omitempty"`
}

// DNS policies.
const (
	DNSFailover   = "failover"
	DNSTopology   = "topology"
	DNSWeighted   = "weighted"
	DNSAllHealthy = "all-healthy"
)

// DNSFQDN makes name absolute inside zone: "@" is the apex, a name with a
// trailing dot is taken as is, and so is a name that already ends with the
// zone's name ("mail.example.com" in zone example.com); anything else is
// relative to the zone. The result is in lower case.
func DNSFQDN(name, zone string) string {
	zone = mdns.Fqdn(strings.ToLower(zone))
	name = strings.ToLower(name)
	switch {
	case name == "@" || name == "":
		return zone
	case strings.HasSuffix(name, "."):
		return name
	case zone == ".":
		return name + "."
	case name+"." == zone || strings.HasSuffix(name+".", "."+zone):
		return name + "."
	}
	return name + "." + zone
}

// ParseDNSRecord parses one record's RDATA in zone-file syntax, relative
// names in it being relative to origin (the zone apex).
//
// TXT data not starting with a quote is one string, spaces included
// ("v=spf1 mx -all"), which is what a YAML author means.
func ParseDNSRecord(owner string, ttl uint32, typ, data, origin string) (mdns.RR, error) {
	if strings.EqualFold(typ, "TXT") && !strings.HasPrefix(strings.TrimSpace(data), `"`) {
		data = strconv.Quote(data)
	}
	zp := mdns.NewZoneParser(strings.NewReader(fmt.Sprintf("%s %d IN %s %s\n", owner, ttl, strings.ToUpper(typ), data)), mdns.Fqdn(origin), "")
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, errors.New(dnsErr(err))
	}
	if !ok || rr == nil {
		return nil, errors.New("no record")
	}
	if _, more := zp.Next(); more {
		return nil, errors.New("more than one record; use a list for several values")
	}
	return rr, nil
}

func (c *Cluster) applyDNSDefaults() {
	for i := range c.DNS.Zones {
		z := &c.DNS.Zones[i]
		if z.TTL == 0 {
			z.TTL = 300
		}
		s := &z.SOA
		if s.MName == "" && len(z.NS) > 0 {
			s.MName = mdns.Fqdn(z.NS[0])
		}
		if s.RName == "" {
			s.RName = "hostmaster." + mdns.Fqdn(z.Name)
		}
		if s.Refresh == 0 {
			s.Refresh = 3600
		}
		if s.Retry == 0 {
			s.Retry = 600
		}
		if s.Expire == 0 {
			s.Expire = 604800
		}
		if s.Minimum == 0 {
			s.Minimum = 60
		}
		for j := range z.Services {
			sv := &z.Services[j]
			if sv.Policy == "" {
				sv.Policy = DNSFailover
			}
			if sv.TTL == 0 {
				sv.TTL = 10
			}
		}
	}
	if t := &c.DNS.TCP; t.PerClient == 0 {
		t.PerClient = DefaultDNSTCPPerClient
	}
	if t := &c.DNS.TCP; t.MaxConnections == 0 {
		t.MaxConnections = DefaultDNSTCPMaxConnections
	}
	if t := &c.DNS.TCP; t.IdleTimeout == 0 {
		t.IdleTimeout = Duration(DefaultDNSTCPIdleTimeout)
	}
	r := &c.DNS.RRL
	if r.ResponsesPerSecond > 0 && r.Burst == 0 {
		r.Burst = r.ResponsesPerSecond
	}
	if r.Slip == nil {
		two := 2
		r.Slip = &two
	}
	if r.IPv4Prefix == 0 {
		r.IPv4Prefix = 24
	}
	if r.IPv6Prefix == 0 {
		r.IPv6Prefix = 56
	}
}

// dnsStaticTypes are the record types accepted in records.
var dnsStaticTypes = map[string]bool{
	"A": true, "AAAA": true, "CNAME": true, "MX": true, "TXT": true, "SRV": true,
	"CAA": true, "NS": true, "PTR": true,
}

func (c *Cluster) validateDNS(p *Problems) {
	zones := map[string]int{}
	for i := range c.DNS.Zones {
		z := &c.DNS.Zones[i]
		path := Path("dns", "zones", i)
		if z.Name == "" {
			p.Addf(path, "zone has no name")
			continue
		}
		if _, ok := mdns.IsDomainName(z.Name); !ok || strings.Contains(z.Name, " ") {
			p.Addf(Path(path, "name"), "zone name %q is not a domain name", z.Name)
			continue
		}
		apex := DNSFQDN("@", z.Name)
		if j, dup := zones[apex]; dup {
			p.Addf(Path(path, "name"), "duplicate zone %q (first at dns.zones.%d)", z.Name, j)
		}
		zones[apex] = i
		if len(z.NS) == 0 {
			p.Addf(path, "zone %q needs at least one ns (the names of the gateway nodes serving it)", z.Name)
		}
		for j, ns := range z.NS {
			if _, ok := mdns.IsDomainName(ns); !ok {
				p.Addf(Path(path, "ns", j), "ns %q is not a domain name", ns)
			}
		}
		for _, f := range []struct{ k, v string }{{"mname", z.SOA.MName}, {"rname", z.SOA.RName}} {
			if _, ok := mdns.IsDomainName(f.v); f.v != "" && !ok {
				p.Addf(Path(path, "soa", f.k), "%s %q is not a domain name", f.k, f.v)
			}
		}
		for j, n := range z.Transfer {
			if _, err := ParsePrefix(n); err != nil {
				p.Addf(Path(path, "transfer", j), "%v", err)
			}
		}
		for j, n := range z.Notify {
			if _, err := ParseDNSNotify(n); err != nil {
				p.Addf(Path(path, "notify", j), "%v", err)
			}
		}
		// What each owner name holds, to catch CNAME conflicts.
		owners := map[string]map[string]bool{}
		note := func(owner, typ, where string) {
			have := owners[owner]
			if have == nil {
				have = map[string]bool{}
				owners[owner] = have
			}
			for prev := range have {
				addr := func(t string) bool { return t == "A" || t == "AAAA" || t == "service" }
				if prev == "CNAME" || typ == "CNAME" || (prev == "service" && addr(typ)) || (typ == "service" && addr(prev)) {
					p.Addf(where, "%s %s conflicts with the %s at the same name", owner, typ, prev)
					break
				}
			}
			have[typ] = true
		}
		for j := range z.Records {
			r := &z.Records[j]
			rp := Path(path, "records", j)
			owner := DNSFQDN(r.Name, z.Name)
			if r.Name == "" {
				p.Addf(rp, "record has no name (use \"@\" for the zone apex)")
				continue
			}
			if _, ok := mdns.IsDomainName(owner); !ok || !mdns.IsSubDomain(apex, owner) {
				p.Addf(Path(rp, "name"), "record name %q is not inside zone %q", r.Name, z.Name)
				continue
			}
			typ := strings.ToUpper(r.Type)
			if !dnsStaticTypes[typ] {
				p.Addf(Path(rp, "type"), "record type %q: want one of A, AAAA, CNAME, MX, TXT, SRV, CAA, NS, PTR", r.Type)
				continue
			}
			if typ == "CNAME" && owner == apex {
				p.Addf(Path(rp, "type"), "a CNAME cannot be at the zone apex")
			}
			if len(r.Data) == 0 {
				p.Addf(rp, "record has no data")
			}
			if typ == "CNAME" && len(r.Data) > 1 {
				p.Addf(Path(rp, "data"), "a CNAME has exactly one target")
			}
			for k, d := range r.Data {
				if _, err := ParseDNSRecord(owner, 1, typ, d, apex); err != nil {
					p.Addf(Path(rp, "data", k), "%s data %q: %v", typ, d, err)
				}
			}
			if typ == "NS" && owner == apex {
				p.Addf(Path(rp, "type"), "apex NS records come from the zone's ns list")
			}
			note(owner, typ, rp)
		}
		svcs := map[string]int{}
		for j := range z.Services {
			s := &z.Services[j]
			sp := Path(path, "services", j)
			if s.Name == "" {
				p.Addf(sp, "service has no name")
				continue
			}
			owner := DNSFQDN(s.Name, z.Name)
			if _, ok := mdns.IsDomainName(owner); !ok || !mdns.IsSubDomain(apex, owner) || strings.Contains(owner, "*") {
				p.Addf(Path(sp, "name"), "service name %q is not a plain name inside zone %q", s.Name, z.Name)
				continue
			}
			if k, dup := svcs[owner]; dup {
				p.Addf(Path(sp, "name"), "duplicate service %q (first at %s)", s.Name, Path(path, "services", k))
			}
			svcs[owner] = j
			note(owner, "service", sp)
			switch s.Policy {
			case DNSFailover, DNSTopology, DNSWeighted, DNSAllHealthy:
			default:
				p.Addf(Path(sp, "policy"), "policy %q: want failover, topology, weighted or all-healthy", s.Policy)
			}
			if len(s.VIPs) == 0 {
				p.Addf(sp, "service %q has no vips (datacenter name → addresses)", s.Name)
			}
			dcs := make([]string, 0, len(s.VIPs))
			for dc := range s.VIPs {
				dcs = append(dcs, dc)
			}
			sort.Strings(dcs)
			for _, dc := range dcs {
				if c.Datacenter(dc) == nil {
					known := map[string]int{}
					for k, d := range c.Datacenters {
						known[d.Name] = k
					}
					p.Addf(Path(sp, "vips", dc), "datacenter %q is not defined%s", dc, suggestName(dc, known))
				}
				if len(s.VIPs[dc]) == 0 {
					p.Addf(Path(sp, "vips", dc), "no addresses for datacenter %q", dc)
				}
				for k, a := range s.VIPs[dc] {
					if _, err := netip.ParseAddr(a); err != nil {
						p.Addf(Path(sp, "vips", dc, k), "VIP %q is not an IP address", a)
					}
				}
			}
			// A bare function name is resolved by the Lua section's own
			// checks (which run after this one); a plugin must exist.
			if pl, _, ok := strings.Cut(s.Hook, "."); ok && (pl == "" || c.Lua.Plugin(pl) == nil) {
				p.Addf(Path(sp, "hook"), "hook %q: no lua plugin %q (write plugin.function)", s.Hook, pl)
			}
			for k, b := range s.Backends {
				if c.Backend(b) == nil {
					p.Addf(Path(sp, "backends", k), "backend %q is not defined", b)
				}
			}
		}
	}
	// A zone inside another zone would make answers depend on map order.
	for a, i := range zones {
		for b := range zones {
			if a != b && mdns.IsSubDomain(b, a) {
				p.Addf(Path("dns", "zones", i, "name"), "zone %q is inside zone %q; delegate with an NS record instead", a, b)
			}
		}
	}
	if t := c.DNS.TCP; t.PerClient < 0 {
		p.Addf("dns.tcp.per_client", "must not be negative")
	}
	if t := c.DNS.TCP; t.MaxConnections < 0 {
		p.Addf("dns.tcp.max_connections", "must not be negative")
	}
	r := &c.DNS.RRL
	if r.ResponsesPerSecond < 0 {
		p.Addf("dns.rrl.responses_per_second", "must not be negative")
	}
	if r.Burst < 0 {
		p.Addf("dns.rrl.burst", "must not be negative")
	}
	if r.Slip != nil && (*r.Slip < 0 || *r.Slip > 10) {
		p.Addf("dns.rrl.slip", "slip %d: want 0 to 10", *r.Slip)
	}
	if r.IPv4Prefix < 1 || r.IPv4Prefix > 32 {
		p.Addf("dns.rrl.ipv4_prefix", "ipv4_prefix %d: want 1 to 32", r.IPv4Prefix)
	}
	if r.IPv6Prefix < 1 || r.IPv6Prefix > 128 {
		p.Addf("dns.rrl.ipv6_prefix", "ipv6_prefix %d: want 1 to 128", r.IPv6Prefix)
	}
}

// ParseDNSNotify parses a notify target: an address, or address:port.
func ParseDNSNotify(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("notify %q: want an IP address or address:port ([v6]:port)", s)
	}
	return ap, nil
}

// dnsErr strips the zone-parser's position noise ("dns: bad MX Mx: \"x\" at line: 1:40").
func dnsErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, " at line:"); i > 0 {
		s = s[:i]
	}
	return strings.TrimPrefix(s, "dns: ")
}

// NodeDNS is where this node's DNS server listens (bootstrap file).
type NodeDNS struct {
	// Listen: host:port addresses, served on UDP and TCP. Empty: DNS off.
	Listen StringList `yaml:"listen,omitempty"`
	// Sockets per UDP address (SO_REUSEPORT); default: one per CPU.
	Sockets int `yaml:"sockets,omitempty"`
}

func (n *Node) applyDNSDefaults() {}

func (n *Node) validateDNS(p *Problems) {
	for i, a := range n.DNS.Listen {
		if err := checkHostPort(a, true); err != nil {
			p.Addf(Path("dns", "listen", i), "listen %q: %v", a, err)
		}
	}
	if n.DNS.Sockets < 0 || n.DNS.Sockets > 256 {
		p.Addf("dns.sockets", "sockets %d: want 0 (one per CPU) to 256", n.DNS.Sockets)
	}
}
