package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vipgate/vipgate/cluster/state"
	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/core/stats"
	"github.com/vipgate/vipgate/core/upstream"
)

// proxySubsystem runs the data plane and its health checks.
type proxySubsystem struct {
	proxy  *proxy.Proxy
	health healthManager
	log    *slog.Logger
}

func newProxySubsystem(e *env) *proxySubsystem {
	ps := &proxySubsystem{log: e.Log.With("sub", "proxy")}
	ps.health = newHealthManager(e)
	ps.proxy = proxy.New(proxy.Options{
		Log: ps.log, AccessLog: e.AccessLog, Bus: e.Bus, Datacenter: e.Node.Datacenter, Node: e.Node,
		OnServers:   func(bs []*proxy.Backend) { ps.health.Reconcile(bs) },
		NoEventLoop: e.Node.Proxy.EventLoop != nil && !*e.Node.Proxy.EventLoop,
	})
	return ps
}

func (ps *proxySubsystem) Name() string { return "proxy" }

func (ps *proxySubsystem) Apply(c *config.Cluster) error { return ps.proxy.Apply(c) }

func (ps *proxySubsystem) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = ps.health.Run(ctx)
	}()
	err := ps.proxy.Run(ctx)
	wg.Wait()
	return err
}

// fileSource is the standalone config source: a file, re-read on SIGHUP. A
// bad file is logged with every problem and the running config is kept.
type fileSource struct {
	// rejected counts refused reloads (for status, metrics and tests);
	// lastRefused says whether the last reload was refused.
	rejected    atomic.Int64
	lastRefused atomic.Bool
	file        string
	node        *config.Node
	log         *slog.Logger
	updates     chan *config.Cluster
	reload      chan struct{}
	// decisions pushes what each file implies (its primary is active)
	// before the file is applied.
	decisions state.Static
	reloaded  chan struct{}
}

func newFileSource(file string, node *config.Node, log *slog.Logger) *fileSource {
	return &fileSource{file: file, node: node, log: log, updates: make(chan *config.Cluster, 1), reload: make(chan struct{}, 1), reloaded: make(chan struct{}, 1)}
}

// Subscribe implements configSource.
func (f *fileSource) Subscribe(s state.Subscriber) { f.decisions.Subscribe(s) }

func (f *fileSource) Updates() <-chan *config.Cluster { return f.updates }

// Reload asks for the file to be read again.
func (f *fileSource) Reload() {
	select {
	case f.reload <- struct{}{}:
	default:
	}
}

// Reloaded gets a value after each reload asked of Reload: the snapshot,
// if valid, is on Updates by then (systemd's READY=1 after RELOADING=1).
func (f *fileSource) Reloaded() <-chan struct{} { return f.reloaded }

func (f *fileSource) ackReload() {
	select {
	case f.reloaded <- struct{}{}:
	default:
	}
}

// load reads the file. On a reload, an empty file or a document that
// leaves this node serving nothing is refused: a half-written file must not
// replace a running configuration with nothing.
func (f *fileSource) load(reload bool) (*config.Cluster, error) {
	data, err := os.ReadFile(f.file)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", f.file)
	}
	return parseReload(f.file, data, f.node, reload)
}

// parseReload parses a standalone node's document and checks the files it
// names (a missing certificate or error page is this node's problem:
// refuse the document with its position rather than run without the
// proxy). On a reload it refuses one that would leave the node serving
// nothing (config.ServesNothing); to run a node with nothing, restart it
// with that document.
func parseReload(file string, data []byte, node *config.Node, reload bool) (*config.Cluster, error) {
	c, err := config.ParseAndCheckFiles(file, data, knownNames())
	if err != nil {
		return nil, err
	}
	if reload && c.ServesNothing(node) {
		return nil, fmt.Errorf("%s: %s; refused on reload (restart the node to run it)", file, config.ServesNothingMsg)
	}
	return c, nil
}

func (f *fileSource) Run(ctx context.Context) error {
	c, err := f.load(false)
	if err != nil {
		return fmt.Errorf("loading %s:\n%w", f.file, err)
	}
	version := 1
	f.log.Info("configuration loaded", "file", f.file, "version", version)
	_ = f.decisions.Apply(c)
	f.updates <- c
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.reload:
			c, err := f.load(true)
			if err != nil {
				f.rejected.Add(1)
				f.lastRefused.Store(true)
				logConfigError(f.log, "reload refused; keeping the running config", f.file, err)
				f.ackReload()
				continue
			}
			// A standalone node's version counts the documents it ran since
			// it started (a raft node's is the cluster's committed version).
			version++
			f.lastRefused.Store(false)
			f.log.Info("configuration reloaded", "file", f.file, "version", version)
			_ = f.decisions.Apply(c)
			select {
			case f.updates <- c:
			case <-ctx.Done():
				return nil
			}
			f.ackReload()
		}
	}
}

// registerProxyAdmin exposes stats and the node-local runtime actions.
func registerProxyAdmin(e *env) {
	p := e.Proxy
	naming, _ := stats.ParseNaming(e.Node.Metrics.Labels) // validated with the node file
	e.Metrics.MustRegister(stats.NewCollector(p, naming))
	e.Admin.Section("proxy", func() any { return stats.Collect(p) })
	e.Admin.HandleFunc("GET /api/v1/stats", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, stats.Collect(p))
	})
	// HAProxy's stats page serves its CSV at the page's URI plus ";csv".
	e.Admin.HandleFunc("GET /stats;csv", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := stats.WriteCSV(w, stats.Collect(p)); err != nil {
			e.Log.Debug("stats csv", "err", err)
		}
	})
	// Each server action decodes one JSON field and applies it.
	serverAction := func(path string, act func(s *upstream.Server, body *serverActionBody) (map[string]any, error)) {
		e.Admin.HandleFunc("POST /api/v1/servers/{backend}/{server}/"+path, admin.Write, func(w http.ResponseWriter, r *http.Request) {
			s := p.Server(r.PathValue("backend"), r.PathValue("server"))
			if s == nil {
				admin.WriteError(w, http.StatusNotFound, fmt.Errorf("no server %s/%s", r.PathValue("backend"), r.PathValue("server")))
				return
			}
			var body serverActionBody
			if err := admin.DecodeJSON(r, &body); err != nil {
				admin.WriteError(w, http.StatusBadRequest, err)
				return
			}
			out, err := act(s, &body)
			if err != nil {
				admin.WriteError(w, http.StatusBadRequest, err)
				return
			}
			// An operator's action is in the log, as HAProxy logs "Server
			// be/s is going DRAIN" (who: the API client's address).
			attrs := []any{"action", path, "backend", s.Backend, "server", s.Name}
			for _, k := range slices.Sorted(maps.Keys(out)) {
				attrs = append(attrs, k, out[k])
			}
			e.Log.Info("runtime action", append(attrs, "client", r.RemoteAddr)...)
			out["scope"], out["backend"], out["server"] = admin.ScopeNode, s.Backend, s.Name
			admin.WriteJSON(w, http.StatusOK, out)
		})
	}
	serverAction("state", func(s *upstream.Server, b *serverActionBody) (map[string]any, error) {
		st, err := upstream.ParseAdmin(b.State)
		if err != nil {
			return nil, err
		}
		s.SetAdmin(st)
		e.Bus.Publish(events.Event{Kind: events.ServerAdmin, Level: events.Notice, Subject: s.Backend + "/" + s.Name,
			Message: fmt.Sprintf("server %s/%s set to %s by operator", s.Backend, s.Name, st),
			Attrs:   map[string]string{"backend": s.Backend, "server": s.Name, "state": st.String()}})
		return map[string]any{"state": st.String()}, nil
	})
	serverAction("weight", func(s *upstream.Server, b *serverActionBody) (map[string]any, error) {
		if b.Weight == nil {
			return nil, fmt.Errorf("missing weight")
		}
		was := s.BaseWeight()
		if err := s.SetWeight(*b.Weight); err != nil {
			return nil, err
		}
		// As a state change: alert rules on server.admin see who moved
		// traffic, and the event list shows it.
		e.Bus.Publish(events.Event{Kind: events.ServerAdmin, Level: events.Notice, Subject: s.Backend + "/" + s.Name,
			Message: fmt.Sprintf("server %s/%s weight set to %d (was %d) by operator", s.Backend, s.Name, *b.Weight, was),
			Attrs: map[string]string{"backend": s.Backend, "server": s.Name, "weight": strconv.Itoa(*b.Weight),
				"previous_weight": strconv.Itoa(was)}})
		return map[string]any{"weight": *b.Weight}, nil
	})
	serverAction("check", func(s *upstream.Server, b *serverActionBody) (map[string]any, error) {
		if b.Enabled == nil {
			return nil, fmt.Errorf("missing enabled")
		}
		e.checksEnabled(s.Key(), *b.Enabled)
		return map[string]any{"checks": *b.Enabled}, nil
	})
	// HAProxy's "shutdown sessions server": established sessions end now
	// (tcp and http tunnels; keep-alive http clients reconnect elsewhere).
	serverAction("shutdown-sessions", func(s *upstream.Server, b *serverActionBody) (map[string]any, error) {
		return map[string]any{"sessions": s.KillSessions()}, nil
	})
	if !e.Node.Raft.Enabled() {
		// Without raft there is no cluster to commit to: say so, and name
		// the node-local action, rather than a bare 404.
		e.Admin.HandleFunc("POST /api/v1/cluster/servers/{backend}/{server}/state", admin.Write, func(w http.ResponseWriter, r *http.Request) {
			admin.WriteError(w, http.StatusConflict, fmt.Errorf("this node runs standalone (no raft section in its node file): "+
				"cluster-wide actions need a cluster; POST /api/v1/servers/%s/%s/state (vipgate ctl server STATE B/S without --cluster) acts on this node",
				r.PathValue("backend"), r.PathValue("server")))
		})
	}
	e.Admin.HandleFunc("POST /api/v1/frontends/{frontend}/state", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Enabled *bool `json:"enabled"`
		}
		if err := admin.DecodeJSON(r, &body); err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		if body.Enabled == nil {
			admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("missing enabled"))
			return
		}
		name := r.PathValue("frontend")
		if p.Frontend(name) == nil {
			admin.WriteError(w, http.StatusNotFound, fmt.Errorf("no frontend %q", name))
			return
		}
		if err := p.SetFrontendEnabled(name, *body.Enabled); err != nil {
			admin.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		e.Log.Info("runtime action", "action", "frontend", "frontend", name, "enabled", *body.Enabled, "client", r.RemoteAddr)
		admin.WriteJSON(w, http.StatusOK, map[string]any{"scope": admin.ScopeNode, "frontend": name, "enabled": *body.Enabled})
	})
}

// serverActionBody is the union of the server actions' bodies; unknown
// fields are refused by the strict decoder.
type serverActionBody struct {
	State   string `json:"state,omitempty"`
	Weight  *int   `json:"weight,omitempty"`
	Enabled *bool  `json:"enabled,omitempty"`
}

// checksEnabled turns a server's health checks on or off at runtime.
func (e *env) checksEnabled(serverKey string, on bool) {
	if e.healthCtl != nil {
		e.healthCtl.SetEnabled(serverKey, on)
	}
}

func adminTLS(t *config.TLSFiles) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("admin tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
