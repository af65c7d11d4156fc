package stick

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// writeCert writes a self-signed certificate and key for "backend" to dir.
func writeCert(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backend"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"backend", "mail.example.com"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// opensslBackend is a real TLS server (openssl s_server -WWW) with its own
// session cache; GET /who answers its name.
type opensslBackend struct {
	name, addr string
}

func startOpenSSLBackends(t testing.TB, names []string, extra ...string) []*opensslBackend {
	t.Helper()
	bin := testenv.RequireTool(t, "openssl")
	certDir := t.TempDir()
	cert, key := writeCert(t, certDir)
	var out []*opensslBackend
	for _, name := range names {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "who"), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		args := append([]string{"s_server", "-accept", addr, "-cert", cert, "-key", key, "-WWW", "-quiet"}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Stdin = nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		testenv.Eventually(t, 10*time.Second, "openssl s_server "+name+" listening", func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		out = append(out, &opensslBackend{name: name, addr: addr})
	}
	return out
}

// stickHarness is the real tcp proxy with this package's persistence.
type stickHarness struct {
	p   *proxy.Proxy
	m   *Manager
	fe  string
	bus *events.Bus
}

func startStickProxy(t testing.TB, m *Manager, doc string) *stickHarness {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	if m == nil {
		m = NewManager(Options{})
	}
	if err := m.Apply(c); err != nil {
		t.Fatal(err)
	}
	bus := events.New("test", "dc1")
	p := proxy.New(proxy.Options{Bus: bus})
	p.SetPersistFactory(m.Factory())
	if err := p.Apply(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	addrs := p.ListenAddrs()["tls"]
	if len(addrs) == 0 {
		t.Fatal("frontend tls not listening")
	}
	return &stickHarness{p: p, m: m, fe: addrs[0], bus: bus}
}

func stickDoc(rule string, backends []*opensslBackend) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
stick_tables:
  - {name: ssl, type: binary, len: 32, size: 30k_PLACEHOLDER, expire: 1m}
  - {name: src, type: ipv6, size: 1000, expire: 1m}
frontends:
  - name: tls
    bind: ["127.0.0.1:0"]
    inspect_delay: 5s
    default_backend: exchange
backends:
  - name: exchange
    balance: {algorithm: roundrobin}
    stick: %s
    servers:
`, rule)
	for _, be := range backends {
		fmt.Fprintf(&b, "      - {name: %s, address: %q}\n", be.name, be.addr)
	}
	return strings.Replace(b.String(), "30k_PLACEHOLDER", "30000", 1)
}

// sClient runs openssl s_client once: GET /who, and returns which backend
// answered and whether the TLS session was resumed.
func sClient(t testing.TB, addr, sessIn, sessOut string, extra ...string) (backend string, reused bool) {
	t.Helper()
	return sClientArgs(t, addr, sessIn, sessOut, append([]string{"-tls1_2"}, extra...)...)
}

// sClientArgs is sClient without the TLS 1.2 pin.
func sClientArgs(t testing.TB, addr, sessIn, sessOut string, extra ...string) (backend string, reused bool) {
	t.Helper()
	args := []string{"s_client", "-connect", addr, "-no_ticket", "-ign_eof"}
	if sessIn != "" {
		args = append(args, "-sess_in", sessIn)
	}
	if sessOut != "" {
		args = append(args, "-sess_out", sessOut)
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = strings.NewReader("GET /who HTTP/1.0\r\n\r\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("s_client: %v\n%s", err, out)
	}
	s := string(out)
	reused = strings.Contains(s, "\nReused, ")
	if !reused && !strings.Contains(s, "\nNew, ") {
		t.Fatalf("s_client: no handshake summary:\n%s", s)
	}
	// The body follows the HTTP head: the backend's name on its own line.
	_, body, ok := strings.Cut(s, "Content-type: text/plain\r\n\r\n")
	if !ok {
		t.Fatalf("s_client: no answer from a backend:\n%s", s)
	}
	backend, _, _ = strings.Cut(body, "\n")
	return strings.TrimSpace(backend), reused
}

// goClient connects once with a Go TLS client and its session cache.
func goClient(t testing.TB, addr string, cfg *tls.Config) (backend string, resumed bool) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("go client: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /who HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	body, err := io.ReadAll(r)
	if err != nil && len(body) == 0 {
		t.Fatalf("go client read: %v", err)
	}
	_, name, ok := strings.Cut(string(body), "\r\n\r\n")
	if !ok {
		t.Fatalf("go client: no answer: %q", body)
	}
	return strings.TrimSpace(name), c.ConnectionState().DidResume
}

func names(bs []*opensslBackend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.name)
	}
	return out
}

// TestSSLSessionIDPersistenceOpenSSL is the reference case: openssl
// s_client resuming TLS 1.2 sessions by session ID through the proxy lands
// on the server that holds the session, every time; new sessions are
// balanced; a down server's sessions move.
func TestSSLSessionIDPersistenceOpenSSL(t *testing.T) {
	bes := startOpenSSLBackends(t, []string{"ex1", "ex2", "ex3"})
	h := startStickProxy(t, nil, stickDoc("{table: ssl, on: ssl_session_id}", bes))
	dir := t.TempDir()

	// New sessions are balanced (round robin over three servers).
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		b, reused := sClient(t, h.fe, "", "")
		if reused {
			t.Fatal("a new session was reported as reused")
		}
		seen[b] = true
	}
	if len(seen) != 3 {
		t.Fatalf("new sessions went to %v, want all three servers", seen)
	}

	// Three clients, each resuming its own session several times.
	sessions := map[string]string{} // session file → backend
	for i := 0; i < 3; i++ {
		f := filepath.Join(dir, fmt.Sprintf("sess%d", i))
		b, _ := sClient(t, h.fe, "", f)
		sessions[f] = b
	}
	for round := 0; round < 4; round++ {
		for f, want := range sessions {
			got, reused := sClient(t, h.fe, f, "")
			if got != want || !reused {
				t.Fatalf("round %d: session %s went to %s (reused %v), want %s resumed", round, filepath.Base(f), got, reused, want)
			}
		}
	}
	tb := h.m.Table("ssl")
	if tb.Hits.Load() < 12 || tb.Len() == 0 {
		t.Errorf("table counters: hits %d entries %d", tb.Hits.Load(), tb.Len())
	}

	// The server of session 0 goes down: its client is balanced to another
	// server (a new session there), which the table then remembers.
	f0 := filepath.Join(dir, "sess0")
	old := sessions[f0]
	h.p.Server("exchange", old).SetHealth(upstream.Down, "test: killed")
	got, reused := sClient(t, h.fe, f0, f0)
	if got == old || reused {
		t.Fatalf("session of down server %s went to %s (reused %v)", old, got, reused)
	}
	for i := 0; i < 3; i++ {
		again, reused := sClient(t, h.fe, f0, "")
		if again != got || !reused {
			t.Fatalf("moved session went to %s (reused %v), want %s", again, reused, got)
		}
	}
	// Back up: the moved session stays where it is now.
	h.p.Server("exchange", old).SetHealth(upstream.Up, "test: back")
	if again, _ := sClient(t, h.fe, f0, ""); again != got {
		t.Fatalf("after %s came back the session went to %s, want %s", old, again, got)
	}
}

// TestGoClientsTicketResumptionFallbackSrc: Go clients resume TLS 1.2 by
// ticket only (their session ID is a random marker), so session-ID
// persistence cannot hold them; with fallback: src they stay on their
// server and resume every time.
func TestGoClientsTicketResumptionFallbackSrc(t *testing.T) {
	bes := startOpenSSLBackends(t, []string{"ex1", "ex2", "ex3"})
	h := startStickProxy(t, nil, stickDoc("{table: ssl, on: ssl_session_id, fallback: src, fallback_table: src}", bes))
	cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	first, resumed := goClient(t, h.fe, cfg)
	if resumed {
		t.Fatal("first connection resumed")
	}
	for i := 0; i < 5; i++ {
		got, resumed := goClient(t, h.fe, cfg)
		if got != first || !resumed {
			t.Fatalf("connection %d went to %s (resumed %v), want %s resumed", i, got, resumed, first)
		}
	}
	if n := h.m.Table("src").Len(); n != 1 {
		t.Errorf("src table has %d entries, want 1 (loopback client)", n)
	}
}

// TestTLS13SNISrc: TLS 1.3 clients (session ID is a random echo, PSK
// resumption) are held by SNI + source with tls13: sni_src.
func TestTLS13SNISrc(t *testing.T) {
	bes := startOpenSSLBackends(t, []string{"ex1", "ex2"})
	h := startStickProxy(t, nil, stickDoc("{table: ssl, on: ssl_session_id, tls13: sni_src}", bes))
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "mail.example.com", ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	first, _ := goClient(t, h.fe, cfg)
	for i := 0; i < 4; i++ {
		if got, resumed := goClient(t, h.fe, cfg); got != first || !resumed {
			t.Fatalf("connection %d went to %s (resumed %v), want %s resumed", i, got, resumed, first)
		}
	}
	// Other names from the same client are other keys: balanced.
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		o, _ := goClient(t, h.fe, &tls.Config{InsecureSkipVerify: true, ServerName: fmt.Sprintf("n%d.example", i)})
		seen[o] = true
	}
	if len(seen) != 2 {
		t.Fatalf("two new names went to %v, want both servers", seen)
	}
}

// TestTLS13CapableClientToTLS12Servers: a client offering TLS 1.3 to
// TLS 1.2-only servers (a modern client, an older Exchange) resumes with
// its real TLS 1.2 session ID, which is looked up although the client
// offers TLS 1.3.
func TestTLS13CapableClientToTLS12Servers(t *testing.T) {
	bes := startOpenSSLBackends(t, []string{"ex1", "ex2", "ex3"}, "-no_tls1_3")
	h := startStickProxy(t, nil, stickDoc("{table: ssl, on: ssl_session_id}", bes))
	sess := filepath.Join(t.TempDir(), "sess")
	first, _ := sClientArgs(t, h.fe, "", sess)
	for i := 0; i < 4; i++ {
		got, reused := sClientArgs(t, h.fe, sess, "")
		if got != first || !reused {
			t.Fatalf("resumption %d went to %s (reused %v), want %s resumed", i, got, reused, first)
		}
	}
}

// TestSSLSessionTableLimitsOpenSSL: with real TLS sessions, the table's
// size and expire hold: a third session in a table of two evicts the least
// recently used one, whose resumption then misses and is balanced; after
// expire nothing is found; a resumption after a miss is learned again.
func TestSSLSessionTableLimitsOpenSSL(t *testing.T) {
	bes := startOpenSSLBackends(t, []string{"ex1", "ex2", "ex3"})
	doc := strings.Replace(stickDoc("{table: ssl, on: ssl_session_id}", bes), "size: 30000, expire: 1m", "size: 2, expire: 1m", 1)
	h := startStickProxy(t, nil, doc)
	tb := h.m.Table("ssl")
	// Set before the first connection; moved forward to expire entries.
	var skew atomic.Int64
	start := time.Now()
	tb.now = func() int64 { return int64(time.Since(start)) + skew.Load() }
	dir := t.TempDir()
	sess := func(i int) string { return filepath.Join(dir, fmt.Sprintf("sess%d", i)) }
	home := map[int]string{}
	for i := 0; i < 3; i++ {
		home[i], _ = sClient(t, h.fe, "", sess(i))
	}
	if tb.Len() != 2 || tb.Evictions.Load() != 1 {
		t.Fatalf("3 sessions in a table of 2: %d entries, %d evictions", tb.Len(), tb.Evictions.Load())
	}
	for i := 1; i < 3; i++ {
		if got, reused := sClient(t, h.fe, sess(i), ""); got != home[i] || !reused {
			t.Fatalf("session %d went to %s (reused %v), want %s", i, got, reused, home[i])
		}
	}
	hits := tb.Hits.Load()
	sClient(t, h.fe, sess(0), sess(0)) // evicted: a miss, balanced anywhere
	if tb.Hits.Load() != hits {
		t.Fatalf("the evicted session was found in the table")
	}
	// Learned again: it now sticks to where it landed.
	again, _ := sClient(t, h.fe, sess(0), "")
	if got, reused := sClient(t, h.fe, sess(0), ""); got != again || !reused {
		t.Fatalf("relearned session went to %s (reused %v), want %s", got, reused, again)
	}

	skew.Store(int64(2 * time.Minute))
	hits, expired := tb.Hits.Load(), tb.Expired.Load()
	sClient(t, h.fe, sess(1), "")
	if tb.Hits.Load() != hits || tb.Expired.Load() == expired {
		t.Fatalf("after expire: hits %d → %d, expired %d → %d", hits, tb.Hits.Load(), expired, tb.Expired.Load())
	}
}
