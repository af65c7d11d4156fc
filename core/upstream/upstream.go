// Package upstream holds the live state of backends and servers that the
// proxy, the balancer, the health checker and the stats read-out share:
// health, admin state, dynamic weight, connection counts and counters.
//
// A Server outlives config reloads when its identity (backend, name,
// address) is unchanged, so health and counters carry over; the proxy builds
// new Backend values and reuses Servers by key.
package upstream

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Admin is the operator's state for a server (HAProxy's ready/drain/maint).
type Admin int32

const (
	// Ready servers take new sessions.
	Ready Admin = iota
	// Drain servers take no new sessions (except persistent ones); existing
	// sessions finish.
	Drain
	// Maint servers take nothing, and are not health checked.
	Maint
)

func (a Admin) String() string {
	switch a {
	case Drain:
		return "drain"
	case Maint:
		return "maint"
	}
	return "ready"
}

// ParseAdmin parses ready|drain|maint.
func ParseAdmin(s string) (Admin, error) {
	switch s {
	case "ready":
		return Ready, nil
	case "drain":
		return Drain, nil
	case "maint":
		return Maint, nil
	}
	return 0, fmt.Errorf("unknown admin state %q (want ready, drain or maint)", s)
}

// Health is what checks say about a server.
type Health int32

const (
	// Down servers failed `fall` consecutive checks, or have not yet passed
	// `rise` checks since start.
	Down Health = iota
	// Up servers passed `rise` consecutive checks (or are not checked).
	Up
)

func (h Health) String() string {
	if h == Up {
		return "UP"
	}
	return "DOWN"
}

// Counters are monotonically increasing totals plus current gauges. All
// fields are updated atomically on the data path.
type Counters struct {
	CurSessions   atomic.Int64
	MaxSessions   atomic.Int64
	TotalSessions atomic.Uint64
	BytesIn       atomic.Uint64 // client → server
	BytesOut      atomic.Uint64 // server → client
	// PacketsIn counts packets forwarded to servers (mode dr: the director
	// sees only the client's direction).
	PacketsIn     atomic.Uint64
	ConnErrors    atomic.Uint64
	RespErrors    atomic.Uint64
	Retries       atomic.Uint64
	Redispatches  atomic.Uint64
	Denied        atomic.Uint64
	Queued        atomic.Int64 // currently waiting in queue
	QueueMax      atomic.Int64
	QueueTimeouts atomic.Uint64
	HTTPResponses [6]atomic.Uint64 // by class: 1xx..5xx at index 1..5, other at 0
	// LastSession is the unix nano time of the last session start.
	LastSession atomic.Int64
	// SessionRate is sessions per second (HAProxy's rate and rate_max).
	SessionRate Rate
	// ConnectTime is the time to establish server connections (Tc).
	ConnectTime Histogram
	// SessionTime is the total time of tcp sessions / http requests (Tt).
	SessionTime Histogram
	// QueueTime is the time spent waiting for a slot (Tw).
	QueueTime Histogram
}

// SessionStart counts a new session and returns the current count.
func (c *Counters) SessionStart() int64 { return c.SessionStartAt(time.Now().UnixNano()) }

// SessionStartAt is SessionStart with the time already read (unix nano):
// a caller counting one session at several levels reads the clock once.
func (c *Counters) SessionStartAt(now int64) int64 {
	n := c.CurSessions.Add(1)
	c.TotalSessions.Add(1)
	for {
		m := c.MaxSessions.Load()
		if n <= m || c.MaxSessions.CompareAndSwap(m, n) {
			break
		}
	}
	c.LastSession.Store(now)
	c.SessionRate.Add(now)
	return n
}

// SessionEnd counts a finished session.
func (c *Counters) SessionEnd() { c.CurSessions.Add(-1) }

// CountResponse counts an HTTP response by status class.
func (c *Counters) CountResponse(status int) {
	cl := status / 100
	if cl < 1 || cl > 5 {
		cl = 0
	}
	c.HTTPResponses[cl].Add(1)
}

// Server is one real server. Its identity fields are immutable; its state
// is atomic so the data path never locks.
type Server struct {
	Backend string
	Name    string
	Addr    string // host:port as configured

	settings atomic.Pointer[Settings]

	health   atomic.Int32 // Health
	admin    atomic.Int32 // Admin
	weight   atomic.Int32 // operator-set weight (starts at the configured weight)
	checked  atomic.Bool  // health checks enabled
	slowEnd  atomic.Int64 // unix nano when slowstart ends (0 = none)
	slowDur  atomic.Int64 // slowstart duration in ns
	lastChg  atomic.Int64 // unix nano of the last health/admin change
	Counters Counters

	mu         sync.Mutex
	lastCheck  CheckResult
	downCount  uint64 // transitions to DOWN
	chkFail    uint64 // failed checks (HAProxy's chkfail)
	downSince  time.Time
	downtime   time.Duration // time spent DOWN before downSince
	killers    map[uint64]func()
	nextKiller uint64

	// version changes whenever the usable set may have changed; backends
	// watch it to rebuild balancer state.
	onChange func()

	// leftMaint gets a token when the server leaves maintenance, so its
	// health checker checks at once instead of at its next interval.
	leftMaint chan struct{}

	// Passive health (HAProxy observe): consecutive errors the proxy saw
	// in live traffic, counted here so the data path takes no lock.
	obsLimit  atomic.Int32 // 0: not observed
	obsLayer7 atomic.Bool
	obsErrs   atomic.Int32
	obsFn     atomic.Pointer[func(reason string)]
}

// Settings are the configured attributes of a server that a reload may
// change without changing its identity (backend, name, address). They are
// swapped atomically, never modified in place.
type Settings struct {
	// Index is the server's position in its backend (stable for hashing).
	Index int
	// Weight is the configured weight (0..256).
	Weight  int
	MaxConn int
	Backup  bool
	// Cookie is the persistence cookie value for this server (http mode).
	Cookie string
	// Datacenter is where the server lives ("" = unknown).
	Datacenter string
}

// Settings returns the current configured attributes.
func (s *Server) Settings() *Settings { return s.settings.Load() }

// SetSettings replaces the configured attributes (on reload). A changed
// configured weight resets the operator weight to it, as HAProxy does.
func (s *Server) SetSettings(st Settings) {
	old := s.settings.Swap(&st)
	if old == nil || old.Weight != st.Weight {
		s.weight.Store(int32(st.Weight))
	}
	s.changed()
}

// CheckResult is the last health-check outcome, for stats.
type CheckResult struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
	// Code is HAProxy's check status code (L4OK, L4CON, L7STS…).
	Code     string        `json:"code,omitempty"`
	Duration time.Duration `json:"duration"`
	Time     time.Time     `json:"time"`
}

// NewServer makes a server that is Up (not checked) and Ready.
func NewServer(backend, name, addr string, weight int) *Server {
	s := &Server{Backend: backend, Name: name, Addr: addr, leftMaint: make(chan struct{}, 1)}
	s.settings.Store(&Settings{Weight: weight})
	s.health.Store(int32(Up))
	s.weight.Store(int32(weight))
	s.lastChg.Store(time.Now().UnixNano())
	return s
}

// Key identifies a server across reloads.
func (s *Server) Key() string { return s.Backend + "/" + s.Name + "@" + s.Addr }

// Health returns the check state.
func (s *Server) Health() Health { return Health(s.health.Load()) }

// Admin returns the operator state.
func (s *Server) Admin() Admin { return Admin(s.admin.Load()) }

// Checked reports whether health checks run for this server.
func (s *Server) Checked() bool { return s.checked.Load() }

// SetChecked turns checking on or off; an unchecked server is Up.
func (s *Server) SetChecked(on bool) {
	s.checked.Store(on)
	if !on {
		s.SetHealth(Up, "checks disabled")
	}
}

// SetOnChange installs the callback run after any change that affects
// selection (health, admin, weight). The backend sets it.
func (s *Server) SetOnChange(f func()) {
	s.mu.Lock()
	s.onChange = f
	s.mu.Unlock()
}

func (s *Server) changed() {
	s.lastChg.Store(time.Now().UnixNano())
	s.mu.Lock()
	f := s.onChange
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

// SetHealth records a health transition. It returns true if the state changed.
func (s *Server) SetHealth(h Health, reason string) bool {
	old := Health(s.health.Swap(int32(h)))
	if old == h {
		return false
	}
	now := time.Now()
	s.mu.Lock()
	if h == Up {
		if !s.downSince.IsZero() {
			s.downtime += now.Sub(s.downSince)
			s.downSince = time.Time{}
		}
	} else {
		s.downCount++
		s.downSince = now
	}
	s.mu.Unlock()
	if h == Up {
		s.startSlowStart()
	}
	s.changed()
	return true
}

// startSlowStart begins the slowstart ramp now (when one is configured).
func (s *Server) startSlowStart() {
	if d := s.slowDur.Load(); d > 0 {
		s.slowEnd.Store(time.Now().Add(time.Duration(d)).UnixNano())
	}
}

// SetAdmin changes the operator state. Leaving maintenance (to ready or
// drain) restarts the slowstart ramp of a server that is UP, as HAProxy does
// for `set server X state ready` / `enable server` after maint: the server
// took no traffic while in maintenance, so it warms up like a recovered one.
// Drain to ready does not ramp: a draining server kept its sessions.
func (s *Server) SetAdmin(a Admin) {
	old := Admin(s.admin.Swap(int32(a)))
	if old == a {
		return
	}
	if old == Maint {
		if s.Health() == Up {
			s.startSlowStart()
		}
		select {
		case s.leftMaint <- struct{}{}:
		default: // one token is enough: the checker has not taken the last one
		}
	}
	s.changed()
}

// SetObserve makes the proxy's reports of live traffic count (limit > 0):
// after limit consecutive errors fn is called with the last error, and
// the count starts again. fn runs on the reporting connection's goroutine,
// which may hold locks: it must hand the work off, not do it. layer7 also
// counts HTTP answers. limit 0 stops observing.
func (s *Server) SetObserve(limit int, layer7 bool, fn func(reason string)) {
	s.obsErrs.Store(0)
	if limit <= 0 || fn == nil {
		s.obsLimit.Store(0)
		s.obsFn.Store(nil)
		return
	}
	s.obsFn.Store(&fn)
	s.obsLayer7.Store(layer7)
	s.obsLimit.Store(int32(limit))
}

// ObserveConnect reports a connection attempt to the server (layer 4): a
// failure counts for layer4 and layer7 observation, a success resets the
// count of layer4 only (as HAProxy: under layer7 a server that accepts
// connections and answers 503 is still failing).
func (s *Server) ObserveConnect(err error) {
	if s.obsLimit.Load() == 0 {
		return
	}
	if err != nil {
		s.observed(false, err.Error())
	} else if !s.obsLayer7.Load() {
		s.observed(true, "")
	}
}

// ObserveResponse reports an HTTP exchange with the server (layer 7): ok
// for an answer, false with the reason for a 5xx (but 501 and 505), a
// broken or missing answer. Counted under layer7 observation only.
func (s *Server) ObserveResponse(ok bool, reason string) {
	if s.obsLimit.Load() == 0 || !s.obsLayer7.Load() {
		return
	}
	s.observed(ok, reason)
}

// ObserveStatus reports the status of an HTTP answer (layer 7): 5xx but
// 501 and 505 is an error, as in HAProxy (those two say the request was
// wrong, not the server). It builds no string unless observed and failing.
func (s *Server) ObserveStatus(status int) {
	if s.obsLimit.Load() == 0 || !s.obsLayer7.Load() {
		return
	}
	if status < 500 || status == 501 || status == 505 {
		s.observed(true, "")
		return
	}
	s.observed(false, "HTTP "+strconv.Itoa(status))
}

func (s *Server) observed(ok bool, reason string) {
	if ok {
		if s.obsErrs.Load() != 0 {
			s.obsErrs.Store(0)
		}
		return
	}
	n := s.obsErrs.Add(1)
	if n < s.obsLimit.Load() || !s.obsErrs.CompareAndSwap(n, 0) {
		return // below the limit, or another report got there first
	}
	if fn := s.obsFn.Load(); fn != nil {
		(*fn)(reason)
	}
}

// LeftMaint is signalled when the server leaves maintenance: HAProxy checks
// such a server at once, since it may have died (or recovered) while its
// checks were paused. It has one reader, the server's health checker.
func (s *Server) LeftMaint() <-chan struct{} { return s.leftMaint }

// SetWeight changes the dynamic weight (0..256).
func (s *Server) SetWeight(w int) error {
	if w < 0 || w > 256 {
		return fmt.Errorf("weight %d out of range 0-256", w)
	}
	if int(s.weight.Swap(int32(w))) != w {
		s.changed()
	}
	return nil
}

// BaseWeight is the operator's weight (configured or set at runtime) without
// the slowstart ramp: what the static hash tables are built from, since a
// table built mid-ramp would keep the ramp's weight until the next change.
func (s *Server) BaseWeight() int { return int(s.weight.Load()) }

// SetSlowStart sets the weight ramp duration after recovery.
func (s *Server) SetSlowStart(d time.Duration) { s.slowDur.Store(int64(d)) }

// Weight is the effective weight now: the operator weight scaled by
// slowstart progress (at least 1 while ramping, as HAProxy).
func (s *Server) Weight() int {
	w := int(s.weight.Load())
	end := s.slowEnd.Load()
	if end == 0 || w == 0 {
		return w
	}
	now := time.Now().UnixNano()
	if now >= end {
		s.slowEnd.CompareAndSwap(end, 0)
		return w
	}
	total := s.slowDur.Load()
	if total <= 0 {
		return w
	}
	elapsed := total - (end - now)
	ew := int(int64(w) * elapsed / total)
	return max(ew, 1)
}

// InSlowStart reports whether the weight is still ramping.
func (s *Server) InSlowStart() bool {
	end := s.slowEnd.Load()
	return end != 0 && time.Now().UnixNano() < end
}

// Usable reports whether the server may take a new (non-persistent) session:
// up, ready, and with a weight.
func (s *Server) Usable() bool {
	return s.Health() == Up && s.Admin() == Ready && s.weight.Load() > 0
}

// UsableForPersistence reports whether a persistent session (cookie, stick
// table) may still go to the server: draining servers keep their clients.
func (s *Server) UsableForPersistence() bool {
	return s.Health() == Up && s.Admin() != Maint
}

// Full reports whether the server is at maxconn.
func (s *Server) Full() bool {
	m := s.settings.Load().MaxConn
	return m > 0 && s.Counters.CurSessions.Load() >= int64(m)
}

// LastChange is when health or admin state last changed.
func (s *Server) LastChange() time.Time { return time.Unix(0, s.lastChg.Load()) }

// SetLastCheck records the latest check result.
func (s *Server) SetLastCheck(r CheckResult) {
	s.mu.Lock()
	s.lastCheck = r
	if !r.OK {
		s.chkFail++
	}
	s.mu.Unlock()
}

// CheckFailures counts failed health checks (HAProxy's chkfail).
func (s *Server) CheckFailures() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chkFail
}

// Downtime is the time the server has spent DOWN (HAProxy's downtime),
// up to now.
func (s *Server) Downtime(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.downtime
	if !s.downSince.IsZero() && now.After(s.downSince) {
		d += now.Sub(s.downSince)
	}
	return d
}

// LastCheck returns the latest check result.
func (s *Server) LastCheck() CheckResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastCheck
}

// DownTransitions counts how often the server went down.
func (s *Server) DownTransitions() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downCount
}

// Track registers a way to end one session (for on_marked_down
// shutdown-sessions and admin kill). It returns the function to call when
// the session ends by itself.
func (s *Server) Track(kill func()) (untrack func()) {
	id := s.TrackID(kill)
	return func() { s.Untrack(id) }
}

// TrackID is Track for hot paths: the caller keeps the id and calls
// Untrack, so no closure is made per session.
func (s *Server) TrackID(kill func()) uint64 {
	s.mu.Lock()
	if s.killers == nil {
		s.killers = map[uint64]func(){}
	}
	id := s.nextKiller
	s.nextKiller++
	s.killers[id] = kill
	s.mu.Unlock()
	return id
}

// Untrack forgets a session registered with TrackID.
func (s *Server) Untrack(id uint64) {
	s.mu.Lock()
	delete(s.killers, id)
	s.mu.Unlock()
}

// KillSessions ends every tracked session and returns how many.
func (s *Server) KillSessions() int {
	s.mu.Lock()
	ks := make([]func(), 0, len(s.killers))
	for _, k := range s.killers {
		ks = append(ks, k)
	}
	s.mu.Unlock()
	for _, k := range ks {
		k()
	}
	return len(ks)
}
