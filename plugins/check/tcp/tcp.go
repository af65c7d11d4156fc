// Package tcp is the "tcp" health check kind: connect (HAProxy's plain
// `check`), optionally over TLS (`ssl: true`), optionally sending a string
// and expecting a string or a regular expression in the answer (HAProxy
// `tcp-check send` / `tcp-check expect string|rstring`).
package tcp

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"slices"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
)

// maxExpect bounds how much of the answer is searched for the expected
// string, like HAProxy's check buffer.
const maxExpect = 16 << 10

// Checker probes one target per Check call; it is safe for concurrent use.
type Checker struct {
	send   []byte
	expect []byte
	re     *regexp.Regexp
	// tls is nil for a plain TCP check.
	tls *tls.Config
}

// New builds a tcp checker from a validated check config.
func New(c *config.Check) (health.Checker, error) {
	ch := &Checker{send: []byte(c.Send), expect: []byte(c.Expect)}
	if c.ExpectRegex != "" {
		re, err := regexp.Compile(c.ExpectRegex)
		if err != nil {
			return nil, fmt.Errorf("expect_regex: %w", err)
		}
		ch.re = re
	}
	if c.SSL || c.Kind == "tls" {
		tc, err := health.TLSConfig(c, "")
		if err != nil {
			return nil, err
		}
		ch.tls = tc
	}
	return ch, nil
}

// Check connects to t.Addr and runs the configured exchange.
func (ch *Checker) Check(ctx context.Context, t health.Target) health.Result {
	start := time.Now()
	r := ch.check(ctx, t.Addr)
	r.Duration = time.Since(start)
	return r
}

func fail(what string, err error) health.Result {
	reason := health.Reason(err)
	if what != "" {
		reason = what + ": " + reason
	}
	return health.Result{Reason: reason}
}

func (ch *Checker) check(ctx context.Context, addr string) health.Result {
	// health.Dial bounds the connect and then the rest of the check as
	// HAProxy's timeout connect / timeout check do, and closes with RST.
	conn, err := health.Dial(ctx, "tcp", addr)
	if err != nil {
		return fail("", err)
	}
	defer conn.Close()
	// A shutdown or reload cancels ctx without a deadline change: unblock I/O.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if ch.tls != nil {
		cfg := ch.tls
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg = cfg.Clone()
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			if ctx.Err() != nil {
				return fail("TLS handshake", ctx.Err())
			}
			return health.Result{Reason: tlsReason(err)}
		}
		conn = tc
	}
	if len(ch.send) > 0 {
		if _, err := conn.Write(ch.send); err != nil {
			return fail("send", ctxErr(ctx, err))
		}
	}
	if len(ch.expect) == 0 && ch.re == nil {
		return health.Result{OK: true}
	}
	return ch.expectAnswer(ctx, conn)
}

// expectAnswer reads until the expected string or pattern shows up, the
// server closes, the buffer is full or the deadline passes.
func (ch *Checker) expectAnswer(ctx context.Context, conn net.Conn) health.Result {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), maxExpect-len(buf)))
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if ch.matches(buf) {
			return health.Result{OK: true}
		}
		if len(buf) >= maxExpect {
			return health.Result{Reason: fmt.Sprintf("unexpected answer %q", health.Snip(buf, 40))}
		}
		if err != nil {
			if len(buf) > 0 {
				return health.Result{Reason: fmt.Sprintf("unexpected answer %q (%s)", health.Snip(buf, 40), health.Reason(ctxErr(ctx, err)))}
			}
			return fail("no answer", ctxErr(ctx, err))
		}
	}
}

func (ch *Checker) matches(b []byte) bool {
	if ch.re != nil {
		return ch.re.Match(b)
	}
	return bytes.Contains(b, ch.expect)
}

// ctxErr prefers the context's reason (timeout, cancel) over the I/O error
// that the deadline caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func tlsReason(err error) string {
	r := health.Reason(err)
	if len(r) >= 4 && r[:4] == "TLS:" {
		return r
	}
	return "TLS handshake: " + r
}
