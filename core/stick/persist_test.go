package stick

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/core/upstream"
)

type captureConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *captureConn) Read(p []byte) (int, error)       { return 0, io.EOF }
func (c *captureConn) Close() error                     { return nil }
func (c *captureConn) SetDeadline(time.Time) error      { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

func hello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	cc := &captureConn{}
	_ = tls.Client(cc, cfg).Handshake()
	return cc.out.Bytes()
}

// tls12Hello is a TLS 1.2-only ClientHello with the given session ID (what
// SChannel or openssl -no_ticket sends when resuming).
func tls12Hello(t testing.TB, sid byte) []byte {
	b := hello(t, &tls.Config{ServerName: "mail.example.com", MaxVersion: tls.VersionTLS12, SessionTicketsDisabled: true})
	// Go puts a random 32-byte ID at offset 5+4+2+32+1; make it known.
	for i := 0; i < 32; i++ {
		b[5+4+2+32+1+i] = sid
	}
	return b
}

type fakeBackend map[string]*upstream.Server

func (f fakeBackend) lookup(name string) *upstream.Server { return f[name] }

func newFakeBackend(names ...string) fakeBackend {
	f := fakeBackend{}
	for _, n := range names {
		s := upstream.NewServer("b", n, "127.0.0.1:1", 1)
		s.SetHealth(upstream.Up, "test")
		f[n] = s
	}
	return f
}

func persisterFor(t *testing.T, tables, rule string, keys KeyResolver) (proxy.Persister, *Manager, fakeBackend) {
	t.Helper()
	doc := "stick_tables: " + tables + `
frontends:
  - {name: f, bind: ["127.0.0.1:0"], inspect_delay: 1s, default_backend: b}
backends:
  - name: b
    stick: ` + rule + `
    servers: [{name: s1, address: "127.0.0.1:1"}, {name: s2, address: "127.0.0.1:2"}]
`
	c, err := config.Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	m := NewManager(Options{Keys: keys})
	if err := m.Apply(c); err != nil {
		t.Fatal(err)
	}
	fb := newFakeBackend("s1", "s2")
	p, err := m.Factory()(c.Backend("b"), fb.lookup)
	if err != nil {
		t.Fatal(err)
	}
	return p, m, fb
}

func conn(client string, peeked []byte) *proxy.ConnInfo {
	return &proxy.ConnInfo{Frontend: "f", Backend: "b", Client: netip.MustParseAddrPort(client), Peeked: peeked}
}

func name(s *upstream.Server) string {
	if s == nil {
		return ""
	}
	return s.Name
}

func TestPersistRules(t *testing.T) {
	const bin = `[{name: t, type: binary, len: 32}, {name: src, type: ip}]`
	h1, h2 := tls12Hello(t, 1), tls12Hello(t, 2)
	h13 := hello(t, &tls.Config{ServerName: "mail.example.com"})
	steps := func(p proxy.Persister, fb fakeBackend) func(ci *proxy.ConnInfo, store, want string) string {
		return func(ci *proxy.ConnInfo, store, want string) string {
			got := name(p.Lookup(ci))
			if store != "" {
				p.StoreRequest(ci, fb[store])
			}
			if got != want {
				return "lookup " + got + ", want " + want
			}
			return ""
		}
	}
	t.Run("session id from the request", func(t *testing.T) {
		p, _, fb := persisterFor(t, bin, `{table: t, on: ssl_session_id}`, nil)
		step := steps(p, fb)
		for _, e := range []string{
			step(conn("192.0.2.1:1000", h1), "s2", ""),   // new session: balanced, learned
			step(conn("192.0.2.9:1000", h1), "s2", "s2"), // resumed from anywhere
			step(conn("192.0.2.1:1000", h2), "s1", ""),   // another session
			step(conn("192.0.2.1:1000", []byte("GET / HTTP/1.1\r\n\r\n")), "", ""),
		} {
			if e != "" {
				t.Fatal(e)
			}
		}
		// Down server: balanced again, then overwritten.
		fb["s2"].SetHealth(upstream.Down, "test")
		if e := step(conn("192.0.2.1:1000", h1), "s1", ""); e != "" {
			t.Fatal(e)
		}
		fb["s2"].SetHealth(upstream.Up, "test")
		if e := step(conn("192.0.2.1:1000", h1), "", "s1"); e != "" {
			t.Fatal(e)
		}
	})
	t.Run("fallback src for tls13 and no id", func(t *testing.T) {
		p, m, fb := persisterFor(t, bin, `{table: t, on: ssl_session_id, fallback: src, fallback_table: src}`, nil)
		step := steps(p, fb)
		if e := step(conn("192.0.2.1:1000", h13), "s2", ""); e != "" {
			t.Fatal(e)
		}
		if e := step(conn("192.0.2.1:1001", h13), "s2", "s2"); e != "" {
			t.Fatal(e)
		}
		// A usable session ID that misses is a new session: balanced,
		// not pinned by the fallback.
		if e := step(conn("192.0.2.1:1002", h1), "s1", ""); e != "" {
			t.Fatal(e)
		}
		if m.Table("t").Len() != 1 {
			t.Fatalf("the TLS 1.3 random session IDs were stored: %d entries", m.Table("t").Len())
		}
	})
	t.Run("tls13 sni_src", func(t *testing.T) {
		p, _, fb := persisterFor(t, bin, `{table: t, on: ssl_session_id, tls13: sni_src}`, nil)
		step := steps(p, fb)
		other := hello(t, &tls.Config{ServerName: "autodiscover.example.com"})
		for _, e := range []string{
			step(conn("192.0.2.1:1000", h13), "s2", ""),
			step(conn("192.0.2.1:1001", h13), "s1", "s2"),
			step(conn("192.0.2.1:1002", other), "s1", ""),
			step(conn("192.0.2.2:1003", h13), "s1", ""),
		} {
			if e != "" {
				t.Fatal(e)
			}
		}
	})
	t.Run("src", func(t *testing.T) {
		p, _, fb := persisterFor(t, `[{name: t, type: ipv6}]`, `{table: t, on: src}`, nil)
		if p.NeedsInspection() || p.WantsResponse() {
			t.Fatal("src needs no inspection")
		}
		step := steps(p, fb)
		for _, e := range []string{
			step(conn("192.0.2.1:1000", nil), "s1", ""),
			step(conn("192.0.2.1:1001", nil), "s1", "s1"),
			step(conn("[2001:db8::1]:1001", nil), "s2", ""),
			step(conn("[2001:db8::1]:1002", nil), "", "s2"),
		} {
			if e != "" {
				t.Fatal(e)
			}
		}
	})
	t.Run("lua", func(t *testing.T) {
		keys := func(string) (KeyFunc, error) {
			return func(ctx context.Context, c *proxy.ConnInfo) (string, error) {
				if c.Client.Port() == 666 {
					return "", errors.New("boom")
				}
				return "user-" + c.Client.Addr().String(), nil
			}, nil
		}
		p, _, fb := persisterFor(t, `[{name: t, type: string, len: 64}]`, `{table: t, on: lua, lua: "p.key"}`, keys)
		step := steps(p, fb)
		for _, e := range []string{
			step(conn("192.0.2.1:1000", nil), "s2", ""),
			step(conn("192.0.2.1:1001", nil), "", "s2"),
			step(conn("192.0.2.1:666", nil), "", ""), // failing function: no key
		} {
			if e != "" {
				t.Fatal(e)
			}
		}
	})
}

func TestStoreResponse(t *testing.T) {
	p, m, fb := persisterFor(t, `[{name: t, type: binary, len: 32}]`, `{table: t, on: ssl_session_id}`, nil)
	// A TLS 1.2 ServerHello with session ID 0x05 * 32.
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 32)
	body = append(body, bytes.Repeat([]byte{5}, 32)...)
	body = append(body, 0xc0, 0x2f, 0)
	msg := append([]byte{2, 0, 0, byte(len(body))}, body...)
	rec := append([]byte{0x16, 3, 3, 0, byte(len(msg))}, msg...)
	ci := conn("192.0.2.1:1000", tls12Hello(t, 1))
	p.StoreResponse(ci, fb["s1"], rec)
	if s, ok := m.Table("t").Lookup(bytes.Repeat([]byte{5}, 32)); !ok || s != "s1" {
		t.Fatalf("server's session ID not learned: %q %v", s, ok)
	}
	// Garbage from the server is ignored.
	p.StoreResponse(ci, fb["s1"], []byte("HTTP/1.0 400 Bad\r\n"))
	if m.Table("t").Len() != 1 {
		t.Fatal("garbage stored")
	}
}

func TestManagerApplyKeepsEntries(t *testing.T) {
	mk := func(doc string) *config.Cluster {
		c, err := config.Parse("t.yaml", []byte(doc+"frontends: []\nbackends: []\n"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	m := NewManager(Options{})
	if err := m.Apply(mk("stick_tables: [{name: t, type: ip, size: 10}]\n")); err != nil {
		t.Fatal(err)
	}
	m.Table("t").Store([]byte{1, 2, 3, 4}, "s1")
	_ = m.Apply(mk("stick_tables: [{name: t, type: ip, size: 20, expire: 5m}]\n"))
	if _, ok := m.Table("t").Lookup([]byte{1, 2, 3, 4}); !ok || m.Table("t").Size() != 20 {
		t.Fatal("resize lost the entries")
	}
	_ = m.Apply(mk("stick_tables: [{name: t, type: ipv6}]\n"))
	if m.Table("t").Len() != 0 || m.Table("t").Type != "ipv6" {
		t.Fatal("type change kept old entries")
	}
	_ = m.Apply(mk(""))
	if m.Table("t") != nil {
		t.Fatal("removed table still there")
	}
}

type fakeHook struct{}

func (fakeHook) Route(ctx context.Context, t *proxy.Txn) (proxy.Decision, error) {
	t.Vars = map[string]string{StickKeyVar: "k-" + t.SNI}
	return proxy.Decision{Backend: "ignored"}, nil
}

func TestKeysFromHooks(t *testing.T) {
	var r proxy.HookResolver
	kr := KeysFromHooks(func() proxy.HookResolver { return r })
	if _, err := kr("p.fn"); err == nil {
		t.Fatal("resolved without a runtime")
	}
	r = func(name string) (proxy.RouteHook, error) { return fakeHook{}, nil }
	f, err := kr("p.fn")
	if err != nil {
		t.Fatal(err)
	}
	k, err := f(context.Background(), &proxy.ConnInfo{SNI: "mail"})
	if err != nil || k != "k-mail" {
		t.Fatalf("key %q, %v", k, err)
	}
}

func TestTableClear(t *testing.T) {
	tb := NewTable(config.StickTable{Name: "t", Type: "string", Len: 8, Size: 5000, Expire: config.Duration(time.Minute)})
	for i := 0; i < 100; i++ {
		tb.Store([]byte{byte(i)}, "s")
	}
	if n := tb.Clear(); n != 100 || tb.Len() != 0 {
		t.Fatalf("cleared %d, len %d", n, tb.Len())
	}
	tb.Store([]byte("again"), "s")
	if _, ok := tb.Lookup([]byte("again")); !ok {
		t.Fatal("table unusable after Clear")
	}
}

// BenchmarkPersisterLookup is the data-path cost of session-ID persistence
// per connection: parse the ClientHello, look it up, store it.
func BenchmarkPersisterLookup(b *testing.B) {
	doc := `stick_tables: [{name: t, type: binary, len: 32, size: 30000}]
frontends:
  - {name: f, bind: ["127.0.0.1:0"], inspect_delay: 1s, default_backend: b}
backends:
  - name: b
    stick: {table: t, on: ssl_session_id}
    servers: [{name: s1, address: "127.0.0.1:1"}, {name: s2, address: "127.0.0.1:2"}]
`
	c, err := config.Parse("t.yaml", []byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(Options{})
	_ = m.Apply(c)
	fb := newFakeBackend("s1", "s2")
	p, _ := m.Factory()(c.Backend("b"), fb.lookup)
	cis := make([]*proxy.ConnInfo, 256)
	for i := range cis {
		cis[i] = conn("192.0.2.1:1000", tls12Hello(b, byte(i)))
		p.StoreRequest(cis[i], fb["s1"])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			ci := cis[i%len(cis)]
			if p.Lookup(ci) == nil {
				b.Error("miss")
				return
			}
			p.StoreRequest(ci, fb["s1"])
			i++
		}
	})
}

// TestApplyWhileServing: config changes race with the data path and with
// the notify hook (run under -race).
func TestApplyWhileServing(t *testing.T) {
	p, m, fb := persisterFor(t, `[{name: t, type: binary, len: 32, size: 100, peers: true}]`, `{table: t, on: ssl_session_id}`, nil)
	m.SetNotify(func(Update) {})
	h := tls12Hello(t, 9)
	docs := []string{
		"stick_tables: [{name: t, type: binary, len: 32, size: 50, peers: false}]\nfrontends: []\nbackends: []\n",
		"stick_tables: [{name: t, type: binary, len: 32, size: 200, peers: true}]\nfrontends: []\nbackends: []\n",
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			c, err := config.Parse("t.yaml", []byte(docs[i%2]))
			if err != nil {
				t.Error(err)
				return
			}
			_ = m.Apply(c)
			_ = m.Status()
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		ci := conn("192.0.2.1:1000", h)
		p.Lookup(ci)
		p.StoreRequest(ci, fb["s1"])
	}
}
