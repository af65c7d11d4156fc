// Package testcert makes throwaway self-signed certificates for tests.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// Cert describes a self-signed certificate. Zero times mean "valid from an
// hour ago for a day".
type Cert struct {
	CN                  string
	DNS                 []string
	IPs                 []net.IP
	NotBefore, NotAfter time.Time
	CA                  bool
}

// PEM returns the certificate and its PKCS#8 ECDSA key, PEM-encoded.
func PEM(t testing.TB, c Cert) (cert, key []byte) {
	t.Helper()
	if c.NotBefore.IsZero() {
		c.NotBefore = time.Now().Add(-time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = time.Now().Add(24 * time.Hour)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: c.CN}, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		DNSNames: c.DNS, IPAddresses: c.IPs,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: c.CA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// Write writes c to certFile and its key to keyFile, or after the
// certificate in certFile when keyFile is "". The files are world-readable
// (an unprivileged MTA or server under test may need to read them).
func Write(t testing.TB, c Cert, certFile, keyFile string) {
	t.Helper()
	cert, key := PEM(t, c)
	if keyFile == "" {
		cert = append(cert, key...)
	} else if err := os.WriteFile(keyFile, key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
}
