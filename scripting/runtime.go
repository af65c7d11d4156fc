// Package scripting is vipgate's Lua runtime (gopher-lua): plugins compiled
// once per config generation, run on pooled sandboxed states, every call
// under a deadline and bounded stack/registry, with a defined fallback when
// a script fails. It serves routing hooks (proxy.RouteHook), scripted health
// checks and VRRP track scripts (health.Checker), event handlers (core/events)
// and a DNS answer hook.
package scripting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
)

// LiveState is what scripts may read of the data plane: the servers of a
// backend with their health, admin state, weight and sessions. *proxy.Proxy
// implements it.
type LiveState interface {
	Servers(backend string) []*upstream.Server
}

// Options configure a Runtime.
type Options struct {
	Log *slog.Logger
	// Bus receives lua.errors events (optional) and feeds event handlers.
	Bus *events.Bus
	// Live is read by vipgate.servers() and friends (optional).
	Live LiveState
	// Now is the clock for error windows (tests); time.Now when nil.
	Now func() time.Time
	// IsLeader reports whether this node is the raft leader: event
	// handlers see cluster-wide events on the leader only, as alert mails
	// do. nil: always (a standalone node).
	IsLeader func() bool
}

// Runtime runs the cluster's Lua plugins. Apply swaps the scripts; calls in
// flight finish on the generation they started with.
type Runtime struct {
	log      *slog.Logger
	bus      *events.Bus
	live     LiveState
	now      func() time.Time
	isLeader func() bool

	gen atomic.Pointer[generation]

	errMu sync.Mutex
	errs  map[string]*errWindow // "plugin.function" → recent failures

	guard memGuard
	logs  logLimiter

	calls    atomic.Uint64
	failures atomic.Uint64
	timeouts atomic.Uint64
	created  atomic.Uint64 // states created
	closed   atomic.Uint64 // states closed
}

// New makes a runtime with no plugins; Apply loads them.
func New(o Options) *Runtime {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IsLeader == nil {
		o.IsLeader = func() bool { return true }
	}
	r := &Runtime{log: o.Log, bus: o.Bus, live: o.Live, now: o.Now, isLeader: o.IsLeader, errs: map[string]*errWindow{}}
	r.guard.states = map[*callGuard]struct{}{}
	r.guard.wake = make(chan struct{}, 1)
	r.guard.limit.Store(config.DefaultLuaMaxAlloc)
	empty := &config.Lua{}
	empty.Defaults.Fill()
	g, _ := r.compile(empty)
	r.gen.Store(g)
	return r
}

// plugin is one compiled script of a generation.
type plugin struct {
	name     string
	proto    *lua.FunctionProto
	config   map[string]any
	timeout  time.Duration
	fallback string // continue | 500 | 503
	handlers []config.LuaHandler
}

// generation is one applied set of plugins and its pool of states.
type generation struct {
	defaults config.LuaDefaults
	plugins  map[string]*plugin
	order    []*plugin
	pool     chan *state
	retired  atomic.Bool
	rt       *Runtime
	src      *config.Lua // what was applied, to skip unchanged re-applies
}

// cloneLua copies the parts Apply compares (the caller may reuse c).
func cloneLua(c *config.Lua) *config.Lua {
	cp := &config.Lua{Defaults: c.Defaults, Plugins: make([]config.LuaPlugin, len(c.Plugins))}
	copy(cp.Plugins, c.Plugins)
	return cp
}

// LoadError is a plugin that failed to compile or to run its top level.
// Line is the line in the plugin's source (0 when unknown).
type LoadError struct {
	Plugin string
	Line   int
	Msg    string
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("lua plugin %q, line %d: %s", e.Plugin, e.Line, e.Msg)
	}
	return fmt.Sprintf("lua plugin %q: %s", e.Plugin, e.Msg)
}

// Apply compiles the plugins of c and, when all of them load, makes them
// the current generation. On error the previous scripts stay in use.
func (r *Runtime) Apply(c *config.Lua) error {
	// An unchanged section keeps its warm states (and their caches).
	if old := r.gen.Load(); old != nil && old.src != nil && reflect.DeepEqual(old.src, c) {
		return nil
	}
	g, err := r.compile(c)
	if err != nil {
		return err
	}
	// Run every plugin's top level once now, so that a script failing at
	// load time is refused here rather than on the first request.
	s, err := g.newState()
	if err != nil {
		return err
	}
	g.put(s)
	g.src = cloneLua(c)
	r.guard.limit.Store(uint64(g.defaults.MaxAlloc))
	old := r.gen.Swap(g)
	if old != nil {
		old.retire()
	}
	return nil
}

func (r *Runtime) compile(c *config.Lua) (*generation, error) {
	d := c.Defaults
	d.Fill()
	g := &generation{defaults: d, plugins: map[string]*plugin{}, pool: make(chan *state, d.PoolSize), rt: r}
	var errs []error
	for i := range c.Plugins {
		pc := &c.Plugins[i]
		if _, dup := g.plugins[pc.Name]; dup {
			errs = append(errs, &LoadError{Plugin: pc.Name, Msg: "duplicate plugin name"})
			continue
		}
		proto, err := compileSource(pc.Name, pc.Source)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p := &plugin{name: pc.Name, proto: proto, config: pc.Config, timeout: c.EffectiveTimeout(pc), fallback: c.EffectiveFallback(pc), handlers: pc.Handlers}
		if p.timeout <= 0 {
			p.timeout = d.Timeout.D()
		}
		if p.fallback == "" {
			p.fallback = d.Fallback
		}
		g.plugins[p.name] = p
		g.order = append(g.order, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return g, nil
}

// compileSource parses and compiles once; every state of the generation
// instantiates the shared FunctionProto.
func compileSource(name, src string) (*lua.FunctionProto, error) {
	chunk, err := parse.Parse(strings.NewReader(src), name)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			line := pe.Pos.Line
			if line <= 0 { // unexpected end of source
				line = strings.Count(strings.TrimRight(src, "\n"), "\n") + 1
			}
			return nil, &LoadError{Plugin: name, Line: line, Msg: fmt.Sprintf("syntax error near %q: %s", pe.Token, strings.TrimSpace(pe.Message))}
		}
		return nil, &LoadError{Plugin: name, Msg: strings.TrimSpace(err.Error())}
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		var ce *lua.CompileError
		if errors.As(err, &ce) {
			return nil, &LoadError{Plugin: name, Line: ce.Line, Msg: ce.Message}
		}
		return nil, &LoadError{Plugin: name, Msg: err.Error()}
	}
	return proto, nil
}

func (g *generation) retire() {
	g.retired.Store(true)
	for {
		select {
		case s := <-g.pool:
			s.close()
		default:
			return
		}
	}
}

// get takes an idle state or makes one.
func (g *generation) get() (*state, error) {
	select {
	case s := <-g.pool:
		return s, nil
	default:
		return g.newState()
	}
}

// put returns a healthy state. States of a retired generation and states
// beyond the pool size are closed.
func (g *generation) put(s *state) {
	if g.retired.Load() {
		s.close()
		return
	}
	select {
	case g.pool <- s:
	default:
		s.close()
	}
	// A retire that raced with the send above must not leave s idle forever.
	if g.retired.Load() {
		g.retire()
	}
}

// Plugins lists the current plugins' names.
func (r *Runtime) Plugins() []string {
	g := r.gen.Load()
	out := make([]string, 0, len(g.order))
	for _, p := range g.order {
		out = append(out, p.name)
	}
	return out
}

// resolve splits "plugin.function" (or a bare function defined by exactly
// one plugin of the current generation).
func (r *Runtime) resolve(ref string) (plugin, fn string, err error) {
	if p, f, ok := strings.Cut(ref, "."); ok {
		if p == "" || f == "" {
			return "", "", fmt.Errorf("lua function %q: want plugin.function", ref)
		}
		return p, f, nil
	}
	if ref == "" {
		return "", "", errors.New("empty lua function name")
	}
	g := r.gen.Load()
	s, err := g.get()
	if err != nil {
		return "", "", err
	}
	defer g.put(s)
	var found []string
	for _, p := range g.order {
		if _, ok := s.envs[p.name].store.RawGetString(ref).(*lua.LFunction); ok {
			found = append(found, p.name)
		}
	}
	switch len(found) {
	case 1:
		return found[0], ref, nil
	case 0:
		return "", "", fmt.Errorf("no lua plugin defines a global function %q", ref)
	}
	return "", "", fmt.Errorf("lua function %q is ambiguous (plugins %s); write plugin.function", ref, strings.Join(found, ", "))
}

// callKind says what a call is for; it selects the timeout and which
// modules may be used (no blocking network in routing hooks).
type callKind int

const (
	kindRoute callKind = iota
	kindCheck
	kindHandler
	kindDNS
	kindLoad // a plugin's top level, run for every new state
)

func (k callKind) String() string {
	return [...]string{"route", "check", "handler", "dns", "top-level"}[k]
}

// ScriptError is a failed call: a Lua error, a timeout, a missing function.
type ScriptError struct {
	Function string // plugin.function
	Msg      string // includes plugin:line where Lua knows it
	Timeout  bool
}

func (e *ScriptError) Error() string {
	return fmt.Sprintf("lua %s: %s", e.Function, e.Msg)
}

// call runs plugin.fn on a pooled state. push pushes the arguments and
// returns how many; ret reads the results (the stack holds exactly nret
// values at 1..nret). A state whose call failed is closed, never pooled.
func (r *Runtime) call(ctx context.Context, g *generation, kind callKind, pname, fn string, timeout time.Duration,
	push func(s *state) int, nret int, ret func(s *state) error) (err error) {
	r.calls.Add(1)
	p := g.plugins[pname]
	if p == nil {
		return r.fail(pname, fn, &ScriptError{Function: pname + "." + fn, Msg: fmt.Sprintf("no lua plugin %q", pname)})
	}
	s, err := g.get()
	if err != nil {
		return r.fail(pname, fn, &ScriptError{Function: pname + "." + fn, Msg: err.Error()})
	}
	f, ok := s.envs[pname].store.RawGetString(fn).(*lua.LFunction)
	if !ok {
		g.put(s)
		return r.fail(pname, fn, &ScriptError{Function: pname + "." + fn, Msg: fmt.Sprintf("plugin %q defines no global function %q", pname, fn)})
	}
	if timeout <= 0 {
		timeout = p.timeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.guard.begin(&s.guard, &cancel)
	L := s.L
	s.kind, s.plugin, s.ctx = kind, p, cctx
	L.SetContext(cctx)
	L.Push(f)
	n := push(s)
	perr := safePCall(L, n, nret)
	r.guard.end(&s.guard)
	L.RemoveContext()
	s.ctx = nil
	s.closeConns()
	if perr == nil && ret != nil {
		perr = ret(s)
	}
	s.endCall()
	if perr != nil {
		// The state may be mid-way through anything: drop it.
		s.close()
		se := &ScriptError{Function: pname + "." + fn, Msg: luaErrMsg(perr)}
		switch {
		case s.guard.killed.Load():
			se.Msg = fmt.Sprintf("%s (stopped: the heap grew by more than %d bytes during the call, lua.defaults.max_alloc)", se.Msg, g.defaults.MaxAlloc)
		case errors.Is(cctx.Err(), context.DeadlineExceeded):
			se.Timeout = true
			se.Msg = fmt.Sprintf("%s (timeout %s)", se.Msg, timeout)
		}
		return r.fail(pname, fn, se)
	}
	L.SetTop(0)
	g.put(s)
	return nil
}

// safePCall turns a Go panic raised inside a Go function into an error as
// well: no script can take the process down.
func safePCall(L *lua.LState, nargs, nret int) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("internal error: %v", v)
		}
	}()
	return L.PCall(nargs, nret, nil)
}

func luaErrMsg(err error) string {
	var ae *lua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		return strings.TrimSpace(ae.Object.String())
	}
	return strings.TrimSpace(err.Error())
}

// errWindow counts failures of one function in the current minute.
type errWindow struct {
	start     time.Time
	count     int
	total     uint64
	timeouts  uint64
	published bool
	last      string
}

func (r *Runtime) fail(pname, fn string, se *ScriptError) error {
	r.failures.Add(1)
	if se.Timeout {
		r.timeouts.Add(1)
	}
	key := pname + "." + fn
	now := r.now()
	threshold := r.gen.Load().defaults.ErrorThreshold
	r.errMu.Lock()
	w := r.errs[key]
	if w == nil {
		w = &errWindow{start: now}
		r.errs[key] = w
	}
	if now.Sub(w.start) >= time.Minute {
		w.start, w.count, w.published = now, 0, false
	}
	w.count++
	w.total++
	if se.Timeout {
		w.timeouts++
	}
	w.last = se.Msg
	first := w.count == 1
	publish := w.count >= threshold && !w.published
	if publish {
		w.published = true
	}
	count := w.count
	r.errMu.Unlock()

	// One log line per function and minute, then the event: a failing hook
	// on a busy frontend must not flood the log.
	if first {
		r.log.Warn("lua call failed", "function", key, "err", se.Msg, "timeout", se.Timeout)
	}
	if publish && r.bus != nil {
		r.bus.Publish(events.Event{
			Kind: events.LuaErrors, Level: events.Warning, Scope: events.Local, Subject: key,
			Message: fmt.Sprintf("Lua function %s failed %d times within a minute: %s", key, count, se.Msg),
			Attrs:   map[string]string{"script": key, "count": fmt.Sprint(count), "last_error": se.Msg},
		})
	}
	return se
}

// FunctionStats are the counters of one Lua function.
type FunctionStats struct {
	Errors    uint64 `json:"errors"`
	Timeouts  uint64 `json:"timeouts"`
	LastError string `json:"last_error,omitempty"`
}

// Stats is the runtime's read-out for the admin API.
type Stats struct {
	Plugins       []string                 `json:"plugins"`
	Calls         uint64                   `json:"calls"`
	Failures      uint64                   `json:"failures"`
	Timeouts      uint64                   `json:"timeouts"`
	StatesCreated uint64                   `json:"states_created"`
	StatesClosed  uint64                   `json:"states_closed"`
	StatesIdle    int                      `json:"states_idle"`
	MemoryKills   uint64                   `json:"memory_kills"`
	LogDropped    uint64                   `json:"log_lines_dropped"`
	Functions     map[string]FunctionStats `json:"functions,omitempty"`
}

// Stats returns the counters.
func (r *Runtime) Stats() Stats {
	g := r.gen.Load()
	st := Stats{
		Plugins: r.Plugins(), Calls: r.calls.Load(), Failures: r.failures.Load(), Timeouts: r.timeouts.Load(),
		StatesCreated: r.created.Load(), StatesClosed: r.closed.Load(), StatesIdle: len(g.pool), MemoryKills: r.guard.kills.Load(), LogDropped: r.logs.dropped(),
		Functions: map[string]FunctionStats{},
	}
	r.errMu.Lock()
	for k, w := range r.errs {
		st.Functions[k] = FunctionStats{Errors: w.total, Timeouts: w.timeouts, LastError: w.last}
	}
	r.errMu.Unlock()
	sort.Strings(st.Plugins)
	return st
}

// Errors returns how many calls of plugin.function have failed.
func (r *Runtime) Errors(ref string) uint64 {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if w := r.errs[ref]; w != nil {
		return w.total
	}
	return 0
}
