package importer

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The keepalived model: what keepalived.conf says, checked for meaning.
// The cluster schema's vrrp and alerts sections are placeholders in this
// build, so the model is rendered as a commented summary (and each block
// is a warning) instead of YAML keys.

type kaScript struct {
	node               *kanode
	name, script       string
	interval, timeout  string
	weight, rise, fall int
	hasWeight          bool
}

type kaVIP struct {
	addr  netip.Prefix
	dev   string
	label string
}

type kaInstance struct {
	node         *kanode
	name         string
	state        string
	iface        string
	vrid         int
	priority     int
	advert       string
	nopreempt    bool
	preemptDelay string
	authPass     string
	unicastSrc   string
	peers        []string
	vips         []kaVIP
	trackScripts []string
	trackIfaces  []string
	notify       []string
	smtpAlert    bool
	useVmac      bool
	accept       string
}

type kaGlobal struct {
	emails      []string
	from        string
	smtpServer  string
	smtpTimeout string
	routerID    string
	version     int
}

func (t *translator) translateKeepalived(nodes []*kanode) {
	var g kaGlobal
	var scripts []*kaScript
	var insts []*kaInstance
	var groups []*kanode
	for _, n := range nodes {
		switch n.keyword() {
		case "global_defs":
			t.kaGlobal(n, &g)
		case "vrrp_script":
			if s := t.kaScript(n); s != nil {
				scripts = append(scripts, s)
			}
		case "vrrp_instance":
			if in := t.kaInstance(n); in != nil {
				insts = append(insts, in)
			}
		case "vrrp_sync_group":
			groups = append(groups, n)
			t.warnKA(n, "vrrp_sync_group "+n.arg(1), "VRRP is not part of this build's cluster schema; kept as a comment")
		case "virtual_server", "virtual_server_group", "real_server":
			t.warnKA(n, n.keyword(), "IPVS load balancing is done by vipgate's proxy: describe it as frontends and backends (or import haproxy.cfg)")
		case "static_ipaddress", "static_routes", "static_rules":
			t.warnKA(n, n.keyword(), "static addresses and routes belong to the host's network configuration")
		default:
			t.warnKA(n, n.keyword(), "unknown or unsupported keyword")
		}
	}
	t.renderKeepalived(&g, scripts, insts, groups)
}

func (t *translator) kaGlobal(n *kanode, g *kaGlobal) {
	for _, c := range n.children {
		k := c.keyword()
		switch k {
		case "notification_email":
			for _, e := range c.children {
				g.emails = append(g.emails, e.args...)
			}
			t.warnKA(c, k, "e-mail alerting is not part of this build's cluster schema; kept as a comment")
		case "notification_email_from", "smtp_server", "smtp_connect_timeout", "smtp_helo_name":
			v := strings.Join(c.args[1:], " ")
			switch k {
			case "notification_email_from":
				g.from = v
			case "smtp_server":
				g.smtpServer = v
			case "smtp_connect_timeout":
				g.smtpTimeout = v
			}
			t.warnKA(c, k, "e-mail alerting is not part of this build's cluster schema; kept as a comment")
		case "router_id":
			g.routerID = c.arg(1)
		case "vrrp_version":
			v, err := strconv.Atoi(c.arg(1))
			if err != nil || (v != 2 && v != 3) {
				t.warnKA(c, k, "want 2 or 3")
				continue
			}
			g.version = v
		case "enable_script_security", "script_user", "max_auto_priority", "vrrp_skip_check_adv_addr", "vrrp_strict",
			"vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh", "vrrp_garp_master_refresh_repeat",
			"vrrp_garp_interval", "vrrp_gna_interval", "vrrp_iptables", "lvs_id", "lvs_sync_daemon", "dynamic_interfaces",
			"vrrp_no_swap", "checker_no_swap", "vrrp_priority", "checker_priority", "vrrp_mcast_group4", "vrrp_mcast_group6":
			t.skipped = append(t.skipped, fmt.Sprintf("%s:%d: %s (kept with the VRRP notes below)", c.file, c.line, strings.Join(c.args, " ")))
		default:
			t.warnKA(c, k, "unknown or unsupported global_defs keyword")
		}
	}
}

func (t *translator) kaScript(n *kanode) *kaScript {
	s := &kaScript{node: n, name: n.arg(1)}
	if s.name == "" {
		t.warnKA(n, "vrrp_script", "missing name")
		return nil
	}
	for _, c := range n.children {
		k := c.keyword()
		num := func() (int, bool) {
			v, err := strconv.Atoi(c.arg(1))
			if err != nil {
				t.warnKA(c, k, fmt.Sprintf("%q is not a number", c.arg(1)))
				return 0, false
			}
			return v, true
		}
		switch k {
		case "script":
			s.script = strings.Join(c.args[1:], " ")
		case "interval":
			s.interval = c.arg(1) + "s"
		case "timeout":
			s.timeout = c.arg(1) + "s"
		case "weight":
			if v, ok := num(); ok {
				if v < -253 || v > 253 {
					t.warnKA(c, k, "weight must be -253..253")
					continue
				}
				s.weight, s.hasWeight = v, true
			}
		case "rise":
			s.rise, _ = num()
		case "fall":
			s.fall, _ = num()
		case "user", "init_fail":
			t.warnKA(c, k, "not supported: vipgate runs track scripts as its own user")
		default:
			t.warnKA(c, k, "unknown vrrp_script keyword")
		}
	}
	if s.script == "" {
		t.warnKA(n, "vrrp_script "+s.name, "no script")
	}
	t.warnKA(n, "vrrp_script "+s.name, "VRRP track scripts are not part of this build's cluster schema; kept as a comment")
	return s
}

func (t *translator) kaInstance(n *kanode) *kaInstance {
	in := &kaInstance{node: n, name: n.arg(1)}
	for _, c := range n.children {
		k := c.keyword()
		switch k {
		case "state":
			in.state = strings.ToUpper(c.arg(1))
			if in.state != "MASTER" && in.state != "BACKUP" {
				t.warnKA(c, k, "want MASTER or BACKUP")
			}
		case "interface":
			in.iface = c.arg(1)
		case "virtual_router_id":
			v, err := strconv.Atoi(c.arg(1))
			if err != nil || v < 1 || v > 255 {
				t.warnKA(c, k, "want 1-255")
				continue
			}
			in.vrid = v
		case "priority":
			v, err := strconv.Atoi(c.arg(1))
			if err != nil || v < 1 || v > 255 {
				t.warnKA(c, k, "want 1-255")
				continue
			}
			in.priority = v
		case "advert_int":
			in.advert = c.arg(1) + "s"
		case "nopreempt":
			in.nopreempt = true
		case "preempt_delay":
			in.preemptDelay = c.arg(1) + "s"
		case "authentication":
			for _, a := range c.children {
				switch a.keyword() {
				case "auth_type":
					if a.arg(1) != "PASS" {
						t.warnKA(a, "auth_type "+a.arg(1), "only PASS is interoperable (AH is not supported)")
					}
				case "auth_pass":
					in.authPass = a.arg(1)
				default:
					t.warnKA(a, a.keyword(), "unknown authentication keyword")
				}
			}
		case "unicast_src_ip":
			in.unicastSrc = c.arg(1)
		case "unicast_peer":
			for _, p := range c.children {
				in.peers = append(in.peers, p.arg(0))
				if !validAddr(p.arg(0)) {
					t.warnKA(p, "unicast_peer", fmt.Sprintf("%q is not an IP address", p.arg(0)))
				}
			}
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			for _, v := range c.children {
				if vip, ok := t.kaVIP(v); ok {
					in.vips = append(in.vips, vip)
				}
			}
			if k == "virtual_ipaddress_excluded" {
				t.warnKA(c, k, "excluded addresses are carried like the others (vipgate always sends them in adverts only up to the protocol limit)")
			}
		case "track_script":
			for _, s := range c.children {
				in.trackScripts = append(in.trackScripts, strings.Join(s.args, " "))
			}
		case "track_interface":
			for _, s := range c.children {
				in.trackIfaces = append(in.trackIfaces, strings.Join(s.args, " "))
			}
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
			in.notify = append(in.notify, k+" "+strings.Join(c.args[1:], " "))
		case "smtp_alert":
			in.smtpAlert = c.arg(1) == "" || c.arg(1) == "true" || c.arg(1) == "yes" || c.arg(1) == "on"
		case "use_vmac":
			in.useVmac = true
		case "accept", "no_accept":
			in.accept = k
		case "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_lower_prio_repeat", "dont_track_primary", "debug", "version", "mcast_src_ip", "native_ipv6", "vmac_xmit_base", "strict_mode", "skip_check_adv_addr", "track_process", "track_file":
			in.notify = append(in.notify, strings.Join(c.args, " "))
		default:
			t.warnKA(c, k, "unknown vrrp_instance keyword")
		}
	}
	if in.vrid == 0 {
		t.warnKA(n, "vrrp_instance "+in.name, "no virtual_router_id")
	}
	t.warnKA(n, "vrrp_instance "+in.name, "VRRP is not part of this build's cluster schema; kept as a comment")
	return in
}

func (t *translator) kaVIP(v *kanode) (kaVIP, bool) {
	vip := kaVIP{}
	a := v.arg(0)
	if !strings.Contains(a, "/") {
		ad, err := netip.ParseAddr(a)
		if err != nil {
			t.warnKA(v, "virtual_ipaddress", fmt.Sprintf("%q is not an address", a))
			return vip, false
		}
		vip.addr = netip.PrefixFrom(ad, ad.BitLen())
	} else {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			t.warnKA(v, "virtual_ipaddress", fmt.Sprintf("%q is not an address/prefix", a))
			return vip, false
		}
		vip.addr = p
	}
	for i := 1; i < len(v.args); i++ {
		switch v.args[i] {
		case "dev":
			i++
			vip.dev = v.arg(i)
		case "label":
			i++
			vip.label = v.arg(i)
		case "brd", "scope", "broadcast":
			i++
		case "no_track":
		default:
			t.warnKA(v, "virtual_ipaddress "+v.args[i], "option not supported")
		}
	}
	return vip, true
}

// renderKeepalived writes the commented summary, with how keepalived's
// per-node settings map to one shared document.
func (t *translator) renderKeepalived(g *kaGlobal, scripts []*kaScript, insts []*kaInstance, groups []*kanode) {
	f := &t.footer
	add := func(format string, args ...any) { *f = append(*f, fmt.Sprintf(format, args...)) }
	if len(insts) == 0 && len(scripts) == 0 && len(g.emails) == 0 && g.smtpServer == "" {
		return
	}
	add("")
	add("keepalived (this build's cluster schema has no vrrp or alerts section yet; carry these over by hand)")
	add("")
	add("keepalived.conf is per node: each gateway has its own file with `state MASTER|BACKUP` and its own")
	add("`priority`. The cluster document is shared by every node, so vipgate keeps the VIP, VRID, timers,")
	add("authentication and track sources here once, and each node's priority either per node name in the")
	add("instance or in that node's bootstrap file. `state MASTER` only means \"start as master\": the node")
	add("with the highest priority wins the election either way (unless nopreempt). Import the")
	add("keepalived.conf of each node and take the priorities from each.")
	if g.routerID != "" {
		add("")
		add("router_id %s: this node's name (the `name:` of its node file).", g.routerID)
	}
	if g.version != 0 {
		add("vrrp_version %d", g.version)
	}
	if len(g.emails) > 0 || g.smtpServer != "" {
		add("")
		add("E-mail alerts: to %s, from %s, smtp server %s (connect timeout %ss)", strings.Join(g.emails, ", "), orDash(g.from), orDash(g.smtpServer), orDash(g.smtpTimeout))
	}
	for _, s := range scripts {
		add("")
		add("vrrp_script %s (%s:%d): track source, command %q, every %s, timeout %s, weight %d, rise %d, fall %d",
			s.name, s.node.file, s.node.line, s.script, orDash(s.interval), orDash(s.timeout), s.weight, s.rise, s.fall)
		if strings.Contains(s.script, "killall -0 haproxy") || strings.Contains(s.script, "pidof haproxy") {
			add("  (it checks that haproxy runs: in vipgate the proxy is the same process as VRRP, so this")
			add("   becomes a track on vipgate's own backends' health, or can be dropped)")
		}
	}
	for _, in := range insts {
		add("")
		add("vrrp_instance %s (%s:%d): vrid %d, interface %s, advert_int %s, this node: state %s priority %d",
			in.name, in.node.file, in.node.line, in.vrid, orDash(in.iface), orDash(in.advert), orDash(in.state), in.priority)
		for _, v := range in.vips {
			s := "  VIP " + v.addr.String()
			if v.dev != "" {
				s += " dev " + v.dev
			}
			if v.label != "" {
				s += " label " + v.label
			}
			add("%s", s)
		}
		if in.nopreempt {
			add("  nopreempt")
		}
		if in.preemptDelay != "" {
			add("  preempt_delay %s", in.preemptDelay)
		}
		if in.authPass != "" {
			add("  authentication PASS (password kept out of this file: set it again)")
		}
		if in.unicastSrc != "" || len(in.peers) > 0 {
			add("  unicast from %s to %s", orDash(in.unicastSrc), strings.Join(in.peers, ", "))
		}
		for _, s := range in.trackScripts {
			add("  track_script %s", s)
		}
		for _, s := range in.trackIfaces {
			add("  track_interface %s", s)
		}
		for _, s := range in.notify {
			add("  %s", s)
		}
		if in.smtpAlert {
			add("  smtp_alert: e-mail on every state change")
		}
		if in.useVmac {
			add("  use_vmac")
		}
		if in.accept != "" {
			add("  %s", in.accept)
		}
	}
	for _, gr := range groups {
		add("")
		add("vrrp_sync_group %s (%s:%d):", gr.arg(1), gr.file, gr.line)
		for _, c := range gr.children {
			add("  %s", strings.Join(c.args, " "))
			for _, cc := range c.children {
				add("    %s", strings.Join(cc.args, " "))
			}
		}
	}
}
