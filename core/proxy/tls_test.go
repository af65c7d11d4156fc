package proxy

import (
	"bytes"
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
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vipgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes cert and key PEM files for names and returns their paths.
func (ca *testCA) issue(t testing.TB, dir, file string, serial int64, client bool, names ...string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	cp, kp := filepath.Join(dir, file+".crt"), filepath.Join(dir, file+".key")
	// Write-then-rename: a reload never sees half a file.
	for p, b := range map[string][]byte{
		cp: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		kp: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}),
	} {
		if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	return cp, kp
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func peerCert(t testing.TB, addr, sni string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, RootCAs: roots, InsecureSkipVerify: roots == nil, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("tls dial %s: %v", sni, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestHTTPTLSTermination(t *testing.T) {
	g := newGoBackend(t, "web1")
	ca := newTestCA(t)
	dir := t.TempDir()
	ac, ak := ca.issue(t, dir, "a", 10, false, "a.example")
	bc, bk := ca.issue(t, dir, "b", 11, false, "b.example", "*.wild.example")
	h := startProxy(t, httpDoc(fmt.Sprintf(`    http: {x_forwarded_proto: true}
    tls:
      certificates: [{cert: %q, key: %q}, {cert: %q, key: %q}]
      reload_interval: 100ms`, ac, ak, bc, bk), "", oneBackend(g.addr())))
	addr := h.addr("fe")
	roots := ca.pool()

	// SNI picks the certificate; unknown names get the first one.
	for sni, want := range map[string]string{"a.example": "a.example", "b.example": "b.example", "x.wild.example": "b.example", "other.example": "a.example"} {
		if got := peerCert(t, addr, sni, nil2(roots, sni)).Subject.CommonName; got != want {
			t.Errorf("SNI %s: certificate %s, want %s", sni, got, want)
		}
	}

	// HTTP/1.1 and HTTP/2 (ALPN) over TLS to an HTTP/1.1 backend.
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "a.example"}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		resp, body := get(t, c, "https://"+addr+"/p?q=1")
		wantMajor := map[bool]int{false: 1, true: 2}[h2]
		if resp.StatusCode != 200 || resp.ProtoMajor != wantMajor || field(body, "h:X-Forwarded-Proto") != "https" || field(body, "uri") != "/p?q=1" {
			t.Fatalf("h2=%v: %d proto %d body %q", h2, resp.StatusCode, resp.ProtoMajor, body)
		}
		// Chunked response, then a streamed request body of unknown length.
		if _, body := get(t, c, "https://"+addr+"/chunked"); body != "part0;part1;part2;part3;part4;" {
			t.Fatalf("h2=%v chunked: %q", h2, body)
		}
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < 10; i++ {
				pw.Write(bytes.Repeat([]byte{'x'}, 1000))
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", "https://"+addr+"/up", pr)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(resp); field(b, "body") != "10000" {
			t.Fatalf("h2=%v streamed body: %q", h2, b)
		}
		tr.CloseIdleConnections()
	}

	// Certificate reload without restart.
	ca.issue(t, dir, "a", 99, false, "a.example", "new.example")
	testenv.Eventually(t, 5*time.Second, "new certificate served", func() bool {
		return peerCert(t, addr, "a.example", roots).SerialNumber.Int64() == 99
	})
}

// nil2 returns roots, or nil (no verification) for the name no
// certificate covers.
func nil2(roots *x509.CertPool, sni string) *x509.CertPool {
	if sni == "other.example" {
		return nil
	}
	return roots
}

func TestHTTPTLSClientCert(t *testing.T) {
	g := newGoBackend(t, "web1")
	ca := newTestCA(t)
	dir := t.TempDir()
	sc, sk := ca.issue(t, dir, "srv", 10, false, "a.example")
	cc, ck := ca.issue(t, dir, "cli", 11, true, "client1")
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.pem, 0o600)
	h := startProxy(t, httpDoc(fmt.Sprintf(`    tls: {certificates: [{cert: %q, key: %q}], client_ca: %q, min_version: "1.3"}`, sc, sk, caFile), "", oneBackend(g.addr())))
	addr := h.addr("fe")
	cert, err := tls.LoadX509KeyPair(cc, ck)
	if err != nil {
		t.Fatal(err)
	}
	with := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: "a.example", Certificates: []tls.Certificate{cert}}}}
	if resp, _ := get(t, with, "https://"+addr+"/"); resp.StatusCode != 200 {
		t.Fatalf("with client certificate: %d", resp.StatusCode)
	}
	without := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: "a.example"}}}
	if _, err := without.Get("https://" + addr + "/"); err == nil {
		t.Fatal("request without a client certificate succeeded")
	}
	// TLS 1.2 is refused by min_version 1.3.
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool(), ServerName: "a.example", MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}); err == nil {
		c.Close()
		t.Fatal("TLS 1.2 handshake succeeded")
	}
}

func TestHTTPServerTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v sni=%s", r.TLS != nil, r.TLS.ServerName)
	}))
	defer ts.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600)
	addr := ts.Listener.Addr().String()
	for _, tc := range []struct {
		ssl    string
		status int
		body   string
	}{
		{"{verify: none, sni: exchange.example}", 200, "tls=true sni=exchange.example"},
		{fmt.Sprintf("{verify: required, ca_file: %q, sni: example.com}", caFile), 200, "tls=true sni=example.com"},
		{"{verify: required, sni: example.com}", 503, ""}, // unknown CA: the handshake fails, no server
	} {
		t.Run(tc.ssl, func(t *testing.T) {
			h := startProxy(t, fmt.Sprintf(`
defaults: {mode: http, retries: 0}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, ssl: %s, servers: [{name: s1, address: %q}]}]
`, tc.ssl, addr))
			resp, body := get(t, http.DefaultClient, "http://"+h.addr("fe")+"/")
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestHTTPHeaderFetches: %[...] values in header actions, including the
// client certificate, reach the server.
func TestHTTPHeaderFetches(t *testing.T) {
	g := newGoBackend(t, "web1")
	ca := newTestCA(t)
	dir := t.TempDir()
	sc, sk := ca.issue(t, dir, "srv", 10, false, "a.example")
	cc, ck := ca.issue(t, dir, "cli", 11, true, "client1")
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.pem, 0o600)
	h := startProxy(t, httpDoc(fmt.Sprintf(`    tls: {certificates: [{cert: %q, key: %q}], client_ca: %q, client_auth: optional}`, sc, sk, caFile),
		`    rules: [{set_header: {X-Client: "%[src]:%[src_port]", X-TLS: "%[ssl_fc] %[ssl_fc_sni] %[ssl_fc_protocol] 100%%", X-Cert: "%[ssl_c_used] %[ssl_c_s_dn] %[ssl_c_serial]"}}]`,
		oneBackend(g.addr())))
	cert, _ := tls.LoadX509KeyPair(cc, ck)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: "a.example", Certificates: []tls.Certificate{cert}}}}
	_, body := get(t, c, "https://"+h.addr("fe")+"/")
	if got := field(body, "h:X-Client"); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("X-Client %q", got)
	}
	if got := field(body, "h:X-Tls"); got != "1 a.example TLSv1.3 100%" {
		t.Errorf("X-TLS %q", got)
	}
	if got := field(body, "h:X-Cert"); got != "1 CN=client1 b" {
		t.Errorf("X-Cert %q", got)
	}
}
