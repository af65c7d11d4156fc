package health

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// Target is what one check probes.
type Target struct {
	Backend string
	Server  string
	// Addr is host:port to probe, with the check's port override applied.
	Addr  string
	Check *config.Check
}

// Result is one check outcome. A failed check is data, not an error.
type Result struct {
	OK       bool
	Reason   string // short, for logs and mails: "connection refused", "HTTP 503"
	Duration time.Duration
	// PriorityDelta is an optional dynamic priority change returned by VRRP
	// track scripts; HasDelta says it was set.
	PriorityDelta int
	HasDelta      bool
}

// Checker probes a target once. It must honour ctx (the check timeout) and
// be safe for concurrent use on different targets.
type Checker interface {
	Check(ctx context.Context, t Target) Result
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context, t Target) Result

// Check implements Checker.
func (f CheckerFunc) Check(ctx context.Context, t Target) Result { return f(ctx, t) }

// Factory builds a Checker from a validated check config.
type Factory func(c *config.Check) (Checker, error)

// Registry maps check kinds ("tcp", "http", "tls", "lua", "exec") to
// factories. It is a value built at start, never a package global.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Factory
}

// NewRegistry makes an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Factory{}} }

// Register adds a kind. It panics on a duplicate or empty kind: that is a
// wiring bug, found at start.
func (r *Registry) Register(kind string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[kind]; dup || kind == "" || f == nil {
		panic(fmt.Sprintf("health: bad registration of check kind %q", kind))
	}
	r.m[kind] = f
}

// New builds a checker for c.
func (r *Registry) New(c *config.Check) (Checker, error) {
	r.mu.RLock()
	f, ok := r.m[c.Kind]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("check kind %q is not available (have: %v)", c.Kind, r.Kinds())
	}
	ch, err := f(c)
	if err != nil {
		return nil, fmt.Errorf("check kind %q: %w", c.Kind, err)
	}
	return ch, nil
}

// Kinds lists registered kinds, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
