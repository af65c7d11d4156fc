package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// VRRP is the `vrrp` section: keepalived's vrrp_instance / vrrp_sync_group
// / vrrp_script in one replicated document. Every node reads the same
// document; an instance says which nodes run it (datacenter and/or nodes)
// and may give each node its own priority.
type VRRP struct {
	Instances  []VRRPInstance  `yaml:"instances,omitempty" json:"instances,omitempty"`
	SyncGroups []VRRPSyncGroup `yaml:"sync_groups,omitempty" json:"sync_groups,omitempty"`
}

// VRRPInstance is one virtual router (keepalived vrrp_instance).
type VRRPInstance struct {
	Name      string `yaml:"name" json:"name"`
	Interface string `yaml:"interface" json:"interface"`
	VRID      int    `yaml:"vrid" json:"vrid"`
	// Version is 2 (default, IPv4 only) or 3. IPv6 VIPs need 3.
	Version int `yaml:"version,omitempty" json:"version,omitempty"`

	// Datacenter: the instance runs on the gateway nodes of this
	// datacenter. Nodes: or on these nodes. Neither: on every gateway node.
	Datacenter string     `yaml:"datacenter,omitempty" json:"datacenter,omitempty"`
	Nodes      StringList `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	// Priority is the base priority (1..255, default 100); Priorities
	// overrides it per node name.
	Priority   int            `yaml:"priority,omitempty" json:"priority,omitempty"`
	Priorities map[string]int `yaml:"priorities,omitempty" json:"priorities,omitempty"`
	// Interfaces, UnicastSrcIPs and VIPDevs give a node its own value by
	// node name, as Priorities does for the priority: nodes whose NICs
	// are named differently still run one instance. VIPDevs replaces the
	// `dev` of the VIPs that name one (a VIP without dev is on the node's
	// interface).
	Interfaces    map[string]string `yaml:"interfaces,omitempty" json:"interfaces,omitempty"`
	UnicastSrcIPs map[string]string `yaml:"unicast_src_ips,omitempty" json:"unicast_src_ips,omitempty"`
	VIPDevs       map[string]string `yaml:"vip_devs,omitempty" json:"vip_devs,omitempty"`

	// AdvertInterval: whole seconds for v2, centiseconds (10ms steps) for
	// v3. Default 1s.
	AdvertInterval Duration `yaml:"advert_interval,omitempty" json:"advert_interval,omitempty"`
	// Preempt defaults to true (keepalived); false is `nopreempt`.
	Preempt      *bool    `yaml:"preempt,omitempty" json:"preempt,omitempty"`
	PreemptDelay Duration `yaml:"preempt_delay,omitempty" json:"preempt_delay,omitempty"`
	// AcceptMode (RFC 5798 Accept_Mode): whether a master that is not the
	// address owner accepts packets addressed to the VIPs. vipgate always
	// does — its own proxy listens there — as keepalived does by default
	// outside vrrp_strict; so nil and true are the same and false is
	// refused (see validateVRRP).
	AcceptMode *bool `yaml:"accept_mode,omitempty" json:"accept_mode,omitempty"`
	// AuthType is keepalived's auth_type: PASS (implied by auth_pass) or
	// empty. AH is refused with an explanation rather than as an unknown key.
	AuthType string `yaml:"auth_type,omitempty" json:"auth_type,omitempty"`
	// AuthPass enables VRRPv2 PASS authentication (at most 8 characters).
	AuthPass string `yaml:"auth_pass,omitempty" json:"auth_pass,omitempty"`

	// UnicastPeers lists the addresses of the nodes taking part; a node
	// skips its own address and sends to the others. UnicastSrcIP is the
	// source address (default: the node's own address from UnicastPeers,
	// else the interface's primary address).
	UnicastSrcIP string     `yaml:"unicast_src_ip,omitempty" json:"unicast_src_ip,omitempty"`
	UnicastPeers StringList `yaml:"unicast_peers,omitempty" json:"unicast_peers,omitempty"`

	// VIPs are keepalived virtual_ipaddress lines:
	// "198.18.1.100/24 [dev eth1] [label eth1:vip]".
	VIPs  StringList  `yaml:"vips" json:"vips"`
	Track []VRRPTrack `yaml:"track,omitempty" json:"track,omitempty"`

	NotifyMaster string `yaml:"notify_master,omitempty" json:"notify_master,omitempty"`
	NotifyBackup string `yaml:"notify_backup,omitempty" json:"notify_backup,omitempty"`
	NotifyFault  string `yaml:"notify_fault,omitempty" json:"notify_fault,omitempty"`
	NotifyStop   string `yaml:"notify_stop,omitempty" json:"notify_stop,omitempty"`
	// Notify is called on every transition with keepalived's arguments:
	// INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>.
	Notify string `yaml:"notify,omitempty" json:"notify,omitempty"`

	// GARPMasterDelay: second burst of gratuitous ARP this long after
	// becoming master (default 5s, 0 disables: keepalived garp_master_delay).
	GARPMasterDelay *Duration `yaml:"garp_master_delay,omitempty" json:"garp_master_delay,omitempty"`
	// GARPMasterRepeat: packets per burst (default 5).
	GARPMasterRepeat int `yaml:"garp_master_repeat,omitempty" json:"garp_master_repeat,omitempty"`
	// GARPMasterRefresh: repeat a burst this often while master (0: never).
	GARPMasterRefresh Duration `yaml:"garp_master_refresh,omitempty" json:"garp_master_refresh,omitempty"`
	// UseVMAC puts the VIPs on a macvlan "vrrp.<vrid>" with the virtual
	// router MAC 00:00:5e:00:01:<vrid> (keepalived use_vmac; IPv4 only).
	UseVMAC bool `yaml:"use_vmac,omitempty" json:"use_vmac,omitempty"`

	// DR lists the VIPs that mode dr frontends forward (derived, not a
	// key: Cluster.DRAddrs): the master answers ARP for them itself rather
	// than adding them to the interface, so that the kernel does not own
	// them (docs/forwarding.md).
	DR []netip.Addr `yaml:"-" json:"-"`
}

// VRRPTrack is one track source (keepalived track_script / track_interface
// / track_process, and the HTTP and local-proxy kinds).
type VRRPTrack struct {
	// Kind: lua, exec, process, interface, http, proxy, file.
	Kind string `yaml:"kind" json:"kind"`
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Interval between checks (default 1s); Timeout per check (default: interval).
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Rise / Fall: consecutive results needed to change state (default 1).
	Rise int `yaml:"rise,omitempty" json:"rise,omitempty"`
	Fall int `yaml:"fall,omitempty" json:"fall,omitempty"`
	// Weight: >0 added while OK, <0 added while failing, 0 = failure is FAULT.
	Weight int `yaml:"weight,omitempty" json:"weight,omitempty"`

	Script    string     `yaml:"script,omitempty" json:"script,omitempty"`       // lua: plugin.function
	Command   []string   `yaml:"command,omitempty" json:"command,omitempty"`     // exec
	Process   string     `yaml:"process,omitempty" json:"process,omitempty"`     // process: name as in /proc/PID/comm
	Interface string     `yaml:"interface,omitempty" json:"interface,omitempty"` // interface: up and running
	URL       string     `yaml:"url,omitempty" json:"url,omitempty"`             // http: 2xx/3xx is OK
	Frontends StringList `yaml:"frontends,omitempty" json:"frontends,omitempty"` // proxy: default all
	// File holds a number (keepalived track_file): times weight it is
	// added to the priority; with weight 0 a non-zero number is FAULT.
	File   string            `yaml:"file,omitempty" json:"file,omitempty"`
	Params map[string]string `yaml:"params,omitempty" json:"params,omitempty"`
}

// VRRPSyncGroup makes instances change state together.
type VRRPSyncGroup struct {
	Name      string     `yaml:"name" json:"name"`
	Instances StringList `yaml:"instances" json:"instances"`
	// Notify scripts of the group, as keepalived's vrrp_sync_group: run
	// when the group as a whole becomes MASTER, BACKUP, FAULT or STOP; the
	// generic one gets `GROUP <name> <state> 0`.
	NotifyMaster string `yaml:"notify_master,omitempty" json:"notify_master,omitempty"`
	NotifyBackup string `yaml:"notify_backup,omitempty" json:"notify_backup,omitempty"`
	NotifyFault  string `yaml:"notify_fault,omitempty" json:"notify_fault,omitempty"`
	NotifyStop   string `yaml:"notify_stop,omitempty" json:"notify_stop,omitempty"`
	Notify       string `yaml:"notify,omitempty" json:"notify,omitempty"`
}

// SameMembers reports whether g and o are the same group of instances
// (their notify scripts aside).
func (g VRRPSyncGroup) SameMembers(o VRRPSyncGroup) bool {
	return g.Name == o.Name && slices.Equal(g.Instances, o.Instances)
}

// VIP is a parsed `vips` entry.
type VIP struct {
	Prefix netip.Prefix
	Dev    string // "" = the instance's interface
	Label  string
}

// ParseVIP parses "ADDR[/LEN] [dev IF] [label L]". A bare address gets a
// host prefix (/32 or /128), as in keepalived.
func ParseVIP(s string) (VIP, error) {
	var v VIP
	f := strings.Fields(s)
	if len(f) == 0 {
		return v, fmt.Errorf("empty address")
	}
	if strings.Contains(f[0], "/") {
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			return v, fmt.Errorf("address %q: %v", f[0], err)
		}
		v.Prefix = p
	} else {
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			return v, fmt.Errorf("address %q: %v", f[0], err)
		}
		v.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if v.Prefix.Addr().Zone() != "" || v.Prefix.Addr().Is4In6() {
		return v, fmt.Errorf("address %q: no zones or IPv4-mapped addresses", f[0])
	}
	for i := 1; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return v, fmt.Errorf("%q needs a value", f[i])
		}
		switch f[i] {
		case "dev":
			v.Dev = f[i+1]
		case "label":
			v.Label = f[i+1]
		default:
			return v, fmt.Errorf("unknown option %q (have dev, label)", f[i])
		}
	}
	return v, nil
}

// Runs reports whether the instance runs on the node: named in nodes, or
// in the instance's datacenter, or everywhere when neither is set.
func (in *VRRPInstance) Runs(node *Node) bool { return runsOn(in.Datacenter, in.Nodes, node) }

// PriorityFor is the base priority of the instance on the named node.
func (in *VRRPInstance) PriorityFor(node string) int {
	if p, ok := in.Priorities[node]; ok {
		return p
	}
	return in.Priority
}

// PreemptOn reports the effective preempt setting.
func (in *VRRPInstance) PreemptOn() bool { return in.Preempt == nil || *in.Preempt }

// Defaults follow keepalived.
func (c *Cluster) applyVRRPDefaults() {
	for i := range c.VRRP.Instances {
		in := &c.VRRP.Instances[i]
		if in.Version == 0 {
			in.Version = 2
		}
		if in.Priority == 0 {
			in.Priority = 100
		}
		if in.AdvertInterval == 0 {
			in.AdvertInterval = Duration(time.Second)
		}
		if in.GARPMasterDelay == nil {
			d := Duration(5 * time.Second)
			in.GARPMasterDelay = &d
		}
		if in.GARPMasterRepeat == 0 {
			in.GARPMasterRepeat = 5
		}
		for j := range in.Track {
			t := &in.Track[j]
			if t.Interval == 0 {
				t.Interval = Duration(time.Second)
			}
			if t.Timeout == 0 {
				t.Timeout = t.Interval
			}
			if t.Rise == 0 {
				t.Rise = 1
			}
			if t.Fall == 0 {
				t.Fall = 1
			}
			if t.Name == "" {
				t.Name = fmt.Sprintf("%s-%d", t.Kind, j)
			}
		}
	}
}

func (c *Cluster) validateVRRP(p *Problems) {
	names := map[string]bool{}
	type key struct {
		iface string
		vrid  int
		v6    bool
	}
	seen := map[key][]int{}
	for i := range c.VRRP.Instances {
		in := &c.VRRP.Instances[i]
		at := func(k ...any) string { return Path(append([]any{"vrrp", "instances", i}, k...)...) }
		switch {
		case in.Name == "":
			p.Addf(at("name"), "instance has no name")
		case !ValidName(in.Name):
			p.Addf(at("name"), "instance name %q: use letters, digits, '_', '.', '-'", in.Name)
		case names[in.Name]:
			p.Addf(at("name"), "duplicate instance name %q", in.Name)
		}
		names[in.Name] = true
		if in.Interface == "" {
			p.Addf(at("interface"), "instance %q has no interface", in.Name)
		} else if !validIfName(in.Interface) {
			p.Addf(at("interface"), "interface %q is not a valid interface name", in.Interface)
		}
		in.validatePerNode(p, at)
		if in.VRID < 1 || in.VRID > 255 {
			p.Addf(at("vrid"), "vrid %d: must be 1..255", in.VRID)
		}
		if in.Version != 2 && in.Version != 3 {
			p.Addf(at("version"), "version %d: must be 2 or 3", in.Version)
		}
		if in.Priority < 1 || in.Priority > 255 {
			p.Addf(at("priority"), "priority %d: must be 1..255 (255 = address owner)", in.Priority)
		}
		for n, pr := range in.Priorities {
			if pr < 1 || pr > 255 {
				p.Addf(at("priorities", n), "priority %d for node %q: must be 1..255", pr, n)
			}
		}
		iv := in.AdvertInterval.D()
		switch in.Version {
		case 2:
			if iv%time.Second != 0 || iv < time.Second || iv > 255*time.Second {
				p.Addf(at("advert_interval"), "advert_interval %s: VRRPv2 needs whole seconds from 1s to 255s (use version: 3 for sub-second adverts)", iv)
			}
		case 3:
			if iv%(10*time.Millisecond) != 0 || iv < 10*time.Millisecond || iv > 40950*time.Millisecond {
				p.Addf(at("advert_interval"), "advert_interval %s: VRRPv3 needs whole centiseconds from 10ms to 40.95s", iv)
			}
		}
		switch strings.ToUpper(in.AuthType) {
		case "":
		case "PASS":
			if in.AuthPass == "" {
				p.Addf(at("auth_type"), "auth_type PASS needs auth_pass")
			}
		case "AH":
			p.Addf(at("auth_type"), "auth_type AH is not supported: IPsec AH authentication was removed from VRRP by RFC 3768 and is deprecated in keepalived; use auth_pass (PASS, VRRPv2) or no authentication")
		default:
			p.Addf(at("auth_type"), "auth_type %q: want PASS (AH is not supported)", in.AuthType)
		}
		if in.AcceptMode != nil && !*in.AcceptMode {
			p.Addf(at("accept_mode"), "accept_mode: false is not supported: vipgate does not filter traffic to a VIP (its own proxy listens there), so a master always accepts it, as keepalived does without vrrp_strict; remove the line")
		}
		if in.AuthPass != "" {
			if in.Version != 2 {
				p.Addf(at("auth_pass"), "auth_pass only exists in VRRPv2 (RFC 5798 removed authentication)")
			}
			if len(in.AuthPass) > 8 {
				p.Addf(at("auth_pass"), "auth_pass is %d characters; VRRP carries at most 8", len(in.AuthPass))
			}
		}
		if in.PreemptDelay < 0 || in.PreemptDelay.D() > time.Hour {
			p.Addf(at("preempt_delay"), "preempt_delay %s: must be 0..1h", in.PreemptDelay.D())
		}
		if in.PreemptDelay > 0 && !in.PreemptOn() {
			p.Addf(at("preempt_delay"), "preempt_delay has no effect with preempt: false")
		}
		if in.GARPMasterRepeat < 1 || in.GARPMasterRepeat > 100 {
			p.Addf(at("garp_master_repeat"), "garp_master_repeat %d: must be 1..100", in.GARPMasterRepeat)
		}
		if r := in.GARPMasterRefresh.D(); r != 0 && r < 100*time.Millisecond {
			p.Addf(at("garp_master_refresh"), "garp_master_refresh %s: use 0 (off) or at least 100ms", r)
		}
		if in.Datacenter != "" && len(c.Datacenters) > 0 && c.Datacenter(in.Datacenter) == nil {
			p.Addf(at("datacenter"), "unknown datacenter %q", in.Datacenter)
		}
		if len(in.VIPs) == 0 {
			p.Addf(at("vips"), "instance %q has no vips", in.Name)
		}
		fam := 0 // 4 or 6
		vipSeen := map[netip.Addr]bool{}
		for j, s := range in.VIPs {
			v, err := ParseVIP(s)
			if err != nil {
				p.Addf(at("vips", j), "vip %q: %v", s, err)
				continue
			}
			f := 4
			if v.Prefix.Addr().Is6() {
				f = 6
			}
			if fam == 0 {
				fam = f
			} else if f != fam {
				p.Addf(at("vips", j), "vip %s: an instance is IPv4 or IPv6, not both (use two instances)", v.Prefix.Addr())
			}
			if f == 6 && in.UseVMAC {
				p.Addf(at("use_vmac"), "use_vmac is IPv4 only in vipgate")
			}
			if f == 6 && in.Version == 2 {
				p.Addf(at("vips", j), "vip %s: IPv6 needs version: 3", v.Prefix.Addr())
			}
			if vipSeen[v.Prefix.Addr()] {
				p.Addf(at("vips", j), "vip %s is listed twice", v.Prefix.Addr())
			}
			vipSeen[v.Prefix.Addr()] = true
		}
		if in.UnicastSrcIP != "" {
			if a, err := netip.ParseAddr(in.UnicastSrcIP); err != nil {
				p.Addf(at("unicast_src_ip"), "unicast_src_ip %q: not an IP address", in.UnicastSrcIP)
			} else if fam != 0 && (a.Is4() != (fam == 4)) {
				p.Addf(at("unicast_src_ip"), "unicast_src_ip %s is not of the VIPs' address family", a)
			}
		}
		for j, s := range in.UnicastPeers {
			a, err := netip.ParseAddr(s)
			if err != nil {
				p.Addf(at("unicast_peers", j), "unicast peer %q: not an IP address", s)
			} else if fam != 0 && (a.Is4() != (fam == 4)) {
				p.Addf(at("unicast_peers", j), "unicast peer %s is not of the VIPs' address family", a)
			}
		}
		// One VRID per link, unless the instances run on different nodes
		// (then they are the same virtual router seen from each node).
		k := key{in.Interface, in.VRID, fam == 6}
		for _, o := range seen[k] {
			if in.VRID > 0 && vrrpNodesOverlap(in, &c.VRRP.Instances[o]) {
				p.Addf(at("vrid"), "vrid %d on %s is already used by instance %q on the same nodes", in.VRID, in.Interface, c.VRRP.Instances[o].Name)
				break
			}
		}
		seen[k] = append(seen[k], i)
		for j, s := range []string{in.NotifyMaster, in.NotifyBackup, in.NotifyFault, in.NotifyStop, in.Notify} {
			if s != "" && strings.TrimSpace(s) == "" {
				p.Addf(at([]string{"notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"}[j]), "empty notify command")
			}
		}
		trackNames := map[string]bool{}
		for j := range in.Track {
			t := &in.Track[j]
			tat := func(k string) string { return at("track", j, k) }
			switch t.Kind {
			case "lua":
				if !strings.Contains(t.Script, ".") {
					p.Addf(tat("script"), "lua track needs script: plugin.function")
				}
			case "exec":
				if len(t.Command) == 0 || t.Command[0] == "" {
					p.Addf(tat("command"), "exec track needs a command")
				}
			case "process":
				if t.Process == "" {
					p.Addf(tat("process"), "process track needs process: NAME")
				}
			case "interface":
				if t.Interface == "" {
					p.Addf(tat("interface"), "interface track needs interface: NAME")
				}
			case "http":
				if !strings.HasPrefix(t.URL, "http://") && !strings.HasPrefix(t.URL, "https://") {
					p.Addf(tat("url"), "http track needs url: http(s)://…, got %q", t.URL)
				}
			case "proxy":
				if len(c.Frontends) == 0 {
					// It would fail forever: FAULT (weight 0) or a lowered
					// priority for nothing.
					p.Addf(tat("kind"), "proxy track: the configuration has no frontends to track")
				}
				for k, f := range t.Frontends {
					if c.Frontend(f) == nil {
						p.Addf(at("track", j, "frontends", k), "unknown frontend %q", f)
					}
				}
			case "file":
				if !filepath.IsAbs(t.File) {
					p.Addf(tat("file"), "file track needs file: an absolute path, got %q", t.File)
				}
			default:
				p.Addf(tat("kind"), "track kind %q: want lua, exec, process, interface, http, proxy or file", t.Kind)
			}
			if trackNames[t.Name] {
				p.Addf(tat("name"), "duplicate track name %q", t.Name)
			}
			trackNames[t.Name] = true
			if t.Interval.D() < 10*time.Millisecond {
				p.Addf(tat("interval"), "interval %s: at least 10ms", t.Interval.D())
			}
			if t.Timeout.D() <= 0 || t.Timeout > t.Interval*10 {
				p.Addf(tat("timeout"), "timeout %s: must be positive and at most 10 intervals", t.Timeout.D())
			}
			if t.Rise < 1 || t.Fall < 1 {
				p.Addf(tat("rise"), "rise and fall must be at least 1")
			}
			if t.Weight < -253 || t.Weight > 253 {
				p.Addf(tat("weight"), "weight %d: must be -253..253", t.Weight)
			}
		}
	}
	inGroup := map[string]string{}
	for i, g := range c.VRRP.SyncGroups {
		at := func(k ...any) string { return Path(append([]any{"vrrp", "sync_groups", i}, k...)...) }
		if !ValidName(g.Name) {
			p.Addf(at("name"), "sync group name %q: use letters, digits, '_', '.', '-'", g.Name)
		}
		if len(g.Instances) < 2 {
			p.Addf(at("instances"), "sync group %q needs at least two instances", g.Name)
		}
		for j, s := range []string{g.NotifyMaster, g.NotifyBackup, g.NotifyFault, g.NotifyStop, g.Notify} {
			if s != "" && strings.TrimSpace(s) == "" {
				p.Addf(at([]string{"notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"}[j]), "empty notify command")
			}
		}
		for j, n := range g.Instances {
			if !names[n] {
				p.Addf(at("instances", j), "unknown instance %q", n)
			} else if prev, ok := inGroup[n]; ok {
				p.Addf(at("instances", j), "instance %q is already in sync group %q", n, prev)
			}
			inGroup[n] = g.Name
		}
	}
}

// vrrpNodesOverlap reports whether two instances certainly share a node.
func vrrpNodesOverlap(a, b *VRRPInstance) bool {
	return overlap(a.Datacenter, a.Nodes, b.Datacenter, b.Nodes)
}

func validIfName(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, "/ \t")
}

// validatePerNode checks the per-node maps: valid values, and node names
// the instance runs on (a typo would silently leave that node on the
// shared value).
func (in *VRRPInstance) validatePerNode(p *Problems, at func(k ...any) string) {
	check := func(key string, m map[string]string, valid func(string) string) {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			in.checkNodeKey(p, at, key, n)
			if why := valid(m[n]); why != "" {
				p.Addf(at(key, n), "%s", why)
			}
		}
	}
	ifName := func(v string) string {
		if !validIfName(v) {
			return fmt.Sprintf("interface %q is not a valid interface name", v)
		}
		return ""
	}
	check("interfaces", in.Interfaces, ifName)
	check("vip_devs", in.VIPDevs, ifName)
	check("unicast_src_ips", in.UnicastSrcIPs, func(v string) string {
		if _, err := netip.ParseAddr(v); err != nil {
			return fmt.Sprintf("unicast_src_ip %q: not an IP address", v)
		}
		return ""
	})
	prios := make([]string, 0, len(in.Priorities))
	for n := range in.Priorities {
		prios = append(prios, n)
	}
	slices.Sort(prios)
	for _, n := range prios {
		in.checkNodeKey(p, at, "priorities", n)
	}
}

func (in *VRRPInstance) checkNodeKey(p *Problems, at func(k ...any) string, key, n string) {
	if !ValidName(n) {
		p.Addf(at(key, n), "node name %q: use letters, digits, '_', '.', '-'", n)
	} else if len(in.Nodes) > 0 && !slices.Contains(in.Nodes, n) {
		p.Addf(at(key, n), "node %q is not in the instance's nodes %v", n, []string(in.Nodes))
	}
}
