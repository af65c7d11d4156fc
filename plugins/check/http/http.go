// Package http is the "http" health check kind (HAProxy `option httpchk` +
// `http-check expect`): one request per check over a fresh connection,
// plain or TLS (`ssl: true`, `verify: none`), with a method, path, Host
// header and extra headers; the answer passes on an expected status (any
// 2xx/3xx by default, as HAProxy) and, if set, a regular expression on the
// start of the body.
package http

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
)

// maxBody bounds how much of the body the regular expression sees.
const maxBody = 64 << 10

// Checker probes one target per Check call; it is safe for concurrent use.
type Checker struct {
	method, path, host string
	headers            http.Header
	expect             []int
	body               *regexp.Regexp
	scheme             string
	client             *http.Client
}

// New builds an http checker from a validated check config.
func New(c *config.Check) (health.Checker, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &config.HTTPCheck{}
	}
	ch := &Checker{
		method: hc.Method, path: hc.Path, host: hc.Host, expect: hc.ExpectStatus,
		headers: http.Header{}, scheme: "http",
	}
	if ch.method == "" {
		ch.method = http.MethodGet
	}
	if ch.path == "" {
		ch.path = "/"
	}
	for k, v := range hc.Headers {
		ch.headers.Set(k, v)
	}
	// net/http sends Request.Host, never a "Host" header: honour one given
	// among the headers as if it were the host setting.
	if h := ch.headers.Get("Host"); h != "" {
		if ch.host == "" {
			ch.host = h
		}
		ch.headers.Del("Host")
	}
	if ch.headers.Get("User-Agent") == "" {
		ch.headers.Set("User-Agent", "vipgate-check")
	}
	if hc.ExpectBody != "" {
		re, err := regexp.Compile(hc.ExpectBody)
		if err != nil {
			return nil, fmt.Errorf("expect_body_regex: %w", err)
		}
		ch.body = re
	}
	tr := &http.Transport{
		// Never through an environment proxy: the check is about this server.
		Proxy: nil,
		// health.Dial bounds the connect and then the rest of the check as
		// HAProxy's timeout connect / timeout check do, and closes with RST.
		DialContext: health.Dial,
		// One connection per check, as HAProxy: a kept-alive connection
		// would hide a server that stopped accepting.
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if c.SSL {
		name := ""
		if ch.host != "" {
			name = ch.host
			if h, _, err := net.SplitHostPort(ch.host); err == nil {
				name = h
			}
		}
		tc, err := health.TLSConfig(c, name)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
		ch.scheme = "https"
	}
	ch.client = &http.Client{
		Transport: tr,
		// A redirect is an answer, judged by its status.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return ch, nil
}

// Check sends the request to t.Addr and judges the answer.
func (ch *Checker) Check(ctx context.Context, t health.Target) health.Result {
	start := time.Now()
	r := ch.check(ctx, t.Addr)
	r.Duration = time.Since(start)
	return r
}

func (ch *Checker) check(ctx context.Context, addr string) health.Result {
	req, err := http.NewRequestWithContext(ctx, ch.method, ch.scheme+"://"+addr+ch.path, nil)
	if err != nil {
		return health.Result{Reason: "bad request: " + err.Error()}
	}
	req.Header = ch.headers.Clone()
	if ch.host != "" {
		req.Host = ch.host
	}
	resp, err := ch.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return health.Result{Reason: health.Reason(ctx.Err())}
		}
		var tlsRec tls.RecordHeaderError
		if errors.As(err, &tlsRec) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			return health.Result{Reason: "TLS: server did not answer with TLS"}
		}
		// Drop net/http's `Get "https://…":` prefix: the event names the server.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return health.Result{Reason: health.Reason(err)}
	}
	defer resp.Body.Close()
	if !ch.statusOK(resp.StatusCode) {
		return health.Result{Reason: "HTTP " + strconv.Itoa(resp.StatusCode)}
	}
	if ch.body == nil {
		return health.Result{OK: true}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if ch.body.Match(b) {
		return health.Result{OK: true}
	}
	if err != nil {
		return health.Result{Reason: fmt.Sprintf("HTTP %d, reading body: %s", resp.StatusCode, health.Reason(err))}
	}
	return health.Result{Reason: fmt.Sprintf("HTTP %d, body does not match %q", resp.StatusCode, ch.body.String())}
}

func (ch *Checker) statusOK(code int) bool {
	if len(ch.expect) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(ch.expect, code)
}
