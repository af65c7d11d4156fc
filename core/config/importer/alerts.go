package importer

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// mailerSet is a haproxy `mailers` section.
type mailerSet struct {
	head    hline
	mailers []config.Mailer
	lines   []hline
	timeout config.Duration
	used    bool
}

func (t *translator) mailers(s *hsection) {
	ms := &mailerSet{head: s.head}
	for _, l := range s.body {
		switch l.keyword() {
		case "mailer":
			if len(l.args) < 3 {
				t.warn(l, "mailer", "want mailer NAME ADDRESS:PORT")
				continue
			}
			addr, hasPort, bad := parseServerAddr(l.args[2])
			if bad != "" || !hasPort {
				if bad == "" {
					bad = "missing :port"
				}
				t.warn(l, "mailer "+l.args[1], bad)
				continue
			}
			ms.mailers = append(ms.mailers, config.Mailer{Name: t.cleanName(l, "mailer", l.args[1]), Address: addr})
			ms.lines = append(ms.lines, l)
		case "timeout":
			if len(l.args) >= 3 && l.args[1] == "mail" {
				d, err := config.ParseDuration(l.args[2])
				if err != nil {
					t.warn(l, "timeout mail", err.Error())
					continue
				}
				ms.timeout = d
			} else {
				t.warn(l, "timeout", "only `timeout mail` belongs in a mailers section")
			}
		default:
			t.warn(l, l.keyword(), "unknown keyword in a mailers section")
		}
	}
	t.mailerSets[s.name] = ms
}

// haproxyLevel maps HAProxy's email-alert level to vipgate's min_level.
// HAProxy logs a server going down at alert and up at notice, a backend
// without servers at emerg; vipgate publishes server.down at warning,
// server.up at notice and backend.empty at alert. The mapping keeps which
// of those transitions are mailed.
func haproxyLevel(l string) (string, bool) {
	switch l {
	case "emerg":
		return "alert", true
	case "alert", "crit", "err", "warning":
		return "warning", true
	case "notice", "info", "debug":
		return l, true
	}
	return "", false
}

func (t *translator) addMailer(m config.Mailer, l hline) {
	for i, o := range t.c.Alerts.Mailers {
		if o.Address == m.Address {
			// The same relay (HAProxy's mailer and keepalived's
			// smtp_server): one mailer, with the timeouts either gave.
			if o.ConnectTimeout == 0 {
				t.c.Alerts.Mailers[i].ConnectTimeout = m.ConnectTimeout
			}
			return
		}
	}
	for _, o := range t.c.Alerts.Mailers {
		if o.Name == m.Name {
			m.Name = fmt.Sprintf("%s-%d", m.Name, len(t.c.Alerts.Mailers)+1)
		}
	}
	t.c.Alerts.Mailers = append(t.c.Alerts.Mailers, m)
	t.src.mailers = append(t.src.mailers, l)
}

func (t *translator) setFrom(from string, l hline, directive string) {
	switch a := &t.c.Alerts; {
	case a.From == "":
		a.From = from
	case a.From != from:
		t.warn(l, directive, fmt.Sprintf("vipgate sends every alert from one address; keeping %q", a.From))
	}
}

// finishAlerts turns haproxy's email-alert settings, per proxy, into
// cluster-wide alert rules: one per distinct (recipients, level).
func (t *translator) finishAlerts() {
	type key struct{ to, level string }
	rules := map[key][]string{}
	var order []key
	first := map[key]hline{}
	for _, p := range t.proxies {
		if len(p.emailAlert) == 0 {
			continue
		}
		var mailers, from, to, level string
		var head hline
		ok := true
		for _, l := range p.emailAlert {
			head = l
			if len(l.args) < 3 {
				t.warn(l, "email-alert", "want email-alert mailers|from|to|level|myhostname VALUE")
				ok = false
				continue
			}
			switch l.args[1] {
			case "mailers":
				mailers = l.args[2]
			case "from":
				from = l.args[2]
			case "to":
				to = l.args[2]
			case "level":
				lv, good := haproxyLevel(l.args[2])
				if !good {
					t.warn(l, "email-alert level", fmt.Sprintf("%q is not a syslog level", l.args[2]))
					ok = false
				}
				level = lv
			case "myhostname":
				t.warn(l, "email-alert myhostname", "set helo on the mailers by hand if the relay needs it (default: the node name)")
			default:
				t.warn(l, "email-alert "+l.args[1], "unknown email-alert keyword")
			}
		}
		if !ok {
			continue
		}
		if mailers == "" || from == "" || to == "" {
			t.warn(head, "email-alert", fmt.Sprintf("%s %s: HAProxy sends alerts only with mailers, from and to all set; skipped", p.kind, p.name))
			continue
		}
		ms := t.mailerSets[mailers]
		if ms == nil {
			t.warn(head, "email-alert mailers "+mailers, "no mailers section of that name")
			continue
		}
		if len(ms.mailers) == 0 {
			t.warn(head, "email-alert mailers "+mailers, "the mailers section has no usable mailer")
			continue
		}
		if !ms.used {
			ms.used = true
			for i, m := range ms.mailers {
				if ms.timeout > 0 {
					m.ConnectTimeout, m.SendTimeout = ms.timeout, ms.timeout
				}
				t.addMailer(m, ms.lines[i])
			}
		}
		t.setFrom(from, head, "email-alert from")
		if level == "" {
			level = "warning" // HAProxy's default level is alert
		}
		k := key{to, level}
		if _, seen := rules[k]; !seen {
			order = append(order, k)
			first[k] = head
		}
		rules[k] = append(rules[k], p.name)
	}
	for i, k := range order {
		name := "haproxy"
		if len(order) > 1 {
			name = fmt.Sprintf("haproxy-%d", i+1)
		}
		var to []string
		for _, s := range strings.Split(k.to, ",") {
			if s = strings.TrimSpace(s); s != "" {
				to = append(to, s)
			}
		}
		t.c.Alerts.Rules = append(t.c.Alerts.Rules, config.AlertRule{
			Name: name, Events: config.StringList{"server.*", "backend.*"}, MinLevel: k.level, To: to,
		})
		t.src.rules = append(t.src.rules, first[k])
		t.note("alerts", fmt.Sprintf("rule %s: HAProxy mailed server state changes of %s; vipgate rules are cluster-wide (every backend).", name, strings.Join(rules[k], ", ")))
	}
	var unused []string
	for name, ms := range t.mailerSets {
		if !ms.used {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	for _, name := range unused {
		t.warn(t.mailerSets[name].head, "mailers "+name, "no proxy uses it with email-alert; not carried over")
	}
}

// keepalivedAlerts turns global_defs' notification settings into a rule
// for VRRP transitions, when an instance or sync group has smtp_alert.
func (t *translator) keepalivedAlerts(files []*kaFile, smtp bool) {
	var f *kaFile
	for _, x := range files {
		if len(x.emails) > 0 || x.smtp != "" {
			f = x
			break
		}
	}
	if f == nil {
		return
	}
	at := hline{file: f.name}
	if f.smtpLine != nil {
		at = hline{file: f.smtpLine.file, num: f.smtpLine.line}
	}
	if !smtp {
		t.note("alerts", fmt.Sprintf("%s sets notification_email but no instance has smtp_alert: no rule for VRRP transitions.", f.name))
		return
	}
	if f.smtp == "" || len(f.emails) == 0 || f.from == "" {
		if f.smtpAlertLine != nil {
			at = hline{file: f.smtpAlertLine.file, num: f.smtpAlertLine.line}
		}
		t.warn(at, "smtp_alert", "needs smtp_server, notification_email and notification_email_from in global_defs; skipped")
		return
	}
	m := config.Mailer{Name: "keepalived-smtp", Address: f.smtp, ConnectTimeout: f.smtpTO}
	t.addMailer(m, at)
	t.setFrom(f.from, at, "notification_email_from")
	// Every node's file has its own settings; the cluster has one rule.
	to := slices.Clone(f.emails)
	for _, x := range files {
		if x == f || (len(x.emails) == 0 && x.smtp == "") {
			continue
		}
		if x.from != "" && x.fromLine != nil {
			t.setFrom(x.from, hline{file: x.fromLine.file, num: x.fromLine.line}, "notification_email_from")
		}
		if x.smtp != "" && x.smtp != f.smtp {
			t.warnKA(x.smtpLine, "smtp_server", fmt.Sprintf("%s differs from %s's %s: vipgate mails through one relay list for the cluster; add it to alerts.mailers if the relay must be reachable from every node", x.smtp, f.name, f.smtp))
		}
		added := false
		for _, e := range x.emails {
			if !slices.Contains(to, e) {
				to, added = append(to, e), true
			}
		}
		if x.emailsLine != nil && (added || len(x.emails) < len(f.emails)) {
			t.warnKA(x.emailsLine, "notification_email", fmt.Sprintf("differs from %s's: the rule mails the recipients of every file, about every node", f.name))
		}
	}
	t.c.Alerts.Rules = append(t.c.Alerts.Rules, config.AlertRule{
		Name: "keepalived", Events: config.StringList{"vrrp.transition"}, MinLevel: "notice", To: config.StringList(to),
	})
	t.src.rules = append(t.src.rules, at)
	t.note("alerts", "rule keepalived: smtp_alert mailed every VRRP state change; vipgate publishes them as vrrp.transition at notice (FAULT at warning).")
}
