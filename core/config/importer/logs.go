package importer

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// logEntry is one haproxy `log` line as a node log target.
type logEntry struct {
	fields []string // YAML flow-map entries, without the tag
	lt     config.LogTarget
	std    bool // stdout/stderr: no syslog header, no tag
	src    hline
}

// target is the entry as a frontend's log target.
func (e logEntry) target(tag string) config.LogTarget {
	lt := e.lt
	if tag == "" {
		tag = "haproxy"
	}
	lt.Tag = tag
	return lt
}

// yaml is the target as a YAML flow map; a syslog target keeps HAProxy's
// tag (log-tag, else "haproxy") so that rsyslog filters on it still match.
func (e logEntry) yaml(tag string) string {
	fs := e.fields
	if !e.std {
		if tag == "" {
			tag = "haproxy"
		}
		fs = append(fs[:len(fs):len(fs)], "tag: "+tag)
	}
	return "{" + strings.Join(fs, ", ") + "}"
}

// proxyLog is what a proxy (or defaults) said about logging.
type proxyLog struct {
	set    bool // a log line was seen
	global bool // `log global`
	own    []logEntry
	// globalAt is the `log global` line.
	globalAt hline
}

// logPlan collects haproxy.cfg's log lines: they become the node file's
// log targets (node-local in vipgate), written as a hint in the footer.
type logPlan struct {
	global   []logEntry
	tag      string
	defaults proxyLog
}

// haproxyLevels maps HAProxy's syslog levels onto vipgate's four; notice
// goes to info, so that nothing HAProxy sent is lost.
var haproxyLevels = map[string]string{
	"emerg": "error", "alert": "error", "crit": "error", "err": "error",
	"warning": "warn", "notice": "info", "info": "info", "debug": "debug",
}

// logTarget reads `log <target> [len N] [format F] [sample R:S] <facility>
// [<level> [<minlevel>]]` into a target; ok is false (with a warning) when
// it cannot be one.
func (t *translator) logTarget(l hline) (logEntry, bool) {
	args := l.args[1:]
	if len(args) < 2 {
		t.warn(l, "log", "want `log ADDRESS FACILITY [LEVEL]`")
		return logEntry{}, false
	}
	addr, ok := logAddress(args[0])
	if !ok {
		t.warn(l, "log", fmt.Sprintf("log target %q has no vipgate equivalent (stdout, stderr, a unix socket, udp or host:port)", args[0]))
		return logEntry{}, false
	}
	fields := []string{"address: " + strconv.Quote(addr)}
	lt := config.LogTarget{Address: addr}
	std := addr == "stderr" || addr == "stdout"
	args = args[1:]
options:
	for len(args) >= 2 {
		switch args[0] {
		case "len":
			if n, err := strconv.Atoi(args[1]); err == nil && n >= 80 {
				fields = append(fields, "max_length: "+args[1])
				lt.MaxLength = n
			} else {
				t.warn(l, "log", fmt.Sprintf("len %s: want at least 80", args[1]))
			}
		case "format":
			switch f := args[1]; {
			case f == "rfc5424":
				fields = append(fields, "format: rfc5424")
				lt.Format = "rfc5424"
			case f == "rfc3164" || f == "local" || std:
			default:
				t.warn(l, "log", fmt.Sprintf("format %s: vipgate writes rfc3164 or rfc5424; rfc3164 is used", f))
			}
		case "sample":
			t.warn(l, "log", "sample: vipgate sends every line")
		default:
			break options
		}
		args = args[2:]
	}
	if len(args) == 0 {
		t.warn(l, "log", "no facility")
		return logEntry{}, false
	}
	if _, ok := config.SyslogFacility(args[0]); !ok {
		t.warn(l, "log", fmt.Sprintf("facility %q: unknown", args[0]))
		return logEntry{}, false
	}
	if !std {
		fields = append(fields, "facility: "+args[0])
	}
	lt.Facility = args[0]
	if len(args) > 1 {
		lv, ok := haproxyLevels[args[1]]
		if !ok {
			t.warn(l, "log", fmt.Sprintf("level %q: unknown", args[1]))
		} else {
			fields = append(fields, "level: "+lv)
			lt.Level = lv
		}
		if len(args) > 2 {
			t.warn(l, "log", "a minimum level: vipgate sends every level from the maximum up")
		}
	}
	return logEntry{fields: fields, lt: lt, std: std, src: l}, true
}

// logAddress is HAProxy's log target as a vipgate address.
func logAddress(a string) (string, bool) {
	switch a {
	case "stdout", "fd@1":
		return "stdout", true
	case "stderr", "fd@2":
		return "stderr", true
	}
	if strings.HasPrefix(a, "/") {
		return a, true
	}
	if p, rest, ok := strings.Cut(a, "@"); ok {
		switch p {
		case "udp", "udp4", "udp6", "ipv4", "ipv6":
			a = rest
		case "unix":
			return rest, true
		default:
			return "", false
		}
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		if strings.Count(a, ":") > 1 && !strings.HasPrefix(a, "[") {
			a = "[" + a + "]"
		}
		a += ":514"
	}
	return "udp://" + a, true
}

// logLine reads a proxy's (or defaults') log directive into pl.
func (t *translator) logLine(pl *proxyLog, l hline) {
	pl.set = true
	if len(l.args) == 2 && l.args[1] == "global" {
		pl.global, pl.globalAt = true, l
		return
	}
	if e, ok := t.logTarget(l); ok {
		pl.own = append(pl.own, e)
	}
}

// logFrontends gives each frontend whose section (or defaults) has its own
// log lines those targets (log_targets), as HAProxy's per-proxy `log`;
// stdout/stderr, which only the node has, are left to logHint. It runs
// before finishProxies copies the frontends into the document.
func (t *translator) logFrontends() {
	for _, p := range t.proxies {
		if p.fe == nil {
			for _, e := range p.log.own {
				t.warn(e.src, "log", "a backend's log lines: vipgate writes server state changes to the node's log (log.targets) and access lines by frontend; not carried over")
			}
			continue
		}
		for _, e := range p.effectiveLog(t.logs.defaults).own {
			if !e.std {
				p.fe.LogTargets = append(p.fe.LogTargets, e.target(t.logs.tag))
			}
		}
	}
}

func (p *proxy) effectiveLog(defaults proxyLog) proxyLog {
	if p.log.set {
		return p.log
	}
	return defaults
}

// logHint writes the node file's `log:` for what haproxy.cfg logged: the
// global lines become log.targets; a frontend's own stdout/stderr lines
// (frontend targets are syslog receivers) give log.access, joined by the
// global lines when other frontends say `log global`.
func (t *translator) logHint() {
	lp := &t.logs
	var access []logEntry
	seen := map[string]bool{}
	usesGlobal, std := false, false
	var owners []string
	for _, p := range t.proxies {
		if p.fe == nil {
			continue
		}
		eff := p.effectiveLog(lp.defaults)
		if eff.global {
			usesGlobal = true
		}
		for _, e := range eff.own {
			if !e.std {
				continue
			}
			std = true
			if !slices.Contains(owners, p.name) {
				owners = append(owners, p.name)
			}
			if y := e.yaml(lp.tag); !seen[y] {
				seen[y] = true
				access = append(access, e)
			}
		}
	}
	if len(lp.global) == 0 {
		// `log global` with no global log line: HAProxy sends nothing.
		done := map[string]bool{}
		for _, pl := range append([]proxyLog{lp.defaults}, proxyLogs(t.proxies)...) {
			if at := fmt.Sprintf("%s:%d", pl.globalAt.file, pl.globalAt.num); pl.global && !done[at] {
				done[at] = true
				t.skip(pl.globalAt, "no global log line: HAProxy logs nothing here; vipgate writes to stderr unless the node file's log.targets say otherwise")
			}
		}
		if !std {
			return
		}
	}
	f := &t.footer
	*f = append(*f, "haproxy.cfg's log lines: logging is node-local in vipgate; put this in each node's bootstrap file (docs/config.md \"Log targets\"; frontends with their own log lines have log_targets):",
		"  log:")
	if len(lp.global) > 0 {
		*f = append(*f, "    targets:")
		for _, e := range lp.global {
			*f = append(*f, fmt.Sprintf("      - %s   # %s:%d", e.yaml(lp.tag), e.src.file, e.src.num))
		}
	}
	if std {
		if usesGlobal {
			for _, e := range lp.global {
				if y := e.yaml(lp.tag); !seen[y] {
					seen[y] = true
					access = append(access, e)
				}
			}
		}
		*f = append(*f, "    access:   # stdout/stderr of "+strings.Join(owners, ", ")+" (a frontend's log_targets are syslog receivers); the other frontends' lines go here too")
		for _, e := range access {
			*f = append(*f, fmt.Sprintf("      - %s   # %s:%d", e.yaml(lp.tag), e.src.file, e.src.num))
		}
	}
}

func proxyLogs(ps []*proxy) []proxyLog {
	out := make([]proxyLog, len(ps))
	for i, p := range ps {
		out[i] = p.log
	}
	return out
}
