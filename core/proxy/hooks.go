package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// Txn is what a routing hook sees of one TCP connection or HTTP request.
type Txn struct {
	Frontend string
	Client   netip.AddrPort
	Local    netip.AddrPort
	// SNI and ALPN come from the client's TLS ClientHello when the frontend
	// inspects it (tcp mode with inspect_delay) or terminates TLS (http mode).
	SNI  string
	ALPN []string
	// HTTP is nil in tcp mode.
	HTTP *HTTPTxn
	// Vars are set by hooks and written to the access log.
	Vars map[string]string
}

// HTTPTxn is the request part of a Txn. Header may be modified by hooks.
type HTTPTxn struct {
	Method string
	Host   string
	Path   string
	Query  string
	Header http.Header
	// ResponseHeader is added to the response (set by hooks).
	ResponseHeader http.Header
}

// Decision is what a routing hook decided. The zero value means "no opinion:
// continue with the frontend's rules and default backend".
type Decision struct {
	Backend string // use this backend
	Server  string // and this server of it (bypasses balancing)
	// Deny answers with this status (http) or closes the connection (tcp).
	Deny int
	// Redirect answers with a redirect to this location (http only).
	Redirect     string
	RedirectCode int
}

// RouteHook decides per connection or request. It must honour ctx (its
// deadline) and be safe for concurrent use. An error means the hook failed:
// a *HookFailure carries the hook's fallback status; any other error is the
// "continue" fallback (the frontend's rules and default backend apply).
type RouteHook interface {
	Route(ctx context.Context, t *Txn) (Decision, error)
}

// HookFailure is the error of a failed hook whose fallback stops the
// request (Lua `fallback: "500"` or `"503"`): an HTTP request is answered
// with Status by the proxy, a tcp connection is closed. Unlike a hook's
// deliberate Decision.Deny, it is logged as an internal error (termination
// state PI) so a broken script is told apart from a policy.
type HookFailure struct {
	Status int
	Err    error
}

func (e *HookFailure) Error() string {
	return fmt.Sprintf("route hook failed (fallback %d): %v", e.Status, e.Err)
}

func (e *HookFailure) Unwrap() error { return e.Err }

// hookFallback returns the status a hook error asks for, 0 for "continue".
func hookFallback(err error) int {
	var hf *HookFailure
	if errors.As(err, &hf) && hf.Status != 0 {
		if hf.Status < 500 || hf.Status > 599 {
			return 500
		}
		return hf.Status
	}
	return 0
}

// HookResolver finds a hook by the name a frontend's `route` gives.
type HookResolver func(name string) (RouteHook, error)

// ConnInfo is what persistence sees of a tcp-mode connection.
type ConnInfo struct {
	Frontend string
	Backend  string
	Client   netip.AddrPort
	// Peeked is the client's first bytes (inspect_delay), not consumed.
	Peeked []byte
	SNI    string
}

// Persister implements a backend's stick rule. Lookup runs before
// balancing; StoreRequest after the server is chosen and connected;
// StoreResponse, when WantsResponse, with the first bytes the server sent.
// All methods are on the data path: fast, non-blocking, concurrency-safe.
type Persister interface {
	Lookup(c *ConnInfo) *upstream.Server
	StoreRequest(c *ConnInfo, s *upstream.Server)
	WantsResponse() bool
	StoreResponse(c *ConnInfo, s *upstream.Server, serverFirst []byte)
	// NeedsInspection reports whether Lookup wants Peeked bytes.
	NeedsInspection() bool
}

// ServerLookup finds a live server of a backend by name.
type ServerLookup func(name string) *upstream.Server

// PersistFactory builds the Persister for a backend's stick rule; nil when
// the backend has none.
type PersistFactory func(b *config.Backend, servers ServerLookup) (Persister, error)
