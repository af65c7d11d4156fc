package stick

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/core/proxy/inspect"
	"github.com/vipgate/vipgate/core/upstream"
)

// KeyFunc computes a stick key for a connection (on: lua). An empty key
// means "no key": the rule's fallback applies.
type KeyFunc func(ctx context.Context, c *proxy.ConnInfo) (string, error)

// KeyResolver finds a key function by its configured name (plugin.fn).
type KeyResolver func(name string) (KeyFunc, error)

// luaBudget bounds a Lua key function on the data path.
const luaBudget = 100 * time.Millisecond

// persister is one backend's stick rule.
type persister struct {
	rule    config.StickRule
	t, ft   *Table // ft: the src fallback's table (may be t)
	servers proxy.ServerLookup
	key     KeyFunc
	onErr   func(error)
}

var _ proxy.Persister = (*persister)(nil)

// keys are the lookups a connection gets, in order: the primary key, then
// the fallback key.
type keys struct {
	primary []byte
	pt      *Table
	// usable: the primary key identifies the session; when false the
	// fallback decides (it is still looked up second when true).
	usable   bool
	fallback []byte
	ft       *Table
	// sid is the ClientHello's session ID when it may be learned from the
	// request (a TLS 1.2-only client resuming by session ID).
	sid []byte
}

func (p *persister) keysFor(c *proxy.ConnInfo) keys {
	var k keys
	switch p.rule.On {
	case config.StickOnSrc:
		k.primary, k.pt = p.t.KeyAddr(c.Client.Addr()), p.t
		k.usable = k.primary != nil
	case config.StickOnSNISrc:
		sni := c.SNI
		if sni == "" {
			if h, err := inspect.ParseClientHello(c.Peeked); err == nil {
				sni = h.SNI
			}
		}
		if sni != "" {
			k.primary, k.pt = p.t.KeyBytes(sniSrc(sni, c)), p.t
			k.usable = true
		}
	case config.StickOnLua:
		if p.key != nil {
			ctx, cancel := context.WithTimeout(context.Background(), luaBudget)
			s, err := p.key(ctx, c)
			cancel()
			if err != nil && p.onErr != nil {
				p.onErr(err)
			}
			if err == nil && s != "" {
				k.primary, k.pt = p.luaKey(s), p.t
				k.usable = k.primary != nil
			}
		}
	case config.StickOnSSLSessionID:
		h, err := inspect.ParseClientHello(c.Peeked)
		if err != nil {
			break
		}
		if len(h.SessionID) > 0 {
			// Always looked up: a TLS 1.3-capable client may still carry
			// a real TLS 1.2 session ID (RFC 8446 4.1.2); a random one
			// simply never hits.
			k.primary, k.pt = p.t.KeyBytes(h.SessionID), p.t
			// A client offering TLS 1.3 sends a random ID, and one
			// presenting a ticket a random marker (RFC 5077): neither
			// names a session, so the fallback decides for them.
			if !h.OffersTLS13() && h.TicketLen == 0 {
				k.sid = k.primary
				k.usable = true
			}
		}
		if h.OffersTLS13() && p.rule.TLS13 == config.StickOnSNISrc && h.SNI != "" {
			k.fallback, k.ft = p.t.KeyBytes(sniSrc(h.SNI, c)), p.t
			return k
		}
	}
	if p.rule.Fallback == config.StickOnSrc && p.ft != nil {
		k.fallback, k.ft = p.ft.KeyAddr(c.Client.Addr()), p.ft
	}
	return k
}

// sniSrc is the SNI+source key: the client address, then a digest of the
// name, so that truncation to the table's length never merges addresses.
func sniSrc(sni string, c *proxy.ConnInfo) []byte {
	a := c.Client.Addr().Unmap().As16()
	h := sha256.Sum256([]byte(sni))
	return append(a[:], h[:16]...)
}

func (p *persister) luaKey(s string) []byte {
	switch p.t.Type {
	case config.StickInteger:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if p.onErr != nil {
				p.onErr(fmt.Errorf("lua key %q is not an integer for table %s", s, p.t.Name))
			}
			return nil
		}
		return binary.BigEndian.AppendUint64(nil, uint64(n))
	case config.StickIP, config.StickIPv6:
		k, err := p.t.ParseKey(s)
		if err != nil {
			if p.onErr != nil {
				p.onErr(err)
			}
			return nil
		}
		return k
	}
	return p.t.KeyBytes([]byte(s))
}

func (p *persister) find(t *Table, k []byte) *upstream.Server {
	if k == nil {
		return nil
	}
	name, ok := t.Lookup(k)
	if !ok {
		return nil
	}
	if s := p.servers(name); s != nil && s.UsableForPersistence() {
		return s
	}
	// The server is down or gone: balance, and StoreRequest overwrites.
	return nil
}

func (p *persister) Lookup(c *proxy.ConnInfo) *upstream.Server {
	k := p.keysFor(c)
	if s := p.find(k.pt, k.primary); s != nil {
		return s
	}
	if k.usable {
		// A known-good key that missed is a new session: balance it
		// (HAProxy's meaning), do not pin it to the client's last server.
		return nil
	}
	return p.find(k.ft, k.fallback)
}

func (p *persister) StoreRequest(c *proxy.ConnInfo, s *upstream.Server) {
	k := p.keysFor(c)
	switch {
	case p.rule.On == config.StickOnSSLSessionID:
		// The ServerHello's ID (StoreResponse) is authoritative; a TLS
		// 1.2 client's own ID is stored now in case the server's first
		// bytes never come or cannot be read.
		if k.sid != nil {
			k.pt.Store(k.sid, s.Name)
		}
	case k.primary != nil:
		k.pt.Store(k.primary, s.Name)
	}
	// The fallback key always records the client's latest server, so
	// that its next connection without a usable ID (a ticket resumption,
	// a TLS 1.3 handshake) follows the session it has.
	if k.fallback != nil {
		k.ft.Store(k.fallback, s.Name)
	}
}

func (p *persister) WantsResponse() bool { return p.rule.On == config.StickOnSSLSessionID }

func (p *persister) StoreResponse(c *proxy.ConnInfo, s *upstream.Server, first []byte) {
	h, err := inspect.ParseServerHello(first)
	if err != nil || len(h.SessionID) == 0 || h.NegotiatedVersion() >= inspect.VersionTLS13 {
		// TLS 1.3 echoes the client's random ID: nothing to learn.
		return
	}
	if ch, err := inspect.ParseClientHello(c.Peeked); err == nil && ch.TicketLen > 0 && bytes.Equal(ch.SessionID, h.SessionID) {
		// An accepted ticket: the echoed ID is the client's random
		// marker and will not come again.
		return
	}
	p.t.Store(p.t.KeyBytes(h.SessionID), s.Name)
}

func (p *persister) NeedsInspection() bool {
	switch p.rule.On {
	case config.StickOnSSLSessionID, config.StickOnSNISrc, config.StickOnLua:
		return true
	}
	return false
}

// StickKeyVar is the transaction variable a Lua function sets to give the
// stick key: txn:set_var("stick_key", ...).
const StickKeyVar = "stick_key"

// KeysFromHooks adapts Lua route hooks to key functions: the function runs
// as a route hook on a tcp transaction (frontend, client, SNI) and the key
// is what it stored in the stick_key variable; its routing decision is
// ignored. resolver is read at each resolution, so it may be installed
// after the Manager is built.
func KeysFromHooks(resolver func() proxy.HookResolver) KeyResolver {
	return func(name string) (KeyFunc, error) {
		r := resolver()
		if r == nil {
			return nil, fmt.Errorf("no Lua runtime on this node")
		}
		h, err := r(name)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, c *proxy.ConnInfo) (string, error) {
			t := &proxy.Txn{Frontend: c.Frontend, Client: c.Client, SNI: c.SNI}
			if _, err := h.Route(ctx, t); err != nil {
				return "", err
			}
			return t.Vars[StickKeyVar], nil
		}, nil
	}
}
