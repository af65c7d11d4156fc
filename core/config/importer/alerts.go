package importer

import (
	"fmt"
	"sort"
	"strings"
)

// mailerSet is a haproxy `mailers` section.
type mailerSet struct {
	head    hline
	mailers []string
	timeout string
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
			ms.mailers = append(ms.mailers, l.args[2])
		case "timeout":
			if len(l.args) >= 3 && l.args[1] == "mail" {
				ms.timeout = l.args[2]
			} else {
				t.warn(l, "timeout", "only `timeout mail` belongs in a mailers section")
			}
		default:
			t.warn(l, l.keyword(), "unknown keyword in a mailers section")
		}
	}
	t.mailerSets[s.name] = ms
}

func (t *translator) emailAlert(l hline) {
	t.alertLines = append(t.alertLines, l)
}

// finishAlerts reports haproxy e-mail alerting. The alerts section of the
// cluster schema is not available in this build: the settings are kept as
// comments (one warning per directive) for the operator to carry over.
func (t *translator) finishAlerts() {
	if len(t.alertLines) == 0 && len(t.mailerSets) == 0 {
		return
	}
	t.footer = append(t.footer, "", "E-mail alerts from haproxy.cfg (this build's cluster schema has no alerts section yet):")
	names := make([]string, 0, len(t.mailerSets))
	for name := range t.mailerSets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ms := t.mailerSets[name]
		t.warn(ms.head, "mailers "+name, "e-mail alerting is not part of this build's cluster schema; kept as a comment")
		t.footer = append(t.footer, fmt.Sprintf("  mailers %s (%s:%d): smtp servers %s, timeout %s", name, ms.head.file, ms.head.num,
			strings.Join(ms.mailers, ", "), orDash(ms.timeout)))
	}
	for _, l := range t.alertLines {
		t.warn(l, strings.Join(l.args[:min(2, len(l.args))], " "), "e-mail alerting is not part of this build's cluster schema; kept as a comment")
		t.footer = append(t.footer, fmt.Sprintf("  %s:%d: %s", l.file, l.num, strings.Join(l.args, " ")))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
