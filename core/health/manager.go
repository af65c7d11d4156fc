package health

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
)

// Item is one server the manager should (or should not) check.
type Item struct {
	Server *upstream.Server
	// Check nil means the server is not checked: it is UP.
	Check *config.Check
	// InitState is HAProxy's init-state: "up" (default: in service; the
	// first failed check takes it out), "fully-up" (in service until `fall`
	// failures), "down" (out; the first good check brings it in) or
	// "fully-down" (out until `rise` successes).
	InitState    string
	SlowStart    time.Duration
	OnMarkedDown string // "" or "shutdown-sessions"
}

// ServerCheckStatus is what the stats read-out shows about one server's checks.
type ServerCheckStatus struct {
	Backend string `json:"backend"`
	Server  string `json:"server"`
	Addr    string `json:"address"`
	// Kind is the check kind, "" when the server is not checked.
	Kind string `json:"kind,omitempty"`
	// Enabled is false when an operator turned checks off at runtime.
	Enabled bool   `json:"enabled"`
	Health  string `json:"health"`
	Rise    int    `json:"rise,omitempty"`
	Fall    int    `json:"fall,omitempty"`
	// Streak counts consecutive results against the current state (HAProxy
	// shows it as "UP 1/3", "DOWN 1/2").
	Streak   int           `json:"streak"`
	Interval time.Duration `json:"interval,omitempty"`
	Checks   uint64        `json:"checks"`
	Failures uint64        `json:"failures"`
	// TrafficFailures counts the times passive health (observe) acted on
	// errors in live traffic (HAProxy's hanafail).
	TrafficFailures uint64               `json:"traffic_failures,omitempty"`
	Last            upstream.CheckResult `json:"last"`
}

// Manager runs one check worker per checked server. The proxy calls
// Reconcile after every config apply; a worker whose server key and check
// configuration are unchanged keeps running with its counters, so a reload
// neither resets rise/fall progress nor makes servers flap.
type Manager struct {
	reg *Registry
	bus *events.Bus
	log *slog.Logger
	// maxStagger bounds the random delay before a worker's first check
	// (spreading checks so that a start does not probe every server at once).
	maxStagger time.Duration

	mu        sync.Mutex
	workers   map[string]*worker // by server key
	unchecked map[string]*upstream.Server
	disabled  map[string]bool // server keys whose checks an operator turned off
	ctx       context.Context // set by Run
	closed    bool
	wg        sync.WaitGroup
}

// NewManager makes a manager that builds checkers from reg and reports
// transitions on bus (which may be nil in tools and tests).
func NewManager(reg *Registry, bus *events.Bus, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		reg: reg, bus: bus, log: log, maxStagger: time.Second,
		workers: map[string]*worker{}, unchecked: map[string]*upstream.Server{}, disabled: map[string]bool{},
	}
}

// Fingerprint identifies a check configuration: a worker is kept across a
// reload only when it is unchanged.
func Fingerprint(c *config.Check) string {
	if c == nil {
		return ""
	}
	b, err := json.Marshal(c)
	if err != nil {
		// Every field of config.Check marshals; this is unreachable, but a
		// unique value keeps a surprise from merging two configurations.
		return fmt.Sprintf("%p", c)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// Reconcile makes the running workers match items: new servers get a
// worker, removed ones lose theirs, changed check configurations restart
// their worker (keeping the server's current state), unchanged ones are
// left alone.
func (m *Manager) Reconcile(items []Item) {
	m.mu.Lock()
	defer m.mu.Unlock()

	seen := make(map[string]bool, len(items))
	unchecked := map[string]*upstream.Server{}
	for i := range items {
		it := &items[i]
		s := it.Server
		if s == nil {
			continue
		}
		key := s.Key()
		seen[key] = true
		if it.Check == nil {
			if w := m.workers[key]; w != nil {
				w.stop()
				delete(m.workers, key)
			}
			unchecked[key] = s
			m.uncheck(s, "checks removed by configuration")
			continue
		}
		fp := Fingerprint(it.Check)
		old := m.workers[key]
		// A worker whose check could not be built (an unreadable ca_file)
		// is rebuilt on every reconcile: a re-apply after the file was put
		// in place (SIGHUP) must not keep reporting it unavailable.
		if old != nil && old.fp == fp && old.s == s && !old.unavailable {
			old.update(it)
			continue
		}
		initial := upstream.Up
		if it.InitState == "down" || it.InitState == "fully-down" {
			initial = upstream.Down
		}
		var recovered bool
		fresh := old == nil
		if old != nil {
			// A changed check keeps the state the old one reached: a reload
			// must not take a healthy server out of rotation.
			initial, recovered = old.stateForSuccessor()
			old.stop()
		}
		w := m.newWorker(key, fp, it, initial, recovered)
		if fresh {
			// HAProxy's init-state: "up" and "down" are decided by the very
			// first check (one failure takes an "up" server out, one success
			// brings a "down" server in); the fully- forms need the whole
			// fall / rise streak.
			switch it.InitState {
			case "up", "":
				w.tr.streak = w.tr.Fall - 1
			case "down":
				w.tr.streak = w.tr.Rise - 1
			}
		}
		m.workers[key] = w
		if m.ctx != nil && !m.closed {
			m.start(w)
		}
	}
	for key, w := range m.workers {
		if !seen[key] {
			w.stop()
			delete(m.workers, key)
		}
	}
	m.unchecked = unchecked
	for key := range m.disabled {
		if !seen[key] {
			delete(m.disabled, key)
		}
	}
}

// uncheck makes a server UP because nothing checks it any more.
func (m *Manager) uncheck(s *upstream.Server, reason string) {
	wasDown := s.Health() == upstream.Down
	s.SetChecked(false)
	if wasDown && s.Health() == upstream.Up {
		m.publish(s, upstream.Up, reason, 0, "", 0, false)
	}
}

func (m *Manager) newWorker(key, fp string, it *Item, initial upstream.Health, recovered bool) *worker {
	c := it.Check
	w := &worker{
		m: m, key: key, fp: fp, s: it.Server, cfg: c,
		target: Target{
			Backend: it.Server.Backend, Server: it.Server.Name,
			Addr: TargetAddr(it.Server.Addr, c.Port), Check: c,
		},
		budget:  CheckBudget(c),
		tr:      NewTracker(initial, c.Rise, c.Fall, c.Inter.D(), c.FastInter.D(), c.DownInter.D()),
		enabled: !m.disabled[key],
		kick:    make(chan struct{}, 1),
	}
	w.tr.seenDown = recovered
	ch, err := m.reg.New(c)
	if err != nil {
		// The config was valid but this node cannot run the check (a kind
		// not built in, an unreadable ca_file): the server is reported DOWN
		// with the reason rather than trusted blindly.
		m.log.Error("health check unavailable", "backend", it.Server.Backend, "server", it.Server.Name, "err", err)
		reason := "check unavailable: " + err.Error()
		ch = CheckerFunc(func(context.Context, Target) Result { return Result{Reason: reason} })
		w.unavailable = true
	}
	w.checker = ch
	if c.Observe != "" {
		// Called on a proxy connection's goroutine: act on one of our own.
		it.Server.SetObserve(c.ErrorLimit, c.Observe == "layer7", func(last string) { go w.trafficErrors(last) })
	} else {
		it.Server.SetObserve(0, false, nil)
	}
	w.update(it)
	it.Server.SetSlowStart(it.SlowStart)
	if w.enabled {
		it.Server.SetChecked(true)
		// The initial state is not a transition: no event.
		it.Server.SetHealth(initial, "initial state")
	} else {
		it.Server.SetChecked(false)
	}
	return w
}

// start runs w under the manager's context. m.mu is held.
func (m *Manager) start(w *worker) {
	ctx, cancel := context.WithCancel(m.ctx)
	w.cancel = cancel
	w.mu.Lock()
	first := w.tr.Interval()
	w.mu.Unlock()
	if first > m.maxStagger {
		first = m.maxStagger
	}
	if first > 0 {
		first = rand.N(first)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(ctx, first)
	}()
}

// Run starts the workers and stops them all when ctx ends. Checks in flight
// are cancelled and not counted.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.ctx != nil {
		m.mu.Unlock()
		return errors.New("health: manager already running")
	}
	m.ctx = ctx
	for _, w := range m.workers {
		m.start(w)
	}
	m.mu.Unlock()

	<-ctx.Done()

	m.mu.Lock()
	m.closed = true
	for _, w := range m.workers {
		w.stop()
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// SetEnabled turns a server's checks on or off at runtime (HAProxy's
// `enable/disable health`). With checks off the server is considered UP;
// turned back on, checking resumes from UP and needs `fall` failures to
// mark it DOWN. The choice survives reloads while the server exists.
func (m *Manager) SetEnabled(serverKey string, on bool) {
	m.mu.Lock()
	if on {
		delete(m.disabled, serverKey)
	} else {
		m.disabled[serverKey] = true
	}
	w := m.workers[serverKey]
	m.mu.Unlock()
	if w != nil {
		w.setEnabled(on)
	}
}

// Status reports every known server's check state, sorted by backend and server.
func (m *Manager) Status() []ServerCheckStatus {
	m.mu.Lock()
	out := make([]ServerCheckStatus, 0, len(m.workers)+len(m.unchecked))
	for _, w := range m.workers {
		out = append(out, w.status())
	}
	for _, s := range m.unchecked {
		out = append(out, ServerCheckStatus{
			Backend: s.Backend, Server: s.Name, Addr: s.Addr, Health: s.Health().String(), Last: s.LastCheck(),
		})
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Backend != out[j].Backend {
			return out[i].Backend < out[j].Backend
		}
		return out[i].Server < out[j].Server
	})
	return out
}

// publish reports one transition. DOWN is a warning: one server is lost,
// the service usually is not (the proxy reports an empty backend). UP is a
// notice, except the first rise after start (initial), which is info with
// the attribute initial=true: every node start would otherwise look like a
// recovery of every server.
func (m *Manager) publish(s *upstream.Server, h upstream.Health, reason string, d time.Duration, kind string, killed int, initial bool) {
	if h == upstream.Down {
		m.log.Warn("server is DOWN", "backend", s.Backend, "server", s.Name, "reason", reason, "check_duration", d)
	} else {
		m.log.Info("server is UP", "backend", s.Backend, "server", s.Name, "reason", reason, "check_duration", d)
	}
	if m.bus == nil {
		return
	}
	ev := events.Event{
		Kind: events.ServerUp, Level: events.Notice, Scope: events.Local,
		Subject: s.Backend + "/" + s.Name,
		Attrs: map[string]string{
			"backend": s.Backend, "server": s.Name, "address": s.Addr, "reason": reason,
			"check_duration": strconv.FormatInt(d.Milliseconds(), 10) + "ms",
		},
	}
	if kind != "" {
		ev.Attrs["check"] = kind
	}
	if h == upstream.Down {
		ev.Kind, ev.Level = events.ServerDown, events.Warning
		ev.Message = fmt.Sprintf("server %s/%s is DOWN: %s", s.Backend, s.Name, reason)
		if killed > 0 {
			ev.Attrs["killed_sessions"] = strconv.Itoa(killed)
			ev.Message += fmt.Sprintf(" (%d sessions shut down)", killed)
		}
	} else {
		ev.Message = fmt.Sprintf("server %s/%s is UP: %s", s.Backend, s.Name, reason)
		if initial {
			ev.Level = events.Info
			ev.Attrs["initial"] = "true"
		}
	}
	m.bus.Publish(ev)
}

// worker checks one server.
type worker struct {
	m       *Manager
	key, fp string
	s       *upstream.Server
	cfg     *config.Check
	target  Target
	budget  Budget
	checker Checker
	// unavailable: the check could not be built; checker reports why.
	unavailable bool
	cancel      context.CancelFunc

	mu           sync.Mutex
	tr           *Tracker
	stopped      bool
	enabled      bool
	onMarkedDown string
	slowStart    time.Duration
	checks       uint64
	failures     uint64
	// trafficFails counts the times passive health (observe) acted
	// (HAProxy's hanafail); kick asks the run loop for a check at
	// fastinter.
	trafficFails uint64
	kick         chan struct{}
}

// update takes the settings a reload may change without restarting checks.
func (w *worker) update(it *Item) {
	w.mu.Lock()
	w.onMarkedDown = it.OnMarkedDown
	w.slowStart = it.SlowStart
	w.mu.Unlock()
	it.Server.SetSlowStart(it.SlowStart)
}

func (w *worker) stateForSuccessor() (upstream.Health, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tr.State(), w.tr.seenDown
}

// stop ends the worker; a check in flight is discarded.
func (w *worker) stop() {
	w.s.SetObserve(0, false, nil)
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	if w.cancel != nil {
		w.cancel()
	}
}

func (w *worker) setEnabled(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.enabled == on || w.stopped {
		return
	}
	w.enabled = on
	if !on {
		w.m.uncheck(w.s, "checks disabled by operator")
		w.tr.Force(upstream.Up)
		return
	}
	w.tr.Force(w.s.Health())
	w.s.SetChecked(true)
}

func (w *worker) run(ctx context.Context, first time.Duration) {
	t := time.NewTimer(first)
	defer t.Stop()
	due := time.Now().Add(first)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.s.LeftMaint():
			// Checks were paused: the state from before maintenance may be
			// stale, and the next interval can be far away.
			t.Stop()
		case <-w.kick:
			// Passive health saw errors: check at fastinter unless a
			// check is due sooner (HAProxy).
			if at := time.Now().Add(w.tr.FastInter); at.Before(due) {
				due = at
				t.Reset(time.Until(at))
			}
			continue
		}
		next := w.once(ctx)
		if ctx.Err() != nil {
			return
		}
		due = time.Now().Add(next)
		t.Reset(next)
	}
}

// trafficErrors is passive health's action (HAProxy on-error), run when
// the proxy has seen error_limit consecutive errors with the server; it
// always brings the next check forward to fastinter.
func (w *worker) trafficErrors(last string) {
	w.mu.Lock()
	if w.stopped || !w.enabled || w.s.Admin() == upstream.Maint {
		w.mu.Unlock()
		return
	}
	w.trafficFails++
	reason := fmt.Sprintf("%d consecutive errors in traffic (last: %s)", w.cfg.ErrorLimit, last)
	// Debug: this runs every error_limit errors, at the request rate of a
	// failing server; a change of state is logged by transition (with
	// this reason), the rest is counted in traffic_failures.
	w.m.log.Debug("passive health check", "backend", w.s.Backend, "server", w.s.Name, "on_error", w.cfg.OnError, "reason", reason)
	changed := false
	switch w.cfg.OnError {
	case "mark-down":
		changed = w.tr.MarkDown()
	case "sudden-death":
		changed = w.tr.SuddenDeath()
	case "fail-check":
		changed = w.tr.Observe(false)
	}
	if w.cfg.OnError != "fastinter" {
		// HAProxy's code for a passive health failure is HANA.
		w.s.SetLastCheck(upstream.CheckResult{OK: false, Reason: reason, Code: "HANA", Time: time.Now()})
	}
	if changed {
		w.transition(w.tr.State(), reason, 0)
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// once runs one check and returns the delay before the next.
func (w *worker) once(ctx context.Context) time.Duration {
	w.mu.Lock()
	enabled, idle := w.enabled, w.tr.Inter
	w.mu.Unlock()
	if !enabled || w.s.Admin() == upstream.Maint {
		// Servers in maintenance are not probed (HAProxy); their state
		// waits where it was until they come back.
		return idle
	}
	r := w.probe(ctx)
	if ctx.Err() != nil {
		return 0 // stopped or reloaded: not a failure
	}
	return w.apply(r)
}

func (w *worker) probe(ctx context.Context) (r Result) {
	cctx, cancel := context.WithTimeout(WithSendProxy(WithBudget(ctx, w.budget), w.cfg.SendProxy), w.budget.Total)
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			// A check kind's bug must not take the node down.
			w.m.log.Error("health check panicked", "backend", w.s.Backend, "server", w.s.Name, "panic", p)
			r = Result{Reason: fmt.Sprintf("check failed internally: %v", p)}
		}
		if r.Duration == 0 {
			r.Duration = time.Since(start)
		}
		if !r.OK && r.Reason == "" {
			r.Reason = "check failed"
		}
		if !r.OK && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil && !strings.Contains(r.Reason, "timeout") {
			// Whatever the kind said, the deadline is what ended it.
			r.Reason = "timeout (" + r.Reason + ")"
		}
	}()
	return w.checker.Check(cctx, w.target)
}

func (w *worker) apply(r Result) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || !w.enabled {
		return w.tr.Inter
	}
	w.checks++
	if !r.OK {
		w.failures++
	}
	reason := r.Reason
	if r.OK && reason == "" {
		reason = "check passed"
	}
	w.s.SetLastCheck(upstream.CheckResult{OK: r.OK, Reason: reason, Code: StatusCode(w.cfg.Kind, r), Duration: r.Duration, Time: time.Now()})
	if w.tr.Observe(r.OK) {
		w.transition(w.tr.State(), reason, r.Duration)
	}
	return w.tr.Interval()
}

// transition applies a state change to the server. w.mu is held.
func (w *worker) transition(h upstream.Health, reason string, d time.Duration) {
	killed := 0
	initial := h == upstream.Up && !w.tr.Recovered()
	if initial {
		// First rise since start: no slowstart (HAProxy applies it only to
		// servers that were seen failing).
		w.s.SetSlowStart(0)
		w.s.SetHealth(h, reason)
		w.s.SetSlowStart(w.slowStart)
	} else {
		w.s.SetHealth(h, reason)
	}
	if h == upstream.Down && w.onMarkedDown == "shutdown-sessions" {
		killed = w.s.KillSessions()
	}
	w.m.publish(w.s, h, reason, d, w.cfg.Kind, killed, initial)
}

func (w *worker) status() ServerCheckStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return ServerCheckStatus{
		Backend: w.s.Backend, Server: w.s.Name, Addr: w.target.Addr, Kind: w.cfg.Kind,
		Enabled: w.enabled, Health: w.s.Health().String(), Rise: w.tr.Rise, Fall: w.tr.Fall,
		Streak: w.tr.Streak(), Interval: w.tr.Interval(), Checks: w.checks, Failures: w.failures,
		TrafficFailures: w.trafficFails, Last: w.s.LastCheck(),
	}
}
