// Package email is the SMTP alerter: it takes events from the bus, selects
// them with the cluster's alert rules, persists them in a durable queue in
// the node's data dir, coalesces a flapping subject into one digest per
// window, and delivers mails through the configured mailers in order, with
// retries and backoff, across restarts.
//
// Like every subsystem, it reconciles to the config snapshot pushed to it
// (rules, mailers) and reacts to committed decisions through the events
// cluster/state publishes when they commit (dc.failover, config.applied…).
package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
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

// DefaultLeaderGrace: a leader change within this time after a
// cluster-wide event has the new leader mail it too (a possible duplicate
// rather than a possible loss).
const DefaultLeaderGrace = 30 * time.Second

// LeaderSettle is how long a leader may take, at most, to put a
// cluster-wide event in its durable queue after it applies it: events seen
// longer than this before the old leader went silent are its to mail.
const LeaderSettle = 2 * time.Second

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
	// LeaderGrace is how long a node that is not the leader keeps a
	// cluster-wide event in case it becomes the leader (default
	// DefaultLeaderGrace): the leader that saw it may have died before
	// its mail left, the very moment leadership moves.
	LeaderGrace time.Duration
	// LeaderSeen is when this node last heard from a live leader (raft's
	// last contact). A node that becomes the leader mails only the held
	// events seen less than LeaderSettle before that moment: older ones
	// were in the old leader's durable queue before it went silent, so
	// mailing them again would only duplicate (nil: mail every held event).
	LeaderSeen func() time.Time
	Node, DC   string
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

	received, sent, failed, dropped, rejected, corrupt, notLeader, persistErrs atomic.Uint64

	mu          sync.Mutex
	lastErr     string
	lastErrAt   time.Time
	lastSent    time.Time
	holdUntil   time.Time
	consecutive int
	busSeen     uint64 // sub.Dropped() already reported
	perMailer   map[string]*MailerStats

	windows map[string]*window // owned by Run's goroutine
	// awaiting holds cluster-wide events seen while not the leader, for
	// LeaderGrace (owned by Run's goroutine).
	awaiting []awaited
	nAwait   atomic.Int64
	bursts   map[string]*burst // per rule, owned by Run's goroutine

	// crashAt, set by tests before Run, is called at the named points of
	// a delivery (a test process kills itself there).
	crashAt func(point string)
}

type awaited struct {
	ev    events.Event
	seen  time.Time
	until time.Time
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
	if o.LeaderGrace <= 0 {
		o.LeaderGrace = DefaultLeaderGrace
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
	old := a.cfg.Swap(&cfgState{a: c.Alerts, r: r})
	// New mailers may well fix what made the queue wait: try again now.
	a.mu.Lock()
	a.holdUntil, a.consecutive = time.Time{}, 0
	a.mu.Unlock()
	// They may also fix what made relays refuse mails for good (a sender
	// address, credentials): the dead letters get one more try.
	if len(old.a.Mailers) > 0 && (old.a.From != c.Alerts.From || !reflect.DeepEqual(old.a.Mailers, c.Alerts.Mailers)) {
		if n, err := a.q.requeueDead(nil, false); n > 0 || err != nil {
			a.log.Warn("mailers changed: dead letters requeued", "count", n, "err", err)
		}
	}
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
			a.checkAwaiting()
		}
		a.expire()
		timer.Reset(a.nextWindowEnd())
	}
}

func (a *Alerter) handle(ev events.Event) {
	a.received.Add(1)
	if (ev.Kind == events.AlertDropped || ev.Kind == events.AlertRejected) && ev.Attr("source") == "alerts/email" {
		return // our own report; the notice mail already carries it
	}
	a.route(ev)
}

// route selects ev with the rules and queues or holds it.
func (a *Alerter) route(ev events.Event) {
	cs := a.cfg.Load()
	now := a.o.Now()
	if ev.EffectiveScope() == events.Cluster && !a.o.IsLeader() {
		for i := range cs.a.Rules {
			if cs.a.Rules[i].Matches(ev.Kind, ev.Level) {
				a.awaiting = append(a.awaiting, awaited{ev: ev, seen: now, until: now.Add(a.o.LeaderGrace)})
				a.nAwait.Store(int64(len(a.awaiting)))
				break
			}
		}
		return
	}
	for i := range cs.a.Rules {
		rule := &cs.a.Rules[i]
		if !rule.Matches(ev.Kind, ev.Level) {
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

// checkAwaiting settles the cluster-wide events held while not the
// leader: mailed if this node has become the leader since, left to the
// leader once their grace ends.
func (a *Alerter) checkAwaiting() {
	if len(a.awaiting) == 0 {
		return
	}
	if a.o.IsLeader() {
		var held []awaited
		var alive time.Time
		if a.o.LeaderSeen != nil {
			alive = a.o.LeaderSeen()
		}
		for _, w := range a.awaiting {
			if alive.IsZero() || !w.seen.Before(alive.Add(-LeaderSettle)) {
				held = append(held, w)
			} else {
				a.notLeader.Add(1) // the old leader queued it while alive
			}
		}
		a.awaiting = nil
		a.log.Info("became the leader: mailing the cluster-wide events seen shortly before the old leader went silent",
			"count", len(held), "old_leader_last_seen", alive)
		a.q.beginBatch()
		for _, w := range held {
			a.route(w.ev)
		}
		if err := a.q.endBatch(); err != nil {
			a.persistErrs.Add(1)
		}
	} else {
		now := a.o.Now()
		keep := a.awaiting[:0]
		for _, w := range a.awaiting {
			if now.Before(w.until) {
				keep = append(keep, w)
			} else {
				a.notLeader.Add(1)
			}
		}
		a.awaiting = keep
	}
	a.nAwait.Store(int64(len(a.awaiting)))
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
	m := &mailRecord{Created: now, MessageID: newMessageID(a.o.Node), Rule: recs[0].Rule, To: recs[0].To, Subject: subject, Body: body,
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
	a.addToNotice(reason, to, nil, func(m *mailRecord) { m.Dropped += n })
}

// addToNotice adds a line to the notice mail ("alerts were dropped or
// refused") and its recipients: to plus every rule's, except the addresses
// in not (those that refuse mail).
func (a *Alerter) addToNotice(line string, to, not []string, count func(m *mailRecord)) {
	cs := a.cfg.Load()
	var rcpt []string
	for _, t := range uniq(append(to, allRecipients(&cs.a)...)) {
		if !slices.Contains(not, addrOnly(t)) {
			rcpt = append(rcpt, t)
		}
	}
	if len(rcpt) == 0 {
		return
	}
	now := a.o.Now()
	err := a.q.updateNotice(func() *mailRecord {
		return &mailRecord{Created: now, MessageID: newMessageID(a.o.Node), Rule: "(alerts)", Notice: true,
			Body: fmt.Sprintf("Alerts were lost or refused on node %s (datacenter %s); every case is listed below.\n\n", a.o.Node, a.o.DC)}
	}, func(m *mailRecord) {
		count(m)
		m.To = uniq(append(m.To, rcpt...))
		m.To = slices.DeleteFunc(m.To, func(t string) bool { return slices.Contains(not, addrOnly(t)) })
		m.Kinds = []string{string(events.AlertDropped)}
		var what []string
		if m.Dropped > 0 {
			what = append(what, fmt.Sprintf("%d alert(s) were dropped", m.Dropped))
		}
		if m.Refused > 0 {
			what = append(what, fmt.Sprintf("%d recipient(s) refused alerts", m.Refused))
		}
		m.Subject = fmt.Sprintf("[vipgate] ERR: %s on %s", strings.Join(what, ", "), a.o.Node)
		m.Body += fmt.Sprintf("%s  %s\n", now.UTC().Format("2006-01-02 15:04:05 UTC"), line)
	})
	if err != nil {
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
	// Mail headers name recipients as configured; outcomes use addresses.
	byAddr := map[string]string{}
	for _, t := range m.To {
		byAddr[addrOnly(t)] = t
	}
	// A server's 250 after the final dot is the delivery: it is recorded
	// at once, before QUIT, so that a crash from then on does not send the
	// mail again (it was removed only after QUIT: kill -9 during delivery
	// duplicated mails).
	recorded := map[string]bool{}
	doneEarly := false
	env := envelope{From: addrOnly(from), To: to, Data: message(from, m.To, m.Subject, m.Body, m.Created, m.MessageID, a.o.Node, extra),
		Accepted: func(acc []string) {
			a.crashPoint("data-accepted")
			var took []string
			for _, d := range acc {
				took = append(took, byAddr[d])
				recorded[d] = true
			}
			done, err := a.q.settle(m, took, nil, a.o.Now())
			if err != nil {
				a.persistErrs.Add(1)
				a.log.Error("alert queue: cannot record a delivery (it may be repeated)", "err", err)
			}
			if done && !doneEarly {
				// Counted with the record: the queue never shows a mail
				// gone that the counters do not show sent.
				doneEarly = true
				a.sent.Add(1)
			}
			m.Delivered = append(m.Delivered, took...)
			a.mu.Lock()
			a.consecutive, a.holdUntil, a.lastSent = 0, time.Time{}, a.o.Now()
			a.mu.Unlock()
			a.crashPoint("delivery-recorded")
		}}
	o := sendVia(ctx, ac.Mailers, a.o.Node, env)
	a.countMailers(o.reps)
	if ctx.Err() != nil && len(o.delivered) == 0 {
		return // shutting down: not a delivery failure
	}
	now := a.o.Now()
	var delivered, logged []string
	for _, d := range o.delivered {
		logged = append(logged, byAddr[d])
		if !recorded[d] {
			delivered = append(delivered, byAddr[d])
		}
	}
	rejected := map[string]string{}
	for r, why := range o.rejected {
		rejected[byAddr[r]] = why
	}
	if o.err != nil {
		a.failed.Add(1)
		a.setErr(o.err)
		m.Attempts++
		m.LastErr = o.err.Error()
		if !o.unreached {
			// Some recipients deferred (4xx): this mail waits on its own.
			m.NextTry = now.Add(a.backoff(&cs.a, m.Attempts))
		}
	}
	done, err := a.q.settle(m, delivered, rejected, now)
	if err != nil {
		a.persistErrs.Add(1)
		a.log.Error("alert queue: cannot record the attempt (it may be repeated)", "err", err)
	}
	if len(o.delivered) > 0 {
		a.mu.Lock()
		a.consecutive, a.holdUntil, a.lastSent = 0, time.Time{}, now
		a.mu.Unlock()
	}
	if done && len(o.delivered) > 0 {
		if !doneEarly {
			a.sent.Add(1)
		}
		a.log.Info("alert mailed", "subject", m.Subject, "to", strings.Join(logged, ","), "attempts", m.Attempts+1)
	}
	if len(rejected) > 0 {
		a.deadLetter(m, rejected)
	}
	switch {
	case done:
	case o.unreached:
		// No relay got as far as the recipients: every mail would fail the
		// same way, so the whole queue waits.
		a.mu.Lock()
		a.consecutive++
		a.holdUntil = now.Add(a.backoff(&cs.a, a.consecutive))
		hold := a.holdUntil
		a.mu.Unlock()
		a.log.Warn("alert delivery failed; queue held back", "err", o.err, "subject", m.Subject, "attempt", m.Attempts, "retry_at", hold)
	default:
		a.log.Warn("alert not delivered to every recipient; will retry", "err", o.err, "subject", m.Subject, "attempt", m.Attempts, "next", m.NextTry)
	}
}

func (a *Alerter) crashPoint(point string) {
	if a.crashAt != nil {
		a.crashAt(point)
	}
}

// deadLetter reports recipients that refused mail m for good: counted,
// logged, published (alert.rejected) and listed in the notice mail to the
// other recipients. A refused notice is not itself noticed (no loop).
func (a *Alerter) deadLetter(m *mailRecord, rejected map[string]string) {
	a.rejected.Add(uint64(len(rejected)))
	var to, not []string
	for r := range rejected {
		to = append(to, r)
		not = append(not, addrOnly(r))
	}
	sort.Strings(to)
	for _, r := range to {
		reason := rejected[r]
		a.log.Error("alert refused permanently; kept as a dead letter", "to", r, "reason", reason, "subject", m.Subject, "mail", m.Seq)
		if a.o.Bus != nil {
			a.o.Bus.Publish(events.Event{Kind: events.AlertRejected, Level: events.Err, Subject: "alerts",
				Message: fmt.Sprintf("alert %q was refused for %s: %s", m.Subject, r, reason),
				Attrs:   map[string]string{"to": r, "reason": reason, "subject": m.Subject, "source": "alerts/email"}})
		}
		if !m.Notice {
			a.addToNotice(fmt.Sprintf("%q was refused for %s: %s (kept as a dead letter: vipgate alerts retry)", m.Subject, r, reason),
				nil, not, func(n *mailRecord) { n.Refused++ })
		}
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
		// A relay that took the mail for some recipients works; the
		// others' refusals are still its last error.
		if len(r.Delivered) > 0 {
			ms.Sent++
			ms.LastOK = &t
		} else {
			ms.Failed++
		}
		if r.Error != "" {
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
	Queued        int          `json:"queued"`
	PendingEvents int          `json:"pending_events"`
	Received      uint64       `json:"events_received"`
	Sent          uint64       `json:"sent"`
	Failed        uint64       `json:"failed_attempts"`
	Dropped       uint64       `json:"dropped"`
	Rejected      uint64       `json:"rejected"`     // recipients that refused a mail for good
	DeadLetters   int          `json:"dead_letters"` // mails kept for them
	Dead          []DeadLetter `json:"dead,omitempty"`
	Corrupt       uint64       `json:"corrupt_records"`
	NotLeader     uint64       `json:"skipped_not_leader"`
	// AwaitingLeader: cluster-wide events held in case this node becomes
	// the leader within the grace period.
	AwaitingLeader int               `json:"awaiting_leader"`
	PersistErrors  uint64            `json:"persist_errors"`
	BusDropped     uint64            `json:"bus_dropped"`
	Subscribers    map[string]uint64 `json:"bus_subscriber_drops,omitempty"`
	OldestQueued   *time.Time        `json:"oldest_queued,omitempty"`
	RetryAt        *time.Time        `json:"retry_at,omitempty"`
	LastError      string            `json:"last_error,omitempty"`
	LastErrorAt    *time.Time        `json:"last_error_at,omitempty"`
	LastSent       *time.Time        `json:"last_sent,omitempty"`
	Mailers        []MailerStats     `json:"mailers"`
	Rules          int               `json:"rules"`
}

// DeadLetter is a mail some recipients refused for good (5xx). It stays
// until `vipgate alerts retry` or `discard`.
type DeadLetter struct {
	ID       uint64            `json:"id"`
	Subject  string            `json:"subject"`
	Created  time.Time         `json:"created"`
	DeadAt   time.Time         `json:"dead_at"`
	Rejected map[string]string `json:"rejected"` // recipient → refusal
}

// maxDeadShown bounds the dead letters listed in Stats (the count is exact).
const maxDeadShown = 20

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
	mails, evs, dead := a.q.lens()
	s := Stats{Queued: mails, PendingEvents: evs, Received: a.received.Load(), Sent: a.sent.Load(), Failed: a.failed.Load(),
		Dropped: a.dropped.Load(), Rejected: a.rejected.Load(), DeadLetters: dead,
		Corrupt: a.corrupt.Load(), NotLeader: a.notLeader.Load(), AwaitingLeader: int(a.nAwait.Load()), PersistErrors: a.persistErrs.Load()}
	s.Dead = a.DeadLetters(maxDeadShown)
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

// DeadLetters lists up to n dead letters (all when n <= 0), newest first.
func (a *Alerter) DeadLetters(n int) []DeadLetter {
	l := a.q.deadList()
	slices.Reverse(l)
	if n > 0 && len(l) > n {
		l = l[:n]
	}
	out := make([]DeadLetter, len(l))
	for i, d := range l {
		out[i] = DeadLetter{ID: d.Seq, Subject: d.Subject, Created: d.Created, DeadAt: d.DeadAt, Rejected: d.Rejected}
	}
	return out
}

// RetryDead puts dead letters (ids; none = all) back into the queue for
// their refused recipients, or deletes them with discard; it returns how
// many. Discarding is an operator's explicit decision, logged.
func (a *Alerter) RetryDead(ids []uint64, discard bool) (int, error) {
	n, err := a.q.requeueDead(ids, discard)
	if n > 0 {
		verb := "requeued"
		if discard {
			verb = "discarded"
		}
		a.log.Warn("dead letters "+verb+" by an operator", "count", n)
		a.wake()
	}
	return n, err
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
		data := message(from, to, subject, body+"\nSent through mailer "+m.Name+" ("+m.Address+").\n", now, "", node,
			map[string]string{"X-Vipgate-Events": string(events.AlertTest), "X-Vipgate-Mailer": m.Name})
		mr := deliver(ctx, m, orDefault(m.Helo, node), envelope{From: addrOnly(from), To: addrs, Data: data})
		rep.OK = rep.OK || mr.OK
		rep.Mailers = append(rep.Mailers, mr)
	}
	if !rep.OK {
		rep.Error = "no mailer delivered the test mail"
		for _, mr := range rep.Mailers {
			if len(mr.Delivered) > 0 {
				rep.Error = "no mailer delivered the test mail to every recipient"
			}
		}
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
