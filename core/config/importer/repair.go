package importer

import (
	"errors"
	"fmt"
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
}

type beSrc struct {
	head    hline
	servers []hline
}

const maxRepairs = 200

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
		if !errors.As(err, &ce) || i >= maxRepairs || !t.repair(ce.Problems[0]) {
			return nil, nil, fmt.Errorf("the translation is not a valid cluster document (a bug in vipgate import):\n%w\n--- output ---\n%s", err, out)
		}
	}
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
			t.warn(src.head, "frontend "+f.Name, why)
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
