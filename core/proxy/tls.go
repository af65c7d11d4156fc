package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// tlsTerm terminates TLS for an http frontend: certificates chosen by SNI,
// reloaded from disk when their files change (checked at most every
// reload_interval, on handshakes: no goroutine to manage).
type tlsTerm struct {
	cfg     *config.FrontendTLS
	log     *slog.Logger
	base    *tls.Config
	certs   atomic.Pointer[certSet]
	checkMu sync.Mutex
	checked atomic.Int64 // unix nano of the last file check
}

// certSet is one loaded generation of certificates.
type certSet struct {
	list   []*tls.Certificate
	byName map[string]*tls.Certificate // exact names and "*.domain" wildcards
	mtimes []time.Time                 // of each cert/key file pair, for change detection
}

func newTLSTerm(c *config.FrontendTLS, log *slog.Logger) (*tlsTerm, error) {
	t := &tlsTerm{cfg: c, log: log}
	cs, err := loadCertSet(c)
	if err != nil {
		return nil, err
	}
	t.certs.Store(cs)
	t.checked.Store(time.Now().UnixNano())
	base := &tls.Config{
		MinVersion:     tlsVersion(c.MinVersion),
		MaxVersion:     tlsVersion(c.MaxVersion),
		NextProtos:     append([]string(nil), c.ALPN...),
		GetCertificate: t.getCertificate,
	}
	if len(c.Ciphers) > 0 {
		ids := map[string]uint16{}
		for _, cs := range tls.CipherSuites() {
			ids[cs.Name] = cs.ID
		}
		for _, n := range c.Ciphers {
			id, ok := ids[n]
			if !ok {
				return nil, fmt.Errorf("tls: unknown or insecure cipher suite %q", n)
			}
			base.CipherSuites = append(base.CipherSuites, id)
		}
	}
	if c.ClientCA != "" {
		pool, err := config.LoadCA(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls client_ca: %w", err)
		}
		base.ClientCAs = pool
		base.ClientAuth = tls.RequireAndVerifyClientCert
		if c.ClientAuth == "optional" {
			base.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	t.base = base
	return t, nil
}

func tlsVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

func loadCertSet(c *config.FrontendTLS) (*certSet, error) {
	cs := &certSet{byName: map[string]*tls.Certificate{}}
	for _, cf := range c.Certificates {
		key := cf.Key
		if key == "" {
			key = cf.Cert
		}
		cert, err := tls.LoadX509KeyPair(cf.Cert, key)
		if err != nil {
			return nil, fmt.Errorf("tls certificate %s: %w", cf.Cert, err)
		}
		leaf := cert.Leaf
		if leaf == nil && len(cert.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(cert.Certificate[0])
		}
		cs.list = append(cs.list, &cert)
		if leaf != nil {
			names := append([]string(nil), leaf.DNSNames...)
			if len(names) == 0 && leaf.Subject.CommonName != "" {
				names = append(names, leaf.Subject.CommonName)
			}
			for _, n := range names {
				n = strings.ToLower(n)
				if _, dup := cs.byName[n]; !dup {
					cs.byName[n] = &cert
				}
			}
		}
		cs.mtimes = append(cs.mtimes, mtime(cf.Cert), mtime(key))
	}
	if len(cs.list) == 0 {
		return nil, errors.New("tls: no certificate")
	}
	return cs, nil
}

func mtime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

// maybeReload reloads the certificates when a file's mtime changed. A
// broken new file is logged and the old certificates stay in service.
func (t *tlsTerm) maybeReload() {
	now := time.Now().UnixNano()
	last := t.checked.Load()
	if now-last < int64(t.cfg.ReloadInterval.D()) || !t.checked.CompareAndSwap(last, now) {
		return
	}
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	cur := t.certs.Load()
	i := 0
	changed := false
	for _, cf := range t.cfg.Certificates {
		key := cf.Key
		if key == "" {
			key = cf.Cert
		}
		if !mtime(cf.Cert).Equal(cur.mtimes[i]) || !mtime(key).Equal(cur.mtimes[i+1]) {
			changed = true
		}
		i += 2
	}
	if !changed {
		return
	}
	cs, err := loadCertSet(t.cfg)
	if err != nil {
		t.log.Error("tls certificate reload failed; keeping the previous certificates", "err", err)
		return
	}
	t.certs.Store(cs)
	t.log.Info("tls certificates reloaded", "count", len(cs.list))
}

func (t *tlsTerm) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	t.maybeReload()
	cs := t.certs.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := cs.byName[name]; c != nil {
			return c, nil
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := cs.byName["*"+name[i:]]; c != nil {
				return c, nil
			}
		}
	}
	return cs.list[0], nil
}

// handshake runs the server handshake within d and returns the negotiated
// application protocol.
func (t *tlsTerm) handshake(ctx context.Context, c net.Conn, d time.Duration) (*tls.Conn, string, error) {
	tc := tls.Server(rawConnOf(c), t.base)
	hctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, "", err
	}
	return tc, tc.ConnectionState().NegotiatedProtocol, nil
}
