package peers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/stick"
	"github.com/vipgate/vipgate/internal/testenv"
)

const tablesDoc = `
stick_tables:
  - {name: ssl, type: binary, len: 32, size: 1000, expire: 1m, peers: true}
  - {name: local, type: ip, size: 10, expire: 1m}
  - {name: small, type: string, len: 32, size: 100, expire: 1m, peers: true}
frontends:
  - {name: f, bind: ["127.0.0.1:0"], default_backend: b}
backends:
  - name: b
    servers: [{name: s1, address: "127.0.0.1:1"}]
`

type node struct {
	m      *stick.Manager
	s      *Syncer
	cancel context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, name, listen string, secret string, peers []Peer, tlsPair ...*tls.Config) *node {
	t.Helper()
	c, err := config.Parse("t.yaml", []byte(tablesDoc))
	if err != nil {
		t.Fatal(err)
	}
	m := stick.NewManager(stick.Options{})
	if err := m.Apply(c); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Node: name, Listen: listen, Secret: []byte(secret), Peers: peers, Redial: 200 * time.Millisecond}
	if len(tlsPair) == 2 {
		cfg.ServerTLS, cfg.ClientTLS = tlsPair[0], tlsPair[1]
	}
	s, err := New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	m.SetNotify(s.Notify)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{m: m, s: s, cancel: cancel, done: make(chan struct{})}
	go func() { _ = s.Run(ctx); close(n.done) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

func addrs(t *testing.T) (string, string) {
	return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
}

func lookup(n *node, table, key string) string {
	s, _ := n.m.Table(table).Lookup([]byte(key))
	return s
}

func TestSyncPushAndResync(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	aAddr, bAddr := addrs(t)
	a := startNode(t, "a", aAddr, secret, []Peer{{"b", bAddr}})
	b := startNode(t, "b", bAddr, secret, []Peer{{"a", aAddr}})
	testenv.Eventually(t, 10*time.Second, "links up", func() bool {
		return a.s.Status()[0].Connected && b.s.Status()[0].Connected
	})

	// Pushed both ways.
	a.m.Table("ssl").Store([]byte("session-1"), "s1")
	b.m.Table("ssl").Store([]byte("session-2"), "s2")
	testenv.Eventually(t, 10*time.Second, "session-1 on b and session-2 on a", func() bool {
		return lookup(b, "ssl", "session-1") == "s1" && lookup(a, "ssl", "session-2") == "s2"
	})
	// A table without peers: true stays local.
	a.m.Table("local").Store([]byte{192, 0, 2, 1}, "s1")

	// Many updates in a burst arrive (batched).
	for i := 0; i < 900; i++ {
		a.m.Table("ssl").Store([]byte(fmt.Sprint("burst-", i)), "s1")
	}
	testenv.Eventually(t, 10*time.Second, "burst on b", func() bool { return lookup(b, "ssl", "burst-899") == "s1" })

	// b restarts empty and pulls the full table from a.
	b.stop()
	b2 := startNode(t, "b", bAddr, secret, []Peer{{"a", aAddr}})
	testenv.Eventually(t, 10*time.Second, "restarted b has a's sessions", func() bool {
		return lookup(b2, "ssl", "session-1") == "s1" && lookup(b2, "ssl", "burst-0") == "s1"
	})
	if b2.m.Table("local").Len() != 0 {
		t.Fatal("a table without peers: true was synced")
	}
	if b2.m.Table("ssl").Synced.Load() == 0 {
		t.Error("synced counter not counting")
	}
}

func TestSyncWrongSecret(t *testing.T) {
	aAddr, bAddr := addrs(t)
	a := startNode(t, "a", aAddr, "0123456789abcdef-secret", []Peer{{"b", bAddr}})
	b := startNode(t, "b", bAddr, "another-secret-entirely", []Peer{{"a", aAddr}})
	a.m.Table("ssl").Store([]byte("x"), "s1")
	testenv.Eventually(t, 10*time.Second, "authentication failure reported", func() bool {
		return strings.Contains(a.s.Status()[0].LastError, "authentication")
	})
	if a.s.Status()[0].Connected || b.s.Status()[0].Connected || b.m.Table("ssl").Len() != 0 {
		t.Fatal("peers with different secrets exchanged data")
	}
}

func TestSyncUnknownPeerRefused(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	aAddr, bAddr := addrs(t)
	_ = startNode(t, "a", aAddr, secret, nil) // a does not list b
	b := startNode(t, "b", bAddr, secret, []Peer{{"a", aAddr}})
	testenv.Eventually(t, 10*time.Second, "refused", func() bool { return b.s.Status()[0].LastError != "" })
	if b.s.Status()[0].Connected {
		t.Fatal("an unlisted peer was accepted")
	}
}

// TestSyncPeerDownNeverBlocks: stores with an unreachable peer are not
// slowed or blocked.
func TestSyncPeerDownNeverBlocks(t *testing.T) {
	aAddr, bAddr := addrs(t)
	a := startNode(t, "a", aAddr, "0123456789abcdef-secret", []Peer{{"b", bAddr}})
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100000; i++ {
			a.m.Table("ssl").Store([]byte(fmt.Sprint(i)), "s1")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("stores blocked with the peer down")
	}
}

func mtlsConfigs(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ca := newTestCA(t)
	return ca.issue(t, "a", "b")
}

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "peers-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testCA{cert: ca, key: caKey, pool: pool}
}

// issue makes server and client configs with a certificate for names.
func (c *testCA) issue(t *testing.T, names ...string) (server, client *tls.Config) {
	t.Helper()
	ca, caKey, pool := c.cert, c.key, c.pool
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"}, DNSNames: names,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13}
	return server, client
}

func TestSyncMutualTLS(t *testing.T) {
	srv, cli := mtlsConfigs(t)
	aAddr, bAddr := addrs(t)
	a := startNode(t, "a", aAddr, "", []Peer{{"b", bAddr}}, srv, cli)
	b := startNode(t, "b", bAddr, "", []Peer{{"a", aAddr}}, srv, cli)
	a.m.Table("ssl").Store([]byte("before-connect"), "s1")
	testenv.Eventually(t, 10*time.Second, "resync over mTLS", func() bool { return lookup(b, "ssl", "before-connect") == "s1" })
	a.m.Table("ssl").Store([]byte("after"), "s2")
	testenv.Eventually(t, 10*time.Second, "push over mTLS", func() bool { return lookup(b, "ssl", "after") == "s2" })

	// A client without a certificate from the CA is refused.
	_, otherCli := mtlsConfigs(t)
	cAddr, _ := addrs(t)
	c := startNode(t, "c", cAddr, "", []Peer{{"a", aAddr}}, srv, otherCli)
	testenv.Eventually(t, 10*time.Second, "untrusted peer refused", func() bool { return c.s.Status()[0].LastError != "" })
	if c.s.Status()[0].Connected {
		t.Fatal("peer with an untrusted certificate connected")
	}
}

// TestResyncKeepsRecencyOrder: a node that pulls a full table keeps the
// peer's order of use, so when its table is full (it took the VIP and
// learns new sessions) it evicts the sessions used longest ago, not the
// ones in use right now.
func TestResyncKeepsRecencyOrder(t *testing.T) {
	aAddr, bAddr := addrs(t)
	a := startNode(t, "a", aAddr, "0123456789abcdef-secret", []Peer{{"b", bAddr}})
	for i := range 100 { // k99 is the most recently used
		a.m.Table("small").Store(fmt.Appendf(nil, "k%02d", i), "s1")
	}
	b := startNode(t, "b", bAddr, "0123456789abcdef-secret", []Peer{{"a", aAddr}})
	tb := b.m.Table("small")
	// Both links dump (a's dial to b, and a answering b's dial).
	testenv.Eventually(t, 10*time.Second, "b pulled the table twice", func() bool { return tb.Synced.Load() >= 200 })
	if tb.Len() != 100 {
		t.Fatalf("b holds %d entries", tb.Len())
	}
	for i := range 10 {
		tb.Store(fmt.Appendf(nil, "new%d", i), "s1")
	}
	kept := map[string]bool{}
	tb.Each(func(u stick.Update) bool { kept[string(u.Key)] = true; return true })
	var lost []string
	for i := 10; i < 100; i++ {
		if k := fmt.Sprintf("k%02d", i); !kept[k] {
			lost = append(lost, k)
		}
	}
	if len(lost) > 0 || kept["k00"] || kept["k09"] {
		t.Fatalf("after the resync the full table evicted recently used sessions %v (k00 kept %v, k09 kept %v)", lost, kept["k00"], kept["k09"])
	}
}

// TestSyncMutualTLSNameChecked: a node holding a certificate from the
// peers' CA, but issued to another name, cannot connect as a listed peer.
func TestSyncMutualTLSNameChecked(t *testing.T) {
	ca := newTestCA(t)
	aSrv, aCli := ca.issue(t, "a")
	bSrv, bCli := ca.issue(t, "b")
	cSrv, cCli := ca.issue(t, "c")
	aAddr, bAddr := addrs(t)
	a := startNode(t, "a", aAddr, "", []Peer{{"b", bAddr}}, aSrv, aCli)
	// The genuine b connects.
	b := startNode(t, "b", bAddr, "", []Peer{{"a", aAddr}}, bSrv, bCli)
	b.m.Table("ssl").Store([]byte("genuine"), "s1")
	testenv.Eventually(t, 10*time.Second, "b's entry reaches a", func() bool { return lookup(a, "ssl", "genuine") == "s1" })
	b.stop()
	// c, with c's certificate, claims to be b.
	cAddr, _ := addrs(t)
	c := startNode(t, "b", cAddr, "", []Peer{{"a", aAddr}}, cSrv, cCli)
	c.m.Table("ssl").Store([]byte("forged"), "s1")
	testenv.Eventually(t, 10*time.Second, "impostor cut off", func() bool {
		return c.s.Status()[0].LastError != ""
	})
	if lookup(a, "ssl", "forged") != "" {
		t.Fatal("an entry from a node with another name's certificate was applied")
	}
}

func FuzzDecodeUpdates(f *testing.F) {
	f.Add([]byte{0, 1, 3, 's', 's', 'l', 0, 2, 1, 2, 2, 's', '1', 0, 0, 1, 0})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		us, err := DecodeUpdates(b)
		if err != nil {
			return
		}
		for _, u := range us {
			if len(u.Table) > 255 || len(u.Server) > 255 {
				t.Fatalf("out of bounds: %+v", u)
			}
		}
	})
}

// TestStrangerRefused: garbage and oversized frames from an unauthenticated
// client close the connection without affecting the node.
func TestStrangerRefused(t *testing.T) {
	aAddr, bAddr := addrs(t)
	a := startNode(t, "a", aAddr, "0123456789abcdef-secret", []Peer{{"b", bAddr}})
	for _, junk := range [][]byte{
		{0xff, 0xff, 0xff, 0xff, 1},                     // 4 GiB frame
		{0, 0, 8, 0, 1},                                 // 2 KiB hello: over the pre-auth limit
		{0, 0, 0, 9, 1, 'X', 'X', 'X', 'X', 0, 1, 2, 3}, // bad magic
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	} {
		c, err := net.Dial("tcp", a.s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(junk)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("junk %q: connection not closed: %v", junk, err)
		}
	}
	a.m.Table("ssl").Store([]byte("still-works"), "s1")
	if s, _ := a.m.Table("ssl").Lookup([]byte("still-works")); s != "s1" {
		t.Fatal("node broken by junk")
	}
}

func TestPacer(t *testing.T) {
	p := pacer{rate: 1000}
	start := time.Now()
	for i := 0; i < 10; i++ {
		p.wait(50) // 500 entries at 1000/s: ~0.5s minus the 0.1s burst
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("500 entries at 1000/s took %s", el)
	}
}

// BenchmarkDecodeUpdates is the receive side of a full batch.
func BenchmarkDecodeUpdates(b *testing.B) {
	var buf bytes.Buffer
	c := &conn{w: bufio.NewWriter(&buf), pace: pacer{rate: 1e12}, c: nopDeadline{}}
	batch := make([]stick.Update, batchMax)
	for i := range batch {
		batch[i] = stick.Update{Table: "ssl", Key: bytes.Repeat([]byte{byte(i)}, 32), Server: "exch1-dc1", TTL: time.Minute}
	}
	s := &Syncer{}
	if err := s.sendBatch(c, nil, batch); err != nil {
		b.Fatal(err)
	}
	_ = c.w.Flush()
	payload := buf.Bytes()[5:]
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if us, err := DecodeUpdates(payload); err != nil || len(us) != batchMax {
			b.Fatal(len(us), err)
		}
	}
}

type nopDeadline struct{ net.Conn }

func (nopDeadline) SetWriteDeadline(time.Time) error { return nil }
