package config

import (
	"net"
	"strings"
)

// Stick tables and persistence rules (core/stick). The meaning follows
// HAProxy's stick-table / stick on / stick store-response; see
// docs/persistence.md.

// StickTable is a named table (HAProxy stick-table).
type StickTable struct {
	Name string `yaml:"name" json:"name"`
	// Type of the keys: ip, ipv6, integer, string or binary.
	Type string `yaml:"type" json:"type"`
	// Len is the key length in bytes for string and binary (default 32).
	Len int `yaml:"len,omitempty" json:"len,omitempty"`
	// Size is the maximum number of entries; the least recently used entry
	// is evicted beyond it (default 100000).
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// Expire removes an entry this long after it was last used (default 30m).
	Expire Duration `yaml:"expire,omitempty" json:"expire,omitempty"`
	// Peers sends this table's updates to the node's peers (node file
	// `peers`) and pulls the full table from them at start.
	Peers bool `yaml:"peers,omitempty" json:"peers,omitempty"`
}

// Stick table key types.
const (
	StickIP      = "ip"
	StickIPv6    = "ipv6"
	StickInteger = "integer"
	StickString  = "string"
	StickBinary  = "binary"
)

// What a stick rule keys on.
const (
	StickOnSSLSessionID = "ssl_session_id"
	StickOnSrc          = "src"
	StickOnSNISrc       = "sni_src"
	StickOnLua          = "lua"
)

// StickRule is a backend's persistence rule (HAProxy stick on / store-response).
type StickRule struct {
	// Table names a stick_tables entry.
	Table string `yaml:"table" json:"table"`
	// On: ssl_session_id (the TLS session ID of the ClientHello, learned
	// from the ServerHello), src (client address), sni_src (TLS SNI and
	// client address), lua (a key computed by a Lua function).
	On string `yaml:"on" json:"on"`
	// Fallback when there is no usable key (no TLS, empty session ID, TLS
	// 1.3): src (source-address persistence in FallbackTable) or none
	// (plain balancing, the default: HAProxy's meaning of a lone
	// "stick on payload_lv(43,1)").
	Fallback string `yaml:"fallback,omitempty" json:"fallback,omitempty"`
	// FallbackTable holds the src fallback's entries (default: Table).
	FallbackTable string `yaml:"fallback_table,omitempty" json:"fallback_table,omitempty"`
	// TLS13 says what to do with a TLS 1.3 client, whose session ID is a
	// random echo: fallback (default) or sni_src.
	TLS13 string `yaml:"tls13,omitempty" json:"tls13,omitempty"`
	// Lua names the function (plugin.fn) computing the key for on: lua.
	Lua string `yaml:"lua,omitempty" json:"lua,omitempty"`
}

// Defaults of a stick table.
const (
	DefaultStickLen    = 32
	DefaultStickSize   = 100000
	DefaultStickExpire = Duration(30 * 60 * 1e9)
	// MaxStickSize bounds a table (memory): 10M entries.
	MaxStickSize = 10_000_000
)

// StickTable returns the named table or nil.
func (c *Cluster) StickTable(name string) *StickTable {
	for i := range c.StickTables {
		if c.StickTables[i].Name == name {
			return &c.StickTables[i]
		}
	}
	return nil
}

func (c *Cluster) applyStickDefaults() {
	for i := range c.StickTables {
		t := &c.StickTables[i]
		t.Type = strings.ToLower(t.Type)
		if t.Len == 0 && (t.Type == StickString || t.Type == StickBinary) {
			t.Len = DefaultStickLen
		}
		if t.Size == 0 {
			t.Size = DefaultStickSize
		}
		if t.Expire == 0 {
			t.Expire = DefaultStickExpire
		}
	}
	for i := range c.Backends {
		r := c.Backends[i].Stick
		if r == nil {
			continue
		}
		if r.Fallback == "" {
			r.Fallback = "none"
		}
		if r.FallbackTable == "" {
			r.FallbackTable = r.Table
		}
		if r.TLS13 == "" {
			r.TLS13 = "fallback"
		}
	}
}

func (c *Cluster) validateStick(p *Problems) {
	seen := map[string]bool{}
	for i := range c.StickTables {
		t := &c.StickTables[i]
		at := func(f string) string { return Path("stick_tables", i, f) }
		switch {
		case t.Name == "":
			p.Addf(Path("stick_tables", i), "stick table has no name")
		case !ValidName(t.Name):
			p.Addf(at("name"), "stick table name %q: use letters, digits, '_', '.', '-'", t.Name)
		case seen[t.Name]:
			p.Addf(at("name"), "stick table %q is defined twice", t.Name)
		}
		seen[t.Name] = true
		switch t.Type {
		case StickIP, StickIPv6, StickInteger:
			if t.Len != 0 {
				p.Addf(at("len"), "len applies only to string and binary tables, not %s", t.Type)
			}
		case StickString, StickBinary:
			if t.Len < 1 || t.Len > 256 {
				p.Addf(at("len"), "len %d: want 1..256 bytes", t.Len)
			}
		case "":
			p.Addf(Path("stick_tables", i), "stick table %q has no type (ip, ipv6, integer, string, binary)", t.Name)
		default:
			p.Addf(at("type"), "type %q: want ip, ipv6, integer, string or binary", t.Type)
		}
		if t.Size < 1 || t.Size > MaxStickSize {
			p.Addf(at("size"), "size %d: want 1..%d entries", t.Size, MaxStickSize)
		}
		if t.Expire < 0 {
			p.Addf(at("expire"), "expire must be positive")
		}
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		r := b.Stick
		if r == nil {
			continue
		}
		at := func(f string) string { return Path("backends", i, "stick", f) }
		tableType := func(field, name string) string {
			if name == "" {
				p.Addf(Path("backends", i, "stick"), "stick rule of backend %q names no table", b.Name)
				return ""
			}
			t := c.StickTable(name)
			if t == nil {
				p.Addf(at(field), "no stick table %q (define it under stick_tables)", name)
				return ""
			}
			return t.Type
		}
		typ := tableType("table", r.Table)
		want := map[string][]string{
			StickOnSSLSessionID: {StickBinary, StickString},
			StickOnSrc:          {StickIP, StickIPv6, StickString, StickBinary},
			StickOnSNISrc:       {StickString, StickBinary},
			StickOnLua:          {StickString, StickBinary, StickInteger, StickIP, StickIPv6},
		}
		types, ok := want[r.On]
		if !ok {
			p.Addf(at("on"), "on %q: want ssl_session_id, src, sni_src or lua", r.On)
		} else if typ != "" && !stickContains(types, typ) {
			p.Addf(at("table"), "stick on %s needs a table of type %s, table %q is %s", r.On, strings.Join(types, " or "), r.Table, typ)
		}
		if r.On == StickOnLua && r.Lua == "" {
			p.Addf(Path("backends", i, "stick"), "stick on lua needs lua: plugin.function")
		}
		if r.On != StickOnLua && r.Lua != "" {
			p.Addf(at("lua"), "lua applies only to on: lua")
		}
		switch r.Fallback {
		case "none":
		case StickOnSrc:
			if ft := tableType("fallback_table", r.FallbackTable); ft != "" && !stickContains(want[StickOnSrc], ft) {
				p.Addf(at("fallback_table"), "the src fallback needs a table of type ip, ipv6, string or binary, table %q is %s", r.FallbackTable, ft)
			}
		default:
			p.Addf(at("fallback"), "fallback %q: want src or none", r.Fallback)
		}
		switch r.TLS13 {
		case "fallback":
		case StickOnSNISrc:
			if typ != "" && typ != StickString && typ != StickBinary {
				p.Addf(at("tls13"), "tls13: sni_src needs a string or binary table, table %q is %s", r.Table, typ)
			}
		default:
			p.Addf(at("tls13"), "tls13 %q: want fallback or sni_src", r.TLS13)
		}
		if b.Mode == ModeHTTP && r.On != StickOnSrc {
			p.Addf(Path("backends", i, "stick", "on"), "stick on %s needs a tcp-mode backend (it reads the TLS handshake); http mode sticks on src, or use cookie persistence", r.On)
		}
	}
	c.validateStickInspect(p)
}

// validateStickInspect refuses a tcp frontend without inspect_delay in
// front of a backend whose rule reads the ClientHello: without the delay
// the rule would silently never match.
func (c *Cluster) validateStickInspect(p *Problems) {
	for i := range c.Frontends {
		f := &c.Frontends[i]
		if f.Mode == ModeHTTP || f.InspectDelay > 0 {
			continue
		}
		names := []string{f.DefaultBackend}
		for _, r := range f.Rules {
			names = append(names, r.Backend)
		}
		for _, bn := range names {
			b := c.Backend(bn)
			if b == nil || b.Stick == nil {
				continue
			}
			if on := b.Stick.On; on != StickOnSrc {
				p.Addf(Path("frontends", i), "backend %q sticks on %s, which reads the client's first bytes: set inspect_delay on frontend %q (HAProxy tcp-request inspect-delay, e.g. 5s)", bn, on, f.Name)
				break
			}
		}
	}
}

func stickContains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// NodePeers is this node's stick-table sync listener and peers (bootstrap file).
type NodePeers struct {
	// Listen is where peers connect (host:port). Empty: sync is off.
	Listen string `yaml:"listen,omitempty"`
	// Secret authenticates peers with HMAC-SHA256 (at least 16 characters);
	// or TLS gives mutual TLS (ca, cert, key). One of the two is required.
	Secret string    `yaml:"secret,omitempty"`
	TLS    *TLSFiles `yaml:"tls,omitempty"`
	// Nodes are the other gateway nodes of this datacenter.
	Nodes []NodePeer `yaml:"nodes,omitempty"`
}

// NodePeer is one peer.
type NodePeer struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
}

func (n *Node) applyPeersDefaults() {}

func (n *Node) validatePeers(p *Problems) {
	ps := &n.Peers
	if ps.Listen == "" {
		if len(ps.Nodes) > 0 {
			p.Addf("peers", "peers lists nodes but has no listen address")
		}
		return
	}
	if _, _, err := net.SplitHostPort(ps.Listen); err != nil {
		p.Addf("peers.listen", "listen %q: %v", ps.Listen, err)
	}
	switch {
	case ps.Secret == "" && ps.TLS == nil:
		p.Addf("peers", "peers need a secret (HMAC) or tls (mutual TLS)")
	case ps.Secret != "" && len(ps.Secret) < 16:
		p.Addf("peers.secret", "secret is too short (%d characters; use at least 16)", len(ps.Secret))
	}
	if t := ps.TLS; t != nil && (t.CA == "" || t.Cert == "" || t.Key == "") {
		p.Addf("peers.tls", "peers tls needs ca, cert and key (both sides verify each other)")
	}
	names := map[string]bool{}
	for i, pe := range ps.Nodes {
		if pe.Name == "" {
			p.Addf(Path("peers", "nodes", i), "peer has no name")
		} else if names[pe.Name] {
			p.Addf(Path("peers", "nodes", i, "name"), "peer %q is listed twice", pe.Name)
		} else if pe.Name == n.Name {
			p.Addf(Path("peers", "nodes", i, "name"), "peer %q is this node; list only the others", pe.Name)
		}
		names[pe.Name] = true
		if _, _, err := net.SplitHostPort(pe.Address); err != nil {
			p.Addf(Path("peers", "nodes", i, "address"), "address %q: %v", pe.Address, err)
		}
	}
}
