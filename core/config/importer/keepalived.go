package importer

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// keepalived.conf describes one node; the cluster document describes all
// of them. Each imported file is read into a kaFile, then instances of the
// same name are merged: the shared settings once, each file's priority
// under its router_id (the node's name) in `priorities`, every node's
// unicast address in `unicast_peers`.

type kaScript struct {
	node *kanode
	// scriptLine is the `script` line, for warnings about the command.
	scriptLine *kanode
	// weightLine is the `weight` line, for a warning that drops it.
	weightLine         *kanode
	name, script       string
	interval, timeout  config.Duration
	weight, rise, fall int
}

type kaTrackRef struct {
	node    *kanode
	name    string
	weight  *int
	reverse bool
}

// kaTrackProcess is a vrrp_track_process block.
type kaTrackProcess struct {
	node    *kanode
	name    string
	process string
	weight  int // keepalived's default: 1
}

// kaTrackFile is a track_file (vrrp_track_file) block.
type kaTrackFile struct {
	node   *kanode
	name   string
	file   string
	weight int // keepalived's default: 1
}

type kaInstance struct {
	node      *kanode
	file      *kaFile
	name      string
	state     string
	iface     string
	vrid      int
	version   int
	priority  int
	advert    config.Duration
	preempt   *bool
	noPreempt *kanode // the nopreempt line
	pdelay    config.Duration
	authPass  string
	src       string
	peers     []string
	vips4     []string
	vips6     []string
	scripts   []kaTrackRef
	ifaces    []kaTrackRef
	files     []kaTrackRef
	procs     []kaTrackRef
	notify    map[string]string
	smtp      bool
	vmac      bool
	accept    *bool // nil: not said (vipgate accepts)
	garp      kaGARP
	// strict is the instance's strict_mode (nil: global vrrp_strict).
	strict *bool
	// Where the keywords that strict mode overrides are, for warnings.
	stateLine, authLine, authPassLine, unicastLine, acceptLine, pdelayLine *kanode
}

type kaGARP struct {
	delay   *config.Duration
	repeat  int
	refresh config.Duration
}

type kaGroup struct {
	node    *kanode
	name    string
	members []string
	smtp    bool
	notify  map[string]string
}

type kaFile struct {
	name string
	// node is the node named on the command line (NODE=FILE).
	node     string
	routerID string
	version  int
	garp     kaGARP
	emails   []string
	from     string
	smtp     string // host:port
	smtpTO   config.Duration
	smtpLine *kanode
	// smtpAlertLine is the first smtp_alert of an instance or sync group.
	smtpAlertLine *kanode
	// emailsLine, fromLine: where notification_email and
	// notification_email_from are, for warnings.
	emailsLine, fromLine *kanode
	scripts              map[string]*kaScript
	files                map[string]*kaTrackFile
	procs                map[string]*kaTrackProcess
	insts                []*kaInstance
	groups               []*kaGroup
	// vservers are the virtual_server blocks (translated once all files
	// are read, for the nodes that have them).
	vservers []*kanode
	// strict is global_defs vrrp_strict, at strictLine.
	strict     bool
	strictLine *kanode
}

// nodeName is the vipgate node a file describes: as named on the command
// line, else its router_id, else the file name.
func (f *kaFile) nodeName() string {
	if f.node != "" {
		return f.node
	}
	if f.routerID != "" {
		return f.routerID
	}
	return strings.TrimSuffix(filepath.Base(f.name), filepath.Ext(f.name))
}

func secs(c *kanode, t *translator, i int) (config.Duration, bool) {
	v, err := strconv.ParseFloat(c.arg(i), 64)
	if err != nil || v < 0 || v > 1e6 {
		t.warnKA(c, c.keyword(), fmt.Sprintf("%q is not a number of seconds", c.arg(i)))
		return 0, false
	}
	return config.Duration(v * 1e9), true
}

func (t *translator) readKeepalived(name string, nodes []*kanode) *kaFile {
	f := &kaFile{name: name, scripts: map[string]*kaScript{}, files: map[string]*kaTrackFile{}, procs: map[string]*kaTrackProcess{}}
	for _, n := range nodes {
		switch n.keyword() {
		case "global_defs":
			t.kaGlobal(n, f)
		case "vrrp_script":
			if s := t.kaScript(n); s != nil {
				if _, dup := f.scripts[s.name]; dup {
					t.warnKA(n, "vrrp_script "+s.name, "defined twice; the last one counts")
				}
				f.scripts[s.name] = s
			}
		case "track_file", "vrrp_track_file":
			if tf := t.kaTrackFile(n); tf != nil {
				if _, dup := f.files[tf.name]; dup {
					t.warnKA(n, n.keyword()+" "+tf.name, "defined twice; the last one counts")
				}
				f.files[tf.name] = tf
			}
		case "vrrp_track_process":
			if tp := t.kaTrackProcess(n); tp != nil {
				if _, dup := f.procs[tp.name]; dup {
					t.warnKA(n, "vrrp_track_process "+tp.name, "defined twice; the last one counts")
				}
				f.procs[tp.name] = tp
			}
		case "vrrp_instance":
			if in := t.kaInstance(n, f); in != nil {
				f.insts = append(f.insts, in)
			}
		case "vrrp_sync_group":
			g := &kaGroup{node: n, name: n.arg(1), notify: map[string]string{}}
			for _, c := range n.children {
				switch c.keyword() {
				case "group":
					for _, m := range c.children {
						g.members = append(g.members, m.args...)
					}
				case "smtp_alert":
					g.smtp = true
					if f.smtpAlertLine == nil {
						f.smtpAlertLine = c
					}
				case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
					g.notify[c.keyword()] = strings.Join(c.args[1:], " ")
				default:
					t.warnKA(c, c.keyword(), "unknown vrrp_sync_group keyword")
				}
			}
			f.groups = append(f.groups, g)
		case "virtual_server":
			f.vservers = append(f.vservers, n)
		case "virtual_server_group":
			t.warnKA(n, n.keyword(), "virtual_server groups select packets in the kernel; describe each address as its own virtual_server (a frontend); skipped")
		case "static_ipaddress", "static_routes", "static_rules":
			t.warnKA(n, n.keyword(), "static addresses and routes belong to the host's network configuration")
		default:
			t.warnKA(n, n.keyword(), "unknown or unsupported keyword")
		}
	}
	// global_defs may come after the instances: strict mode is applied
	// once the whole file is read.
	for _, in := range f.insts {
		t.kaFinish(in, f)
	}
	return f
}

// kaPriority is the priority keepalived runs an instance with: without a
// `priority`, state MASTER means the address owner (255), else 100
// (vrrp.c, vrrp_complete_instance).
func (in *kaInstance) kaPriority() int {
	switch {
	case in.priority != 0:
		return in.priority
	case in.state == "MASTER":
		return 255
	}
	return 100
}

// kaFinish applies what keepalived 2.2 decides once an instance is read
// (vrrp.c, vrrp_complete_instance), most of it under vrrp_strict, so that
// the vipgate node behaves on the wire like the keepalived peers it joins
// during a rolling migration, and each change is reported where it was
// written. Quotes are keepalived's own log lines.
func (t *translator) kaFinish(in *kaInstance, f *kaFile) {
	strict := f.strict
	if in.strict != nil {
		strict = *in.strict
	}
	prio := in.kaPriority()
	why := "vrrp_strict"
	if in.strict != nil {
		why = "strict_mode"
	}
	if in.stateLine != nil && !(strict && in.state == "MASTER" && prio != 255) {
		t.skipped = append(t.skipped, fmt.Sprintf("%s:%d: %s (only the starting state: vipgate starts as backup and the highest priority wins, as keepalived does)", in.stateLine.file, in.stateLine.line, strings.Join(in.stateLine.args, " ")))
	}
	if strict && in.state == "MASTER" && prio != 255 {
		// "State MASTER must match being address owner": keepalived
		// starts it as BACKUP, so nopreempt below is kept.
		t.warnKA(in.stateLine, "state MASTER", why+": keepalived starts a non-owner (priority below 255) as BACKUP (\"State MASTER must match being address owner\"); vipgate always starts as backup")
		in.state = "BACKUP"
	}
	if strict && in.authLine != nil {
		// The peers still running keepalived send adverts without
		// authentication and drop any that carry it ("received a 1 auth,
		// expecting 0!"): keeping auth_pass would make both sides master.
		t.warnKA(in.authLine, "authentication", why+": keepalived ignores authentication in strict mode (\"Strict mode does not support authentication. Ignoring.\") and sends and expects adverts without it; dropped, so this node and the keepalived peers hear each other")
		in.authPass = ""
	} else if len(in.authPass) > 8 {
		t.warnKA(in.authPassLine, "auth_pass", "longer than 8 characters: keepalived sends only the first 8, and so does vipgate")
		in.authPass = in.authPass[:8]
	}
	if strict && in.unicastLine != nil {
		t.warnKA(in.unicastLine, in.unicastLine.keyword(), why+": keepalived refuses a unicast instance in strict mode on an interface that can multicast (\"Unicast peers are not supported in strict mode\"), so this instance did not run there; translated as unicast as written: remove vrrp_strict on the nodes that keep keepalived, or they will not take part")
	}
	if strict && prio != 255 {
		// keepalived defaults to no_accept under strict mode (and resets
		// an explicit accept with VRRPv2) and drops traffic to the VIPs
		// with a firewall rule. vipgate's proxy listens on the VIPs, so it
		// must accept; the adverts are the same either way.
		at := in.node
		if in.acceptLine != nil {
			at = in.acceptLine
		} else if f.strictLine != nil && in.strict == nil {
			at = f.strictLine
		}
		t.warnKA(at, "no_accept", why+": keepalived runs this instance with no_accept (a firewall rule drops traffic to the VIPs on a non-owner master); vipgate's proxy listens on the VIPs, so a vipgate master accepts it. The adverts do not change")
		in.accept = nil
	}
	if strict && in.pdelay > 0 {
		t.warnKA(in.pdelayLine, "preempt_delay", why+": keepalived resets it in strict mode (\"preempt_delay is incompatible with strict mode - resetting\"); dropped")
		in.pdelay = 0
	}
	if prio == 255 && in.preempt != nil && !*in.preempt {
		t.warnKA(in.noPreempt, "nopreempt", "keepalived ignores nopreempt with priority 255 (\"nopreempt is incompatible with priority 255. resetting nopreempt\"): this node preempts")
		in.preempt = nil
	}
	if in.state == "MASTER" && in.preempt != nil && !*in.preempt {
		t.warnKA(in.noPreempt, "nopreempt", "keepalived ignores nopreempt with state MASTER (\"clearing\"): this node preempts; for nopreempt, set state BACKUP on every node")
		in.preempt = nil
	}
}

func (t *translator) kaGlobal(n *kanode, f *kaFile) {
	for _, c := range n.children {
		k := c.keyword()
		switch k {
		case "notification_email":
			f.emailsLine = c
			for _, e := range c.children {
				f.emails = append(f.emails, e.args...)
			}
			f.emails = append(f.emails, c.args[1:]...)
		case "notification_email_from":
			f.from = c.arg(1)
			f.fromLine = c
		case "smtp_server":
			host, port := c.arg(1), c.arg(2)
			if h, p, ok := strings.Cut(host, ":"); ok && port == "" && !strings.Contains(p, ":") {
				// "smtp.domain.com:25": the port in the host's word, as
				// operators write it (keepalived wants it apart).
				host, port = h, p
			}
			if port == "" {
				port = "25"
			}
			if !validHost(host) {
				t.warnKA(c, k, fmt.Sprintf("%q is neither an IP address nor a host name", host))
				continue
			}
			if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
				t.warnKA(c, k, fmt.Sprintf("port %q out of range 1-65535", port))
				continue
			}
			f.smtp = joinHostPort(host, port)
			f.smtpLine = c
		case "smtp_connect_timeout":
			if d, ok := secs(c, t, 1); ok {
				f.smtpTO = d
			}
		case "smtp_helo_name":
			t.warnKA(c, k, "set helo on the mailer by hand if the relay needs it")
		case "router_id":
			f.routerID = c.arg(1)
			if !config.ValidName(f.routerID) {
				t.warnKA(c, k, fmt.Sprintf("%q is not a valid vipgate node name; using the file name", f.routerID))
				f.routerID = ""
			}
		case "vrrp_version":
			v, err := strconv.Atoi(c.arg(1))
			if err != nil || (v != 2 && v != 3) {
				t.warnKA(c, k, "want 2 or 3")
				continue
			}
			f.version = v
		case "vrrp_garp_master_delay":
			if d, ok := secs(c, t, 1); ok {
				f.garp.delay = &d
			}
		case "vrrp_garp_master_repeat":
			if v, err := strconv.Atoi(c.arg(1)); err == nil && v >= 1 && v <= 100 {
				f.garp.repeat = v
			} else {
				t.warnKA(c, k, "want 1-100")
			}
		case "vrrp_garp_master_refresh":
			if d, ok := secs(c, t, 1); ok {
				f.garp.refresh = d
			}
		case "enable_script_security", "script_user":
			t.skipped = append(t.skipped, fmt.Sprintf("%s:%d: %s (vipgate runs track and notify commands as its own user, without a shell)", c.file, c.line, strings.Join(c.args, " ")))
		case "vrrp_strict":
			f.strict, f.strictLine = true, c
		case "vrrp_skip_check_adv_addr", "vrrp_iptables", "max_auto_priority", "vrrp_no_swap", "checker_no_swap",
			"vrrp_priority", "checker_priority", "lvs_id", "lvs_sync_daemon", "dynamic_interfaces", "vrrp_garp_interval",
			"vrrp_gna_interval", "vrrp_garp_master_refresh_repeat", "vrrp_mcast_group4", "vrrp_mcast_group6", "vrrp_check_unicast_src":
			t.skipped = append(t.skipped, fmt.Sprintf("%s:%d: %s (no vipgate equivalent needed)", c.file, c.line, strings.Join(c.args, " ")))
		default:
			t.warnKA(c, k, "unknown or unsupported global_defs keyword")
		}
	}
}

func joinHostPort(h, p string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + p
	}
	return h + ":" + p
}

func (t *translator) kaScript(n *kanode) *kaScript {
	s := &kaScript{node: n, name: n.arg(1)}
	if s.name == "" {
		t.warnKA(n, "vrrp_script", "missing name")
		return nil
	}
	for _, c := range n.children {
		k := c.keyword()
		num := func(lo, hi int) (int, bool) {
			v, err := strconv.Atoi(c.arg(1))
			if err != nil || v < lo || v > hi {
				t.warnKA(c, k, fmt.Sprintf("%q: want %d..%d", c.arg(1), lo, hi))
				return 0, false
			}
			return v, true
		}
		switch k {
		case "script":
			s.script = strings.Join(c.args[1:], " ")
			s.scriptLine = c
		case "interval":
			if d, ok := secs(c, t, 1); ok {
				s.interval = d
			}
		case "timeout":
			if d, ok := secs(c, t, 1); ok {
				s.timeout = d
			}
		case "weight":
			if v, ok := num(-253, 253); ok {
				s.weight, s.weightLine = v, c
			}
			if c.arg(2) == "reverse" {
				t.warnKA(c, "weight reverse", "not supported")
			}
		case "rise":
			s.rise, _ = num(1, 1000)
		case "fall":
			s.fall, _ = num(1, 1000)
		case "user", "init_fail":
			t.warnKA(c, k, "not supported: vipgate runs track commands as its own user and starts them as failed")
		default:
			t.warnKA(c, k, "unknown vrrp_script keyword")
		}
	}
	if strings.TrimSpace(s.script) == "" {
		t.warnKA(n, "vrrp_script "+s.name, "no script; skipped")
		return nil
	}
	return s
}

func (t *translator) kaInstance(n *kanode, f *kaFile) *kaInstance {
	in := &kaInstance{node: n, file: f, name: n.arg(1), notify: map[string]string{}}
	if !config.ValidName(in.name) {
		t.warnKA(n, "vrrp_instance "+in.name, "instance names use letters, digits, '_', '.', '-'; skipped")
		return nil
	}
	for _, c := range n.children {
		k := c.keyword()
		switch k {
		case "state":
			in.state = strings.ToUpper(c.arg(1))
			in.stateLine = c
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
		case "version":
			v, err := strconv.Atoi(c.arg(1))
			if err != nil || (v != 2 && v != 3) {
				t.warnKA(c, k, "want 2 or 3")
				continue
			}
			in.version = v
		case "advert_int":
			if d, ok := secs(c, t, 1); ok {
				in.advert = d
			}
		case "nopreempt":
			f := false
			in.preempt = &f
			in.noPreempt = c
		case "preempt":
			tr := true
			in.preempt = &tr
		case "preempt_delay":
			if d, ok := secs(c, t, 1); ok {
				in.pdelay = d
				in.pdelayLine = c
			}
		case "authentication":
			in.authLine = c
			for _, a := range c.children {
				switch a.keyword() {
				case "auth_type":
					if a.arg(1) != "PASS" {
						t.warnKA(a, "auth_type "+a.arg(1), "only PASS is supported (AH is not); authentication dropped")
						in.authPass = ""
					}
				case "auth_pass":
					// Shortened (with its warning) once strict mode is
					// known: under vrrp_strict the password is not used.
					in.authPass = a.arg(1)
					in.authPassLine = a
				default:
					t.warnKA(a, a.keyword(), "unknown authentication keyword")
				}
			}
		case "unicast_src_ip":
			in.unicastLine = c
			if validAddr(c.arg(1)) {
				in.src = c.arg(1)
			} else {
				t.warnKA(c, k, fmt.Sprintf("%q is not an IP address", c.arg(1)))
			}
		case "unicast_peer":
			in.unicastLine = c
			for _, p := range c.children {
				if validAddr(p.arg(0)) {
					in.peers = append(in.peers, p.arg(0))
				} else {
					t.warnKA(p, "unicast_peer", fmt.Sprintf("%q is not an IP address", p.arg(0)))
				}
				if len(p.args) > 1 {
					t.warnKA(p, "unicast_peer "+p.arg(1), "per-peer options are not supported")
				}
			}
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			for _, v := range c.children {
				t.kaVIP(v, in)
			}
		case "track_script", "track_interface", "track_file", "track_process":
			refs := map[string]*[]kaTrackRef{"track_script": &in.scripts, "track_interface": &in.ifaces,
				"track_file": &in.files, "track_process": &in.procs}[k]
			for _, s := range c.children {
				*refs = append(*refs, t.trackRef(s))
			}
		case "notify_master", "notify_backup", "notify_fault", "notify_stop", "notify":
			in.notify[k] = strings.Join(c.args[1:], " ")
		case "smtp_alert":
			in.smtp = c.arg(1) == "" || c.arg(1) == "true" || c.arg(1) == "yes" || c.arg(1) == "on"
			if f.smtpAlertLine == nil {
				f.smtpAlertLine = c
			}
		case "use_vmac":
			in.vmac = true
			if c.arg(1) != "" {
				t.warnKA(c, k, "the macvlan's name is chosen by vipgate")
			}
		case "accept", "no_accept":
			on := k == "accept"
			in.accept = &on
			in.acceptLine = c
		case "strict_mode":
			on := c.arg(1) == "" || c.arg(1) == "on" || c.arg(1) == "true" || c.arg(1) == "yes"
			if !on && c.arg(1) != "off" && c.arg(1) != "false" && c.arg(1) != "no" {
				t.warnKA(c, k, fmt.Sprintf("%q: want on or off; taken as on", c.arg(1)))
				on = true
			}
			in.strict = &on
		case "garp_master_delay":
			if d, ok := secs(c, t, 1); ok {
				in.garp.delay = &d
			}
		case "garp_master_repeat":
			if v, err := strconv.Atoi(c.arg(1)); err == nil && v >= 1 && v <= 100 {
				in.garp.repeat = v
			} else {
				t.warnKA(c, k, "want 1-100")
			}
		case "garp_master_refresh":
			if d, ok := secs(c, t, 1); ok {
				in.garp.refresh = d
			}
		case "dont_track_primary", "debug", "native_ipv6", "skip_check_adv_addr", "check_unicast_src":
			t.skipped = append(t.skipped, fmt.Sprintf("%s:%d: %s (no vipgate equivalent needed)", c.file, c.line, strings.Join(c.args, " ")))
		default:
			t.warnKA(c, k, "unknown or unsupported vrrp_instance keyword")
		}
	}
	if in.vrid == 0 {
		t.warnKA(n, "vrrp_instance "+in.name, "no virtual_router_id; skipped")
		return nil
	}
	if in.iface == "" {
		t.warnKA(n, "vrrp_instance "+in.name, "no interface; skipped")
		return nil
	}
	if len(in.vips4)+len(in.vips6) == 0 {
		t.warnKA(n, "vrrp_instance "+in.name, "no virtual_ipaddress; skipped")
		return nil
	}
	return in
}

func (t *translator) trackRef(n *kanode) kaTrackRef {
	r := kaTrackRef{node: n, name: n.arg(0)}
	if n.arg(1) == "weight" {
		if w, err := strconv.Atoi(n.arg(2)); err == nil && w >= -254 && w <= 254 {
			w = max(min(w, 253), -253)
			r.weight = &w
		} else {
			t.warnKA(n, "weight", "want -253..253")
		}
		r.reverse = n.arg(3) == "reverse"
	}
	return r
}

// blockWeight reads the `weight W` of a track block; keepalived takes
// -254..254 (track_file more), vipgate -253..253, where ±254 would make no
// difference anyway (a delta past 253 pins the priority or is FAULT).
func (t *translator) blockWeight(c *kanode) (int, bool) {
	w, err := strconv.Atoi(c.arg(1))
	if err != nil {
		t.warnKA(c, "weight", fmt.Sprintf("%q is not a number", c.arg(1)))
		return 0, false
	}
	if w < -253 || w > 253 {
		t.warnKA(c, "weight", fmt.Sprintf("%d: vipgate takes -253..253; clamped", w))
		w = max(min(w, 253), -253)
	}
	return w, true
}

// kaTrackProcess reads a vrrp_track_process block: `process NAME` and
// `weight W`; vipgate's process track has no parameters, quorum or delays.
func (t *translator) kaTrackProcess(n *kanode) *kaTrackProcess {
	tp := &kaTrackProcess{node: n, name: n.arg(1), weight: 1}
	if tp.name == "" {
		t.warnKA(n, n.keyword(), "missing name")
		return nil
	}
	for _, c := range n.children {
		switch k := c.keyword(); k {
		case "process":
			tp.process = c.arg(1)
			if len(c.args) > 2 {
				t.warnKA(c, "process", "parameters are not supported: the process is matched by name only")
			}
		case "weight":
			if w, ok := t.blockWeight(c); ok {
				tp.weight = w
				if c.arg(2) == "reverse" {
					t.warnKA(c, "weight reverse", "not supported; the weight applies as written")
				}
			}
		case "quorum":
			if c.arg(1) != "1" {
				t.warnKA(c, k, "not supported: the track passes while one matching process runs")
			}
		case "quorum_max", "param_match", "full_command":
			t.warnKA(c, k, "not supported by the process track")
		case "delay", "fork_delay", "terminate_delay":
			t.warnKA(c, k, "not supported; rise and fall on the track give a similar debounce")
		default:
			t.warnKA(c, k, "unknown vrrp_track_process keyword")
		}
	}
	if tp.process == "" {
		t.warnKA(n, "vrrp_track_process "+tp.name, "no process; skipped")
		return nil
	}
	return tp
}

// kaTrackFile reads a track_file block: `file`, `weight W [reverse]`,
// `init_file [VALUE] [overwrite]`.
func (t *translator) kaTrackFile(n *kanode) *kaTrackFile {
	tf := &kaTrackFile{node: n, name: n.arg(1), weight: 1}
	if tf.name == "" {
		t.warnKA(n, n.keyword(), "missing name")
		return nil
	}
	for _, c := range n.children {
		switch c.keyword() {
		case "file":
			tf.file = c.arg(1)
		case "weight":
			if w, ok := t.blockWeight(c); ok {
				if c.arg(2) == "reverse" {
					w = -w // the number times the weight, the other way
				}
				tf.weight = w
			}
		case "init_file":
			// A missing file reads as 0 in vipgate, which is what a bare
			// init_file writes; a value or overwrite has no equivalent.
			if slices.ContainsFunc(c.args[1:], func(a string) bool { return a != "0" }) {
				t.warnKA(c, "init_file", "not supported: vipgate does not write the file (a missing file reads as 0); create it with the value you want")
			}
		default:
			t.warnKA(c, c.keyword(), "unknown track_file keyword")
		}
	}
	if !filepath.IsAbs(tf.file) {
		t.warnKA(n, n.keyword()+" "+tf.name, "no absolute file path; skipped")
		return nil
	}
	return tf
}

func (t *translator) kaVIP(v *kanode, in *kaInstance) {
	a := v.arg(0)
	s := a
	var addr netip.Addr
	if strings.Contains(a, "/") {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			t.warnKA(v, "virtual_ipaddress", fmt.Sprintf("%q is not an address/prefix", a))
			return
		}
		addr = p.Addr()
	} else {
		ad, err := netip.ParseAddr(a)
		if err != nil {
			t.warnKA(v, "virtual_ipaddress", fmt.Sprintf("%q is not an address", a))
			return
		}
		addr = ad
	}
	if addr.Zone() != "" || addr.Is4In6() {
		t.warnKA(v, "virtual_ipaddress", fmt.Sprintf("%q: zones and IPv4-mapped addresses are not supported", a))
		return
	}
	for i := 1; i < len(v.args); i++ {
		switch o := v.args[i]; o {
		case "dev", "label":
			if i+1 >= len(v.args) || strings.ContainsAny(v.args[i+1], " \t") {
				t.warnKA(v, "virtual_ipaddress "+o, "missing value")
				return
			}
			i++
			s += " " + o + " " + v.args[i]
		case "brd", "broadcast", "scope":
			i++
		case "no_track", "home", "nodad", "noprefixroute", "autojoin":
		default:
			t.warnKA(v, "virtual_ipaddress "+o, "option not supported; the rest of the line is ignored")
			i = len(v.args)
		}
	}
	if addr.Is4() {
		in.vips4 = append(in.vips4, s)
	} else {
		in.vips6 = append(in.vips6, s)
	}
}

// translateKeepalived merges the files into the vrrp and alerts sections.
func (t *translator) translateKeepalived(files []*kaFile) {
	type merged struct {
		first *kaInstance
		all   []*kaInstance
	}
	var order []string
	byName := map[string]*merged{}
	for _, f := range files {
		for _, in := range f.insts {
			m := byName[in.name]
			if m == nil {
				m = &merged{first: in}
				byName[in.name] = m
				order = append(order, in.name)
			}
			m.all = append(m.all, in)
		}
	}
	groupOf := map[string]string{}
	var groups []config.VRRPSyncGroup
	var groupSrc []hline
	groupSeen := map[string]bool{}
	for _, f := range files {
		for _, g := range f.groups {
			if groupSeen[g.name] {
				continue
			}
			groupSeen[g.name] = true
			if !config.ValidName(g.name) {
				t.warnKA(g.node, "vrrp_sync_group "+g.name, "invalid name; skipped")
				continue
			}
			var members []string
			for _, m := range g.members {
				if byName[m] == nil {
					t.warnKA(g.node, "vrrp_sync_group "+g.name, fmt.Sprintf("instance %q is not defined (or was skipped)", m))
					continue
				}
				if _, in := groupOf[m]; in {
					t.warnKA(g.node, "vrrp_sync_group "+g.name, fmt.Sprintf("instance %q is already in a sync group", m))
					continue
				}
				members = append(members, m)
				groupOf[m] = g.name
			}
			groups = append(groups, config.VRRPSyncGroup{Name: g.name, Instances: members,
				NotifyMaster: g.notify["notify_master"], NotifyBackup: g.notify["notify_backup"],
				NotifyFault: g.notify["notify_fault"], NotifyStop: g.notify["notify_stop"], Notify: g.notify["notify"]})
			groupSrc = append(groupSrc, hline{file: g.node.file, num: g.node.line})
			if g.smtp {
				for _, m := range members {
					for _, in := range byName[m].all {
						in.smtp = true
					}
				}
			}
		}
	}
	nodes := map[string]bool{}
	var notes []string
	smtp := false
	for _, name := range order {
		m := byName[name]
		in := m.first
		f := in.file
		version := in.version
		if version == 0 {
			version = f.version
		}
		base := config.VRRPInstance{
			Name: name, Interface: in.iface, VRID: in.vrid, Version: version,
			AdvertInterval: in.advert, Preempt: t.kaPreempt(name, m.all), PreemptDelay: in.pdelay, AcceptMode: in.accept,
			AuthPass: in.authPass, UseVMAC: in.vmac,
			NotifyMaster: in.notify["notify_master"], NotifyBackup: in.notify["notify_backup"],
			NotifyFault: in.notify["notify_fault"], NotifyStop: in.notify["notify_stop"], Notify: in.notify["notify"],
		}
		garp := f.garp
		if in.garp.delay != nil {
			garp.delay = in.garp.delay
		}
		if in.garp.repeat != 0 {
			garp.repeat = in.garp.repeat
		}
		if in.garp.refresh != 0 {
			garp.refresh = in.garp.refresh
		}
		base.GARPMasterDelay, base.GARPMasterRepeat, base.GARPMasterRefresh = garp.delay, garp.repeat, garp.refresh
		if r := base.GARPMasterRefresh.D(); r != 0 && r < 1e8 {
			base.GARPMasterRefresh = 0
		}
		if base.PreemptDelay > 0 && !base.PreemptOn() {
			t.warnKA(in.node, "preempt_delay", "has no effect with nopreempt (as in keepalived); dropped")
			base.PreemptDelay = 0
		}
		// Priorities and unicast addresses come from every file.
		var peers []string
		seenPeer := map[string]bool{}
		addPeer := func(a string) {
			if a != "" && !seenPeer[a] {
				seenPeer[a] = true
				peers = append(peers, a)
			}
		}
		base.Priorities = map[string]int{}
		for _, o := range m.all {
			node := o.file.nodeName()
			nodes[node] = true
			base.Priorities[node] = o.kaPriority()
			base.Nodes = append(base.Nodes, node)
			addPeer(o.src)
			for _, p := range o.peers {
				addPeer(p)
			}
			if o.smtp {
				smtp = true
			}
			if o.src != "" && len(m.all) > 1 {
				if base.UnicastSrcIPs == nil {
					base.UnicastSrcIPs = map[string]string{}
				}
				base.UnicastSrcIPs[node] = o.src
			}
			if o == in {
				continue
			}
			// What a node may have of its own: its NIC, and the device of
			// the VIPs (the addresses must be the same).
			if o.iface != in.iface {
				if base.Interfaces == nil {
					base.Interfaces = map[string]string{}
				}
				base.Interfaces[node] = o.iface
			}
			oAddrs, oDev, oOK := vipDev(append(o.vips4, o.vips6...))
			inAddrs, inDev, inOK := vipDev(append(in.vips4, in.vips6...))
			switch {
			case o.vrid != in.vrid || oAddrs != inAddrs:
				t.warnKA(o.node, "vrrp_instance "+name, fmt.Sprintf("differs from %s:%d in virtual_router_id or addresses; the first file's are used", in.node.file, in.node.line))
			case oDev != inDev && (!oOK || !inOK || inDev == "" || oDev == ""):
				t.warnKA(o.node, "vrrp_instance "+name+" virtual_ipaddress", fmt.Sprintf("the VIPs' dev differs from %s:%d in a way vip_devs cannot say (one dev per node for the VIPs that name one); the first file's are used", in.node.file, in.node.line))
			case oDev != inDev:
				if base.VIPDevs == nil {
					base.VIPDevs = map[string]string{}
				}
				base.VIPDevs[node] = oDev
			}
		}
		if len(m.all) == 1 && len(files) == 1 {
			t.warnKA(in.node, "vrrp_instance "+name, fmt.Sprintf("this file describes one node (%s, priority %d): add the other nodes to `nodes` and `priorities`, or import every node's keepalived.conf (--keepalived repeated)", in.file.nodeName(), base.Priorities[in.file.nodeName()]))
		}
		base.UnicastPeers = peers
		// Tracks: the file's vrrp_script definitions, with the instance's weights.
		for _, r := range in.scripts {
			s := f.scripts[r.name]
			if s == nil {
				t.warnKA(r.node, "track_script "+r.name, "no vrrp_script of that name")
				continue
			}
			tr := config.VRRPTrack{Name: s.name, Interval: s.interval, Timeout: s.timeout, Rise: s.rise, Fall: s.fall, Weight: s.weight}
			if r.weight != nil {
				tr.Weight = *r.weight
			}
			if r.reverse {
				t.warnKA(r.node, "track_script "+r.name+" weight reverse", "not supported; the weight applies as written")
			}
			if tr.Interval == 0 {
				tr.Interval = config.Duration(1e9) // keepalived's default
			}
			if tr.Interval.D() < 1e7 {
				tr.Interval = config.Duration(1e7)
			}
			if tr.Timeout > tr.Interval*10 {
				tr.Timeout = tr.Interval * 10
				t.warnKA(s.node, "vrrp_script "+s.name+" timeout", "more than 10 intervals; capped")
			}
			weighted := tr.Weight > 0
			notes = append(notes, t.kaScriptTrack(s, &tr)...)
			if weighted && tr.Weight == 0 && s.weightLine != nil {
				// The weight was dropped: say so at every node's script too.
				for _, o := range m.all {
					if os := o.file.scripts[r.name]; o != in && os != nil && os.weightLine != nil {
						t.warnKA(os.weightLine, "vrrp_script "+r.name, fmt.Sprintf("weight %d dropped, as at %s:%d", os.weight, s.weightLine.file, s.weightLine.line))
					}
				}
			}
			base.Track = append(base.Track, tr)
		}
		for _, r := range in.ifaces {
			tr := config.VRRPTrack{Kind: "interface", Name: "interface-" + r.name, Interface: r.name}
			if r.weight != nil {
				tr.Weight = *r.weight
			}
			base.Track = append(base.Track, tr)
		}
		for _, r := range in.procs {
			tp := f.procs[r.name]
			if tp == nil {
				t.warnKA(r.node, "track_process "+r.name, "no vrrp_track_process of that name")
				continue
			}
			tr := config.VRRPTrack{Kind: "process", Name: "process-" + tp.name, Process: tp.process, Weight: tp.weight}
			if r.weight != nil {
				tr.Weight = *r.weight
			}
			if r.reverse {
				t.warnKA(r.node, "track_process "+r.name+" weight reverse", "not supported; the weight applies as written")
			}
			base.Track = append(base.Track, tr)
		}
		for _, r := range in.files {
			tf := f.files[r.name]
			if tf == nil {
				t.warnKA(r.node, "track_file "+r.name, "no track_file of that name")
				continue
			}
			// keepalived reads the file when inotify says it changed;
			// vipgate reads it every interval.
			tr := config.VRRPTrack{Kind: "file", Name: "file-" + tf.name, File: tf.file, Weight: tf.weight, Interval: config.Duration(1e9)}
			if r.weight != nil {
				tr.Weight = *r.weight
				if r.reverse {
					tr.Weight = -tr.Weight
				}
			}
			base.Track = append(base.Track, tr)
		}
		// One address family per instance: IPv6 addresses get their own
		// VRRPv3 instance with the same VRID, synced with the IPv4 one.
		variants := []struct {
			suffix string
			vips   []string
			v6     bool
		}{{"", in.vips4, false}, {"-v6", in.vips6, true}}
		if len(in.vips4) == 0 {
			variants = variants[1:]
			variants[0].suffix = ""
		}
		var made []string
		for _, v := range variants {
			if len(v.vips) == 0 {
				continue
			}
			inst := base
			inst.Name = name + v.suffix
			inst.VIPs = v.vips
			inst.Track = append([]config.VRRPTrack(nil), base.Track...)
			if !v.v6 {
				inst.UnicastPeers = familyOnly(base.UnicastPeers, false)
			}
			inst.UnicastSrcIPs = familyMap(base.UnicastSrcIPs, v.v6)
			if v.v6 {
				if inst.Version == 2 {
					t.warnKA(in.node, "vrrp_instance "+name, "IPv6 addresses need VRRPv3: their instance uses version 3")
				}
				inst.Version = 3
				inst.UnicastPeers = familyOnly(base.UnicastPeers, true)
				if len(inst.UnicastPeers) < len(base.UnicastPeers) {
					t.warnKA(in.node, "vrrp_instance "+inst.Name+" unicast_peer", "the IPv6 instance cannot advertise to IPv4 peers: it uses IPv6 multicast unless you list the nodes' IPv6 addresses in unicast_peers")
				}
				if inst.AuthPass != "" {
					t.warnKA(in.node, "vrrp_instance "+inst.Name+" authentication", "VRRPv3 has no authentication; dropped for the IPv6 instance")
					inst.AuthPass = ""
				}
			}
			if inst.Version != 3 && inst.AdvertInterval.D()%1e9 != 0 {
				t.warnKA(in.node, "advert_int", "VRRPv2 adverts are whole seconds; rounded up (use vrrp_version 3 for sub-second adverts)")
				inst.AdvertInterval = config.Duration((inst.AdvertInterval.D()/1e9 + 1) * 1e9)
			}
			sort.Strings(inst.Nodes)
			t.c.VRRP.Instances = append(t.c.VRRP.Instances, inst)
			t.vrrpInstSrc = append(t.vrrpInstSrc, hline{file: in.node.file, num: in.node.line})
			made = append(made, inst.Name)
		}
		if len(made) == 2 {
			if g, ok := groupOf[name]; ok {
				for i := range groups {
					if groups[i].Name == g {
						groups[i].Instances = append(groups[i].Instances, made[1])
					}
				}
			} else {
				groups = append(groups, config.VRRPSyncGroup{Name: name + "-sync", Instances: made})
				groupSrc = append(groupSrc, hline{file: in.node.file, num: in.node.line})
			}
		}
	}
	for i, g := range groups {
		if len(g.Instances) >= 2 {
			t.c.VRRP.SyncGroups = append(t.c.VRRP.SyncGroups, g)
			t.vrrpSrc = append(t.vrrpSrc, groupSrc[i])
		} else {
			t.warn(groupSrc[i], "vrrp_sync_group "+g.Name, "fewer than two usable instances; skipped")
		}
	}
	if len(t.c.VRRP.Instances) > 0 {
		var names []string
		for n := range nodes {
			names = append(names, n)
		}
		sort.Strings(names)
		t.note("vrrp", "keepalived.conf is per node (state MASTER/BACKUP, priority, unicast_src_ip); this document is")
		t.note("vrrp", "shared by every node. Each instance runs on `nodes` (the router_id of each imported file, else")
		t.note("vrrp", "its file name: "+strings.Join(names, ", ")+"; they must be the `name:` of the node files) with each")
		t.note("vrrp", "node's priority in `priorities`. `state MASTER` only meant \"start as master\": the highest")
		t.note("vrrp", "priority wins the election (unless preempt: false). unicast_peers lists every node's address;")
		t.note("vrrp", "each node sends from its own address in that list to the others.")
		for _, n := range notes {
			t.note("vrrp", n)
		}
	}
	t.keepalivedAlerts(files, smtp)
}

// familyMap keeps the per-node addresses of one family.
func familyMap(m map[string]string, v6 bool) map[string]string {
	var out map[string]string
	for n, a := range m {
		if ad, err := netip.ParseAddr(a); err == nil && ad.Is6() == v6 {
			if out == nil {
				out = map[string]string{}
			}
			out[n] = a
		}
	}
	return out
}

// vipDev splits virtual_ipaddress lines into what must be the same on
// every node (the addresses and labels) and the one dev the lines name
// (ok false when they name different ones).
func vipDev(vips []string) (addrs, dev string, ok bool) {
	var rest []string
	ok = true
	for _, s := range vips {
		f := strings.Fields(s)
		var keep []string
		for i := 0; i < len(f); i++ {
			if f[i] == "dev" && i+1 < len(f) {
				if dev != "" && dev != f[i+1] {
					ok = false
				}
				dev = f[i+1]
				i++
				continue
			}
			keep = append(keep, f[i])
		}
		rest = append(rest, strings.Join(keep, " "))
	}
	return strings.Join(rest, ","), dev, ok
}

// familyOnly keeps the addresses of one family.
func familyOnly(addrs []string, v6 bool) config.StringList {
	var out config.StringList
	for _, a := range addrs {
		if ad, err := netip.ParseAddr(a); err == nil && ad.Is6() == v6 {
			out = append(out, a)
		}
	}
	return out
}

// kaPreempt is the preempt of a merged instance. keepalived sets it per
// node, vipgate per instance: the node with the highest priority decides,
// as preempting is what it does when it comes back (with two nodes, the
// other never outranks a master). Nodes that differ are warned about.
func (t *translator) kaPreempt(name string, all []*kaInstance) *bool {
	prio := (*kaInstance).kaPriority
	on := func(in *kaInstance) bool { return in.preempt == nil || *in.preempt }
	best := all[0]
	for _, o := range all[1:] {
		if prio(o) > prio(best) {
			best = o
		}
	}
	for _, o := range all {
		if on(o) != on(best) {
			t.warnKA(o.node, "vrrp_instance "+name, fmt.Sprintf("nodes differ on nopreempt; vipgate sets it per instance: %s's (the highest priority) is used", best.file.nodeName()))
		}
	}
	return best.preempt
}
