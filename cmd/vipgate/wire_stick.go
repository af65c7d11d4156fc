package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/stick"
	"github.com/vipgate/vipgate/core/stick/peers"
)

// stickSub owns the node's stick tables (they survive config changes) and,
// when the node file has a peers section, their sync with the other nodes.
type stickSub struct {
	m    *stick.Manager
	sync *peers.Syncer
}

// newStickSync wires the stick subsystem into a node: the proxy's
// persistence factory, the peer syncer, and the admin endpoints.
func newStickSync(e *env) (subsystem, error) {
	if e.Proxy == nil {
		return nil, nil
	}
	// Lua-computed keys run as route hooks (txn:set_var("stick_key", ...)).
	// The resolver is the one the Lua subsystem installed in the proxy,
	// read when a backend's rule is built.
	keys := stick.KeysFromHooks(e.Proxy.HookResolver)
	s := &stickSub{m: stick.NewManager(stick.Options{Log: e.Log.With("sub", "stick"), Keys: keys})}
	e.Proxy.SetPersistFactory(s.m.Factory())
	if np := e.Node.Peers; np.Listen != "" {
		cfg := peers.Config{Node: e.Node.Name, Listen: np.Listen, Secret: []byte(np.Secret), Log: e.Log.With("sub", "peers")}
		for _, p := range np.Nodes {
			cfg.Peers = append(cfg.Peers, peers.Peer{Name: p.Name, Address: p.Address})
		}
		if np.TLS != nil {
			srv, cli, err := peersTLS(np.TLS)
			if err != nil {
				return nil, err
			}
			cfg.ServerTLS, cfg.ClientTLS = srv, cli
		}
		sy, err := peers.New(cfg, s.m)
		if err != nil {
			return nil, err
		}
		s.sync = sy
		s.m.SetNotify(sy.Notify)
	}
	s.registerAdmin(e)
	return s, nil
}

func (s *stickSub) Name() string { return "stick" }

func (s *stickSub) Apply(c *config.Cluster) error { return s.m.Apply(c) }

func (s *stickSub) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	var syncErr error
	if s.sync != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			syncErr = s.sync.Run(ctx)
		}()
	}
	err := s.m.Run(ctx)
	wg.Wait()
	return errors.Join(err, syncErr)
}

func (s *stickSub) status() any {
	out := map[string]any{"tables": s.m.Status()}
	if s.sync != nil {
		out["peers"] = s.sync.Status()
	}
	return out
}

func (s *stickSub) registerAdmin(e *env) {
	e.Admin.Section("stick", s.status)
	e.Admin.HandleFunc("GET /api/v1/stick", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		admin.WriteJSON(w, http.StatusOK, s.status())
	})
	e.Admin.HandleFunc("GET /api/v1/stick/{table}", admin.Read, func(w http.ResponseWriter, r *http.Request) {
		limit := 100
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				admin.WriteError(w, http.StatusBadRequest, fmt.Errorf("limit=%q: want a positive number", v))
				return
			}
			limit = n
		}
		entries, err := s.m.Entries(r.PathValue("table"), limit)
		if err != nil {
			admin.WriteError(w, http.StatusNotFound, err)
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"scope": admin.ScopeNode, "table": r.PathValue("table"), "entries": entries})
	})
	e.Admin.HandleFunc("DELETE /api/v1/stick/{table}", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("table")
		t := s.m.Table(name)
		if t == nil {
			admin.WriteError(w, http.StatusNotFound, fmt.Errorf("no stick table %q", name))
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"scope": admin.ScopeNode, "table": name, "cleared": t.Clear()})
	})
	// Clearing is node-local (HAProxy's "clear table ... key"): peers keep
	// their copy until it expires or is overwritten.
	e.Admin.HandleFunc("DELETE /api/v1/stick/{table}/{key}", admin.Write, func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("table")
		t := s.m.Table(name)
		if t == nil {
			admin.WriteError(w, http.StatusNotFound, fmt.Errorf("no stick table %q", name))
			return
		}
		k, err := t.ParseKey(r.PathValue("key"))
		if err != nil {
			admin.WriteError(w, http.StatusBadRequest, err)
			return
		}
		if !t.Delete(k) {
			admin.WriteError(w, http.StatusNotFound, fmt.Errorf("table %q has no entry %s", name, t.FormatKey(k)))
			return
		}
		admin.WriteJSON(w, http.StatusOK, map[string]any{"scope": admin.ScopeNode, "table": name, "key": t.FormatKey(k), "deleted": true})
	})
}

// peersTLS builds mutual-TLS configs: both ends present a certificate and
// verify the other's against the CA.
func peersTLS(f *config.TLSFiles) (server, client *tls.Config, err error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("peers tls: %w", err)
	}
	pool, err := config.LoadCA(f.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("peers tls: %w", err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13}
	return server, client, nil
}
