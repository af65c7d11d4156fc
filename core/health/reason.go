package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/vipgate/vipgate/core/config"
)

// Reason turns a probe error into the short text that goes into events,
// logs and mails ("connection refused", "timeout", "TLS: certificate signed
// by unknown authority"). Check kinds share it so that the same failure
// reads the same whatever probed it.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
		alertErr  tls.AlertError
		dnsErr    *net.DNSError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.As(err, &unknownCA):
		return "TLS: certificate signed by unknown authority"
	case errors.As(err, &hostErr):
		return "TLS: " + hostErr.Error()
	case errors.As(err, &certErr):
		return "TLS: " + certErr.Error()
	case errors.As(err, &recErr):
		return "TLS: server did not answer with TLS"
	case errors.As(err, &alertErr):
		return "TLS: " + alertErr.Error()
	case errors.As(err, &dnsErr):
		return "DNS: " + dnsErr.Err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by server"
	}
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return "timeout"
	}
	return err.Error()
}

// TLSConfig builds the client TLS settings of a check: verify none skips
// verification (HAProxy `verify none`), otherwise the server certificate is
// verified against ca_file (or the system roots) for the name given by sni,
// else fallbackName.
func TLSConfig(c *config.Check, fallbackName string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: fallbackName}
	if c.SNI != "" {
		tc.ServerName = c.SNI
	}
	if c.Verify == "none" {
		tc.InsecureSkipVerify = true // the operator asked for `verify none`
		return tc, nil
	}
	if c.CA != "" {
		pool, err := config.LoadCA(c.CA)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// TargetAddr applies a check port override to a server address.
func TargetAddr(serverAddr string, port int) string {
	if port == 0 {
		return serverAddr
	}
	host, _, err := net.SplitHostPort(serverAddr)
	if err != nil {
		return serverAddr
	}
	return net.JoinHostPort(host, fmt.Sprint(port))
}

// Snip shortens what a server sent for a reason text.
func Snip(b []byte, n int) string {
	s := string(b)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.TrimSpace(strings.ToValidUTF8(s, "?"))
}
