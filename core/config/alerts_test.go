package config

import (
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/events"
)

const alertsDoc = `
alerts:
  from: "vipgate <vipgate@example.com>"
  mailers:
    - name: relay1
      address: smtp1.example.com:587
      tls: starttls
      username: vipgate
      password_file: /etc/vipgate/smtp.pw
    - name: relay2
      address: smtp2.example.com:465
      tls: implicit
      connect_timeout: 3s
  rules:
    - name: servers
      events: [server.down, server.up, backend.*]
      min_level: notice
      to: [ops@example.com, "On Call <oncall@example.com>"]
      coalesce: 30s
    - to: boss@example.com
      events: [dc.failover, dc.failback]
  queue: {max: 1000, retry_min: 2s, retry_max: 1m}
`

func TestAlertsParseAndDefaults(t *testing.T) {
	c, err := Parse("alerts.yaml", []byte(alertsDoc))
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	a := c.Alerts
	if a.Mailers[0].ConnectTimeout.D() != DefaultMailerConnectTimeout || a.Mailers[0].SendTimeout.D() != DefaultMailerSendTimeout {
		t.Errorf("mailer timeout defaults: %+v", a.Mailers[0])
	}
	if a.Mailers[1].ConnectTimeout.D() != 3*time.Second {
		t.Errorf("connect_timeout: %s", a.Mailers[1].ConnectTimeout.D())
	}
	r := a.Rules[1]
	if r.Name != "rule-2" || r.MinLevel != "warning" || r.Window() != DefaultAlertCoalesce {
		t.Errorf("rule defaults: name %q level %q window %s", r.Name, r.MinLevel, r.Window())
	}
	if a.Rules[0].BurstLimit() != DefaultAlertBurst {
		t.Errorf("burst default: %d", a.Rules[0].BurstLimit())
	}
	if a.Rules[0].Window() != 30*time.Second {
		t.Errorf("coalesce: %s", a.Rules[0].Window())
	}
	if a.Queue.Max != 1000 || a.Queue.RetryMin.D() != 2*time.Second || a.Queue.RetryMax.D() != time.Minute {
		t.Errorf("queue: %+v", a.Queue)
	}
	if a.CertExpiry.D() != DefaultCertExpiry {
		t.Errorf("cert_expiry default: %s", a.CertExpiry.D())
	}
	zero, err := Parse("z.yaml", []byte("alerts:\n  from: a@b.c\n  mailers: [{name: m, address: 'h:25'}]\n  rules: [{to: x@y.z, coalesce: 0}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := zero.Alerts.Rules[0].Window(); w != 0 {
		t.Errorf("coalesce: 0 must stay 0 (mail every event), got %s", w)
	}
	days, err := Parse("d.yaml", []byte("alerts:\n  cert_expiry: 14d\n"))
	if err != nil || days.Alerts.CertExpiry.D() != 14*24*time.Hour {
		t.Errorf("cert_expiry: 14d: %v, %v", days.Alerts.CertExpiry.D(), err)
	}
}

func TestAlertRuleMatches(t *testing.T) {
	tests := []struct {
		events []string
		min    string
		kind   events.Kind
		level  events.Level
		want   bool
	}{
		{nil, "warning", events.ServerDown, events.Warning, true},
		{nil, "warning", events.ServerUp, events.Notice, false},
		{nil, "notice", events.ServerUp, events.Notice, true},
		{nil, "err", events.BackendEmpty, events.Alert, true},
		{nil, "debug", events.ConfigApplied, events.Info, true},
		{[]string{"server.down"}, "debug", events.ServerUp, events.Notice, false},
		{[]string{"server.*"}, "debug", events.ServerUp, events.Notice, true},
		{[]string{"server.*"}, "debug", events.BackendEmpty, events.Alert, false},
		{[]string{"*"}, "emerg", events.DCFailover, events.Alert, false},
		{[]string{"*"}, "alert", events.DCFailover, events.Alert, true},
		{[]string{"dc.failover", "raft.*"}, "info", events.QuorumLost, events.Crit, true},
	}
	for _, tt := range tests {
		r := AlertRule{Events: tt.events, MinLevel: tt.min}
		if got := r.Matches(tt.kind, tt.level); got != tt.want {
			t.Errorf("events %v min %s: %s at %s = %v, want %v", tt.events, tt.min, tt.kind, tt.level, got, tt.want)
		}
	}
}

func TestAlertsValidation(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"unknown tls", `
alerts:
  from: a@example.com
  mailers:
    - {name: m, address: "h:25", tls: ssl}
`, []string{"x.yaml:5:39: alerts.mailers.0.tls: unknown tls mode \"ssl\""}},
		{"bad address and duplicate", `
alerts:
  mailers:
    - {name: m, address: "smtp.example.com"}
    - {name: m, address: "h:99999"}
`, []string{"alerts.mailers.0.address: invalid address", "alerts.mailers.1.name: duplicate mailer name", "invalid port \"99999\""}},
		{"password without user, both sources", `
alerts:
  mailers:
    - {name: m, address: "h:25", password: x, password_file: /p}
`, []string{"give password or password_file, not both", "a password needs a username"}},
		{"rules need mailer and from", `
alerts:
  rules:
    - to: a@example.com
`, []string{"alert rules need at least one mailer", "alert rules need a sender address"}},
		{"bad rule", `
alerts:
  from: a@example.com
  mailers: [{name: m, address: "h:25"}]
  rules:
    - events: [server.dwon]
      min_level: loud
      to: [not an address]
    - events: [server.down]
`, []string{
			"x.yaml:6:16: alerts.rules.0.events.0: unknown event \"server.dwon\"",
			"alerts.rules.0.min_level: unknown level \"loud\"",
			"alerts.rules.0.to.0: invalid recipient",
			"x.yaml:9:7: alerts.rules.1.to: a rule needs at least one recipient",
		}},
		{"templates", `
alerts:
  subject: "{{.Event.Kind"
  template: "{{nosuchfunc .}}"
`, []string{"alerts.subject: invalid template", "alerts.template: invalid template", "function \"nosuchfunc\" not defined"}},
		{"burst", `
alerts:
  from: a@example.com
  mailers: [{name: m, address: "h:25"}]
  rules: [{to: a@example.com, burst: -1}]
`, []string{"alerts.rules.0.burst: must be 0 (no bound) or positive"}},
		{"queue", `
alerts:
  queue: {max: -1, retry_min: 1m, retry_max: 1s}
`, []string{"alerts.queue.max: must be 0", "retry_max (1s) is shorter than retry_min (1m0s)"}},
		{"unknown key", `
alerts:
  mailer: []
`, []string{"mailer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestAlertTemplateFuncs(t *testing.T) {
	f := AlertTemplateFuncs()
	if got := f["upper"].(func(any) string)(events.ServerDown); got != "SERVER.DOWN" {
		t.Errorf("upper: %q", got)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := f["time"].(func(time.Time) string)(t0); got != "2026-01-02 03:04:05 UTC" {
		t.Errorf("time: %q", got)
	}
	if got := f["since"].(func(time.Time, time.Time) string)(t0, t0.Add(90*time.Second)); got != "1m30s" {
		t.Errorf("since: %q", got)
	}
}
