package importer

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// provenance remembers which haproxy.cfg line produced each frontend,
// bind address, rule, backend and server, so that a translated element the
// cluster schema rejects can be dropped with a warning at its source.
type provenance struct {
	fe      []feSrc
	be      []beSrc
	mailers []hline
	rules   []hline
	tables  []hline
}

type feSrc struct {
	head  hline
	binds []hline
	rules []hline
	// unbound: every bind address was dropped (with a warning each), so
	// dropping the frontend for it needs no other warning.
	unbound bool
}

type beSrc struct {
	head    hline
	servers []hline
}

// maxRepairRounds bounds the validate-and-drop rounds: each round drops
// every element a problem points at, and a drop can only expose problems
// in elements that refer to it (a rule naming a dropped backend, a sync
// group naming a dropped instance), so a few rounds always suffice.
const maxRepairRounds = 20

// renderValid renders the document and reads it back with config.Parse.
// Every problem the schema finds (a value HAProxy accepts and vipgate does
// not: a 5ms check interval, a weight of 1000, a path without a leading
// slash, two frontends on one address, ...) drops the smallest element
// that holds it, with a warning where it came from, until the document is
// valid. The translation never writes a document vipgate would refuse.
func (t *translator) renderValid(from []string) ([]byte, *config.Cluster, error) {
	for i := 0; ; i++ {
		out, err := t.render(from)
		if err != nil {
			return nil, nil, err
		}
		c, err := config.Parse("import", out)
		if err == nil {
			return out, c, nil
		}
		var ce *config.Error
		if !errors.As(err, &ce) || i >= maxRepairRounds || !t.repairAll(ce.Problems) {
			return nil, nil, fmt.Errorf("the translation is not a valid cluster document (a bug in vipgate import):\n%w\n--- output ---\n%s", err, out)
		}
	}
}

// repairAll drops the element of every problem, each element once, from
// the last to the first so that indexes stay valid.
func (t *translator) repairAll(probs []config.Problem) bool {
	byKey := map[string]config.Problem{}
	var keys []string
	for _, p := range probs {
		k := repairKey(p.Path)
		if k == "" {
			return false
		}
		if _, ok := byKey[k]; !ok {
			byKey[k] = p
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return pathLess(keys[j], keys[i]) })
	for _, k := range keys {
		p := byKey[k]
		p.Path = k
		if !t.repair(p) {
			return false
		}
	}
	return true
}

// repairKey is the path of the element repair drops for a problem at path.
func repairKey(path string) string {
	e := strings.Split(path, ".")
	n := len(e)
	cut := func(k int) string { return strings.Join(e[:min(k, n)], ".") }
	switch e[0] {
	case "defaults":
		return cut(2)
	case "frontends", "backends":
		if n >= 4 && (e[2] == "rules" || e[2] == "bind" || e[2] == "servers") {
			return cut(4)
		}
		if n >= 3 {
			switch e[2] {
			case "default_backend", "tls", "http", "timeouts", "maxconn", "check", "cookie", "ssl", "balance", "send_proxy", "stick":
				return cut(3)
			}
		}
		return cut(2)
	case "stick_tables":
		return cut(2)
	case "alerts":
		if n >= 3 && (e[1] == "mailers" || e[1] == "rules") {
			return cut(3)
		}
		return "alerts"
	case "vrrp":
		if n >= 5 && e[1] == "instances" && (e[3] == "track" || e[3] == "unicast_peers") {
			return cut(5)
		}
		if n >= 4 && e[1] == "instances" && vrrpOptional[e[3]] {
			return cut(4)
		}
		if n >= 3 {
			return cut(3)
		}
	}
	return ""
}

// vrrpOptional are instance settings that can be left out (with a
// warning) rather than losing the whole instance.
var vrrpOptional = map[string]bool{
	"use_vmac": true, "preempt_delay": true, "auth_pass": true, "garp_master_delay": true, "garp_master_repeat": true,
	"garp_master_refresh": true, "unicast_src_ip": true, "notify_master": true, "notify_backup": true,
	"notify_fault": true, "notify_stop": true, "notify": true, "accept_mode": true,
}

// pathLess orders dotted paths element by element, numbers numerically.
func pathLess(a, b string) bool {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] == y[i] {
			continue
		}
		m, err1 := strconv.Atoi(x[i])
		n, err2 := strconv.Atoi(y[i])
		if err1 == nil && err2 == nil {
			return m < n
		}
		return x[i] < y[i]
	}
	return len(x) < len(y)
}

// repair drops what problem p is about. It reports whether it could.
func (t *translator) repair(p config.Problem) bool {
	path := strings.Split(p.Path, ".")
	idx := func(i int) (int, bool) {
		if i >= len(path) {
			return 0, false
		}
		n, err := strconv.Atoi(path[i])
		return n, err == nil
	}
	why := "dropped: " + p.Msg
	switch path[0] {
	case "defaults":
		if len(path) < 2 {
			return false
		}
		d := &t.c.Defaults
		switch path[1] {
		case "mode":
			d.Mode = ""
		case "maxconn":
			d.MaxConn = 0
		case "retries":
			d.Retries = nil
		case "timeouts":
			d.Timeouts = config.Timeouts{}
		case "check":
			d.Check = config.Check{}
		case "http":
			d.HTTP = config.HTTPOptions{}
		case "balance":
			d.Balance = config.Balance{}
		default:
			return false
		}
		t.warn(t.defaultsHead, "defaults "+path[1], why)
		return true
	case "frontends":
		i, ok := idx(1)
		if !ok || i >= len(t.c.Frontends) || i >= len(t.src.fe) {
			return false
		}
		f, src := &t.c.Frontends[i], &t.src.fe[i]
		dropFE := func() bool {
			if !src.unbound || len(f.Bind) > 0 {
				t.warn(src.head, "frontend "+f.Name, why)
			}
			t.c.Frontends = append(t.c.Frontends[:i], t.c.Frontends[i+1:]...)
			t.src.fe = append(t.src.fe[:i], t.src.fe[i+1:]...)
			return true
		}
		if len(path) < 3 {
			return dropFE()
		}
		switch path[2] {
		case "rules":
			j, ok := idx(3)
			if !ok || j >= len(f.Rules) || j >= len(src.rules) {
				return dropFE()
			}
			t.warn(src.rules[j], ruleDirective(src.rules[j]), why)
			f.Rules = append(f.Rules[:j], f.Rules[j+1:]...)
			src.rules = append(src.rules[:j], src.rules[j+1:]...)
		case "bind":
			j, ok := idx(3)
			if !ok || j >= len(f.Bind) || j >= len(src.binds) {
				return dropFE()
			}
			t.warn(src.binds[j], "bind "+f.Bind[j], why)
			f.Bind = append(f.Bind[:j], f.Bind[j+1:]...)
			src.binds = append(src.binds[:j], src.binds[j+1:]...)
			src.unbound = len(f.Bind) == 0
		case "default_backend":
			t.warn(src.head, "default_backend "+f.DefaultBackend, why)
			f.DefaultBackend = ""
		case "tls":
			t.warn(src.head, "bind ssl", why)
			f.TLS = nil
		case "http":
			t.warn(src.head, "frontend "+f.Name+" http options", why)
			f.HTTP = config.HTTPOptions{}
		case "timeouts":
			t.warn(src.head, "frontend "+f.Name+" timeouts", why)
			f.Timeouts = config.Timeouts{}
		case "maxconn":
			t.warn(src.head, "frontend "+f.Name+" maxconn", why)
			f.MaxConn = 0
		default:
			return dropFE()
		}
		return true
	case "backends":
		i, ok := idx(1)
		if !ok || i >= len(t.c.Backends) || i >= len(t.src.be) {
			return false
		}
		b, src := &t.c.Backends[i], &t.src.be[i]
		dropBE := func() bool {
			t.warn(src.head, "backend "+b.Name, why)
			t.c.Backends = append(t.c.Backends[:i], t.c.Backends[i+1:]...)
			t.src.be = append(t.src.be[:i], t.src.be[i+1:]...)
			return true
		}
		if len(path) < 3 {
			return dropBE()
		}
		switch path[2] {
		case "servers":
			j, ok := idx(3)
			if !ok || j >= len(b.Servers) || j >= len(src.servers) {
				return dropBE()
			}
			t.warn(src.servers[j], "server "+b.Servers[j].Name, why)
			b.Servers = append(b.Servers[:j], b.Servers[j+1:]...)
			src.servers = append(src.servers[:j], src.servers[j+1:]...)
		case "check":
			t.warn(src.head, "backend "+b.Name+" health check", why)
			b.Check = nil
			for k := range b.Servers {
				b.Servers[k].Check = nil
			}
		case "cookie":
			t.warn(src.head, "cookie", why)
			b.Cookie = nil
			for k := range b.Servers {
				b.Servers[k].Cookie = ""
			}
		case "ssl":
			t.warn(src.head, "server ssl", why)
			b.SSL = nil
		case "balance":
			t.warn(src.head, "balance", why)
			b.Balance = config.Balance{}
		case "http":
			t.warn(src.head, "backend "+b.Name+" http options", why)
			b.HTTP = config.HTTPOptions{}
		case "timeouts":
			t.warn(src.head, "backend "+b.Name+" timeouts", why)
			b.Timeouts = config.Timeouts{}
		case "send_proxy":
			t.warn(src.head, "send-proxy", why)
			b.SendProxy = ""
		case "stick":
			t.warn(src.head, "stick on", why)
			b.Stick = nil
		default:
			return dropBE()
		}
		return true
	case "stick_tables":
		i, ok := idx(1)
		if !ok || i >= len(t.c.StickTables) || i >= len(t.src.tables) {
			return false
		}
		t.warn(t.src.tables[i], "stick-table", why)
		t.c.StickTables = append(t.c.StickTables[:i], t.c.StickTables[i+1:]...)
		t.src.tables = append(t.src.tables[:i], t.src.tables[i+1:]...)
		return true
	case "alerts":
		a := &t.c.Alerts
		if len(path) >= 3 && path[1] == "mailers" {
			i, ok := idx(2)
			if !ok || i >= len(a.Mailers) || i >= len(t.src.mailers) {
				return false
			}
			t.warn(t.src.mailers[i], "mailer "+a.Mailers[i].Name, why)
			a.Mailers = append(a.Mailers[:i], a.Mailers[i+1:]...)
			t.src.mailers = append(t.src.mailers[:i], t.src.mailers[i+1:]...)
			return true
		}
		if len(path) >= 3 && path[1] == "rules" {
			i, ok := idx(2)
			if !ok || i >= len(a.Rules) || i >= len(t.src.rules) {
				return false
			}
			t.warn(t.src.rules[i], "e-mail alert rule "+a.Rules[i].Name, why)
			a.Rules = append(a.Rules[:i], a.Rules[i+1:]...)
			t.src.rules = append(t.src.rules[:i], t.src.rules[i+1:]...)
			return true
		}
		// A problem with the whole section (no sender, no mailer): drop it.
		at := hline{file: "import"}
		if len(t.src.rules) > 0 {
			at = t.src.rules[0]
		}
		t.warn(at, "e-mail alerts", why)
		t.c.Alerts = config.Alerts{}
		t.src.mailers, t.src.rules = nil, nil
		return true
	case "vrrp":
		if len(path) < 3 {
			return false
		}
		i, ok := idx(2)
		switch path[1] {
		case "instances":
			in := &t.c.VRRP
			if !ok || i >= len(in.Instances) || i >= len(t.vrrpInstSrc) {
				return false
			}
			if len(path) >= 4 {
				return t.repairVRRPField(&in.Instances[i], t.vrrpInstSrc[i], path[3:], why)
			}
			t.warn(t.vrrpInstSrc[i], "vrrp_instance "+in.Instances[i].Name, why)
			in.Instances = append(in.Instances[:i], in.Instances[i+1:]...)
			t.vrrpInstSrc = append(t.vrrpInstSrc[:i], t.vrrpInstSrc[i+1:]...)
			return true
		case "sync_groups":
			g := &t.c.VRRP
			if !ok || i >= len(g.SyncGroups) || i >= len(t.vrrpSrc) {
				return false
			}
			t.warn(t.vrrpSrc[i], "vrrp_sync_group "+g.SyncGroups[i].Name, why)
			g.SyncGroups = append(g.SyncGroups[:i], g.SyncGroups[i+1:]...)
			t.vrrpSrc = append(t.vrrpSrc[:i], t.vrrpSrc[i+1:]...)
			return true
		}
	}
	return false
}

func ruleDirective(l hline) string {
	if len(l.args) >= 2 {
		return l.args[0] + " " + l.args[1]
	}
	return l.keyword()
}

// repairVRRPField leaves out one optional setting of an instance.
func (t *translator) repairVRRPField(in *config.VRRPInstance, at hline, rest []string, why string) bool {
	dir := "vrrp_instance " + in.Name + " " + rest[0]
	j := -1
	if len(rest) >= 2 {
		if n, err := strconv.Atoi(rest[1]); err == nil {
			j = n
		}
	}
	switch rest[0] {
	case "track":
		if j < 0 || j >= len(in.Track) {
			return false
		}
		dir = "track " + in.Track[j].Name
		in.Track = append(in.Track[:j], in.Track[j+1:]...)
	case "unicast_peers":
		if j < 0 || j >= len(in.UnicastPeers) {
			return false
		}
		dir = "unicast_peer " + in.UnicastPeers[j]
		in.UnicastPeers = append(in.UnicastPeers[:j], in.UnicastPeers[j+1:]...)
	case "use_vmac":
		in.UseVMAC = false
	case "preempt_delay":
		in.PreemptDelay = 0
	case "auth_pass":
		in.AuthPass = ""
	case "garp_master_delay":
		in.GARPMasterDelay = nil
	case "garp_master_repeat":
		in.GARPMasterRepeat = 0
	case "garp_master_refresh":
		in.GARPMasterRefresh = 0
	case "unicast_src_ip":
		in.UnicastSrcIP = ""
	case "notify_master":
		in.NotifyMaster = ""
	case "notify_backup":
		in.NotifyBackup = ""
	case "notify_fault":
		in.NotifyFault = ""
	case "notify_stop":
		in.NotifyStop = ""
	case "notify":
		in.Notify = ""
	case "accept_mode":
		in.AcceptMode = nil
	default:
		return false
	}
	t.warn(at, dir, why)
	return true
}
