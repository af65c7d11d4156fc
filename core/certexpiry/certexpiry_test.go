package certexpiry

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testcert"
)

var t0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// writeCert writes a certificate for cn valid until notAfter; with
// chainNotAfter, more certificates (intermediates) follow it.
func writeCert(t *testing.T, file, cn string, notAfter time.Time, chainNotAfter ...time.Time) {
	t.Helper()
	var out []byte
	for i, na := range append([]time.Time{notAfter}, chainNotAfter...) {
		name := cn
		if i > 0 {
			name = fmt.Sprintf("intermediate %d", i)
		}
		c, _ := testcert.PEM(t, testcert.Cert{CN: name, DNS: []string{cn}, NotBefore: t0.Add(-365 * 24 * time.Hour), NotAfter: na})
		out = append(out, c...)
	}
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func cluster(t *testing.T, extra string, certs ...string) *config.Cluster {
	t.Helper()
	doc := "frontends:\n"
	for i, c := range certs {
		doc += fmt.Sprintf("  - {name: fe%d, bind: \"127.0.0.1:0\", mode: http, default_backend: be, tls: {certificates: [{cert: %q, key: %q}]}}\n", i, c, c)
	}
	doc += "backends: [{name: be, mode: http, servers: [{name: s1, address: \"127.0.0.1:9\"}]}]\n" + extra
	c, err := config.Parse("cluster.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return c
}

// drain returns the cert.expiring events published since the last call.
func drain(sub *events.Subscription) []events.Event {
	var out []events.Event
	for {
		select {
		case e := <-sub.C:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestLevelsAndMessages(t *testing.T) {
	day := 24 * time.Hour
	for _, tt := range []struct {
		name     string
		notAfter time.Time
		chain    []time.Time
		want     events.Level // -1: no event
		state    string
		text     string
	}{
		{"far", t0.Add(90 * day), nil, -1, "ok", ""},
		{"within 30 days", t0.Add(20*day + time.Hour), nil, events.Warning, "expiring", "expires in 20 days"},
		{"within a week", t0.Add(3*day + time.Hour), nil, events.Err, "expiring", "expires in 3 days"},
		{"expired", t0.Add(-2*day - time.Hour), nil, events.Crit, "expired", "expired 2 days ago"},
		{"intermediate first", t0.Add(300 * day), []time.Time{t0.Add(10*day + time.Hour)}, events.Warning, "expiring", "CN=intermediate 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "web.pem")
			writeCert(t, f, "mail.example.test", tt.notAfter, tt.chain...)
			bus := events.New("gw1", "dc1")
			sub := bus.Subscribe("t", 16, nil)
			w := New(Options{Bus: bus, Now: func() time.Time { return t0 }})
			if err := w.Apply(cluster(t, "", f)); err != nil {
				t.Fatal(err)
			}
			evs := drain(sub)
			st := w.Status()
			if len(st) != 1 || st[0].State != tt.state || st[0].UsedBy[0] != "frontend fe0" {
				t.Errorf("status %+v, want state %s", st, tt.state)
			}
			if tt.want < 0 {
				if len(evs) != 0 {
					t.Errorf("events %+v, want none", evs)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			e := evs[0]
			if e.Kind != events.CertExpiring || e.Level != tt.want || e.Scope != events.Local || e.Subject != f ||
				e.Attr("file") != f || e.Attr("not_after") == "" || e.Attr("used_by") != "frontend fe0" || !strings.Contains(e.Message, tt.text) {
				t.Errorf("event %+v\nwant level %s and %q in the message", e, tt.want, tt.text)
			}
		})
	}
}

// TestOncePerDayUnlessWorse: a re-applied config does not repeat the
// warning; the next day's check does; crossing into the last week does at
// once; a renewed certificate ends the warnings.
func TestOncePerDayUnlessWorse(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "web.pem")
	notAfter := t0.Add(8*24*time.Hour + time.Hour)
	writeCert(t, f, "mail.example.test", notAfter)
	now := t0
	bus := events.New("gw1", "dc1")
	sub := bus.Subscribe("t", 16, nil)
	w := New(Options{Bus: bus, Now: func() time.Time { return now }})
	c := cluster(t, "", f)
	step := func(what string, do func(), want int, level events.Level) {
		t.Helper()
		do()
		evs := drain(sub)
		if len(evs) != want || (want > 0 && evs[0].Level != level) {
			t.Errorf("%s: %+v, want %d event(s) at %s", what, evs, want, level)
		}
	}
	apply := func() { w.Apply(c) }
	step("load", apply, 1, events.Warning)
	step("re-apply", apply, 0, 0)
	now = now.Add(2 * time.Hour)
	step("a check later the same day", func() { w.Check() }, 0, 0)
	now = now.Add(23 * time.Hour) // 7 days 22 hours left: within the week
	step("next day, within the last week", func() { w.Check() }, 1, events.Err)
	now = now.Add(time.Hour)
	step("an hour later", func() { w.Check() }, 0, 0)
	writeCert(t, f, "mail.example.test", t0.Add(400*24*time.Hour))
	step("renewed", func() { w.Check() }, 0, 0)
	if st := w.Status(); st[0].State != "ok" {
		t.Errorf("after renewal: %+v", st)
	}
}

// TestNodeCertificatesAndThreshold: the node file's certificates are
// checked too, a file shared by several users is one event naming them
// all, and alerts.cert_expiry moves the threshold.
func TestNodeCertificatesAndThreshold(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "node.pem")
	writeCert(t, shared, "gw1.example.test", t0.Add(50*24*time.Hour))
	n, err := config.ParseNode("node.yaml", []byte(fmt.Sprintf(`name: gw1
datacenter: dc1
data_dir: %s
admin: {listen: "127.0.0.1:0", tokens: [abcdefghijklmnop], tls: {cert: %q, key: %q}}
peers: {listen: "127.0.0.1:0", tls: {ca: %q, cert: %q, key: %q}}
`, dir, shared, shared, shared, shared, shared)))
	if err != nil {
		t.Fatal(err)
	}
	bus := events.New("gw1", "dc1")
	sub := bus.Subscribe("t", 16, nil)
	w := New(Options{Bus: bus, Node: n, Now: func() time.Time { return t0 }})
	w.Apply(cluster(t, ""))
	if evs := drain(sub); len(evs) != 0 {
		t.Errorf("50 days left, default threshold 30d: %+v", evs)
	}
	w.Apply(cluster(t, "alerts: {cert_expiry: 60d}\n"))
	evs := drain(sub)
	if len(evs) != 1 || evs[0].Attr("used_by") != "admin API, stick peers, stick peers CA" {
		t.Fatalf("events %+v", evs)
	}
	missing := filepath.Join(dir, "gone.pem")
	w.Apply(cluster(t, "", missing))
	if st := w.Status(); len(st) != 2 || st[0].File != missing || st[0].State != "unreadable" {
		t.Errorf("status %+v", st)
	}
}
