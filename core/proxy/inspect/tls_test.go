package inspect

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// captureConn records what a TLS client writes and fails its reads, so the
// handshake stops after the ClientHello.
type captureConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *captureConn) Read(p []byte) (int, error)  { return 0, io.EOF }
func (c *captureConn) Close() error                { return nil }
func (c *captureConn) SetDeadline(time.Time) error { return nil }
func (c *captureConn) SetWriteDeadline(time.Time) error {
	return nil
}

func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	cc := &captureConn{}
	_ = tls.Client(cc, cfg).Handshake()
	if cc.out.Len() == 0 {
		t.Fatal("client wrote nothing")
	}
	return cc.out.Bytes()
}

func selfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serverHello sends ch to a real Go TLS server and returns its first flight.
func serverHello(t testing.TB, ch []byte, max uint16) []byte {
	t.Helper()
	a, b := net.Pipe()
	cert := selfSigned(t)
	go func() {
		_ = tls.Server(b, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: max}).Handshake()
		b.Close()
	}()
	go func() { _, _ = a.Write(ch) }()
	_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := Peek(a, 5*time.Second, func(p []byte) bool {
		_, err := ParseServerHello(p)
		return err != ErrNeedMore
	})
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// refragment re-splits the handshake bytes of the records in b into records
// of at most n bytes each.
func refragment(b []byte, n int) []byte {
	var hs []byte
	for len(b) >= 5 {
		l := int(b[3])<<8 | int(b[4])
		hs = append(hs, b[5:5+l]...)
		b = b[5+l:]
	}
	var out []byte
	for len(hs) > 0 {
		k := min(n, len(hs))
		out = append(out, 0x16, 3, 1, byte(k>>8), byte(k))
		out = append(out, hs[:k]...)
		hs = hs[k:]
	}
	return out
}

func TestClientHello(t *testing.T) {
	sid := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name      string
		cfg       *tls.Config
		sni       string
		alpn      []string
		tls13     bool
		sidLen    int
		fragments int
	}{
		{"tls12 sni alpn", &tls.Config{ServerName: "mail.example.com", NextProtos: []string{"h2", "http/1.1"}, MaxVersion: tls.VersionTLS12}, "mail.example.com", []string{"h2", "http/1.1"}, false, 0, 0},
		{"tls13 offered", &tls.Config{ServerName: "a.example", MaxVersion: tls.VersionTLS13}, "a.example", nil, true, 32, 0},
		{"no sni", &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}, "", nil, false, 0, 0},
		{"split in 1-byte records", &tls.Config{ServerName: "x.example", MaxVersion: tls.VersionTLS13}, "x.example", nil, true, 32, 1},
		{"split in 50-byte records", &tls.Config{ServerName: "x.example", MaxVersion: tls.VersionTLS12}, "x.example", nil, false, 0, 50},
	}
	_ = sid
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := clientHello(t, tc.cfg)
			if tc.fragments > 0 {
				b = refragment(b, tc.fragments)
			}
			h, err := ParseClientHello(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.Server || h.SNI != tc.sni || !equalStrings(h.ALPN, tc.alpn) || h.OffersTLS13() != tc.tls13 || len(h.SessionID) > 32 {
				t.Fatalf("got %+v", h)
			}
			if h.Len != len(b) {
				t.Errorf("Len %d, want %d", h.Len, len(b))
			}
			// Every strict prefix asks for more bytes, never a verdict.
			for i := 0; i < len(b); i++ {
				if _, err := ParseClientHello(b[:i]); err != ErrNeedMore {
					t.Fatalf("prefix %d/%d: %v", i, len(b), err)
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestServerHello(t *testing.T) {
	ch12 := clientHello(t, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	sh := serverHello(t, ch12, tls.VersionTLS12)
	h, err := ParseServerHello(sh)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Server || h.NegotiatedVersion() != VersionTLS12 || h.CipherSuite == 0 {
		t.Fatalf("tls1.2 server hello: %+v", h)
	}
	ch13 := clientHello(t, &tls.Config{InsecureSkipVerify: true})
	sh = serverHello(t, ch13, 0)
	h, err = ParseServerHello(sh)
	if err != nil {
		t.Fatal(err)
	}
	if h.NegotiatedVersion() != VersionTLS13 {
		t.Fatalf("tls1.3 server hello: %+v", h)
	}
	if _, err := ParseClientHello(sh); err == nil || err == ErrNeedMore {
		t.Fatalf("a ServerHello parsed as ClientHello: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	good := clientHello(t, &tls.Config{ServerName: "s.example", MaxVersion: tls.VersionTLS12})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name    string
		in      []byte
		notTLS  bool
		wantErr bool
	}{
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), true, true},
		{"ssh banner", []byte("SSH-2.0-OpenSSH\r\n"), true, true},
		{"sslv2 hello", []byte{0x80, 0x2e, 0x01, 0x00, 0x02}, true, true},
		{"alert record", []byte{0x15, 3, 3, 0, 2, 2, 40}, true, true},
		{"bad record version", []byte{0x16, 9, 1, 0, 4, 1, 0, 0, 0}, true, true},
		{"zero record", []byte{0x16, 3, 1, 0, 0}, false, true},
		{"huge record", []byte{0x16, 3, 1, 0xff, 0xff}, false, true},
		{"huge handshake", []byte{0x16, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}, false, true},
		{"server hello type", mut(func(b []byte) []byte { b[5] = 2; return b }), false, true},
		{"session id too long", mut(func(b []byte) []byte { b[5+4+2+32] = 33; return b }), false, true},
		{"trailing byte after extensions", mut(func(b []byte) []byte {
			b = append(b, 0)
			b[4]++ // record length (the hello is short: no carry)
			b[8]++ // handshake length
			return b
		}), false, true},
		{"truncated extension", mut(func(b []byte) []byte {
			b = b[:len(b)-1]
			b[4]--
			b[8]--
			return b
		}), false, true},
		{"bad legacy version", mut(func(b []byte) []byte { b[9] = 7; return b }), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseClientHello(tc.in)
			if tc.notTLS && !errors.Is(err, ErrNotTLS) {
				t.Fatalf("want ErrNotTLS, got %v", err)
			}
			if tc.wantErr && (err == nil || err == ErrNeedMore) {
				t.Fatalf("want a verdict error, got %v", err)
			}
			if !ClientHelloComplete(tc.in) {
				t.Errorf("ClientHelloComplete would keep waiting on bad input")
			}
		})
	}
}

func TestPeekAndReplay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := clientHello(t, &tls.Config{ServerName: "peek.example", MaxVersion: tls.VersionTLS12})
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		// Dribble the hello in three writes: the peek must reassemble.
		for _, part := range [][]byte{ch[:3], ch[3:40], ch[40:]} {
			_, _ = c.Write(part)
			time.Sleep(20 * time.Millisecond)
		}
		_, _ = c.Write([]byte("tail"))
		time.Sleep(100 * time.Millisecond)
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := Peek(c, 5*time.Second, ClientHelloComplete)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseClientHello(got)
	if err != nil || h.SNI != "peek.example" {
		t.Fatalf("hello %+v, %v", h, err)
	}
	rc := Replay(c, got)
	all := make([]byte, len(ch)+4)
	_ = rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(rc, all); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all, append(append([]byte(nil), ch...), "tail"...)) {
		t.Fatal("replayed stream differs from what the client sent")
	}
}

func TestPeekSilentClient(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	got, err := Peek(a, 50*time.Millisecond, ClientHelloComplete)
	if err != nil || len(got) != 0 {
		t.Fatalf("silent client: %q, %v", got, err)
	}
}

func BenchmarkParseClientHello(b *testing.B) {
	ch := clientHello(b, &tls.Config{ServerName: "mail.example.com", NextProtos: []string{"h2"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClientHello(ch); err != nil {
			b.Fatal(err)
		}
	}
}
