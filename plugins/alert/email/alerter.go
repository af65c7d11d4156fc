// Package email is the SMTP alerter: it takes events from the bus, selects
// them with the cluster's alert rules, persists them in a durable queue in
// the node's data dir, coalesces a flapping subject into one digest per
// window, and delivers mails through the configured mailers in order, with
// retries and backoff, across restarts.
package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
)

// BusBuffer is the subscription buffer: large, because the alerter must
// see every event; each is persisted as soon as it arrives.
const BusBuffer = 65536

// maxBatch bounds how many waiting events share one directory fsync.
const maxBatch = 256

// Options configure an Alerter.
type Options struct {
	Bus *events.Bus
	// DataDir is the node's data dir; the queue lives in DataDir/alerts.
	DataDir string
	Log     *slog.Logger
	// IsLeader reports whether this node reports cluster-wide events. nil:
	// always.
	IsLeader func() bool
	Node, DC string
	// State describes backends in mails ("what is up now"); may be nil.
	State StateView
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// BusBuffer overrides the subscription buffer (default BusBuffer).
	BusBuffer int
}

// Alerter is the e-mail alerting component.
type Alerter struct {
	o   Options
	log *slog.Logger
	sub *events.Subscription
	q   *queue

	cfg  atomic.Pointer[cfgState]
	kick chan struct{}

	received, sent, failed, dropped, corrupt, notLeader, persistErrs atomic.Uint64

	mu          sync.Mutex
	lastErr     string
	lastErrAt   time.Time
	lastSent    time.Time
	holdUntil   time.Time
	consecutive int
	busSeen     uint64 // sub.Dropped() already reported
	perMailer   map[string]*MailerStats

	windows map[string]*window // owned by Run's goroutine
	bursts  map[string]*burst  // per rule, owned by Run's goroutine
}

// burst counts the mails a rule sent at once in its current window.
type burst struct {
	end  time.Time
	sent int
}

// overflowSuffix marks a rule's overflow window key (no subject has it:
// subjects never contain NUL).
const overflowSuffix = "\x00*"

type cfgState struct {
	a config.Alerts
	r *renderer
}

// window is one coalescing key's open window.
type window struct {
	end  time.Time
	held []*eventRecord
}

// New opens the queue and subscribes to the bus at once, so that events
// published before Run starts are not missed.
func New(o Options) (*Alerter, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IsLeader == nil {
		o.IsLeader = func() bool { return true }
	}
	if o.DataDir == "" {
		return nil, errors.New("alerts: the node has no data_dir for the alert queue")
	}
	q, err := openQueue(filepath.Join(o.DataDir, "alerts"))
	if err != nil {
		return nil, err
	}
	a := &Alerter{o: o, log: o.Log, q: q, kick: make(chan struct{}, 1), windows: map[string]*window{}, bursts: map[string]*burst{}}
	r, _ := newRenderer(&config.Alerts{})
	a.cfg.Store(&cfgState{r: r})
	for _, c := range q.corrupt {
		a.corrupt.Add(1)
		a.log.Error("alert queue: corrupt record moved aside and skipped", "record", c, "dir", q.dir)
	}
	if o.Bus != nil {
		if o.BusBuffer <= 0 {
			o.BusBuffer = BusBuffer
		}
		a.o.BusBuffer = o.BusBuffer
		a.sub = o.Bus.Subscribe("alerts/email", o.BusBuffer, nil)
	}
	return a, nil
}

// Name implements the node's subsystem interface.
func (a *Alerter) Name() string { return "alerts" }

// Apply takes a new cluster snapshot.
func (a *Alerter) Apply(c *config.Cluster) error {
	r, err := newRenderer(&c.Alerts)
	if err != nil {
		return err
	}
	a.cfg.Store(&cfgState{a: c.Alerts, r: r})
	// New mailers may well fix what made the queue wait: try again now.
	a.mu.Lock()
	a.holdUntil, a.consecutive = time.Time{}, 0
	a.mu.Unlock()
	a.wake()
	return nil
}

func (a *Alerter) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run processes events and delivers mails until ctx ends.
func (a *Alerter) Run(ctx context.Context) error {
	if a.sub != nil {
		defer a.sub.Close()
	}
	if n := len(a.q.corrupt); n > 0 {
		a.notify(n, fmt.Sprintf("%d corrupt alert queue record(s) were moved aside in %s: %s", n, a.q.dir, strings.Join(a.q.corrupt, "; ")), nil)
		a.q.corrupt = nil
	}
	// Events persisted but not yet mailed when the last run ended: their
	// windows are gone, so mail what was held now.
	a.flushPending()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.sendLoop(ctx) }()
	defer wg.Wait()

	var c <-chan events.Event
	if a.sub != nil {
		c = a.sub.C
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	busCheck := time.NewTicker(time.Second)
	defer busCheck.Stop()
	for {
		select {
		case <-ctx.Done():
			// Persist what the bus already handed over, so that a clean
			// shutdown loses nothing: it is mailed after the restart.
			if a.sub != nil {
				a.sub.Close()
				a.q.beginBatch()
				for ev := range a.sub.C {
					a.handle(ev)
				}
				a.q.endBatch()
			}
			return nil
		case ev, ok := <-c:
			if !ok {
				c = nil
				continue
			}
			a.q.beginBatch()
			a.handle(ev)
			// Take what else is already waiting, up to a bound so that
			// windows still expire on time in a storm.
		drain:
			for range maxBatch - 1 {
				select {
				case ev, ok := <-c:
					if !ok {
						c = nil
						break drain
					}
					a.handle(ev)
				default:
					break drain
				}
			}
			if err := a.q.endBatch(); err != nil {
				a.persistErrs.Add(1)
				a.setErr(err)
				a.log.Error("alert queue: fsync", "err", err)
			}
		case <-timer.C:
		case <-busCheck.C:
			a.checkBusDrops()
		}
		a.expire()
		timer.Reset(a.nextWindowEnd())
	}
}

func (a *Alerter) handle(ev events.Event) {
	a.received.Add(1)
	if ev.Kind == events.AlertDropped && ev.Attr("source") == "alerts/email" {
		return // our own report; the drop notice mail already carries it
	}
	cs := a.cfg.Load()
	now := a.o.Now()
	for i := range cs.a.Rules {
		rule := &cs.a.Rules[i]
		if !rule.Matches(ev.Kind, ev.Level) {
			continue
		}
		if ev.EffectiveScope() == events.Cluster && !a.o.IsLeader() {
			a.notLeader.Add(1)
			continue
		}
		subj := ev.Subject
		if subj == "" {
			subj = string(ev.Kind)
		}
		rec := &eventRecord{Rule: rule.Name, To: rule.To, Key: rule.Name + "\x00" + subj, Window: rule.Window(), Event: ev}
		if rec.Window <= 0 {
			a.flush([]*eventRecord{rec}) // the mail record is the durable copy
			continue
		}
		w := a.windows[rec.Key]
		if w == nil && a.overBurst(rule, now) {
			// Too many subjects at once: the rule's overflow digest takes
			// it (and further events about it, while the burst lasts).
			rec.Key = rule.Name + overflowSuffix
			if w = a.windows[rec.Key]; w == nil {
				w = &window{end: a.bursts[rule.Name].end}
				a.windows[rec.Key] = w
			}
		}
		if w == nil {
			a.windows[rec.Key] = &window{end: now.Add(rec.Window)}
			a.bursts[rule.Name].sent++
			a.flush([]*eventRecord{rec})
			continue
		}
		if err := a.q.addEvent(rec); err != nil {
			// Keep going in memory: a mail without a durable copy beats
			// no mail.
			a.persistErrs.Add(1)
			a.setErr(err)
			a.log.Error("alert queue: cannot persist event", "err", err, "event", ev.Kind, "subject", ev.Subject)
		}
		w.held = append(w.held, rec)
	}
}

// overBurst reports whether rule already sent its burst of immediate mails
// in its current window, starting a new window if the last one ended. It
// leaves a current burst entry for the rule either way.
func (a *Alerter) overBurst(rule *config.AlertRule, now time.Time) bool {
	b := a.bursts[rule.Name]
	if b == nil || !now.Before(b.end) {
		b = &burst{end: now.Add(rule.Window())}
		a.bursts[rule.Name] = b
	}
	return rule.BurstLimit() > 0 && b.sent >= rule.BurstLimit()
}

// expire closes the windows that ended: held events become one digest and
// the window starts over (a subject that keeps flapping gets one mail per
// window); a quiet window just closes.
func (a *Alerter) expire() {
	now := a.o.Now()
	for r, b := range a.bursts {
		if !now.Before(b.end) {
			delete(a.bursts, r)
		}
	}
	for k, w := range a.windows {
		if now.Before(w.end) {
			continue
		}
		if len(w.held) == 0 {
			delete(a.windows, k)
			continue
		}
		a.flush(w.held)
		w.held = nil
		w.end = now.Add(a.windowOf(k))
	}
}

func (a *Alerter) windowOf(key string) time.Duration {
	rule, _, _ := strings.Cut(key, "\x00")
	cs := a.cfg.Load()
	for i := range cs.a.Rules {
		if cs.a.Rules[i].Name == rule {
			return cs.a.Rules[i].Window()
		}
	}
	return config.DefaultAlertCoalesce
}

func (a *Alerter) nextWindowEnd() time.Duration {
	d := time.Hour
	now := a.o.Now()
	for _, w := range a.windows {
		if x := w.end.Sub(now); x < d {
			d = x
		}
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// flushPending mails the events left over by a previous run, grouped by
// coalescing key.
func (a *Alerter) flushPending() {
	groups := map[string][]*eventRecord{}
	var order []string
	for _, r := range a.q.pendingEvents() {
		if _, ok := groups[r.Key]; !ok {
			order = append(order, r.Key)
		}
		groups[r.Key] = append(groups[r.Key], r)
	}
	for _, k := range order {
		a.flush(groups[k])
	}
}

// flush renders recs (one subject, one rule) into a queued mail.
func (a *Alerter) flush(recs []*eventRecord) {
	if len(recs) == 0 {
		return
	}
	cs := a.cfg.Load()
	evs := make([]events.Event, len(recs))
	seqs := make([]uint64, 0, len(recs))
	kinds := map[string]bool{}
	for i, r := range recs {
		evs[i] = r.Event
		if r.Seq != 0 {
			seqs = append(seqs, r.Seq)
		}
		kinds[string(r.Event.Kind)] = true
	}
	now := a.o.Now()
	d := mailData(recs[0].Rule, evs, recs[0].Window, a.o.Node, a.o.DC, now, a.o.State)
	subject, body := cs.r.render(d)
	m := &mailRecord{Created: now, Rule: recs[0].Rule, To: recs[0].To, Subject: subject, Body: body,
		Kinds: sortedKeys(kinds), Events: len(recs), Records: seqs}
	if err := a.q.addMail(m); err != nil {
		a.persistErrs.Add(1)
		a.setErr(err)
		a.log.Error("alert queue: cannot persist mail; delivering it from memory", "err", err, "subject", subject)
	}
	if max := cs.a.Queue.Max; max > 0 {
		if dropped := a.q.enforceCap(max); len(dropped) > 0 {
			var to []string
			for _, m := range dropped {
				to = append(to, m.To...)
			}
			a.notify(len(dropped), fmt.Sprintf("the alert queue is over its cap (queue.max %d): the %d oldest queued mail(s) were dropped", max, len(dropped)), to)
		}
	}
	a.wake()
}

// notify records n lost alerts: counted, logged, published, and mailed in
// one drop-notice mail (updated while it waits) exempt from the cap.
func (a *Alerter) notify(n int, reason string, to []string) {
	a.dropped.Add(uint64(n))
	a.log.Error("alerts dropped", "count", n, "reason", reason)
	if a.o.Bus != nil {
		a.o.Bus.Publish(events.Event{Kind: events.AlertDropped, Level: events.Err, Subject: "alerts",
			Message: reason, Attrs: map[string]string{"count": strconv.Itoa(n), "reason": reason, "source": "alerts/email"}})
	}
	cs := a.cfg.Load()
	to = uniq(append(to, allRecipients(&cs.a)...))
	if len(to) == 0 {
		return
	}
	now := a.o.Now()
	m := a.q.notice()
	if m == nil {
		m = &mailRecord{Created: now, Rule: "(alerts)", Notice: true}
	}
	m.Dropped += n
	m.To = uniq(append(m.To, to...))
	m.Kinds = []string{string(events.AlertDropped)}
	m.Subject = fmt.Sprintf("[vipgate] ERR: %d alert(s) were dropped on %s", m.Dropped, a.o.Node)
	m.Body += fmt.Sprintf("%s  %s\n", now.UTC().Format("2006-01-02 15:04:05 UTC"), reason)
	if m.Seq == 0 {
		m.Body = fmt.Sprintf("Alerts were lost on node %s (datacenter %s); every loss is listed below.\n\n", a.o.Node, a.o.DC) + m.Body
		if err := a.q.addMail(m); err != nil {
			a.persistErrs.Add(1)
			a.setErr(err)
		}
	} else if err := a.q.replaceMail(m); err != nil {
		a.persistErrs.Add(1)
		a.setErr(err)
	}
	a.wake()
}

// checkBusDrops reports events the bus could not hand to the alerter
// because its buffer was full.
func (a *Alerter) checkBusDrops() {
	if a.sub == nil {
		return
	}
	d := a.sub.Dropped()
	a.mu.Lock()
	n := d - a.busSeen
	a.busSeen = d
	a.mu.Unlock()
	if n > 0 {
		a.notify(int(n), fmt.Sprintf("%d event(s) were lost on the event bus before the alerter could persist them (subscriber buffer of %d full)", n, a.o.BusBuffer), nil)
	}
}

// sendLoop delivers queued mails, oldest first. A mailer that cannot be
// reached holds the whole queue back with exponential backoff (every mail
// would fail the same way); a mail that every mailer refuses with a 5xx is
// retried on its own schedule so that it does not block the others.
func (a *Alerter) sendLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-timer.C:
		}
		next := a.pass(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// pass tries every due mail and returns when to look again.
func (a *Alerter) pass(ctx context.Context) time.Duration {
	const idle = time.Minute
	for _, m := range a.q.mailList() {
		if ctx.Err() != nil {
			return idle
		}
		now := a.o.Now()
		a.mu.Lock()
		hold := a.holdUntil
		a.mu.Unlock()
		if now.Before(hold) {
			return hold.Sub(now)
		}
		if now.Before(m.NextTry) {
			continue
		}
		cur, ok := a.q.claim(m.Seq)
		if !ok {
			continue
		}
		a.send(ctx, &cur)
		a.q.release()
	}
	// Work out the next due time.
	now := a.o.Now()
	next := idle
	a.mu.Lock()
	if d := a.holdUntil.Sub(now); d > 0 {
		next = d
	}
	a.mu.Unlock()
	for _, m := range a.q.mailList() {
		d := m.NextTry.Sub(now)
		if d <= 0 {
			if next == idle || next < 0 {
				next = 0
			}
			continue
		}
		if d < next {
			next = d
		}
	}
	if next < time.Millisecond {
		next = time.Millisecond
	}
	return next
}

func (a *Alerter) send(ctx context.Context, m *mailRecord) {
	cs := a.cfg.Load()
	ac := &cs.a
	from := ac.From
	if from == "" {
		from = "vipgate@" + sanitizeHost(a.o.Node)
	}
	to := make([]string, len(m.To))
	for i, t := range m.To {
		to[i] = addrOnly(t)
	}
	extra := map[string]string{"X-Vipgate-Rule": m.Rule, "X-Vipgate-Node": a.o.Node, "X-Vipgate-Events": strings.Join(m.Kinds, " ")}
	env := envelope{From: addrOnly(from), To: to, Data: message(from, m.To, m.Subject, m.Body, m.Created, a.o.Node, extra)}
	reps, err := sendVia(ctx, ac.Mailers, a.o.Node, env)
	a.countMailers(reps)
	now := a.o.Now()
	if err == nil {
		a.sent.Add(1) // before it leaves the queue: queued 0 implies counted
		if err := a.q.doneMail(m.Seq); err != nil {
			a.log.Error("alert queue: delivered mail not removed (it may be sent again)", "err", err)
		}
		a.mu.Lock()
		a.consecutive = 0
		a.holdUntil = time.Time{}
		a.lastSent = now
		a.mu.Unlock()
		a.log.Info("alert mailed", "subject", m.Subject, "to", strings.Join(m.To, ","), "attempts", m.Attempts+1)
		return
	}
	if ctx.Err() != nil {
		return // shutting down: not a delivery failure
	}
	a.failed.Add(1)
	a.setErr(err)
	m.Attempts++
	m.LastErr = err.Error()
	var rej *rejectedError
	if errors.As(err, &rej) {
		m.NextTry = now.Add(a.backoff(&cs.a, m.Attempts))
		a.log.Error("alert refused by every mailer; will retry", "err", err, "subject", m.Subject, "attempt", m.Attempts, "next", m.NextTry)
	} else {
		a.mu.Lock()
		a.consecutive++
		a.holdUntil = now.Add(a.backoff(&cs.a, a.consecutive))
		hold := a.holdUntil
		a.mu.Unlock()
		a.log.Warn("alert delivery failed; queue held back", "err", err, "subject", m.Subject, "attempt", m.Attempts, "retry_at", hold)
	}
	if err := a.q.updateMail(m); err != nil {
		a.persistErrs.Add(1)
		a.log.Error("alert queue: cannot record the failed attempt", "err", err)
	}
}

func (a *Alerter) countMailers(reps []MailerReport) {
	now := a.o.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.perMailer == nil {
		a.perMailer = map[string]*MailerStats{}
	}
	for _, r := range reps {
		k := r.Mailer + " " + r.Address
		ms := a.perMailer[k]
		if ms == nil {
			ms = &MailerStats{Name: r.Mailer, Address: r.Address}
			a.perMailer[k] = ms
		}
		t := now
		if r.OK {
			ms.Sent++
			ms.LastOK = &t
		} else {
			ms.Failed++
			ms.LastError, ms.LastErrorAt = r.Error, &t
		}
	}
}

// backoff is retry_min doubled per attempt, capped at retry_max.
func (a *Alerter) backoff(ac *config.Alerts, attempt int) time.Duration {
	lo, hi := ac.Queue.RetryMin.D(), ac.Queue.RetryMax.D()
	if lo <= 0 {
		lo = config.DefaultAlertRetryMin
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func (a *Alerter) setErr(err error) {
	a.mu.Lock()
	a.lastErr = err.Error()
	a.lastErrAt = a.o.Now()
	a.mu.Unlock()
}

// Stats is the alerter's state for `vipgate status` and the stats page.
type Stats struct {
	Queued        int               `json:"queued"`
	PendingEvents int               `json:"pending_events"`
	Received      uint64            `json:"events_received"`
	Sent          uint64            `json:"sent"`
	Failed        uint64            `json:"failed_attempts"`
	Dropped       uint64            `json:"dropped"`
	Corrupt       uint64            `json:"corrupt_records"`
	NotLeader     uint64            `json:"skipped_not_leader"`
	PersistErrors uint64            `json:"persist_errors"`
	BusDropped    uint64            `json:"bus_dropped"`
	Subscribers   map[string]uint64 `json:"bus_subscriber_drops,omitempty"`
	OldestQueued  *time.Time        `json:"oldest_queued,omitempty"`
	RetryAt       *time.Time        `json:"retry_at,omitempty"`
	LastError     string            `json:"last_error,omitempty"`
	LastErrorAt   *time.Time        `json:"last_error_at,omitempty"`
	LastSent      *time.Time        `json:"last_sent,omitempty"`
	Mailers       []MailerStats     `json:"mailers"`
	Rules         int               `json:"rules"`
}

// MailerStats counts one mailer's attempts.
type MailerStats struct {
	Name        string     `json:"name"`
	Address     string     `json:"address"`
	Sent        uint64     `json:"sent"`
	Failed      uint64     `json:"failed"`
	LastOK      *time.Time `json:"last_ok,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}

// Stats returns the counters.
func (a *Alerter) Stats() Stats {
	mails, evs := a.q.lens()
	s := Stats{Queued: mails, PendingEvents: evs, Received: a.received.Load(), Sent: a.sent.Load(), Failed: a.failed.Load(),
		Dropped: a.dropped.Load(), Corrupt: a.corrupt.Load(), NotLeader: a.notLeader.Load(), PersistErrors: a.persistErrs.Load()}
	if a.sub != nil {
		s.BusDropped = a.sub.Dropped()
	}
	if a.o.Bus != nil {
		s.Subscribers = a.o.Bus.SubscriberStats()
	}
	if l := a.q.mailList(); len(l) > 0 {
		t := l[0].Created
		s.OldestQueued = &t
	}
	a.mu.Lock()
	if !a.holdUntil.IsZero() && a.holdUntil.After(a.o.Now()) {
		t := a.holdUntil
		s.RetryAt = &t
	}
	s.LastError = a.lastErr
	if !a.lastErrAt.IsZero() {
		t := a.lastErrAt
		s.LastErrorAt = &t
	}
	if !a.lastSent.IsZero() {
		t := a.lastSent
		s.LastSent = &t
	}
	a.mu.Unlock()
	cs := a.cfg.Load()
	s.Mailers = []MailerStats{}
	a.mu.Lock()
	for _, m := range cs.a.Mailers {
		ms := MailerStats{Name: m.Name, Address: m.Address}
		if p := a.perMailer[m.Name+" "+m.Address]; p != nil {
			ms = *p
		}
		s.Mailers = append(s.Mailers, ms)
	}
	a.mu.Unlock()
	s.Rules = len(cs.a.Rules)
	return s
}

// Test sends a test mail through every configured mailer with the current
// config.
func (a *Alerter) Test(ctx context.Context, to []string) TestReport {
	cs := a.cfg.Load()
	return TestMailers(ctx, &cs.a, a.o.Node, a.o.DC, to)
}

// TestReport is the outcome of `vipgate alerts test`.
type TestReport struct {
	From    string         `json:"from"`
	To      []string       `json:"to"`
	OK      bool           `json:"ok"` // at least one mailer delivered
	Error   string         `json:"error,omitempty"`
	Mailers []MailerReport `json:"mailers"`
}

// TestMailers sends one test mail through each mailer of ac in turn (not
// stopping at the first success: the point is to check them all) and
// reports every step. to defaults to every rule's recipients.
func TestMailers(ctx context.Context, ac *config.Alerts, node, dc string, to []string) TestReport {
	if len(to) == 0 {
		to = allRecipients(ac)
	}
	rep := TestReport{From: ac.From, To: to, Mailers: []MailerReport{}}
	switch {
	case len(ac.Mailers) == 0:
		rep.Error = "no mailer configured (alerts.mailers)"
		return rep
	case len(to) == 0:
		rep.Error = "no recipient: give --to or configure alerts.rules[].to"
		return rep
	}
	from := ac.From
	if from == "" {
		from = "vipgate@" + sanitizeHost(node)
	}
	now := time.Now()
	ev := events.Event{Kind: events.AlertTest, Level: events.Notice, Time: now, Node: node, DC: dc, Subject: "alerts",
		Message: "test mail from vipgate alerts test"}
	r, err := newRenderer(ac)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	subject, body := r.render(mailData("(test)", []events.Event{ev}, 0, node, dc, now, nil))
	addrs := make([]string, len(to))
	for i, t := range to {
		addrs[i] = addrOnly(t)
	}
	for i := range ac.Mailers {
		m := &ac.Mailers[i]
		data := message(from, to, subject, body+"\nSent through mailer "+m.Name+" ("+m.Address+").\n", now, node,
			map[string]string{"X-Vipgate-Events": string(events.AlertTest), "X-Vipgate-Mailer": m.Name})
		mr := deliver(ctx, m, orDefault(m.Helo, node), envelope{From: addrOnly(from), To: addrs, Data: data})
		rep.OK = rep.OK || mr.OK
		rep.Mailers = append(rep.Mailers, mr)
	}
	if !rep.OK {
		rep.Error = "no mailer delivered the test mail"
	}
	return rep
}

func allRecipients(ac *config.Alerts) []string {
	var out []string
	for _, r := range ac.Rules {
		out = append(out, r.To...)
	}
	return uniq(out)
}

func uniq(l []string) []string {
	seen := map[string]bool{}
	out := l[:0:0]
	for _, s := range l {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
