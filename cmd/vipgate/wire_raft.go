package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vipgate/vipgate/cluster/dc"
	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
)

// newRaftSource returns the raft-backed config source when the node
// bootstrap file configures raft, or nil for standalone operation.
func newRaftSource(e *env) (configSource, error) {
	nr := e.Node.Raft
	if !nr.Enabled() {
		return nil, nil
	}
	var seed []byte
	if e.Node.Config != "" {
		data, err := os.ReadFile(e.Node.Config)
		if err != nil {
			return nil, fmt.Errorf("seed config: %w", err)
		}
		if _, err := config.ParseKnown(e.Node.Config, data, knownNames()); err != nil {
			return nil, fmt.Errorf("seed config %s:\n%w", e.Node.Config, err)
		}
		if seed, err = raft.InlineFiles(data, filepath.Dir(e.Node.Config)); err != nil {
			return nil, fmt.Errorf("seed config %s: %w", e.Node.Config, err)
		}
	}
	n, err := raft.New(raft.Options{
		ID: e.Node.Name, Datacenter: e.Node.Datacenter, Role: e.Node.Role, Admin: e.Node.Admin.Listen,
		DataDir: e.Node.DataDir, Raft: nr, Seed: seed, Log: e.Log,
	})
	if err != nil {
		return nil, err
	}
	s := &raftSource{e: e, n: n, updates: make(chan *config.Cluster, 1), applied: map[string]string{}, recheck: make(chan struct{}, 1)}
	s.mgr = dc.NewManager(n, nr.ReportInterval.D(), e.Log)
	e.Cluster = s
	e.IsLeader = n.IsLeader
	e.LeaderContact = n.LeaderContact
	s.register()
	return s, nil
}

// raftSource delivers committed snapshots, runs the datacenter manager and
// this gateway's health reports, and applies the cluster's server
// overrides to the local proxy.
type raftSource struct {
	e       *env
	n       *raft.Node
	mgr     *dc.Manager
	updates chan *config.Cluster

	applied map[string]string // server overrides applied to the proxy

	filesMu sync.Mutex
	files   fileCheck // the committed config's files, as this node sees them
	recheck chan struct{}
}

// fileCheck is what this node found wrong with the files the committed
// document names (TLS certificates and keys, CA files, error pages). Those
// files are node-local: the cluster commits the document whatever one node
// holds, so each node checks them itself when it applies a version.
type fileCheck struct {
	Version  uint64   `json:"version"`
	Problems []string `json:"problems"`
}

// fileProblems checks the files c names on this node: one line per problem,
// positioned in the committed document (as vipgate check positions them).
func fileProblems(c *config.Cluster) []string {
	err := c.CheckFiles("cluster.yaml")
	if err == nil {
		return nil
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		out = append(out, p.String())
	}
	return out
}

// checkFiles runs the file checks for a newly committed version: each
// problem is logged on its own line, shown in the node's status (section
// "config_files") and published as a config.files event (err), and the
// event is published again at notice with count 0 once they are fixed. The
// subsystems still get the document and serve what they can.
func (s *raftSource) checkFiles(version uint64, c *config.Cluster) {
	probs := fileProblems(c)
	if probs == nil {
		probs = []string{}
	}
	for _, p := range probs {
		s.e.Log.Error("config names a file this node cannot use", "version", version, "problem", p)
	}
	s.filesMu.Lock()
	prev := s.files
	s.files = fileCheck{Version: version, Problems: probs}
	s.filesMu.Unlock()
	attrs := map[string]string{"version": strconv.FormatUint(version, 10), "count": strconv.Itoa(len(probs))}
	switch {
	case len(probs) > 0:
		attrs["problems"] = strings.Join(probs, "\n")
		msg := fmt.Sprintf("configuration version %d names %d file(s) this node cannot use: %s", version, len(probs), probs[0])
		if len(probs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(probs)-1)
		}
		s.e.Bus.Publish(events.Event{Kind: events.ConfigFiles, Level: events.Err, Subject: "config", Message: msg, Attrs: attrs})
	case len(prev.Problems) > 0:
		s.e.Bus.Publish(events.Event{Kind: events.ConfigFiles, Level: events.Notice, Subject: "config",
			Message: fmt.Sprintf("configuration version %d: every file it names is usable on this node", version), Attrs: attrs})
	}
}

// Reload re-delivers the committed document (SIGHUP on a raft node): after
// an operator put a missing certificate in place, the proxy applies it
// without waiting for the next version.
func (s *raftSource) Reload() {
	select {
	case s.recheck <- struct{}{}:
	default:
	}
}

func (s *raftSource) Updates() <-chan *config.Cluster { return s.updates }

// ActiveDatacenter implements clusterView.
func (s *raftSource) ActiveDatacenter() string { return s.n.State().ActiveDatacenter() }

// DatacenterHealthy implements clusterView: the committed roll-up.
func (s *raftSource) DatacenterHealthy(name string) (bool, bool) {
	h, ok := s.n.State().Health[name]
	return h.Healthy, ok
}

func (s *raftSource) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				select {
				case errc <- err:
				default:
				}
				cancel()
			}
		}()
	}
	goRun(s.n.Run)
	goRun(s.mgr.Run)
	if s.e.Node.Role != config.RoleWitness && s.e.Proxy != nil {
		rep := &dc.Reporter{Node: s.e.Node.Name, Datacenter: s.e.Node.Datacenter, Interval: s.e.Node.Raft.ReportInterval.D(),
			Local: s.local, Send: s.n.Report, Log: s.e.Log}
		goRun(rep.Run)
	}
	goRun(s.watch)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// local is this gateway's own health report (see gatewayHealth).
func (s *raftSource) local() dc.Local { return gatewayHealth(s.e, s.n.State().Config) }

// watch turns state changes into snapshots, events and proxy overrides.
func (s *raftSource) watch(ctx context.Context) error {
	w := s.n.FSM().Watch()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last *raft.State
	patience := raft.LeaderPatience(s.e.Node.Raft)
	leaders := raft.LeaderEvents{Patience: patience, Grace: 10 * patience}
	reload := false
	for {
		// The leader first: a change it committed comes after it.
		id, _ := s.n.Leader()
		for _, ev := range leaders.Observe(id, time.Now()) {
			s.e.Bus.Publish(ev)
		}
		st := s.n.State()
		if last == nil || st.Version != last.Version || reload {
			if st.Config != nil {
				s.checkFiles(st.Version, st.Config)
				// Replace a snapshot nobody took yet: only the newest matters.
				select {
				case <-s.updates:
				default:
				}
				s.updates <- st.Config
				// What this node replays (its log after a restart, a catch-up
				// from the leader) was published when it happened.
				if last != nil && st.Version > 0 && !s.n.Replayed(st.ConfigIndex()) {
					r := st.History[len(st.History)-1]
					s.e.Bus.Publish(events.Event{Kind: events.ConfigApplied, Level: events.Notice, Scope: events.Cluster,
						Subject: "config", Message: fmt.Sprintf("configuration version %d applied (by %s)", st.Version, r.Author),
						Attrs: map[string]string{"version": strconv.FormatUint(st.Version, 10), "author": r.Author}})
				}
			}
		}
		// A first document makes its primary active: no decision changed.
		if last != nil && last.ActiveDatacenter() != "" && st.ActiveDatacenter() != last.ActiveDatacenter() && st.ActiveDatacenter() != "" &&
			!s.n.Replayed(activeCause(last, st)) {
			kind := events.DCFailover
			if st.Config != nil && st.ActiveDatacenter() == st.Config.PrimaryDatacenter() {
				kind = events.DCFailback
			}
			s.e.Bus.Publish(events.Event{Kind: kind, Level: events.Alert, Scope: events.Cluster, Subject: st.ActiveDatacenter(),
				Message: fmt.Sprintf("active datacenter %s → %s: %s", last.ActiveDatacenter(), st.ActiveDatacenter(), st.Active.Reason),
				Attrs:   map[string]string{"from": last.ActiveDatacenter(), "to": st.ActiveDatacenter(), "reason": st.Active.Reason, "author": st.Active.Author}})
		}
		last = st
		s.applyOverrides(st)
		reload = false
		select {
		case <-ctx.Done():
			return nil
		case <-w:
		case <-tick.C:
		case <-s.recheck:
			reload = true
		}
	}
}

// activeCause is the index of what changed the active datacenter from
// prev to st: a new decision, or a document without the decided one.
func activeCause(prev, st *raft.State) uint64 {
	if st.Active.Index != prev.Active.Index {
		return st.Active.Index
	}
	return st.ConfigIndex()
}

// applyOverrides enforces the cluster's drain/maint decisions on the local
// proxy. It re-applies on every tick because a reconcile may replace a
// server object; a cleared override sets the server ready once, so that
// node-local runtime actions stay untouched otherwise.
func (s *raftSource) applyOverrides(st *raft.State) {
	if s.e.Proxy == nil {
		return
	}
	for key, o := range st.Servers {
		b, name := splitKey(key)
		sv := s.e.Proxy.Server(b, name)
		if sv == nil {
			continue
		}
		want, err := upstream.ParseAdmin(o.State)
		if err == nil && sv.Admin() != want && s.applied[key] != o.State+"@"+o.Time.String() {
			sv.SetAdmin(want)
			s.applied[key] = o.State + "@" + o.Time.String()
		}
	}
	for key := range s.applied {
		if _, ok := st.Servers[key]; !ok {
			b, name := splitKey(key)
			if sv := s.e.Proxy.Server(b, name); sv != nil {
				sv.SetAdmin(upstream.Ready)
			}
			delete(s.applied, key)
		}
	}
}

func splitKey(k string) (string, string) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

// --- admin API ---

// configRequest is the body of POST /api/v1/config.
type configRequest struct {
	Author    string `json:"author"`
	YAML      string `json:"yaml"`
	DryRun    bool   `json:"dry_run"`
	IfVersion uint64 `json:"if_version,omitempty"`
	Comment   string `json:"comment,omitempty"`
	// AllowEmpty commits a document with no frontend, no VRRP instance
	// and no DNS zone (refused otherwise: it is what a truncated file
	// looks like).
	AllowEmpty bool `json:"allow_empty,omitempty"`
}

// configResponse answers config writes.
type configResponse struct {
	Diff    string      `json:"diff"`
	Changed bool        `json:"changed"`
	Version uint64      `json:"version"`
	DryRun  bool        `json:"dry_run,omitempty"`
	Index   uint64      `json:"index,omitempty"`
	Scope   admin.Scope `json:"scope"`
	// FileWarnings are the files the document names that the node which
	// received it cannot use (FileNode): files are node-local, so they do
	// not block the commit, but the sender sees them before that node
	// serves without them.
	FileWarnings []string `json:"file_warnings,omitempty"`
	FileNode     string   `json:"file_node,omitempty"`
}

func (s *raftSource) author(r *http.Request, given string) string {
	if given != "" {
		return given
	}
	return "admin@" + s.e.Node.Name
}

// writeErr maps raft errors to HTTP codes: refused by validation 422, no
// quorum 503.
func writeErr(w http.ResponseWriter, err error) {
	var inv *raft.InvalidError
	switch {
	case errors.As(err, &inv):
		admin.WriteError(w, http.StatusUnprocessableEntity, err)
	case errors.Is(err, raft.ErrNoLeader) || errors.Is(err, context.DeadlineExceeded):
		admin.WriteError(w, http.StatusServiceUnavailable, err)
	default:
		admin.WriteError(w, http.StatusInternalServerError, err)
	}
}

// putConfig diffs against the committed document and, unless dry, commits.
func (s *raftSource) putConfig(ctx context.Context, src []byte, author, comment string, ifVersion uint64, dry, allowEmpty bool) (*configResponse, error) {
	st := s.n.State() // a dry run previews against this node's state
	if err := raft.SelfContained(src); err != nil {
		return nil, &raft.InvalidError{Err: err}
	}
	c, err := config.ParseKnown("cluster.yaml", src, knownNames())
	if err != nil {
		return nil, &raft.InvalidError{Err: err}
	}
	if !allowEmpty && c.ServesNothing(nil) {
		return nil, &raft.InvalidError{Err: errors.New("cluster.yaml: the document has no frontend, no VRRP instance and no DNS zone: " +
			"committed, it would close every listener on every node (a truncated file?); vipgate apply --allow-empty commits it anyway")}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	version, current := st.Version, st.Source
	if !dry {
		// "No changes" is decided against what the cluster committed, not
		// this node's state, which may lag (a follower cut off from the
		// leader would otherwise drop the write).
		version, current, err = s.n.Committed(ctx)
		if err != nil && strings.Contains(err.Error(), `unknown operation "committed"`) {
			version, current, err = st.Version, st.Source, nil // a leader older than this node
		}
		if err != nil {
			return nil, err
		}
	}
	d := config.Diff(fmt.Sprintf("version %d", version), current, "new", src, 3)
	resp := &configResponse{Diff: d, Changed: d != "", Version: version, DryRun: dry, Scope: admin.ScopeCluster,
		FileWarnings: fileProblems(c), FileNode: s.e.Node.Name}
	if dry || d == "" {
		return resp, nil
	}
	a, err := s.n.Propose(ctx, &raft.PutConfig{Source: src, Author: author, Time: time.Now().UTC(), Comment: comment, IfVersion: ifVersion})
	if err != nil {
		return nil, err
	}
	resp.Version, resp.Index = a.Version, a.Index
	return resp, nil
}

func (s *raftSource) register() {
	a := s.e.Admin
	a.Section("raft", func() any { return s.n.Status() })
	a.Section("datacenters", func() any { return s.dcStatus() })
	a.Section("config_files", func() any {
		s.filesMu.Lock()
		defer s.filesMu.Unlock()
		return s.files
	})

	a.HandleFunc("GET /api/v1/config", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		st := s.n.State()
		admin.WriteJSON(w, http.StatusOK, map[string]any{"version": st.Version, "yaml": string(st.Source)})
	})
	a.HandleFunc("POST /api/v1/config", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var body configRequest
		if err := admin.DecodeJSON(r, &body); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		resp, err := s.putConfig(r.Context(), []byte(body.YAML), s.author(r, body.Author), body.Comment, body.IfVersion, body.DryRun, body.AllowEmpty)
		if err != nil {
			writeErr(w, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, resp)
	})
	a.HandleFunc("GET /api/v1/config/history", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		st := s.n.State()
		out := make([]config.Revision, 0, len(st.History))
		for _, h := range st.History {
			h.Source = nil
			out = append(out, h)
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"version": st.Version, "history": out})
	})
	a.HandleFunc("GET /api/v1/config/history/{version}", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		v, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
		rev, ok := s.n.State().Revision(v)
		if err != nil || !ok {
			admin.WriteError(w, http.StatusNotFound, fmt.Errorf("no version %q in the history", r.PathValue("version")))
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"revision": rev, "yaml": string(rev.Source)})
	})
	a.HandleFunc("POST /api/v1/config/rollback", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Version    uint64 `json:"version"`
			Author     string `json:"author"`
			DryRun     bool   `json:"dry_run"`
			AllowEmpty bool   `json:"allow_empty"`
		}
		if err := admin.DecodeJSON(r, &body); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		rev, ok := s.n.State().Revision(body.Version)
		if !ok {
			admin.WriteError(w, http.StatusNotFound, fmt.Errorf("no version %d in the history", body.Version))
			return
		}
		if rev.Source == nil {
			admin.WriteError(w, http.StatusGone, fmt.Errorf("version %d is too old: only the last %d versions keep their document", body.Version, config.HistoryKeep))
			return
		}
		resp, err := s.putConfig(r.Context(), rev.Source, s.author(r, body.Author), fmt.Sprintf("rollback to %d", body.Version), 0, body.DryRun, body.AllowEmpty)
		if err != nil {
			writeErr(w, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, resp)
	})

	a.HandleFunc("GET /api/v1/cluster/members", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		ms, err := s.n.Members()
		if err != nil {
			writeErr(w, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"members": ms})
	})
	a.HandleFunc("POST /api/v1/cluster/members", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID       string `json:"id"`
			Address  string `json:"address"`
			Nonvoter bool   `json:"nonvoter"`
		}
		if err := admin.DecodeJSON(r, &body); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		if body.ID == "" || body.Address == "" {
			admin.WriteError(w, http.StatusBadRequest, errors.New("id and address are required"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		if err := s.n.Join(ctx, body.ID, body.Address, !body.Nonvoter); err != nil {
			writeErr(w, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"joined": body.ID, "scope": admin.ScopeCluster})
	})
	remove := func(w http.ResponseWriter, r *http.Request, id string) {
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		if err := s.n.Remove(ctx, id); err != nil {
			writeErr(w, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"removed": id, "scope": admin.ScopeCluster})
	}
	a.HandleFunc("DELETE /api/v1/cluster/members/{id}", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		remove(w, r, r.PathValue("id"))
	})
	a.HandleFunc("POST /api/v1/cluster/leave", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		remove(w, r, s.n.ID())
	})
	a.HandleFunc("POST /api/v1/cluster/servers/{backend}/{server}/state", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			State  string `json:"state"`
			Author string `json:"author"`
		}
		if err := admin.DecodeJSON(r, &body); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		ap, err := s.n.Propose(ctx, &raft.SetServerAdmin{Backend: r.PathValue("backend"), Server: r.PathValue("server"),
			State: body.State, Author: s.author(r, body.Author), Time: time.Now().UTC()})
		if err != nil {
			writeErr(w, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"backend": r.PathValue("backend"), "server": r.PathValue("server"),
			"state": body.State, "index": ap.Index, "scope": admin.ScopeCluster})
	})

	a.HandleFunc("GET /api/v1/dc", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, s.dcStatus())
	})
	a.HandleFunc("POST /api/v1/dc/failover", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Datacenter string `json:"datacenter"`
			Author     string `json:"author"`
			Reason     string `json:"reason"`
			Force      bool   `json:"force"`
			Hold       string `json:"hold"` // Go duration; default failover.hold_down
		}
		if err := admin.DecodeJSON(r, &body); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		st := s.n.State()
		if h, ok := st.Health[body.Datacenter]; ok && !h.Healthy && !body.Force {
			admin.WriteError(w, http.StatusConflict, fmt.Errorf("datacenter %s is unhealthy (%s); add force to fail over anyway", body.Datacenter, h.Reason))
			return
		}
		reason := "manual failover"
		if body.Reason != "" {
			reason += ": " + body.Reason
		}
		hold, mode := time.Duration(0), ""
		if st.Config != nil {
			hold, mode = st.Config.Failover.HoldDown.D(), st.Config.Failover.Mode
		}
		if body.Hold != "" {
			d, err := time.ParseDuration(body.Hold)
			if err != nil || d <= 0 {
				admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("hold %q: want a positive duration such as 90s or 10m", body.Hold))
				return
			}
			hold = d
		}
		now := time.Now().UTC()
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		ap, err := s.n.Propose(ctx, &raft.SetActiveDC{DC: body.Datacenter, Reason: reason, Author: s.author(r, body.Author), Time: now, Hold: hold,
			IfHealthy: !body.Force})
		if err != nil {
			writeErr(w, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"active": body.Datacenter, "previous": st.ActiveDatacenter(),
			"index": ap.Index, "scope": admin.ScopeCluster, "mode": mode, "hold": hold.String(), "hold_until": now.Add(hold)})
	})
}

// dcInfo is one datacenter in `vipgate dc status`.
type dcInfo struct {
	Name    string    `json:"name"`
	Role    string    `json:"role"`
	Active  bool      `json:"active"`
	Healthy *bool     `json:"healthy,omitempty"` // nil: no committed roll-up yet
	Reason  string    `json:"reason,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

func (s *raftSource) dcStatus() map[string]any {
	st := s.n.State()
	var dcs []dcInfo
	if st.Config != nil {
		for _, d := range st.Config.Datacenters {
			i := dcInfo{Name: d.Name, Role: d.Role, Active: d.Name == st.ActiveDatacenter()}
			if h, ok := st.Health[d.Name]; ok {
				i.Healthy, i.Reason, i.Since = &h.Healthy, h.Reason, h.Since
			}
			dcs = append(dcs, i)
		}
	}
	// index and config_version come from the same read as active: a
	// consistent view of this node's state machine (the soak compares
	// nodes by it).
	out := map[string]any{"active": st.ActiveDatacenter(), "decision": st.Active, "datacenters": dcs,
		"node_datacenter": s.e.Node.Datacenter, "leader": s.n.IsLeader(), "index": st.Index, "config_version": st.Version}
	if st.Config != nil {
		out["failover"] = st.Config.Failover
	}
	return out
}
