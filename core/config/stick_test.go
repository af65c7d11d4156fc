package config

import (
	"strings"
	"testing"
	"time"
)

const stickDoc = `
stick_tables:
  - {name: ssl, type: binary, len: 32, size: 30000, expire: 10s, peers: true}
  - {name: srcs, type: ipv6}
frontends:
  - name: exch
    bind: ["127.0.0.1:8443"]
    inspect_delay: 5s
    default_backend: exchange
backends:
  - name: exchange
    mode: tcp
    stick: {table: ssl, on: ssl_session_id, fallback: src, fallback_table: srcs}
    servers:
      - {name: a, address: "127.0.0.1:9001"}
`

func TestStickParseAndDefaults(t *testing.T) {
	c, err := Parse("stick.yaml", []byte(stickDoc))
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	ssl := c.StickTable("ssl")
	if ssl.Type != StickBinary || ssl.Len != 32 || ssl.Size != 30000 || ssl.Expire.D() != 10*time.Second || !ssl.Peers {
		t.Errorf("ssl table: %+v", ssl)
	}
	srcs := c.StickTable("srcs")
	if srcs.Size != DefaultStickSize || srcs.Expire != DefaultStickExpire || srcs.Len != 0 {
		t.Errorf("srcs defaults: %+v", srcs)
	}
	r := c.Backend("exchange").Stick
	if r.Fallback != "src" || r.FallbackTable != "srcs" || r.TLS13 != "fallback" {
		t.Errorf("rule defaults: %+v", r)
	}
}

func TestStickValidation(t *testing.T) {
	base := `
frontends:
  - {name: f, bind: ["127.0.0.1:8443"], default_backend: b}
backends:
  - name: b
    servers: [{name: a, address: "127.0.0.1:9001"}]
`
	tests := []struct {
		name, tables, rule, want string
	}{
		{"bad type", `[{name: t, type: blob}]`, ``, `stick_tables.0.type: type "blob"`},
		{"no type", `[{name: t}]`, ``, `has no type`},
		{"len on ip", `[{name: t, type: ip, len: 4}]`, ``, `len applies only`},
		{"huge len", `[{name: t, type: binary, len: 1000}]`, ``, `len 1000`},
		{"bad size", `[{name: t, type: ip, size: -1}]`, ``, `size -1`},
		{"dup", `[{name: t, type: ip}, {name: t, type: ip}]`, ``, `defined twice`},
		{"unknown table", `[{name: t, type: ip}]`, `{table: nope, on: src}`, `no stick table "nope"`},
		{"bad on", `[{name: t, type: ip}]`, `{table: t, on: cookie}`, `on "cookie"`},
		{"session id in ip table", `[{name: t, type: ip}]`, `{table: t, on: ssl_session_id, fallback: none}`, `needs a table of type binary or string`},
		{"lua without fn", `[{name: t, type: string}]`, `{table: t, on: lua}`, `needs lua: plugin.function`},
		{"bad fallback", `[{name: t, type: binary}]`, `{table: t, on: ssl_session_id, fallback: cookie}`, `fallback "cookie"`},
		{"fallback table type", `[{name: t, type: binary}, {name: n, type: integer}]`, `{table: t, on: ssl_session_id, fallback: src, fallback_table: n}`, `the src fallback needs`},
		{"no inspect delay", `[{name: t, type: binary}]`, `{table: t, on: ssl_session_id}`, `set inspect_delay on frontend "f"`},
		{"bad tls13", `[{name: t, type: binary}]`, `{table: t, on: ssl_session_id, tls13: psk}`, `tls13 "psk"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "stick_tables: " + tc.tables + "\n" + base
			if tc.rule != "" {
				doc += "    stick: " + tc.rule + "\n"
			}
			_, err := Parse("t.yaml", []byte(doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "t.yaml:") {
				t.Errorf("error is not positioned: %v", err)
			}
		})
	}
}

func TestNodePeersValidation(t *testing.T) {
	tests := []struct{ name, peers, want string }{
		{"ok secret", `{listen: "127.0.0.1:9910", secret: "0123456789abcdef", nodes: [{name: b, address: "127.0.0.1:9911"}]}`, ""},
		{"no auth", `{listen: "127.0.0.1:9910"}`, "need a secret"},
		{"short secret", `{listen: "127.0.0.1:9910", secret: "x"}`, "too short"},
		{"tls without ca", `{listen: "127.0.0.1:9910", tls: {cert: c, key: k}}`, "needs ca, cert and key"},
		{"self", `{listen: "127.0.0.1:9910", secret: "0123456789abcdef", nodes: [{name: a, address: "127.0.0.1:1"}]}`, "is this node"},
		{"bad address", `{listen: "127.0.0.1:9910", secret: "0123456789abcdef", nodes: [{name: b, address: "nope"}]}`, `address "nope"`},
		{"nodes without listen", `{nodes: [{name: b, address: "127.0.0.1:1"}]}`, "no listen address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "name: a\ndatacenter: dc1\npeers: " + tc.peers + "\n"
			_, err := ParseNode("node.yaml", []byte(doc))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not mention %q", err, tc.want)
			}
		})
	}
}
