package vrrp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"sync"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
)

// OpenFunc opens the network side of an instance.
type OpenFunc func(cfg *config.VRRPInstance, log *slog.Logger) (NetIO, error)

// Options configure a Manager.
type Options struct {
	Node   *config.Node
	Log    *slog.Logger
	Bus    *events.Bus
	Tracks TrackFactory
	// Open defaults to OpenLinux.
	Open OpenFunc
	// StateDir (the node's data directory) keeps the list of addresses
	// the instances may hold, so that a restart after a crash removes what
	// the crash left ("" = none kept).
	StateDir string
	// DropAddr removes an address from whichever interface has it and
	// reports whether one had it; defaults to netlink.
	DropAddr func(netip.Prefix) (bool, error)
	// NodeOf names the node that owns an address ("" = unknown), for the
	// master of an instance its configuration does not name (nil = none).
	NodeOf func(netip.Addr) string
}

// Manager runs the instances of the `vrrp` section that belong to this
// node and reconciles them on every config change: unchanged instances
// keep running untouched; a change that keeps the virtual router and its
// addresses (priority, preemption, interval, tracks, notify, GARP) is
// applied in place; any other change restarts the instance (resigning
// first).
type Manager struct {
	o       Options
	mu      sync.Mutex
	ctx     context.Context // nil until Run
	want    []config.VRRPInstance
	groups  map[string]config.VRRPSyncGroup // by instance name
	running map[string]*runningInst
	noted   []byte // the last list written to StateDir
	started chan struct{}
}

type runningInst struct {
	cfg    config.VRRPInstance
	group  config.VRRPSyncGroup
	inst   *Instance
	cancel context.CancelFunc
	done   chan struct{}
	runCtx context.Context
}

// NewManager makes a manager; call Apply with the first snapshot, then Run.
func NewManager(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Open == nil {
		o.Open = OpenLinux
	}
	if o.DropAddr == nil {
		o.DropAddr = dropAddr
	}
	m := &Manager{o: o, running: map[string]*runningInst{}, started: make(chan struct{})}
	m.dropLeftovers()
	return m
}

// Name implements the node's subsystem interface.
func (m *Manager) Name() string { return "vrrp" }

// Apply takes a validated snapshot. Errors name the instance; instances
// that could start keep running.
func (m *Manager) Apply(c *config.Cluster) error {
	var want []config.VRRPInstance
	dr := c.DRAddrs()
	for _, in := range c.VRRP.Instances {
		if in.Runs(m.o.Node) {
			// This node's own NIC, source address and VIP device.
			w := in.ForNode(m.o.Node.Name)
			w.DR = nil
			for _, s := range w.VIPs {
				if v, err := config.ParseVIP(s); err == nil && slices.Contains(dr, v.Prefix.Addr()) {
					w.DR = append(w.DR, v.Prefix.Addr())
				}
			}
			want = append(want, w)
		}
	}
	groups := map[string]config.VRRPSyncGroup{}
	for _, g := range c.VRRP.SyncGroups {
		for _, n := range g.Instances {
			groups[n] = g
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.want, m.groups = want, groups
	if m.ctx == nil {
		// Check what can be checked before Run: tracks must be buildable.
		for i := range want {
			if _, err := buildTracks(m.o.Tracks, want[i].Track); err != nil {
				return fmt.Errorf("vrrp instance %s: %w", want[i].Name, err)
			}
		}
		return nil
	}
	return m.reconcileLocked()
}

func (m *Manager) reconcileLocked() error {
	keep := map[string]bool{}
	var stop []*runningInst
	var errs []error
	for _, w := range m.want {
		r, ok := m.running[w.Name]
		if !ok || !r.group.SameMembers(m.groups[w.Name]) {
			continue
		}
		switch {
		case reflect.DeepEqual(r.cfg, w):
			keep[w.Name] = true
		case LiveChange(r.cfg, w):
			// Same virtual router, same addresses: change it in place, so
			// a master keeps its VIPs and the connections to them.
			tracks, err := buildTracks(m.o.Tracks, w.Track)
			if err != nil {
				errs = append(errs, fmt.Errorf("vrrp instance %s: %w (kept its previous configuration)", w.Name, err))
				keep[w.Name] = true
				continue
			}
			r.inst.Update(w, tracks, !reflect.DeepEqual(r.cfg.Track, w.Track))
			r.cfg = w
			keep[w.Name] = true
		}
	}
	for name, r := range m.running {
		if !keep[name] {
			stop = append(stop, r)
			delete(m.running, name)
		}
	}
	// Resign the old ones first so a VIP is never configured twice here.
	for _, r := range stop {
		r.cancel()
	}
	for _, r := range stop {
		<-r.done
	}
	// Noted before any instance can take an address: a crash from here on
	// leaves nothing the next start does not remove. A failure (a full
	// disk) is no reason to leave the datacenter without its VIP.
	if err := m.noteVIPs(instanceVIPs(m.want)); err != nil {
		m.o.Log.Error("vrrp: a crash now could leave VIPs configured until they are removed by hand", "err", err)
	}
	started := map[string]*Instance{}
	for i := range m.want {
		w := m.want[i]
		if keep[w.Name] {
			continue
		}
		inst, err := m.start(w)
		if err != nil {
			errs = append(errs, fmt.Errorf("vrrp instance %s: %w", w.Name, err))
			continue
		}
		started[w.Name] = inst
	}
	// Sync groups link instances; rebuilt ones join their group here.
	// A group's state and its members' last states carry over from the
	// group object it replaces, so its notify scripts do not fire again
	// for a state it already had.
	members := map[string][]*Instance{}
	prev := map[string]*syncGroup{}
	for name, r := range m.running {
		g, ok := m.groups[name]
		if !ok {
			continue
		}
		members[g.Name] = append(members[g.Name], r.inst)
		if old := r.inst.group.Load(); old != nil && old.name == g.Name {
			prev[g.Name] = old
		}
	}
	byGroup := map[string]*syncGroup{}
	for name, r := range m.running {
		g, ok := m.groups[name]
		if !ok {
			continue
		}
		sg := byGroup[g.Name]
		if sg == nil {
			sg = newSyncGroup(g, members[g.Name], prev[g.Name])
			byGroup[g.Name] = sg
		}
		r.group = g
		r.inst.group.Store(sg)
	}
	for _, r := range m.running {
		if started[r.cfg.Name] == nil {
			continue
		}
		go func() {
			_ = r.inst.Run(r.ctx())
		}()
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

func (r *runningInst) ctx() context.Context { return r.runCtx }

func (m *Manager) start(w config.VRRPInstance) (*Instance, error) {
	log := m.o.Log.With("vrrp", w.Name)
	tracks, err := buildTracks(m.o.Tracks, w.Track)
	if err != nil {
		return nil, err
	}
	io, err := m.o.Open(&w, log)
	if err != nil {
		return nil, err
	}
	node := ""
	if m.o.Node != nil {
		node = m.o.Node.Name
	}
	inst, err := NewInstance(w, InstanceOptions{Node: node, IO: io, Log: m.o.Log, Bus: m.o.Bus, Tracks: tracks})
	if err != nil {
		io.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(m.ctx)
	r := &runningInst{cfg: w, group: m.groups[w.Name], inst: inst, cancel: cancel, done: inst.done, runCtx: ctx}
	m.running[w.Name] = r
	return inst, nil
}

// Run starts the instances and stops them all (resigning mastership and
// removing every VIP) when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	err := m.reconcileLocked()
	m.mu.Unlock()
	close(m.started)
	if err != nil {
		m.o.Log.Error("vrrp: some instances did not start", "err", err)
	}
	<-ctx.Done()
	m.mu.Lock()
	var groups []*syncGroup
	for _, r := range m.running {
		<-r.done
		if g := r.inst.group.Load(); g != nil {
			groups = append(groups, g)
		}
	}
	m.mu.Unlock()
	// Sync groups' last scripts (notify_stop) finish before we return (not
	// when one member restarts: a reconcile never waits on a group script).
	for _, g := range groups {
		g.wait()
	}
	return nil
}

// Started is closed once Run has started the instances of the applied
// snapshot (those that could start), so that a node reports itself ready
// only with its VRRP instances running.
func (m *Manager) Started() <-chan struct{} { return m.started }

// Status lists every instance of this node, sorted by name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	out := make([]Status, 0, len(m.running))
	for _, r := range m.running {
		out = append(out, r.inst.Status())
	}
	m.mu.Unlock()
	for i, st := range out {
		if a, err := netip.ParseAddr(st.Master); err == nil && st.MasterNode == "" && m.o.NodeOf != nil {
			out[i].MasterNode = m.o.NodeOf(a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
