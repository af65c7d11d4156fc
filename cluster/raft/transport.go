package raft

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"

	"github.com/vipgate/vipgate/core/accept"
	"github.com/vipgate/vipgate/core/config"
)

// Every connection on the raft port starts, after the TLS handshake, with
// one byte naming its protocol (as Consul multiplexes its server port).
const (
	protoRaft byte = 'R'
	protoRPC  byte = 'F'
)

// LoadTLS builds the mutual-TLS configuration from PEM files: this node's
// certificate, and the cluster CA that every peer's certificate must chain
// to. Peers are authenticated by the CA alone (no host name check), so that
// nodes can be addressed by IP on any network; the CA must be dedicated to
// the cluster.
func LoadTLS(f config.TLSFiles) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("raft tls cert %s / key %s: %w", f.Cert, f.Key, err)
	}
	pool, err := config.LoadCA(f.CA)
	if err != nil {
		return nil, fmt.Errorf("raft tls: %w", err)
	}
	return MutualTLS(cert, pool), nil
}

// MutualTLS makes a config that presents cert and requires the peer (client
// or server) to present a certificate signed by a CA in pool.
func MutualTLS(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("peer presented no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("peer certificate: %w", err)
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return fmt.Errorf("peer certificate is not signed by the cluster CA: %w", err)
		}
		return nil
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The chain is checked in VerifyPeerCertificate (CA only, no name).
		InsecureSkipVerify:    true,
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: verify,
	}
}

// Faults injects network failures for tests: a blocked pair of nodes can
// neither dial nor keep connections to each other. Addresses are raft
// advertise addresses.
type Faults struct {
	mu      sync.Mutex
	blocked map[[2]string]bool
	conns   map[*faultConn]struct{}
}

// NewFaults makes an empty fault set (everything connected).
func NewFaults() *Faults {
	return &Faults{blocked: map[[2]string]bool{}, conns: map[*faultConn]struct{}{}}
}

// Partition cuts every address in a from every address in b (both ways)
// and closes their open connections.
func (f *Faults) Partition(a, b []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			f.blocked[[2]string{x, y}] = true
			f.blocked[[2]string{y, x}] = true
		}
	}
	for c := range f.conns {
		if f.blocked[[2]string{c.local, c.remote}] {
			c.Conn.Close()
			delete(f.conns, c)
		}
	}
}

// Heal removes every partition.
func (f *Faults) Heal() {
	f.mu.Lock()
	f.blocked = map[[2]string]bool{}
	f.mu.Unlock()
}

func (f *Faults) cut(local, remote string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked[[2]string{local, remote}]
}

func (f *Faults) track(c net.Conn, local, remote string) net.Conn {
	if f == nil {
		return c
	}
	fc := &faultConn{Conn: c, f: f, local: local, remote: remote}
	f.mu.Lock()
	f.conns[fc] = struct{}{}
	f.mu.Unlock()
	return fc
}

type faultConn struct {
	net.Conn
	f             *Faults
	local, remote string
}

func (c *faultConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.conns, c)
	c.f.mu.Unlock()
	return c.Conn.Close()
}

// streamLayer is the raft StreamLayer over mutual TLS. Accept returns only
// raft connections; RPC connections go to rpc.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	tls       *tls.Config
	log       *slog.Logger
	faults    *Faults
	rpc       func(net.Conn)

	raftc  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newStreamLayer(listen string, advertise string, tlsCfg *tls.Config, faults *Faults, log *slog.Logger, rpc func(net.Conn)) (*streamLayer, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("raft listen %s: %w", listen, err)
	}
	adv, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("raft advertise %s: %w", advertise, err)
	}
	if adv.Port == 0 {
		adv.Port = ln.Addr().(*net.TCPAddr).Port
	}
	s := &streamLayer{ln: ln, advertise: adv, tls: tlsCfg, log: log, faults: faults, rpc: rpc,
		raftc: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

func (s *streamLayer) acceptLoop() {
	for {
		c, err := accept.Next(context.Background(), s.ln, s.log)
		if err != nil {
			return
		}
		go s.handshake(c)
	}
}

// handshake authenticates the peer and routes the connection by its first
// byte. A peer without a certificate signed by the cluster CA is refused
// here, before any raft or RPC byte is read.
func (s *streamLayer) handshake(raw net.Conn) {
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Server(raw, s.tls)
	if err := tc.Handshake(); err != nil {
		s.log.Warn("refused raft peer", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	var b [1]byte
	if _, err := tc.Read(b[:]); err != nil {
		tc.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	var c net.Conn = tc
	if s.faults != nil {
		// The peer announces its advertise address so faults can match it.
		remote, err := readString(tc)
		if err != nil {
			tc.Close()
			return
		}
		if s.faults.cut(s.advertise.String(), remote) {
			tc.Close()
			return
		}
		c = s.faults.track(tc, s.advertise.String(), remote)
	}
	switch b[0] {
	case protoRaft:
		select {
		case s.raftc <- c:
		case <-s.closed:
			c.Close()
		}
	case protoRPC:
		s.rpc(c)
	default:
		c.Close()
	}
}

func readString(c net.Conn) (string, error) {
	var n [1]byte
	if _, err := c.Read(n[:]); err != nil {
		return "", err
	}
	buf := make([]byte, n[0])
	for got := 0; got < len(buf); {
		k, err := c.Read(buf[got:])
		if err != nil {
			return "", err
		}
		got += k
	}
	return string(buf), nil
}

// dial opens an authenticated connection of the given protocol.
func (s *streamLayer) dial(address string, proto byte, timeout time.Duration) (net.Conn, error) {
	if s.faults.cut(s.advertise.String(), address) {
		return nil, fmt.Errorf("dial %s: partitioned (test fault)", address)
	}
	d := &net.Dialer{Timeout: timeout}
	raw, err := d.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	_ = raw.SetDeadline(time.Now().Add(timeout))
	tc := tls.Client(raw, s.tls)
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", address, err)
	}
	hdr := []byte{proto}
	if s.faults != nil {
		a := s.advertise.String()
		hdr = append(hdr, byte(len(a)))
		hdr = append(hdr, a...)
	}
	if _, err := tc.Write(hdr); err != nil {
		tc.Close()
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return s.faults.track(tc, s.advertise.String(), address), nil
}

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(string(address), protoRaft, timeout)
}

// Accept implements net.Listener (raft connections only).
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.raftc:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

func (s *streamLayer) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.ln.Close()
	})
	return nil
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }
