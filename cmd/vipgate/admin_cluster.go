package main

// The cluster's admin API: the routes a raft node serves besides the
// node-local ones. They propose commands; they enforce nothing.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/config"
)

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
	if ifVersion != 0 && ifVersion != version {
		// Refused even when the document is what is committed now: the
		// sender reviewed another version. (A write is decided again by
		// the FSM at its index: this read only answers early.)
		return nil, &raft.InvalidError{Err: fmt.Errorf("the configuration changed meanwhile (now version %d, expected %d): review the diff again", version, ifVersion)}
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

// registerClusterAdmin adds the cluster's admin routes: the replicated
// config (put, history, rollback), membership, server overrides and
// datacenter decisions. Each proposes a command; what it changes reaches
// the subsystems through cluster/state once committed.
func registerClusterAdmin(e *env, s *raftSource) {
	a := e.Admin
	a.Section("raft", func() any {
		st := s.n.Status()
		if ms, err := s.n.Members(); err == nil {
			st["members"] = ms
		}
		return st
	})
	a.Section("datacenters", func() any { return s.dcStatus() })
	a.Section("config_files", func() any { return s.Files() })

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
	var pushed map[string]any
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
	if d := s.Decisions(); d != nil {
		// What this node's subsystems follow, and since when: the end of a
		// failover here (the e2e's commit-to-everywhere time).
		pushed = map[string]any{"index": d.Index, "active": d.Active, "at": d.Pushed, "active_at": d.ActivePushed}
	}
	out := map[string]any{"active": st.ActiveDatacenter(), "decision": st.Active, "datacenters": dcs, "pushed": pushed,
		"node_datacenter": s.e.Node.Datacenter, "leader": s.n.IsLeader(), "index": st.Index, "config_version": st.Version}
	if st.Config != nil {
		out["failover"] = st.Config.Failover
	}
	return out
}
