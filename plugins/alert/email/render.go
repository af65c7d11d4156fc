package email

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
)

// StateView answers "what is up now" for the mail body. *proxy.Proxy
// satisfies it; nil (a witness) leaves that part out.
type StateView interface {
	Servers(backend string) []*upstream.Server
}

// KindCount is how many events of one kind a digest holds.
type KindCount struct {
	Kind  events.Kind
	Count int
}

// MailData is what the subject and body templates see.
type MailData struct {
	Rule    string
	Node    string // the node that sends the mail
	DC      string
	Subject string // what the events are about, e.g. "exchange/ex1"
	// Subjects lists them when a digest is about several (a burst).
	Subjects []string
	Event    events.Event   // the latest event
	First    events.Event   // the earliest event
	Events   []events.Event // all of them, oldest first
	Count    int
	Counts   []KindCount // per kind, most frequent first
	Digest   bool        // more than one event
	Window   time.Duration
	Now      time.Time
	State    []string // "what is up now", one line each
}

// Level is the most severe level among the events.
func (d MailData) Level() events.Level {
	l := events.Debug
	for _, e := range d.Events {
		if e.Level < l {
			l = e.Level
		}
	}
	return l
}

const defaultSubject = `[vipgate] {{if .Digest}}{{.Count}} events about {{.Subject}}: {{range $i, $c := .Counts}}{{if $i}}, {{end}}{{$c.Count}}x {{$c.Kind}}{{end}} (now: {{.Event.Kind}}){{else}}{{upper .Event.Level.String}}: {{.Event.Message}}{{end}} [{{.Event.Node}}{{if .Event.DC}}/{{.Event.DC}}{{end}}]`

const defaultBody = `{{if .Digest -}}
{{.Count}} events about {{.Subject}} between {{time .First.Time}} and {{time .Event.Time}}
(coalesced into one mail; window {{.Window}}):
{{range .Counts}}
  {{printf "%5d" .Count}} x {{.Kind}}{{end}}

Latest:        {{.Event.Message}}
{{- else -}}
What happened: {{.Event.Message}}
{{- end}}
Event:         {{.Event.Kind}} ({{.Event.Level}})
Where:         node {{.Event.Node}}{{if .Event.DC}}, datacenter {{.Event.DC}}{{end}}
Since:         {{time .Event.Time}} ({{since .Event.Time .Now}} ago)
{{- if .Event.Attrs}}

Details:
{{- range $k, $v := .Event.Attrs}}
  {{$k}}: {{$v}}{{end}}
{{- end}}
{{- if .State}}

Now:
{{- range .State}}
  {{.}}{{end}}
{{- end}}
{{- if .Digest}}

Events (oldest first{{if gt .Count 50}}, the last 50{{end}}):
{{- range (tail .Events 50)}}
  {{time .Time}}  {{printf "%-7s" .Level.String}}  {{printf "%-16s" .Kind}}  {{.Message}}{{end}}
{{- end}}

-- 
vipgate alert rule {{.Rule}}, sent by {{.Node}}{{if .DC}} ({{.DC}}){{end}} at {{time .Now}}
`

func templateFuncs() template.FuncMap {
	f := config.AlertTemplateFuncs()
	f["tail"] = func(l []events.Event, n int) []events.Event {
		if len(l) > n {
			return l[len(l)-n:]
		}
		return l
	}
	return f
}

// renderer turns a group of events into a subject and a body.
type renderer struct {
	subject, body       *template.Template
	defSubject, defBody *template.Template
}

func newRenderer(a *config.Alerts) (*renderer, error) {
	r := &renderer{
		defSubject: template.Must(template.New("subject").Funcs(templateFuncs()).Parse(defaultSubject)),
		defBody:    template.Must(template.New("body").Funcs(templateFuncs()).Parse(defaultBody)),
	}
	r.subject, r.body = r.defSubject, r.defBody
	var err error
	if a.Subject != "" {
		if r.subject, err = template.New("subject").Funcs(templateFuncs()).Parse(a.Subject); err != nil {
			return nil, fmt.Errorf("alerts.subject: %w", err)
		}
	}
	if a.Template != "" {
		if r.body, err = template.New("body").Funcs(templateFuncs()).Parse(a.Template); err != nil {
			return nil, fmt.Errorf("alerts.template: %w", err)
		}
	}
	return r, nil
}

// render never fails: a template that errors at run time falls back to the
// built-in one, with the error in the body, because an alert with an ugly
// body beats a lost alert.
func (r *renderer) render(d MailData) (subject, body string) {
	subject, serr := execute(r.subject, d)
	if serr != nil {
		subject, _ = execute(r.defSubject, d)
	}
	body, berr := execute(r.body, d)
	if berr != nil {
		body, _ = execute(r.defBody, d)
	}
	for _, err := range []error{serr, berr} {
		if err != nil {
			body += fmt.Sprintf("\n(the configured template failed, the built-in one was used: %v)\n", err)
		}
	}
	return strings.Join(strings.Fields(subject), " "), body
}

func execute(t *template.Template, d MailData) (string, error) {
	var b bytes.Buffer
	err := t.Execute(&b, d)
	return b.String(), err
}

// mailData builds the template input for events about one subject.
func mailData(rule string, evs []events.Event, window time.Duration, node, dc string, now time.Time, sv StateView) MailData {
	d := MailData{Rule: rule, Node: node, DC: dc, Events: evs, Count: len(evs), Digest: len(evs) > 1, Window: window, Now: now}
	if len(evs) == 0 {
		return d
	}
	d.First, d.Event = evs[0], evs[len(evs)-1]
	d.Subject = d.Event.Subject
	if d.Subject == "" {
		d.Subject = string(d.Event.Kind)
	}
	// A burst digest is about several subjects: name a few.
	var subjects []string
	seen := map[string]bool{}
	for _, e := range evs {
		if !seen[e.Subject] {
			seen[e.Subject] = true
			subjects = append(subjects, e.Subject)
		}
	}
	if len(subjects) > 1 {
		d.Subjects = subjects
		shown := subjects
		if len(shown) > 3 {
			shown = append(shown[:3:3], "…")
		}
		d.Subject = fmt.Sprintf("%d subjects (%s)", len(subjects), strings.Join(shown, ", "))
	}
	counts := map[events.Kind]int{}
	for _, e := range evs {
		counts[e.Kind]++
	}
	for k, n := range counts {
		d.Counts = append(d.Counts, KindCount{k, n})
	}
	sort.Slice(d.Counts, func(i, j int) bool {
		if d.Counts[i].Count != d.Counts[j].Count {
			return d.Counts[i].Count > d.Counts[j].Count
		}
		return d.Counts[i].Kind < d.Counts[j].Kind
	})
	d.State = stateLines(d.Event, sv)
	return d
}

// stateLines describes the backend an event is about, as it is now.
func stateLines(e events.Event, sv StateView) []string {
	b := e.Attr("backend")
	if sv == nil || b == "" {
		return nil
	}
	servers := sv.Servers(b)
	if len(servers) == 0 {
		return nil
	}
	up := 0
	lines := make([]string, 0, len(servers)+1)
	for _, s := range servers {
		st := s.Health().String()
		if s.Usable() {
			up++
		}
		if a := s.Admin(); a != 0 {
			st += " (" + a.String() + ")"
		}
		lines = append(lines, fmt.Sprintf("  %-20s %-22s %s", s.Name, s.Addr, st))
	}
	head := fmt.Sprintf("backend %s: %d of %d servers usable", b, up, len(servers))
	return append([]string{head}, lines...)
}

// message builds the RFC 5322 message: headers, then the body in
// quoted-printable so that any template output survives any relay.
func message(from string, to []string, subject, body string, date time.Time, msgID, node string, extra map[string]string) []byte {
	if msgID == "" { // a test mail, or a record queued by an older version
		msgID = newMessageID(node)
	}
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from)
	h("To", strings.Join(to, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", date.Format(time.RFC1123Z))
	h("Message-ID", msgID)
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated")
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h(k, mime.QEncoding.Encode("utf-8", extra[k]))
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")))
	qp.Close()
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// newMessageID is a Message-ID (with its angle brackets) for a mail of node.
func newMessageID(node string) string { return "<" + randomID() + "@" + sanitizeHost(node) + ">" }

func randomID() string {
	var r [12]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

func sanitizeHost(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return -1
	}, s)
	if s == "" {
		return "vipgate"
	}
	return s
}
