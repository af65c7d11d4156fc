package proxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// ntlmServer is an IIS stand-in with connection-based sign-in, as NTLM and
// Negotiate are: the three legs of the handshake must arrive on one TCP
// connection, and once signed in the connection stays signed in for every
// later request on it, with no Authorization header (IIS's default).
type ntlmServer struct {
	name string
	addr string
}

type ntlmConnKey struct{}

// ntlmConn is the sign-in state of one server connection.
type ntlmConn struct {
	mu         sync.Mutex
	challenged bool
	user       string
}

func newNTLMServer(t *testing.T, name, scheme string) *ntlmServer {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := r.Context().Value(ntlmConnKey{}).(*ntlmConn)
		st.mu.Lock()
		defer st.mu.Unlock()
		auth := r.Header.Get("Authorization")
		switch {
		case auth == scheme+" type1":
			st.challenged = true
			w.Header().Set("WWW-Authenticate", scheme+" challenge-from-"+name)
			w.WriteHeader(http.StatusUnauthorized)
		case strings.HasPrefix(auth, scheme+" kerberos "):
			// Kerberos: one request with the ticket signs the connection in,
			// no 401 first.
			st.user = strings.TrimPrefix(auth, scheme+" kerberos ")
			fmt.Fprintf(w, "%s signed in on %s", st.user, name)
		case strings.HasPrefix(auth, scheme+" type3 "):
			if !st.challenged {
				// The third leg on another connection than the second:
				// the handshake failed, start again.
				w.Header().Set("WWW-Authenticate", scheme)
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, "type3 without a challenge on this connection")
				return
			}
			st.user = strings.TrimPrefix(auth, scheme+" type3 ")
			fmt.Fprintf(w, "%s signed in on %s", st.user, name)
		case st.user != "":
			fmt.Fprintf(w, "hello %s from %s", st.user, name)
		default:
			w.Header().Set("WWW-Authenticate", scheme)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, "sign in")
		}
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, ntlmConnKey{}, &ntlmConn{})
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &ntlmServer{name: name, addr: srv.Listener.Addr().String()}
}

// TestHTTPConnectionAuth: NTLM and Negotiate sign in a server connection,
// not a request (Exchange's Outlook Anywhere, EWS, MAPI). As HAProxy does,
// once a server answers 401 with such a WWW-Authenticate, its connection
// belongs to that client connection: the client's next requests go to the
// same server over it, whatever the balancing, and it never joins the pool
// where another client's request could use a connection signed in as
// somebody else.
func TestHTTPConnectionAuth(t *testing.T) {
	for _, scheme := range []string{"NTLM", "Negotiate"} {
		for _, reuse := range []string{"never", "safe", "always"} {
			t.Run(scheme+"/reuse "+reuse, func(t *testing.T) {
				a, b := newNTLMServer(t, "ex1", scheme), newNTLMServer(t, "ex2", scheme)
				be := fmt.Sprintf("  - name: be\n    balance: {algorithm: roundrobin}\n    http: {reuse: %s}\n    servers:\n      - {name: ex1, address: %q}\n      - {name: ex2, address: %q}\n", reuse, a.addr, b.addr)
				h := startProxy(t, httpDoc("", "", be))
				url := "http://" + h.addr("fe") + "/ews/exchange.asmx"
				for round := range 4 {
					// One client connection: the whole handshake, then more requests.
					alice := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
					user := fmt.Sprintf("alice%d", round)
					if resp, _ := get(t, alice, url); resp.StatusCode != 401 {
						t.Fatalf("round %d: anonymous request: %d, want 401", round, resp.StatusCode)
					}
					if resp, _ := get(t, alice, url, "Authorization", scheme+" type1"); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "challenge-from-") {
						t.Fatalf("round %d: type1: %d %q, want the challenge", round, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
					}
					resp, body := get(t, alice, url, "Authorization", scheme+" type3 "+user)
					if resp.StatusCode != 200 {
						t.Fatalf("round %d: type3: %d %q; want signed in (the third leg went to another server connection)", round, resp.StatusCode, body)
					}
					server := body[strings.LastIndex(body, " ")+1:]
					for i := range 4 {
						if resp, body := get(t, alice, url); resp.StatusCode != 200 || body != "hello "+user+" from "+server {
							t.Fatalf("round %d: request %d after sign-in: %d %q, want %q", round, i, resp.StatusCode, body, "hello "+user+" from "+server)
						}
					}
					// Other clients must never ride alice's signed-in connection.
					for i := range 4 {
						bob := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
						for j := range 2 {
							if resp, body := get(t, bob, url); resp.StatusCode != 401 {
								t.Fatalf("round %d: another client's request %d.%d: %d %q, want 401 (it used a signed-in connection)", round, i, j, resp.StatusCode, body)
							}
						}
						bob.CloseIdleConnections()
					}
					alice.CloseIdleConnections()
				}
			})
		}
	}
}

// TestHTTPKerberosSingleRequest: Kerberos through Negotiate can sign a
// connection in with one request and no 401 before it: a request carrying
// NTLM or Negotiate credentials makes its server connection private too,
// or the signed-in connection would join the pool for anyone.
func TestHTTPKerberosSingleRequest(t *testing.T) {
	for _, reuse := range []string{"safe", "always"} {
		t.Run(reuse, func(t *testing.T) {
			a := newNTLMServer(t, "ex1", "Negotiate")
			be := fmt.Sprintf("  - name: be\n    http: {reuse: %s}\n    servers:\n      - {name: ex1, address: %q}\n", reuse, a.addr)
			h := startProxy(t, httpDoc("", "", be))
			url := "http://" + h.addr("fe") + "/mapi/"
			alice := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
			// The ticket comes with the first request (preemptive
			// Negotiate): no 401 marks the connection.
			if resp, body := get(t, alice, url, "Authorization", "Negotiate kerberos alice"); resp.StatusCode != 200 {
				t.Fatalf("kerberos sign-in: %d %q", resp.StatusCode, body)
			}
			if resp, body := get(t, alice, url); body != "hello alice from ex1" {
				t.Fatalf("alice's next request: %d %q, want hello alice (her signed-in connection)", resp.StatusCode, body)
			}
			for i := range 4 {
				bob := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
				for j := range 2 {
					if resp, body := get(t, bob, url); resp.StatusCode != 401 {
						t.Fatalf("another client's request %d.%d: %d %q, want 401 (it rode alice's connection)", i, j, resp.StatusCode, body)
					}
				}
				bob.CloseIdleConnections()
			}
		})
	}
}
