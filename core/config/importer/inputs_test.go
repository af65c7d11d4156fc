package importer

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// The real deployments vipgate takes over (shared/migration-inputs): each
// is imported whole, as its operator would (every node's files, named),
// and every keyword of every file must be translated or reported at its
// own file:line.

type deployment struct {
	dir        string
	haproxy    []string // NODE=FILE, or one FILE for every node
	keepalived []string // [NODE=]FILE
	// datacenters: --datacenter NODE=DC, where the deployment has them
	datacenters map[string]string
}

var deployments = []deployment{
	{"seed000-lab", []string{"haproxy.cfg"}, []string{"keepalived-lb01.conf", "keepalived-lb02.conf"}, nil},
	{"seed001-compose-unicast", []string{"haproxy.cfg"}, []string{"master=keepalived-master.conf", "slave=keepalived-slave.conf"}, nil},
	// One node per datacenter (the inputs' README).
	{"seed004-exchange-2dc", []string{"node1=haproxy-node1.cfg", "node2=haproxy-node2.cfg"}, []string{"node1=keepalived-master.conf", "node2=keepalived-slave.conf"},
		map[string]string{"node1": "dc1", "node2": "dc2"}},
}

func importDeployment(t *testing.T, root string, d deployment) *Result {
	t.Helper()
	read := func(arg string) *Input {
		node, file := "", arg
		if n, f, ok := strings.Cut(arg, "="); ok {
			node, file = n, f
		}
		p := filepath.Join(root, d.dir, file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return &Input{Name: p, Data: data, Node: node}
	}
	var o Options
	for _, h := range d.haproxy {
		in := read(h)
		if len(d.haproxy) == 1 {
			o.HAProxy = in
		} else {
			o.HAProxyNodes = append(o.HAProxyNodes, in)
		}
	}
	for _, k := range d.keepalived {
		o.Keepalived = append(o.Keepalived, read(k))
	}
	o.Datacenters = d.datacenters
	r, err := Import(o)
	if err != nil {
		t.Fatalf("import %s: %v", d.dir, err)
	}
	// What `vipgate check` runs.
	if _, err := config.Parse("cluster.yaml", r.YAML); err != nil {
		t.Fatalf("%s: the import does not pass vipgate check:\n%v", d.dir, err)
	}
	return r
}

// kwLine is one keyword of an input file, with its context: the section
// kind (haproxy) or the enclosing blocks (keepalived).
type kwLine struct {
	file, ctx string
	line      int
	args      []string
	// parentCited: the enclosing block is reported as a whole.
	parent string
}

func (k kwLine) at() string { return fmt.Sprintf("%s:%d", k.file, k.line) }

func walkHAProxy(t *testing.T, file string) []kwLine {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	secs, err := parseHAProxy(file, data)
	if err != nil {
		t.Fatal(err)
	}
	var out []kwLine
	for _, s := range secs {
		out = append(out, kwLine{file: file, ctx: "section", line: s.head.num, args: s.head.args})
		for _, l := range s.body {
			out = append(out, kwLine{file: file, ctx: s.kind, line: l.num, args: l.args, parent: fmt.Sprintf("%s:%d", file, s.head.num)})
		}
	}
	return out
}

func walkKeepalived(t *testing.T, file string) []kwLine {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := parseKeepalived(file, data, osFS{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []kwLine
	var walk func(ctx, parent string, ns []*kanode)
	walk = func(ctx, parent string, ns []*kanode) {
		for _, n := range ns {
			out = append(out, kwLine{file: n.file, ctx: ctx, line: n.line, args: n.args, parent: parent})
			walk(strings.TrimPrefix(ctx+"/"+n.keyword(), "/"), fmt.Sprintf("%s:%d", n.file, n.line), n.children)
		}
	}
	walk("", "", nodes)
	return out
}

var skippedAt = regexp.MustCompile(`^(.*):(\d+): `)

func TestMigrationInputsKeywordWalk(t *testing.T) {
	root := testenv.MigrationInputs(t)
	for _, d := range deployments {
		t.Run(d.dir, func(t *testing.T) {
			r := importDeployment(t, root, d)
			cited := map[string]bool{}
			for _, w := range r.Warnings {
				if w.Line < 1 {
					t.Errorf("warning without a line: %s", w)
				}
				cited[fmt.Sprintf("%s:%d", w.File, w.Line)] = true
			}
			for _, s := range r.Skipped {
				if m := skippedAt.FindStringSubmatch(s); m != nil {
					n, _ := strconv.Atoi(m[2])
					cited[fmt.Sprintf("%s:%d", m[1], n)] = true
				}
			}
			var lines []kwLine
			for _, f := range append(append([]string(nil), d.haproxy...), d.keepalived...) {
				if _, file, ok := strings.Cut(f, "="); ok {
					f = file
				}
				p := filepath.Join(root, d.dir, f)
				if strings.HasSuffix(p, ".cfg") {
					lines = append(lines, walkHAProxy(t, p)...)
				} else {
					lines = append(lines, walkKeepalived(t, p)...)
				}
			}
			for _, l := range lines {
				if cited[l.at()] {
					continue
				}
				if l.parent != "" && wholeBlockReported(r, l.parent) {
					continue
				}
				key := l.ctx + " " + kwKey(l.ctx, l.args)
				check, ok := translated[key]
				if !ok {
					t.Errorf("%s: %s (%s): neither translated nor reported", l.at(), strings.Join(l.args, " "), key)
					continue
				}
				if why := check(r, l.args); why != "" {
					t.Errorf("%s: %s: not in the document: %s", l.at(), strings.Join(l.args, " "), why)
				}
			}
		})
	}
}

// wholeBlockReported: a block dropped as a whole with a warning at its
// line reports its contents.
func wholeBlockReported(r *Result, at string) bool {
	for _, w := range r.Warnings {
		if fmt.Sprintf("%s:%d", w.File, w.Line) == at && (strings.Contains(w.Why, "skipped") || strings.Contains(w.Why, "dropped")) {
			return true
		}
	}
	for _, s := range r.Skipped {
		if strings.HasPrefix(s, at+": ") {
			return true
		}
	}
	return false
}

// kwKey is the keyword, with the second word for haproxy's multi-word
// ones; an entry of a keepalived list block (an address, a script name)
// is VALUE.
func kwKey(ctx string, args []string) string {
	if len(args) == 0 {
		return ""
	}
	switch ctx {
	case "section", "global", "defaults", "frontend", "backend", "listen", "mailers":
		switch args[0] {
		case "timeout", "option", "stats", "tcp-request", "tcp-response", "http-request", "stick", "email-alert", "no":
			if len(args) > 1 {
				return args[0] + " " + args[1]
			}
		}
		return args[0]
	}
	for _, list := range []string{"/virtual_ipaddress", "/virtual_ipaddress_excluded", "/unicast_peer", "/track_script", "/track_interface", "/notification_email", "/group"} {
		if strings.HasSuffix(ctx, list) {
			return "VALUE"
		}
	}
	return args[0]
}

// translated says, for each keyword the inputs use without a warning,
// where its translation is: the check returns "" when the document has it.
var translated = map[string]func(r *Result, args []string) string{
	// Containers: their lines are checked one by one.
	"section global":   func(*Result, []string) string { return "" },
	"section defaults": func(*Result, []string) string { return "" },
	" global_defs":     func(*Result, []string) string { return "" },
	"section frontend": func(r *Result, a []string) string { return want(findFE(r, a[1]) != nil, "frontend "+a[1]) },
	"section backend":  func(r *Result, a []string) string { return want(findBE(r, a[1]) != nil, "backend "+a[1]) },
	"section mailers":  func(r *Result, a []string) string { return want(len(r.Cluster.Alerts.Mailers) > 0, "alerts.mailers") },
	"mailers mailer": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Alerts.Mailers, func(m config.Mailer) bool { return m.Address == a[2] }), "mailer "+a[2])
	},
	// log lines become the node file's log targets, written in the footer.
	"global log":   logLineCheck,
	"defaults log": logLineCheck,
	"frontend log": logLineCheck,
	"listen log":   logLineCheck,
	"backend log":  logLineCheck,
	"global maxconn": func(r *Result, a []string) string {
		return want(strconv.Itoa(r.Cluster.Defaults.MaxConn) == a[1], "defaults.maxconn")
	},
	"defaults maxconn": func(r *Result, a []string) string {
		return want(strconv.Itoa(r.Cluster.Defaults.MaxConn) == a[1], "defaults.maxconn")
	},
	"defaults mode": func(r *Result, a []string) string { return want(r.Cluster.Defaults.Mode == a[1], "defaults.mode") },
	"defaults retries": func(r *Result, a []string) string {
		return want(r.Cluster.Defaults.Retries != nil && strconv.Itoa(*r.Cluster.Defaults.Retries) == a[1], "defaults.retries")
	},
	"defaults balance": func(r *Result, a []string) string {
		return want(r.Cluster.Defaults.Balance.Algorithm == a[1], "defaults.balance")
	},
	"defaults option redispatch": func(r *Result, a []string) string {
		return want(r.Cluster.Defaults.Redispatch != nil && *r.Cluster.Defaults.Redispatch, "defaults.redispatch")
	},
	"defaults option tcplog": func(r *Result, a []string) string {
		return want(r.Cluster.Defaults.Log != nil && *r.Cluster.Defaults.Log, "defaults.log")
	},
	"defaults option httplog": func(r *Result, a []string) string { return yamlHas(r, "log: true") },
	"defaults default-server": func(r *Result, a []string) string {
		return want(r.Cluster.Defaults.Check.Inter != 0, "defaults.check.inter")
	},
	"defaults timeout connect": func(r *Result, a []string) string {
		return sameDur(r.Cluster.Defaults.Timeouts.Connect, a[2])
	},
	"defaults timeout client": func(r *Result, a []string) string { return sameDur(r.Cluster.Defaults.Timeouts.Client, a[2]) },
	"defaults timeout server": func(r *Result, a []string) string { return sameDur(r.Cluster.Defaults.Timeouts.Server, a[2]) },
	"defaults timeout queue":  func(r *Result, a []string) string { return sameDur(r.Cluster.Defaults.Timeouts.Queue, a[2]) },
	"defaults timeout http-request": func(r *Result, a []string) string {
		return sameDur(r.Cluster.Defaults.Timeouts.HTTPRequest, a[2])
	},
	"defaults timeout http-keep-alive": func(r *Result, a []string) string {
		return sameDur(r.Cluster.Defaults.Timeouts.HTTPKeepAlive, a[2])
	},
	"frontend bind": func(r *Result, a []string) string {
		port := a[1][strings.LastIndexByte(a[1], ':'):]
		return want(slices.ContainsFunc(r.Cluster.Frontends, func(f config.Frontend) bool {
			return slices.ContainsFunc(f.Bind, func(b string) bool { return strings.HasSuffix(b, port) })
		}), "a frontend on "+port)
	},
	"frontend default_backend": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Frontends, func(f config.Frontend) bool { return f.DefaultBackend == a[1] }), "default_backend "+a[1])
	},
	"frontend maxconn": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Frontends, func(f config.Frontend) bool { return strconv.Itoa(f.MaxConn) == a[1] }), "maxconn")
	},
	"frontend mode": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Frontends, func(f config.Frontend) bool { return f.Mode == a[1] }), "mode "+a[1])
	},
	"frontend http-request set-header": func(r *Result, a []string) string { return yamlHas(r, a[2]) },
	"frontend option forwardfor":       func(r *Result, a []string) string { return yamlHas(r, "forwardfor") },
	"backend mode": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool { return b.Mode == a[1] }), "mode "+a[1])
	},
	"backend balance": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool { return b.Balance.Algorithm == a[1] }), "balance "+a[1])
	},
	"backend server": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool {
			return slices.ContainsFunc(b.Servers, func(s config.Server) bool { return s.Name == a[1] })
		}), "server "+a[1])
	},
	"backend cookie": func(r *Result, a []string) string { return yamlHas(r, a[1]) },
	// An acl is a condition: it is translated inside the rules that use
	// it, and those lines are checked.
	"backend acl":         func(*Result, []string) string { return "" },
	"backend stick-table": func(r *Result, a []string) string { return want(len(r.Cluster.StickTables) > 0, "stick_tables") },
	"backend stick on":    func(r *Result, a []string) string { return yamlHas(r, `"on": ssl_session_id`) },
	"backend stick store-response": func(r *Result, a []string) string {
		return yamlHas(r, `"on": ssl_session_id`)
	},
	"backend option httpchk": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool {
			return b.Check != nil && b.Check.HTTP != nil && b.Check.HTTP.Path == a[3]
		}), "check path "+a[3])
	},
	"backend email-alert mailers": alertRule,
	"backend email-alert level":   alertRule,
	"backend email-alert from":    func(r *Result, a []string) string { return want(r.Cluster.Alerts.From == a[2], "alerts.from") },
	"backend email-alert to":      alertRule,

	" vrrp_instance": func(r *Result, a []string) string { return want(inst(r, a[1]) != nil, "instance "+a[1]) },
	" vrrp_script":   func(r *Result, a []string) string { return want(track(r, a[1]) != nil, "track "+a[1]) },
	"global_defs router_id": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.VRRP.Instances, func(in config.VRRPInstance) bool { return slices.Contains(in.Nodes, a[1]) }), "node "+a[1])
	},
	"global_defs notification_email": func(r *Result, a []string) string { return alertRule(r, a) },
	"global_defs/notification_email VALUE": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Alerts.Rules, func(ru config.AlertRule) bool { return slices.Contains(ru.To, a[0]) }), "recipient "+a[0])
	},
	"global_defs notification_email_from": func(r *Result, a []string) string { return want(r.Cluster.Alerts.From == a[1], "alerts.from") },
	"global_defs smtp_server": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Alerts.Mailers, func(m config.Mailer) bool { return strings.HasPrefix(a[1], strings.Split(m.Address, ":")[0]) }), "mailer "+a[1])
	},
	"global_defs smtp_connect_timeout": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Alerts.Mailers, func(m config.Mailer) bool { return sameDur(m.ConnectTimeout, a[1]+"s") == "" }), "connect_timeout")
	},
	"vrrp_script script": func(r *Result, a []string) string { return "" }, // the track's kind: TestMigrationInputs
	"vrrp_script interval": func(r *Result, a []string) string {
		return anyTrack(r, func(t config.VRRPTrack) bool { return sameDur(t.Interval, a[1]+"s") == "" })
	},
	"vrrp_script timeout": func(r *Result, a []string) string {
		return anyTrack(r, func(t config.VRRPTrack) bool { return sameDur(t.Timeout, a[1]+"s") == "" })
	},
	"vrrp_script fall": func(r *Result, a []string) string {
		return anyTrack(r, func(t config.VRRPTrack) bool { return strconv.Itoa(t.Fall) == a[1] })
	},
	"vrrp_script weight": func(r *Result, a []string) string {
		return anyTrack(r, func(t config.VRRPTrack) bool { return strconv.Itoa(t.Weight) == a[1] })
	},
	"vrrp_instance interface": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool {
			return in.Interface == a[1] || slices.Contains(slices.Collect(maps.Values(in.Interfaces)), a[1])
		})
	},
	"vrrp_instance virtual_router_id": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return strconv.Itoa(in.VRID) == a[1] })
	},
	"vrrp_instance priority": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool {
			return slices.ContainsFunc(slices.Collect(maps.Values(in.Priorities)), func(p int) bool { return strconv.Itoa(p) == a[1] })
		})
	},
	"vrrp_instance advert_int": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return sameDur(in.AdvertInterval, a[1]+"s") == "" })
	},
	"vrrp_instance virtual_ipaddress": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return len(in.VIPs) > 0 })
	},
	"vrrp_instance/virtual_ipaddress VALUE": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool {
			return slices.ContainsFunc(in.VIPs, func(v string) bool { return strings.HasPrefix(v, a[0]) })
		})
	},
	"vrrp_instance track_script": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return len(in.Track) > 0 })
	},
	"vrrp_instance/track_script VALUE": func(r *Result, a []string) string { return want(track(r, a[0]) != nil, "track "+a[0]) },
	"vrrp_instance authentication": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return in.AuthPass != "" })
	},
	"vrrp_instance/authentication auth_type": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return in.AuthPass != "" })
	},
	"vrrp_instance/authentication auth_pass": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return strings.HasPrefix(a[1], in.AuthPass) && in.AuthPass != "" })
	},
	"vrrp_instance unicast_src_ip": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool {
			return slices.Contains(slices.Collect(maps.Values(in.UnicastSrcIPs)), a[1])
		})
	},
	"vrrp_instance unicast_peer": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return len(in.UnicastPeers) > 0 })
	},
	"vrrp_instance/unicast_peer VALUE": func(r *Result, a []string) string {
		return anyInst(r, func(in config.VRRPInstance) bool { return slices.Contains(in.UnicastPeers, a[0]) })
	},
	" virtual_server": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Frontends, func(f config.Frontend) bool { return slices.Contains(f.Bind, a[1]+":"+a[2]) }), "a frontend on "+a[1]+":"+a[2])
	},
	"virtual_server delay_loop": func(r *Result, a []string) string {
		return anyVSCheck(r, func(c config.Check) bool { return sameDur(c.Inter, a[1]+"s") == "" })
	},
	"virtual_server lb_algo": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool {
			return strings.HasPrefix(b.Name, "vs-") && b.Balance.Algorithm == lbAlgos[a[1]].alg
		}), "balance "+lbAlgos[a[1]].alg)
	},
	"virtual_server persistence_timeout": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.StickTables, func(tb config.StickTable) bool { return sameDur(tb.Expire, a[1]+"s") == "" }), "a stick table expiring after "+a[1]+"s")
	},
	"virtual_server protocol": func(r *Result, a []string) string {
		return want(a[1] == "TCP" && slices.ContainsFunc(r.Cluster.Frontends, func(f config.Frontend) bool { return f.Mode == config.ModeTCP }), "a tcp frontend")
	},
	"virtual_server real_server": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool {
			return slices.ContainsFunc(b.Servers, func(s config.Server) bool { return s.Address == a[1]+":"+a[2] })
		}), "server "+a[1]+":"+a[2])
	},
	"virtual_server/real_server weight": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool {
			return slices.ContainsFunc(b.Servers, func(s config.Server) bool { return strconv.Itoa(s.EffectiveWeight()) == a[1] })
		}), "weight "+a[1])
	},
	"virtual_server/real_server TCP_CHECK": func(r *Result, a []string) string {
		return anyVSCheck(r, func(c config.Check) bool { return c.Kind == "tcp" })
	},
	"virtual_server/real_server/TCP_CHECK connect_port": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool {
			return b.Check != nil && (strconv.Itoa(b.Check.Port) == a[1] || b.Check.Port == 0 && strings.HasSuffix(b.Servers[0].Address, ":"+a[1]))
		}), "check port "+a[1])
	},
	"virtual_server/real_server/TCP_CHECK connect_timeout": func(r *Result, a []string) string {
		return anyVSCheck(r, func(c config.Check) bool { return sameDur(c.Timeout, a[1]+"s") == "" })
	},
	"virtual_server/real_server/TCP_CHECK nb_get_retry": func(r *Result, a []string) string {
		n, _ := strconv.Atoi(a[1])
		return anyVSCheck(r, func(c config.Check) bool { return c.Fall == n+1 })
	},
	"virtual_server/real_server/TCP_CHECK delay_before_retry": func(r *Result, a []string) string {
		return anyVSCheck(r, func(c config.Check) bool { return sameDur(c.FastInter, a[1]+"s") == "" })
	},
	"vrrp_instance smtp_alert": func(r *Result, a []string) string {
		return want(slices.ContainsFunc(r.Cluster.Alerts.Rules, func(ru config.AlertRule) bool { return slices.Contains(ru.Events, "vrrp.transition") }), "a vrrp.transition alert rule")
	},
}

func logLineCheck(r *Result, a []string) string {
	if len(a) == 2 && a[1] == "global" {
		return yamlHas(r, "#     targets:")
	}
	addr, _ := logAddress(a[1])
	return yamlHas(r, fmt.Sprintf("{address: %q", addr))
}

func want(ok bool, what string) string {
	if ok {
		return ""
	}
	return "no " + what
}

func yamlHas(r *Result, s string) string {
	return want(strings.Contains(string(r.YAML), s), fmt.Sprintf("%q", s))
}

func sameDur(d config.Duration, s string) string {
	w, err := config.ParseDuration(strings.TrimSuffix(s, "ms") + map[bool]string{true: "ms", false: ""}[strings.HasSuffix(s, "ms")])
	if err != nil {
		return err.Error()
	}
	return want(w == d, fmt.Sprintf("%s (got %s)", s, d.D()))
}

func alertRule(r *Result, _ []string) string {
	return want(len(r.Cluster.Alerts.Rules) > 0, "alert rule")
}

func findFE(r *Result, name string) *config.Frontend {
	for i, f := range r.Cluster.Frontends {
		if f.Name == name || strings.HasPrefix(f.Name, name+"-") {
			return &r.Cluster.Frontends[i]
		}
	}
	return nil
}

func findBE(r *Result, name string) *config.Backend {
	for i, b := range r.Cluster.Backends {
		if b.Name == name || strings.HasPrefix(b.Name, name+"-") {
			return &r.Cluster.Backends[i]
		}
	}
	return nil
}

func inst(r *Result, name string) *config.VRRPInstance {
	for i := range r.Cluster.VRRP.Instances {
		if r.Cluster.VRRP.Instances[i].Name == name {
			return &r.Cluster.VRRP.Instances[i]
		}
	}
	return nil
}

func anyInst(r *Result, f func(config.VRRPInstance) bool) string {
	return want(slices.ContainsFunc(r.Cluster.VRRP.Instances, f), "such an instance setting")
}

func track(r *Result, name string) *config.VRRPTrack {
	for _, in := range r.Cluster.VRRP.Instances {
		for i := range in.Track {
			if in.Track[i].Name == name {
				return &in.Track[i]
			}
		}
	}
	return nil
}

func anyTrack(r *Result, f func(config.VRRPTrack) bool) string {
	return anyInst(r, func(in config.VRRPInstance) bool { return slices.ContainsFunc(in.Track, f) })
}

func anyVSCheck(r *Result, f func(config.Check) bool) string {
	return want(slices.ContainsFunc(r.Cluster.Backends, func(b config.Backend) bool {
		return strings.HasPrefix(b.Name, "vs-") && b.Check != nil && f(*b.Check)
	}), "such a check")
}

// TestMigrationInputs: what each deployment must get, beyond "nothing
// silently dropped".
func TestMigrationInputs(t *testing.T) {
	root := testenv.MigrationInputs(t)
	t.Run("seed000: vrrp_strict drops authentication, the haproxy check script is a proxy track", func(t *testing.T) {
		in := importDeployment(t, root, deployments[0]).Cluster.VRRP.Instances[0]
		if in.AuthPass != "" || len(in.Track) != 1 || in.Track[0].Kind != "proxy" {
			t.Errorf("instance %+v", in)
		}
	})
	t.Run("seed001: the virtual_server is a frontend on the master, pidof nginx a process track", func(t *testing.T) {
		c := importDeployment(t, root, deployments[1]).Cluster
		fe := c.Frontend("vs-172.20.128.2-80")
		if fe == nil || !slices.Equal(fe.Nodes, []string{"master"}) || len(c.Backend("vs-172.20.128.2-80").Servers) != 2 {
			t.Errorf("frontends %+v", c.Frontends)
		}
		if tr := c.VRRP.Instances[0].Track; len(tr) != 1 || tr[0].Kind != "process" || tr[0].Process != "nginx" {
			t.Errorf("tracks %+v", tr)
		}
	})
	t.Run("seed004: each node its own NIC and servers", func(t *testing.T) {
		d := deployments[2]
		c := importDeployment(t, root, d).Cluster
		in := c.VRRP.Instances[0]
		n1 := &config.Node{Name: "node1", Datacenter: "dc1", Role: config.RoleGateway}
		n2 := &config.Node{Name: "node2", Datacenter: "dc2", Role: config.RoleGateway}
		// A gateway added to dc1 later: each site keeps its own servers.
		n3 := &config.Node{Name: "node3", Datacenter: "dc1", Role: config.RoleGateway}
		if in.ForNode("node1").Interface != "ens160" || in.ForNode("node2").Interface != "ens192" {
			t.Errorf("interfaces: %s %v", in.Interface, in.Interfaces)
		}
		servers := func(n *config.Node) []string {
			var out []string
			for _, s := range c.ForNode(n).Backend("exchange_2016_backend").Servers {
				out = append(out, s.Name)
			}
			return out
		}
		if s1, s2, s3 := servers(n1), servers(n2), servers(n3); !slices.Equal(s1, []string{"exch_server1", "exch_server2"}) ||
			!slices.Equal(s2, []string{"exch_server3", "exch_server4"}) || !slices.Equal(s3, s1) {
			t.Errorf("node1 serves %v, node2 %v, node3 (dc1) %v", s1, s2, s3)
		}
		for _, s := range c.Backend("exchange_2016_backend").Servers {
			if !s.LocalOnly || len(s.Nodes) > 0 {
				t.Errorf("server %s: datacenter %q local_only %v nodes %v, want limited to its datacenter", s.Name, s.Datacenter, s.LocalOnly, s.Nodes)
			}
		}
		// Without the datacenters, each node's servers stay on that node.
		d.datacenters = nil
		for _, s := range importDeployment(t, root, d).Cluster.Backend("exchange_2016_backend").Servers {
			if s.LocalOnly || len(s.Nodes) != 1 {
				t.Errorf("server %s: local_only %v nodes %v, want its node", s.Name, s.LocalOnly, s.Nodes)
			}
		}
		// A node whose datacenter is not given could be in dc1: node1's
		// servers stay on node1.
		d.datacenters = map[string]string{"node1": "dc1"}
		for _, s := range importDeployment(t, root, d).Cluster.Backend("exchange_2016_backend").Servers {
			if s.LocalOnly || len(s.Nodes) != 1 {
				t.Errorf("server %s: local_only %v nodes %v, want its node", s.Name, s.LocalOnly, s.Nodes)
			}
		}
		// The track script never passed under keepalived (no shell):
		// its weight 2 would make a vipgate node2 (102) take the VIP from
		// the keepalived node1 (101) during the rolling migration
		// (TestMigrationE2ESeed004 saw it).
		if tr := in.Track; len(tr) != 1 || tr[0].Kind != "proxy" || tr[0].Weight != 0 {
			t.Errorf("tracks %+v", tr)
		}
	})
}
