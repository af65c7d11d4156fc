package stick

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy"
)

// Options configure a Manager.
type Options struct {
	Log *slog.Logger
	// Keys resolves `lua:` key functions; nil refuses rules with on: lua.
	Keys KeyResolver
	// SweepEvery is how often expired entries are dropped (default 1s).
	SweepEvery time.Duration
}

// Manager owns the node's stick tables across config changes: a table
// whose key type is unchanged keeps its entries when the config changes.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu     sync.RWMutex
	tables map[string]*Table
	notify func(Update)
}

// NewManager returns a Manager with no tables.
func NewManager(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Second
	}
	return &Manager{opts: o, log: o.Log, tables: map[string]*Table{}}
}

// Name is the subsystem's name.
func (m *Manager) Name() string { return "stick" }

// Apply reconciles the tables with the config.
func (m *Manager) Apply(c *config.Cluster) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[string]*Table, len(c.StickTables))
	for _, tc := range c.StickTables {
		t := m.tables[tc.Name]
		if t != nil && t.Compatible(tc) {
			t.Reconfigure(tc)
		} else {
			if t != nil {
				m.log.Info("stick table type changed; starting empty", "table", tc.Name)
			}
			t = NewTable(tc)
		}
		m.setNotify(t)
		next[tc.Name] = t
	}
	for name, t := range m.tables {
		if next[name] == nil {
			t.SetNotify(nil)
		}
	}
	m.tables = next
	return nil
}

// SetNotify installs the observer of local stores into tables with peers:
// true (the peer syncer).
func (m *Manager) SetNotify(f func(Update)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notify = f
	for _, t := range m.tables {
		m.setNotify(t)
	}
}

func (m *Manager) setNotify(t *Table) {
	if t.Peers() && m.notify != nil {
		t.SetNotify(m.notify)
	} else {
		t.SetNotify(nil)
	}
}

// Table returns the named table or nil.
func (m *Manager) Table(name string) *Table {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tables[name]
}

// Tables returns the tables sorted by name.
func (m *Manager) Tables() []*Table {
	m.mu.RLock()
	out := make([]*Table, 0, len(m.tables))
	for _, t := range m.tables {
		out = append(out, t)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Factory is the proxy.PersistFactory building each backend's persister
// on the current tables. Apply must have run with the same config first.
func (m *Manager) Factory() proxy.PersistFactory {
	return func(b *config.Backend, servers proxy.ServerLookup) (proxy.Persister, error) {
		r := b.Stick
		if r == nil {
			return nil, nil
		}
		p := &persister{rule: *r, servers: servers, t: m.Table(r.Table)}
		if p.t == nil {
			return nil, fmt.Errorf("no stick table %q", r.Table)
		}
		if r.Fallback == config.StickOnSrc {
			if p.ft = m.Table(r.FallbackTable); p.ft == nil {
				return nil, fmt.Errorf("no stick table %q (fallback_table)", r.FallbackTable)
			}
		}
		if r.On == config.StickOnLua {
			if m.opts.Keys == nil {
				return nil, fmt.Errorf("stick on lua: Lua scripting is not available on this node")
			}
			f, err := m.opts.Keys(r.Lua)
			if err != nil {
				return nil, fmt.Errorf("stick on lua %q: %w", r.Lua, err)
			}
			p.key = f
			log := m.log.With("backend", b.Name, "lua", r.Lua)
			p.onErr = func(err error) { log.Warn("stick key function failed; using the fallback", "err", err) }
		}
		return p, nil
	}
}

// Run drops expired entries periodically until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	tick := time.NewTicker(m.opts.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			for _, t := range m.Tables() {
				t.Sweep()
			}
		}
	}
}

// TableStatus is a table's read-out for the admin API.
type TableStatus struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Len       int    `json:"len,omitempty"`
	Size      int    `json:"size"`
	Expire    string `json:"expire"`
	Peers     bool   `json:"peers"`
	Entries   int    `json:"entries"`
	Lookups   uint64 `json:"lookups"`
	Hits      uint64 `json:"hits"`
	Stores    uint64 `json:"stores"`
	Evictions uint64 `json:"evictions"`
	Expired   uint64 `json:"expired"`
	Synced    uint64 `json:"synced"`
}

// Status reads out every table.
func (m *Manager) Status() []TableStatus {
	var out []TableStatus
	for _, t := range m.Tables() {
		out = append(out, TableStatus{
			Name: t.Name, Type: t.Type, Len: t.KeyLen, Size: t.Size(), Expire: t.Expire().String(), Peers: t.Peers(),
			Entries: t.Len(), Lookups: t.Lookups.Load(), Hits: t.Hits.Load(), Stores: t.Stores.Load(),
			Evictions: t.Evictions.Load(), Expired: t.Expired.Load(), Synced: t.Synced.Load(),
		})
	}
	return out
}

// EntryStatus is one entry for the admin API.
type EntryStatus struct {
	Key    string `json:"key"`
	Server string `json:"server"`
	TTL    string `json:"ttl"`
}

// Entries lists up to limit live entries of a table.
func (m *Manager) Entries(table string, limit int) ([]EntryStatus, error) {
	t := m.Table(table)
	if t == nil {
		return nil, fmt.Errorf("no stick table %q", table)
	}
	out := []EntryStatus{}
	t.Each(func(u Update) bool {
		out = append(out, EntryStatus{Key: t.FormatKey(u.Key), Server: u.Server, TTL: u.TTL.Round(time.Millisecond).String()})
		return len(out) < limit
	})
	return out, nil
}
