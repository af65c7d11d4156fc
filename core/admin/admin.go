// Package admin is the node's admin API: HTTP+JSON on a local address,
// bearer-token auth compared in constant time, optional TLS. Subsystems
// register their endpoints and status sections here (from cmd/vipgate, so
// that core never imports them); the CLI, the stats page and scripts all use
// the same endpoints.
package admin

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"
)

// Access says what a token may do.
type Access int

const (
	// Read endpoints show state.
	Read Access = iota
	// Write endpoints change state.
	Write
)

// Scope tells the caller whether an action holds on this node only or was
// committed for the whole cluster (through raft). Every write response
// carries it as "scope".
type Scope string

// Scopes of write actions.
const (
	ScopeNode    Scope = "node"
	ScopeCluster Scope = "cluster"
)

// Server is the admin HTTP server.
type Server struct {
	log         *slog.Logger
	mux         *http.ServeMux
	writeTokens [][]byte
	readTokens  [][]byte

	mu       sync.RWMutex
	sections map[string]func() any
}

// New makes a server. With no tokens at all, auth is off (and the caller
// must only listen on loopback).
func New(log *slog.Logger, writeTokens, readTokens []string) *Server {
	s := &Server{log: log, mux: http.NewServeMux(), sections: map[string]func() any{}}
	for _, t := range writeTokens {
		s.writeTokens = append(s.writeTokens, []byte(t))
	}
	for _, t := range readTokens {
		s.readTokens = append(s.readTokens, []byte(t))
	}
	s.Handle("GET /api/v1/status", Read, http.HandlerFunc(s.serveStatus))
	// Profiles cost CPU and reveal internals: write access only.
	s.Handle("GET /debug/pprof/", Write, http.HandlerFunc(pprof.Index))
	s.Handle("GET /debug/pprof/profile", Write, http.HandlerFunc(pprof.Profile))
	s.Handle("GET /debug/pprof/trace", Write, http.HandlerFunc(pprof.Trace))
	s.Handle("GET /api/v1/status/{section}", Read, http.HandlerFunc(s.serveSection))
	// Any other /api/ path: a JSON error the CLI can print, not the mux's
	// plain "404 page not found" (which reads like another program answered).
	s.Handle("/api/", Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s on this node (see docs/runtime.md; a vipgate of another version?)", r.Method, r.URL.Path))
	}))
	return s
}

// AuthEnabled reports whether tokens are configured.
func (s *Server) AuthEnabled() bool { return len(s.writeTokens)+len(s.readTokens) > 0 }

// Handle registers h for a Go 1.22 pattern ("GET /api/v1/x/{name}"),
// requiring the given access.
func (s *Server) Handle(pattern string, need Access, h http.Handler) {
	s.mux.Handle(pattern, s.auth(need, h))
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, need Access, h http.HandlerFunc) {
	s.Handle(pattern, need, h)
}

// Section registers a named part of the status document (GET /api/v1/status).
// fn is called on every request and must be cheap and safe for concurrent use.
func (s *Server) Section(name string, fn func() any) {
	s.mu.Lock()
	s.sections[name] = fn
	s.mu.Unlock()
}

// Sections lists registered section names, sorted.
func (s *Server) Sections() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.sections))
	for k := range s.sections {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Status returns the whole status document.
func (s *Server) Status() map[string]any {
	s.mu.RLock()
	fns := make(map[string]func() any, len(s.sections))
	for k, v := range s.sections {
		fns[k] = v
	}
	s.mu.RUnlock()
	out := make(map[string]any, len(fns))
	for k, fn := range fns {
		out[k] = fn()
	}
	return out
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, s.Status())
}

func (s *Server) serveSection(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("section")
	s.mu.RLock()
	fn, ok := s.sections[name]
	s.mu.RUnlock()
	if !ok {
		WriteError(w, http.StatusNotFound, fmt.Errorf("no status section %q (have: %s)", name, strings.Join(s.Sections(), ", ")))
		return
	}
	WriteJSON(w, http.StatusOK, fn())
}

// auth checks the bearer token. Read tokens may only reach Read endpoints.
func (s *Server) auth(need Access, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.AuthEnabled() {
			h.ServeHTTP(w, r)
			return
		}
		tok, fromCookie, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vipgate"`)
			WriteError(w, http.StatusUnauthorized, errors.New("missing bearer token (Authorization: Bearer TOKEN)"))
			return
		}
		// A token from the stats page's cookie is sent by the browser on
		// any request to this origin, so writes must also carry a header a
		// cross-site form cannot set (a CSRF guard).
		if fromCookie && need == Write && r.Header.Get(CSRFHeader) == "" {
			WriteError(w, http.StatusForbidden, errors.New("cookie-authenticated writes need the "+CSRFHeader+" header"))
			return
		}
		switch {
		case matchAny(tok, s.writeTokens):
		case matchAny(tok, s.readTokens):
			if need == Write {
				WriteError(w, http.StatusForbidden, errors.New("this token may only read"))
				return
			}
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="vipgate", error="invalid_token"`)
			WriteError(w, http.StatusUnauthorized, errors.New("invalid token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// CSRFHeader must accompany writes authenticated by the page's cookie.
const CSRFHeader = "X-Vipgate-Csrf"

// TokenCookie is where the stats page keeps the token.
const TokenCookie = "vipgate_token"

func bearer(r *http.Request) (tok []byte, fromCookie, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		const p = "Bearer "
		if len(h) > len(p) && strings.EqualFold(h[:len(p)], p) {
			return []byte(strings.TrimSpace(h[len(p):])), false, true
		}
		return nil, false, false
	}
	// The stats page keeps the token in a cookie so that a browser can use it.
	if c, err := r.Cookie(TokenCookie); err == nil && c.Value != "" {
		return []byte(c.Value), true, true
	}
	return nil, false, false
}

// Authorized reports whether r carries a token good for need (always true
// without tokens).
func (s *Server) Authorized(r *http.Request, need Access) bool {
	if !s.AuthEnabled() {
		return true
	}
	tok, _, ok := bearer(r)
	if !ok {
		return false
	}
	if matchAny(tok, s.writeTokens) {
		return true
	}
	return need == Read && matchAny(tok, s.readTokens)
}

// HandlePublic registers h without the token check; h decides itself
// (the stats page serves its login form to anonymous browsers).
func (s *Server) HandlePublic(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// matchAny compares against every token in constant time per token, so the
// time taken does not reveal which token (or how much of one) matched.
func matchAny(tok []byte, list [][]byte) bool {
	found := 0
	for _, t := range list {
		found |= subtle.ConstantTimeCompare(tok, t)
	}
	return found == 1
}

// ServeHTTP makes Server an http.Handler (for tests).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve runs the API on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("admin api: %w", err)
	}
}

// WriteJSON writes v as indented JSON with the status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteError writes {"error": "..."} with the status code.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, ErrorBody{Error: err.Error()})
}

// DecodeJSON strictly decodes a request body (unknown fields are errors),
// limited to 8 MiB.
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 8<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %w", err)
	}
	return nil
}
