package importer

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// keepalived's virtual_server blocks configure IPVS, the kernel's layer-4
// balancer. vipgate has every piece of it as a proxy: a virtual_server is
// a tcp frontend on its address and a backend of its real servers, with
// the checks, the algorithm and the persistence it had. lb_kind NAT keeps
// its meaning (the servers see the clients, their replies come back
// through the director) as a transparent-source backend; lb_kind DR on a
// VRRP VIP keeps its own as a mode dr frontend (direct routing, UDP too);
// what cannot be the same (TUN, DR elsewhere: the servers now see
// connections from the gateway) is a warning at its line.

// lbAlgos maps IPVS schedulers to the closest balance algorithm; why is
// set when the mapping is approximate.
var lbAlgos = map[string]struct{ alg, why string }{
	"rr":    {"roundrobin", ""},
	"wrr":   {"roundrobin", ""}, // vipgate's roundrobin is weighted
	"lc":    {"leastconn", ""},
	"wlc":   {"leastconn", ""}, // weighted, as IPVS's
	"sh":    {"source", ""},
	"mh":    {"source", "maglev hashing becomes source hashing"},
	"dh":    {"roundrobin", "destination hashing has no meaning for a proxy with one destination; roundrobin"},
	"lblc":  {"leastconn", "locality-based least-connection (for caches) becomes leastconn"},
	"lblcr": {"leastconn", "locality-based least-connection with replication becomes leastconn"},
	"sed":   {"leastconn", "shortest expected delay becomes leastconn"},
	"nq":    {"leastconn", "never queue becomes leastconn"},
	"fo":    {"first", "weighted failover becomes first (the first usable server in the list)"},
	"ovf":   {"first", "overflow becomes first"},
	"twos":  {"random", "weighted random twos choice becomes random (two draws)"},
}

// kaCheck is one real_server's health check.
type kaCheck struct {
	node  *kanode
	check config.Check
}

// kaVirtualServer translates one virtual_server block of file f, run by
// the nodes listed (the files that have it).
func (t *translator) kaVirtualServer(n *kanode, nodes []string, allNodes int) {
	if n.arg(1) == "group" || n.arg(1) == "fwmark" {
		t.warnKA(n, "virtual_server "+n.arg(1), "virtual_server groups and firewall marks select packets in the kernel; describe each address as a frontend; skipped")
		return
	}
	ip, port := n.arg(1), n.arg(2)
	if strings.Contains(ip, ":") && port == "" && !strings.Contains(ip, "::") { // "ADDR:PORT"
		ip, port, _ = strings.Cut(ip, ":")
	}
	addr, err := netip.ParseAddr(ip)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p < 1 || p > 65535 {
		t.warnKA(n, "virtual_server", fmt.Sprintf("%q %q: want an IP address and a port (port 0, all ports, has no proxy equivalent); skipped", n.arg(1), n.arg(2)))
		return
	}
	name := "vs-" + strings.ReplaceAll(addr.String(), ":", ".") + "-" + port
	fe := config.Frontend{Name: name, Bind: config.StringList{joinHostPort(addr.String(), port)}, Mode: config.ModeTCP, DefaultBackend: name}
	be := config.Backend{Name: name, Mode: config.ModeTCP, Balance: config.Balance{Algorithm: "roundrobin"}}
	src := beSrc{head: hline{file: n.file, num: n.line}}
	var checks []kaCheck
	var delayLoop config.Duration
	persist := config.Duration(0)
	alpha := false
	vhost := ""        // the Host of HTTP_GET/SSL_GET checks without their own
	var nat *kanode    // lb_kind NAT
	var drKind *kanode // lb_kind DR
	var proto *kanode  // protocol
	algo := ""         // lb_algo as written
	for _, c := range n.children {
		k := c.keyword()
		switch k {
		case "delay_loop":
			if d, ok := secs(c, t, 1); ok {
				delayLoop = d
			}
		case "lb_algo":
			algo = c.arg(1)
			a, ok := lbAlgos[c.arg(1)]
			if !ok {
				t.warnKA(c, k, fmt.Sprintf("%q is not an IPVS scheduler; roundrobin", c.arg(1)))
				continue
			}
			be.Balance.Algorithm = a.alg
			if a.alg == "random" {
				be.Balance.Draws = 2
			}
			if a.why != "" {
				t.warnKA(c, k+" "+c.arg(1), a.why)
			}
		case "lb_kind":
			switch strings.ToUpper(c.arg(1)) {
			case "NAT":
				nat = c
			case "DR":
				drKind = c // decided once the real servers are known
			default:
				t.warnKA(c, k+" "+c.arg(1), lbKindWhy(c.arg(1), ""))
			}
		case "protocol":
			proto = c
		case "persistence_timeout":
			if d, ok := secs(c, t, 1); ok {
				persist = d
			}
		case "persistence_granularity":
			t.warnKA(c, k, "vipgate persists each client address on its own (a /32 or /128 granularity)")
		case "virtualhost":
			vhost = c.arg(1)
		case "nat_mask", "ha_suspend", "sorry_server_inhibit", "sorry_server_lvs_method", "inhibit_on_failure", "ip_family":
			t.skipped = append(t.skipped, fmt.Sprintf("%s:%d: %s (%s)", c.file, c.line, strings.Join(c.args, " "), vsNoMeaning[k]))
		case "sorry_server":
			s, ok := t.kaServer(c, port, "sorry")
			if ok {
				s.Backup = true
				f := false
				s.Check = &f // keepalived does not check it
				be.Servers = append(be.Servers, s)
				src.servers = append(src.servers, hline{file: c.file, num: c.line})
			}
		case "real_server":
			s, ok := t.kaServer(c, port, "")
			if !ok {
				continue
			}
			var ck *kaCheck
			for _, rc := range c.children {
				switch rk := rc.keyword(); rk {
				case "weight":
					w, err := strconv.Atoi(rc.arg(1))
					switch {
					case err != nil || w < 0:
						t.warnKA(rc, rk, fmt.Sprintf("%q is not a weight", rc.arg(1)))
					case w > 256:
						t.warnKA(rc, rk, fmt.Sprintf("%d: vipgate weights are 0..256; 256", w))
						w = 256
						fallthrough
					default:
						s.Weight = &w
					}
				case "uthreshold":
					if v, err := strconv.Atoi(rc.arg(1)); err == nil && v > 0 {
						s.MaxConn = v
					} else {
						t.warnKA(rc, rk, "want a positive number")
					}
				case "inhibit_on_failure":
					t.skipped = append(t.skipped, fmt.Sprintf("%s:%d: %s (%s)", rc.file, rc.line, rk, vsNoMeaning[rk]))
				case "TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK", "MISC_CHECK":
					if ck != nil {
						t.warnKA(rc, rk, "a second check of the server: vipgate checks each server once; ignored")
						continue
					}
					ck = t.kaRealCheck(rc, s.Address)
				default:
					t.warnKA(rc, rk, "unknown or unsupported real_server keyword ("+rsWhy(rk)+")")
				}
			}
			if ck == nil {
				f := false
				s.Check = &f
			} else {
				checks = append(checks, *ck)
			}
			be.Servers = append(be.Servers, s)
			src.servers = append(src.servers, hline{file: c.file, num: c.line})
		case "quorum", "quorum_up", "quorum_down", "hysteresis":
			t.warnKA(c, k, "no vipgate equivalent: the frontend serves while one server is up (a `proxy` VRRP track can lower the node's priority when none is)")
		case "alpha":
			alpha = true
			t.skipped = append(t.skipped, fmt.Sprintf("%s:%d: alpha (servers start down until their first check passes: init_state: down)", c.file, c.line))
		case "omega", "one_packet_scheduling", "ops":
			t.warnKA(c, k, "no vipgate equivalent")
		default:
			t.warnKA(c, k, "unknown or unsupported virtual_server keyword")
		}
	}
	udp := proto != nil && strings.EqualFold(proto.arg(1), "UDP")
	dr := false
	if drKind != nil {
		if why := t.drRefusal(addr, p, be.Servers); why != "" {
			t.warnKA(drKind, "lb_kind DR", lbKindWhy("DR", why))
		} else {
			dr = true
		}
	}
	if proto != nil && !strings.EqualFold(proto.arg(1), "TCP") && (!udp || !dr) {
		why := "vipgate proxies TCP only"
		if udp {
			why += " (UDP is forwarded in direct routing: lb_kind DR on a VRRP VIP)"
		}
		t.warnKA(proto, "protocol "+proto.arg(1), why+"; the virtual_server is skipped")
		return
	}
	if dr {
		fe.Mode = config.ModeDR
		if udp {
			fe.Protocol = config.ProtoUDP
		}
		t.drAlgorithm(drKind, algo, &be)
		t.note("frontend:"+name, fmt.Sprintf("lb_kind DR (%s:%d): forwarded in mode dr (direct routing by this node while it holds the VIP): "+
			"the servers keep the VIP on lo with arp_ignore=1 and arp_announce=2 and answer the clients directly; see docs/forwarding.md", drKind.file, drKind.line))
	}
	if alpha {
		for i := range be.Servers {
			be.Servers[i].InitState = "down"
		}
	}
	if slices.IndexFunc(be.Servers, func(s config.Server) bool { return !s.Backup }) < 0 {
		t.warnKA(n, "virtual_server "+n.arg(1)+" "+n.arg(2), "no real_server: vipgate needs at least one; skipped")
		return
	}
	if len(checks) > 0 {
		ck := checks[0].check
		for _, o := range checks[1:] {
			if !reflect.DeepEqual(o.check, ck) {
				t.warnKA(o.node, o.node.keyword(), fmt.Sprintf("differs from the check at %s:%d: vipgate checks a backend's servers alike; that one is used", checks[0].node.file, checks[0].node.line))
			}
		}
		if ck.HTTP != nil && ck.HTTP.Host == "" && vhost != "" {
			h := *ck.HTTP
			h.Host = vhost
			ck.HTTP = &h
		}
		if delayLoop > 0 {
			ck.Inter = delayLoop
		} else {
			ck.Inter = config.Duration(60e9) // keepalived's default delay_loop
		}
		be.Check = &ck
	}
	if persist > 0 {
		be.Stick = &config.StickRule{Table: name, On: config.StickOnSrc}
		t.c.StickTables = append(t.c.StickTables, config.StickTable{Name: name, Type: "ip", Size: 1 << 20, Expire: persist})
		t.src.tables = append(t.src.tables, hline{file: n.file, num: n.line})
		t.note("backend:"+name, fmt.Sprintf("persistence_timeout %s: a client sticks to its server while it has a connection and for %s after (IPVS templates; here a stick table on the source address with that expiry)", persist.D(), persist.D()))
	}
	if nat != nil {
		// The servers saw the clients' addresses and routed their replies
		// through the director: a transparent-source proxy keeps both.
		be.Source = &config.Source{UseSrc: config.UseSrcClientIP, SetupRouting: true}
		t.note("backend:"+name, fmt.Sprintf("lb_kind NAT (%s:%d): the servers keep seeing the clients' addresses (usesrc clientip); "+
			"their default route must still point to the director (this node, or the VIP of its pair), as under LVS-NAT; "+
			"vipgate installs the routing that delivers their replies to itself (setup_routing), see docs/forwarding.md", nat.file, nat.line))
	}
	if len(nodes) < allNodes {
		fe.Nodes, be.Nodes = nodes, nodes
		t.warnKA(n, "virtual_server "+n.arg(1)+" "+n.arg(2), fmt.Sprintf("only in the file of %s: served there only (nodes: %v), as before; add it to the other nodes if they should serve it when they hold the address", strings.Join(nodes, ", "), nodes))
	}
	if !dr {
		t.note("frontend:"+name, fmt.Sprintf("virtual_server %s %s (%s:%d): IPVS in the kernel before, vipgate's tcp proxy now", n.arg(1), n.arg(2), n.file, n.line))
	}
	t.c.Frontends = append(t.c.Frontends, fe)
	t.src.fe = append(t.src.fe, feSrc{head: hline{file: n.file, num: n.line}})
	t.c.Backends = append(t.c.Backends, be)
	t.src.be = append(t.src.be, src)
}

var vsNoMeaning = map[string]string{
	"nat_mask":                "a NAT netmask for IPVS; vipgate connects to the servers itself",
	"ha_suspend":              "vipgate receives connections for the address only while this node holds it",
	"sorry_server_inhibit":    "the sorry server is a backup server",
	"sorry_server_lvs_method": "vipgate connects to the sorry server itself",
	"inhibit_on_failure":      "IPVS kept a failed server with weight 0; vipgate takes it out of balancing, the same for new connections",
	"ip_family":               "the bind address says the family",
}

func rsWhy(k string) string {
	switch k {
	case "notify_up", "notify_down":
		return "use alerts rules on server.up / server.down, or a Lua handler"
	case "lthreshold":
		return "vipgate has only an upper limit (uthreshold → maxconn)"
	}
	return "not translated"
}

// lbKindWhy says what changes for the servers when IPVS forwarding
// becomes a proxy connection; noDR is why direct routing (mode dr) could
// not take a lb_kind DR virtual_server.
func lbKindWhy(kind, noDR string) string {
	proxied := "vipgate proxies it: each client connection becomes a connection from this node to the server, so the servers see the gateway's address as the source, not the client's (use send_proxy if they read the PROXY protocol)"
	if noDR != "" {
		proxied = "not forwarded in mode dr (" + noDR + "); " + proxied
	}
	switch strings.ToUpper(kind) {
	case "DR":
		return proxied + "; with DR the servers held the VIP on a loopback and answered clients directly: they now answer vipgate, and the VIP on their loopback (and its arp_ignore/arp_announce settings) is no longer needed"
	case "TUN":
		return proxied + "; with TUN the servers decapsulated IPIP and answered clients directly: the tunnel and the VIP on the servers are no longer needed"
	}
	return fmt.Sprintf("%q is not an IPVS forwarding method (DR, TUN, NAT); ", kind) + proxied
}

// kaServer reads `real_server|sorry_server IP [PORT]`.
func (t *translator) kaServer(c *kanode, vsPort, name string) (config.Server, bool) {
	ip, port := c.arg(1), c.arg(2)
	if port == "" {
		port = vsPort
	}
	a, err := netip.ParseAddr(ip)
	if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 {
		t.warnKA(c, c.keyword(), fmt.Sprintf("%q %q: want an IP address and a port; skipped", c.arg(1), c.arg(2)))
		return config.Server{}, false
	}
	if name == "" {
		name = strings.ReplaceAll(a.String(), ":", ".") + "-" + port
	}
	return config.Server{Name: name, Address: joinHostPort(a.String(), port)}, true
}

// kaRealCheck translates a real_server's TCP_CHECK, HTTP_GET, SSL_GET,
// SMTP_CHECK or MISC_CHECK block.
func (t *translator) kaRealCheck(n *kanode, server string) *kaCheck {
	ck := config.Check{Kind: "tcp", Rise: 1, Fall: 2} // keepalived: retry 1, up on the first success
	k := n.keyword()
	switch k {
	case "HTTP_GET", "SSL_GET":
		ck.Kind = "http"
		ck.HTTP = &config.HTTPCheck{Method: "GET", Path: "/"}
		if k == "SSL_GET" {
			ck.SSL, ck.Verify = true, "none" // keepalived does not verify the certificate
		}
	case "SMTP_CHECK":
		ck.ExpectRegex = "^220" // the server's greeting
	case "MISC_CHECK":
		ck.Kind = "exec"
	}
	timeout := config.Duration(5e9) // keepalived's connect_timeout default
	for _, c := range n.children {
		ckw := c.keyword()
		switch ckw {
		case "connect_timeout", "misc_timeout":
			if d, ok := secs(c, t, 1); ok {
				timeout = d
			}
		case "connect_port":
			if p, err := strconv.Atoi(c.arg(1)); err == nil && p > 0 && p < 65536 {
				if !strings.HasSuffix(server, ":"+c.arg(1)) {
					ck.Port = p
				}
			} else {
				t.warnKA(c, ckw, "want a port")
			}
		case "retry", "nb_get_retry":
			if v, err := strconv.Atoi(c.arg(1)); err == nil && v >= 0 {
				ck.Fall = v + 1 // the failure, then that many retries
			} else {
				t.warnKA(c, ckw, "want a number")
			}
		case "delay_before_retry":
			if d, ok := secs(c, t, 1); ok {
				ck.FastInter = d
			}
		case "url":
			for _, u := range c.children {
				switch u.keyword() {
				case "path":
					if ck.HTTP != nil {
						ck.HTTP.Path = u.arg(1)
					}
				case "status_code":
					if v, err := strconv.Atoi(u.arg(1)); err == nil && ck.HTTP != nil {
						ck.HTTP.ExpectStatus = append(ck.HTTP.ExpectStatus, v)
					} else {
						t.warnKA(u, "status_code", "want a status code (ranges are not supported)")
					}
				case "digest":
					t.warnKA(u, "digest", "vipgate does not compare an MD5 digest of the page; use expect_body_regex")
				default:
					t.warnKA(u, u.keyword(), "unknown or unsupported url keyword")
				}
			}
		case "virtualhost":
			if ck.HTTP != nil {
				ck.HTTP.Host = c.arg(1)
			}
		case "misc_path":
			ck.Command = splitWords(strings.Join(c.args[1:], " "))
			t.warnKA(c, ckw, "runs as a vipgate exec check: the command gets HAProxy's four arguments (NOT_USED NOT_USED server-address server-port) after its own")
		case "helo_name", "bindto", "bind_port", "warmup", "misc_dynamic", "user", "fwmark", "alpha":
			t.warnKA(c, ckw, "not supported by vipgate checks")
		default:
			t.warnKA(c, ckw, "unknown or unsupported "+k+" keyword")
		}
	}
	ck.Timeout = timeout
	if ck.Kind == "exec" && len(ck.Command) == 0 {
		t.warnKA(n, k, "no misc_path; the server is not checked")
		return nil
	}
	return &kaCheck{node: n, check: ck}
}

// kaVirtualServers translates the virtual_server blocks of every file:
// the same block in several files once, run by the nodes that have it.
func (t *translator) kaVirtualServers(files []*kaFile) {
	t.collectKAVIPs(files)
	type vs struct {
		first *kanode
		nodes []string
	}
	var order []string
	byKey := map[string]*vs{}
	for _, f := range files {
		for _, n := range f.vservers {
			key := strings.Join(n.args, " ")
			v := byKey[key]
			if v == nil {
				v = &vs{first: n}
				byKey[key] = v
				order = append(order, key)
			} else if blockText(v.first) != blockText(n) {
				t.warnKA(n, key, fmt.Sprintf("differs from %s:%d; the first file's is used", v.first.file, v.first.line))
			}
			v.nodes = append(v.nodes, f.nodeName())
		}
	}
	for _, key := range order {
		t.kaVirtualServer(byKey[key].first, byKey[key].nodes, len(files))
	}
}

// blockText is a keepalived block's words, without positions.
func blockText(n *kanode) string {
	var b strings.Builder
	b.WriteString(strings.Join(n.args, " "))
	b.WriteString("{")
	for _, c := range n.children {
		b.WriteString(blockText(c))
		b.WriteString(";")
	}
	b.WriteString("}")
	return b.String()
}

// kaVIP is a virtual_ipaddress of some vrrp_instance.
type kaVIP struct {
	prefix netip.Prefix
	vmac   bool
}

// collectKAVIPs records every file's IPv4 VIPs (for lb_kind DR).
func (t *translator) collectKAVIPs(files []*kaFile) {
	t.kaVIPs = map[netip.Addr]kaVIP{}
	for _, f := range files {
		for _, in := range f.insts {
			for _, s := range in.vips4 {
				if v, err := config.ParseVIP(s); err == nil {
					if _, seen := t.kaVIPs[v.Prefix.Addr()]; !seen {
						t.kaVIPs[v.Prefix.Addr()] = kaVIP{prefix: v.Prefix, vmac: in.vmac}
					}
				}
			}
		}
	}
}

// drRefusal says why a lb_kind DR virtual_server cannot be a mode dr
// frontend ("" when it can): what config validation would refuse.
func (t *translator) drRefusal(addr netip.Addr, port int, servers []config.Server) string {
	if !addr.Is4() {
		return "mode dr is IPv4 only"
	}
	v, ok := t.kaVIPs[addr]
	if !ok {
		return fmt.Sprintf("%s is no vrrp_instance's virtual_ipaddress, and a director forwards a VIP it holds by VRRP", addr)
	}
	if v.vmac {
		return "its vrrp_instance uses use_vmac"
	}
	for _, s := range servers {
		ap, err := netip.ParseAddrPort(s.Address)
		switch {
		case err != nil || !ap.Addr().Is4():
			return fmt.Sprintf("real_server %s is not an IPv4 address", s.Address)
		case int(ap.Port()) != port:
			return fmt.Sprintf("real_server %s: a port other than the virtual_server's", s.Address)
		case v.prefix.Bits() < 32 && !v.prefix.Masked().Contains(ap.Addr()):
			return fmt.Sprintf("real_server %s is not on the VIP's network %s", ap.Addr(), v.prefix.Masked())
		}
	}
	return ""
}

// drAlgorithm maps lb_algo to what a director offers: rr/wrr, wlc/lc and sh
// as they are; mh (Maglev on the source address) is source with
// consistent hashing; the rest to the nearest, with a warning.
func (t *translator) drAlgorithm(at *kanode, algo string, be *config.Backend) {
	switch be.Balance.Algorithm {
	case "roundrobin", "leastconn":
		if algo == "rr" || algo == "wrr" || algo == "" {
			t.note("backend:"+be.Name, "lb_algo "+orWord(algo, "rr")+" in mode dr: a director failover resets established connections (the new master counts its own turns) as with IPVS without its sync daemon; balance: {algorithm: maglev} keeps them (docs/forwarding.md)")
		}
	case "source":
		if algo == "mh" {
			be.Balance.HashType = "consistent"
		}
	case "first":
		be.Balance.Algorithm = "roundrobin"
		t.warnKA(at, "lb_algo "+algo, "mode dr has no first-server algorithm; roundrobin")
	default:
		t.warnKA(at, "lb_algo "+algo, "mode dr chooses by maglev, roundrobin, leastconn or source; leastconn")
		be.Balance.Algorithm, be.Balance.Draws = "leastconn", 0
	}
}

func orWord(a, def string) string {
	if a == "" {
		return def
	}
	return a
}
