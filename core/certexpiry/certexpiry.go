// Package certexpiry publishes cert.expiring when a certificate the node
// serves or presents is about to expire: TLS frontends (cluster config) and
// the node file's admin, raft and stick-peer certificates. It checks when a
// config is applied and then daily, and says so again at most once a day
// per certificate, unless its state worsens (expiring → within a week →
// expired) or the file changes.
package certexpiry

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
)

// Interval is how often certificates are checked between config applies.
const Interval = 24 * time.Hour

// soon is when an expiring certificate becomes an error rather than a
// warning: a week leaves a weekend and a change window.
const soon = 7 * 24 * time.Hour

// Options configure a Watcher.
type Options struct {
	Bus *events.Bus
	Log *slog.Logger
	// Node is the node file: its admin, raft and peers certificates are
	// checked as well (may be nil).
	Node *config.Node
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
}

// Watcher is the node subsystem that checks certificate expiry.
type Watcher struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	files  []source
	warn   time.Duration
	last   map[string]said // by file
	status []Status
}

// source is one certificate file and what uses it.
type source struct {
	file   string
	usedBy []string
}

// said is what was last published about a file.
type said struct {
	at       time.Time
	level    events.Level
	notAfter time.Time
}

// Status is one certificate file as last checked, for the admin API.
type Status struct {
	File     string    `json:"file"`
	UsedBy   []string  `json:"used_by"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	DaysLeft int       `json:"days_left"`
	State    string    `json:"state"` // ok, expiring, expired, unreadable
	Error    string    `json:"error,omitempty"`
}

// New makes a watcher; Apply gives it the certificates to check.
func New(o Options) *Watcher {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Watcher{o: o, log: o.Log, last: map[string]said{}, warn: config.DefaultCertExpiry}
}

// Name implements the node's subsystem interface.
func (w *Watcher) Name() string { return "certs" }

// Apply takes the certificate files of a snapshot and checks them now: a
// new or renewed certificate is judged at load, not a day later.
func (w *Watcher) Apply(c *config.Cluster) error {
	byFile := map[string][]string{}
	add := func(file, use string) {
		if file != "" {
			byFile[file] = append(byFile[file], use)
		}
	}
	for i := range c.Frontends {
		fe := &c.Frontends[i]
		if fe.TLS == nil {
			continue
		}
		for _, cf := range fe.TLS.Certificates {
			add(cf.Cert, "frontend "+fe.Name)
		}
	}
	if n := w.o.Node; n != nil {
		if n.Admin.TLS != nil {
			add(n.Admin.TLS.Cert, "admin API")
		}
		add(n.Raft.TLS.Cert, "raft")
		add(n.Raft.TLS.CA, "raft CA")
		if n.Peers.TLS != nil {
			add(n.Peers.TLS.Cert, "stick peers")
			add(n.Peers.TLS.CA, "stick peers CA")
		}
	}
	files := make([]source, 0, len(byFile))
	for f, u := range byFile {
		files = append(files, source{file: f, usedBy: u})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].file < files[j].file })
	w.mu.Lock()
	w.files = files
	if d := c.Alerts.CertExpiry.D(); d > 0 {
		w.warn = d
	}
	w.mu.Unlock()
	w.Check()
	return nil
}

// Run checks daily until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.Check()
		}
	}
}

// Check reads every certificate file, publishes cert.expiring for those
// within the warning period, and returns what it found.
func (w *Watcher) Check() []Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.o.Now()
	out := make([]Status, 0, len(w.files))
	seen := map[string]bool{}
	for _, src := range w.files {
		seen[src.file] = true
		st := Status{File: src.file, UsedBy: src.usedBy, State: "ok"}
		cert, err := earliest(src.file)
		if err != nil {
			// The subsystem using the file reports a file it cannot
			// load; here it is only shown.
			st.State, st.Error = "unreadable", err.Error()
			out = append(out, st)
			continue
		}
		left := cert.NotAfter.Sub(now)
		st.Subject, st.NotAfter, st.DaysLeft = name(cert), cert.NotAfter, int(left.Hours()/24)
		level := events.Warning
		switch {
		case left <= 0:
			st.State, level = "expired", events.Crit
		case left <= min(soon, w.warn):
			st.State, level = "expiring", events.Err
		case left <= w.warn:
			st.State = "expiring"
		default:
			delete(w.last, src.file)
			out = append(out, st)
			continue
		}
		out = append(out, st)
		prev, ok := w.last[src.file]
		if ok && prev.notAfter.Equal(cert.NotAfter) && level >= prev.level && now.Sub(prev.at) < Interval {
			continue // said already today, and nothing got worse
		}
		w.last[src.file] = said{at: now, level: level, notAfter: cert.NotAfter}
		w.publish(st, level, left)
	}
	for f := range w.last {
		if !seen[f] {
			delete(w.last, f)
		}
	}
	w.status = out
	return out
}

func (w *Watcher) publish(st Status, level events.Level, left time.Duration) {
	when := "expires in " + days(left) + " (" + st.NotAfter.UTC().Format("2006-01-02 15:04 UTC") + ")"
	if left <= 0 {
		when = "expired " + days(-left) + " ago (" + st.NotAfter.UTC().Format("2006-01-02 15:04 UTC") + ")"
	}
	msg := fmt.Sprintf("certificate %s in %s (%s) %s", st.Subject, st.File, strings.Join(st.UsedBy, ", "), when)
	w.log.Warn("certificate expiring", "file", st.File, "subject", st.Subject, "not_after", st.NotAfter, "used_by", strings.Join(st.UsedBy, ", "))
	if w.o.Bus == nil {
		return
	}
	w.o.Bus.Publish(events.Event{Kind: events.CertExpiring, Level: level, Scope: events.Local, Subject: st.File, Message: msg,
		Attrs: map[string]string{
			"file": st.File, "subject": st.Subject, "not_after": st.NotAfter.UTC().Format(time.RFC3339),
			"days_left": strconv.Itoa(st.DaysLeft), "used_by": strings.Join(st.UsedBy, ", "),
		}})
}

// Status returns the result of the last check.
func (w *Watcher) Status() []Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Status(nil), w.status...)
}

// earliest returns the certificate of file that expires first: a chain is
// as good as its shortest-lived member.
func earliest(file string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var first *x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if first == nil || c.NotAfter.Before(first.NotAfter) {
			first = c
		}
	}
	if first == nil {
		return nil, errors.New(file + ": no PEM certificate")
	}
	return first, nil
}

func name(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return strconv.Itoa(int(d.Hours())) + " hours"
	}
	return strconv.Itoa(n) + " days"
}
