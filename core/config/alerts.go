package config

import (
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/vipgate/vipgate/core/events"
)

// Alerts is HAProxy's `mailers` + `email-alert` and keepalived's
// `smtp_alert` in one section: which events, at which level, go to whom,
// through which mail relays.
type Alerts struct {
	// Mailers are SMTP relays tried in order until one accepts the mail.
	Mailers []Mailer `yaml:"mailers,omitempty"`
	// From is the envelope sender and From: header.
	From string `yaml:"from,omitempty"`
	// Rules select events and name their recipients. An event matching
	// several rules is mailed once per rule.
	Rules []AlertRule `yaml:"rules,omitempty"`
	Queue AlertQueue  `yaml:"queue,omitempty"`
	// Subject and Template are Go text/template sources for the subject
	// line and the body; empty means the built-in ones (docs/alerts.md
	// lists the fields they see).
	Subject  string `yaml:"subject,omitempty"`
	Template string `yaml:"template,omitempty"`
	// CertExpiry: a certificate this node serves or presents (TLS
	// frontends, admin API, raft, stick peers) that expires within this
	// publishes cert.expiring, at load and daily (default 30d).
	CertExpiry Duration `yaml:"cert_expiry,omitempty"`
}

// Mailer is one SMTP relay.
type Mailer struct {
	Name string `yaml:"name"`
	// Address is host:port (port 25, 587 or 465 usually).
	Address string `yaml:"address"`
	// TLS is none (default), starttls (required: the mail is not sent in
	// clear if the server does not offer it) or implicit (SMTPS, port 465).
	TLS string `yaml:"tls,omitempty"`
	// CA is a PEM file of CAs to trust instead of the system roots.
	CA string `yaml:"ca,omitempty"`
	// ServerName overrides the name checked in the server's certificate
	// (default: the host part of Address).
	ServerName string `yaml:"server_name,omitempty"`
	// InsecureSkipVerify accepts any certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty"`
	// Username enables AUTH; the password comes from Password or from
	// PasswordFile, read on each node (keeps the secret out of the
	// replicated document).
	Username     string `yaml:"username,omitempty"`
	Password     string `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
	// Auth is plain, login, or empty: PLAIN if offered, else LOGIN.
	Auth string `yaml:"auth,omitempty"`
	// Helo is the name announced in EHLO (default: the node name).
	Helo string `yaml:"helo,omitempty"`
	// ConnectTimeout bounds the TCP connect and TLS handshake (default 10s),
	// SendTimeout each SMTP command and the data transfer (default 30s).
	ConnectTimeout Duration `yaml:"connect_timeout,omitempty"`
	SendTimeout    Duration `yaml:"send_timeout,omitempty"`
}

// Mailer TLS modes.
const (
	MailerTLSNone     = "none"
	MailerTLSStartTLS = "starttls"
	MailerTLSImplicit = "implicit"
)

// AlertRule maps events to recipients.
type AlertRule struct {
	// Name appears in stats and mail headers (default rule-<n>).
	Name string `yaml:"name,omitempty"`
	// Events are kinds ("server.down"), prefixes ("server.*") or "*".
	// Default: every kind.
	Events StringList `yaml:"events,omitempty"`
	// MinLevel is the least severe level that is mailed (default warning):
	// "notice" also mails warning, err, crit, alert and emerg events.
	MinLevel string     `yaml:"min_level,omitempty"`
	To       StringList `yaml:"to"`
	// Coalesce is the digest window: the first event about a subject is
	// mailed at once, further events about the same subject within the
	// window are mailed together, with counts, when it ends. 0 mails every
	// event on its own. Default 1m.
	Coalesce *Duration `yaml:"coalesce,omitempty"`
	// Burst bounds the mails a rule sends at once per coalesce window:
	// beyond it (a whole datacenter's servers going down together), the
	// events about further subjects are mailed together in one digest when
	// the window ends. Default 10; 0 means no bound. No effect with
	// coalesce 0.
	Burst *int `yaml:"burst,omitempty"`
}

// BurstLimit returns the burst bound (0: none).
func (r *AlertRule) BurstLimit() int {
	if r.Burst == nil {
		return DefaultAlertBurst
	}
	return *r.Burst
}

// Level returns the parsed MinLevel (valid after validation).
func (r *AlertRule) Level() events.Level {
	l, _ := events.ParseLevel(r.MinLevel)
	return l
}

// Window returns the coalescing window.
func (r *AlertRule) Window() time.Duration {
	if r.Coalesce == nil {
		return 0
	}
	return r.Coalesce.D()
}

// Matches reports whether the rule selects an event kind and level.
func (r *AlertRule) Matches(k events.Kind, l events.Level) bool {
	if l > r.Level() {
		return false
	}
	if len(r.Events) == 0 {
		return true
	}
	for _, p := range r.Events {
		if matchKind(p, string(k)) {
			return true
		}
	}
	return false
}

func matchKind(pattern, kind string) bool {
	if pattern == "*" || pattern == kind {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(kind, prefix)
	}
	return false
}

// AlertQueue configures the durable outgoing queue in the node's data dir.
type AlertQueue struct {
	// Max is the most mails kept waiting; beyond it the oldest are dropped
	// and the drop itself is mailed. 0 (default) keeps everything.
	Max int `yaml:"max,omitempty"`
	// RetryMin and RetryMax bound the exponential backoff between delivery
	// attempts (defaults 5s and 5m).
	RetryMin Duration `yaml:"retry_min,omitempty"`
	RetryMax Duration `yaml:"retry_max,omitempty"`
}

// Built-in alert defaults.
const (
	DefaultMailerConnectTimeout = 10 * time.Second
	DefaultMailerSendTimeout    = 30 * time.Second
	DefaultAlertCoalesce        = time.Minute
	DefaultAlertRetryMin        = 5 * time.Second
	DefaultAlertRetryMax        = 5 * time.Minute
	DefaultAlertMinLevel        = "warning"
	DefaultAlertBurst           = 10
	DefaultCertExpiry           = 30 * 24 * time.Hour
)

// AlertTemplateFuncs are the functions alert templates may call, beyond
// text/template's built-ins. Validation parses templates with them so that
// a typo is reported at apply time, not when the first alert fires.
func AlertTemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"upper": func(v any) string { return strings.ToUpper(fmt.Sprint(v)) },
		"lower": func(v any) string { return strings.ToLower(fmt.Sprint(v)) },
		"join":  strings.Join,
		"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"since": func(t, now time.Time) string { return now.Sub(t).Round(time.Second).String() },
	}
}

func (c *Cluster) applyAlertsDefaults() {
	a := &c.Alerts
	for i := range a.Mailers {
		m := &a.Mailers[i]
		if m.TLS == "" {
			m.TLS = MailerTLSNone
		}
		if m.ConnectTimeout == 0 {
			m.ConnectTimeout = Duration(DefaultMailerConnectTimeout)
		}
		if m.SendTimeout == 0 {
			m.SendTimeout = Duration(DefaultMailerSendTimeout)
		}
	}
	for i := range a.Rules {
		r := &a.Rules[i]
		if r.Name == "" {
			r.Name = "rule-" + strconv.Itoa(i+1)
		}
		if r.MinLevel == "" {
			r.MinLevel = DefaultAlertMinLevel
		}
		if r.Coalesce == nil {
			d := Duration(DefaultAlertCoalesce)
			r.Coalesce = &d
		}
		if r.Burst == nil {
			b := DefaultAlertBurst
			r.Burst = &b
		}
	}
	if a.CertExpiry == 0 {
		a.CertExpiry = Duration(DefaultCertExpiry)
	}
	if a.Queue.RetryMin == 0 {
		a.Queue.RetryMin = Duration(DefaultAlertRetryMin)
	}
	if a.Queue.RetryMax == 0 {
		a.Queue.RetryMax = Duration(DefaultAlertRetryMax)
	}
}

func (c *Cluster) validateAlerts(p *Problems) {
	a := &c.Alerts
	names := map[string]bool{}
	for i := range a.Mailers {
		m := &a.Mailers[i]
		at := func(k string) string { return Path("alerts", "mailers", i, k) }
		switch {
		case m.Name == "":
			p.Addf(at("name"), "a mailer needs a name")
		case names[m.Name]:
			p.Addf(at("name"), "duplicate mailer name %q", m.Name)
		}
		names[m.Name] = true
		if m.Address == "" {
			p.Addf(at("address"), "a mailer needs an address (host:port)")
		} else if _, port, err := net.SplitHostPort(m.Address); err != nil {
			p.Addf(at("address"), "invalid address %q: want host:port, e.g. smtp.example.com:587", m.Address)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.Addf(at("address"), "invalid port %q in %q", port, m.Address)
		}
		switch m.TLS {
		case MailerTLSNone, MailerTLSStartTLS, MailerTLSImplicit:
		default:
			p.Addf(at("tls"), "unknown tls mode %q (want none, starttls or implicit)", m.TLS)
		}
		if m.Password != "" && m.PasswordFile != "" {
			p.Addf(at("password_file"), "give password or password_file, not both")
		}
		if (m.Password != "" || m.PasswordFile != "") && m.Username == "" {
			p.Addf(at("username"), "a password needs a username")
		}
		switch strings.ToLower(m.Auth) {
		case "", "plain", "login":
		default:
			p.Addf(at("auth"), "unknown auth mechanism %q (want plain or login)", m.Auth)
		}
		if m.Auth != "" && m.Username == "" {
			p.Addf(at("auth"), "auth needs a username")
		}
	}
	if len(a.Rules) > 0 {
		if len(a.Mailers) == 0 {
			p.Addf(Path("alerts", "mailers"), "alert rules need at least one mailer")
		}
		if a.From == "" {
			p.Addf(Path("alerts", "from"), "alert rules need a sender address (from)")
		}
	}
	if a.From != "" {
		if _, err := mail.ParseAddress(a.From); err != nil {
			p.Addf(Path("alerts", "from"), "invalid sender address %q: %v", a.From, err)
		}
	}
	rules := map[string]bool{}
	for i := range a.Rules {
		r := &a.Rules[i]
		at := func(k string) string { return Path("alerts", "rules", i, k) }
		if rules[r.Name] {
			p.Addf(at("name"), "duplicate rule name %q", r.Name)
		}
		rules[r.Name] = true
		for j, ev := range r.Events {
			if !validKindPattern(ev) {
				p.Addf(Path("alerts", "rules", i, "events", j), "unknown event %q (known: %s; a prefix like server.* or * also works)", ev, knownKinds())
			}
		}
		if _, err := events.ParseLevel(r.MinLevel); err != nil {
			p.Addf(at("min_level"), "%v", err)
		}
		if len(r.To) == 0 {
			p.Addf(at("to"), "a rule needs at least one recipient")
		}
		if r.Burst != nil && *r.Burst < 0 {
			p.Addf(at("burst"), "must be 0 (no bound) or positive")
		}
		for j, to := range r.To {
			if _, err := mail.ParseAddress(to); err != nil {
				p.Addf(Path("alerts", "rules", i, "to", j), "invalid recipient %q: %v", to, err)
			}
		}
	}
	if a.Queue.Max < 0 {
		p.Addf(Path("alerts", "queue", "max"), "must be 0 (no cap) or positive")
	}
	if a.Queue.RetryMax < a.Queue.RetryMin {
		p.Addf(Path("alerts", "queue", "retry_max"), "retry_max (%s) is shorter than retry_min (%s)", a.Queue.RetryMax.D(), a.Queue.RetryMin.D())
	}
	if a.Subject != "" {
		if _, err := template.New("subject").Funcs(AlertTemplateFuncs()).Parse(a.Subject); err != nil {
			p.Addf(Path("alerts", "subject"), "invalid template: %v", err)
		}
	}
	if a.Template != "" {
		if _, err := template.New("body").Funcs(AlertTemplateFuncs()).Parse(a.Template); err != nil {
			p.Addf(Path("alerts", "template"), "invalid template: %v", err)
		}
	}
}

func validKindPattern(p string) bool {
	if p == "*" {
		return true
	}
	for _, k := range events.Kinds() {
		if matchKind(p, string(k)) {
			return true
		}
	}
	return false
}

func knownKinds() string {
	ks := events.Kinds()
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// String is used in error messages.
func (m *Mailer) String() string { return fmt.Sprintf("mailer %q (%s)", m.Name, m.Address) }
