package main

// Shared by every CLI command that talks to a running node (status, ctl,
// apply, cluster, dc, config, alerts). Extend it; do not replace it.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/vipgate/vipgate/core/config"
)

// adminClient calls a node's admin API.
type adminClient struct {
	addr  string // host:port or a full URL (https://host:port)
	token string
	http  *http.Client
	err   error // a bad --cacert, reported by the first call
}

// adminFlags registers --admin, --token and --cacert on fs (defaults from
// VIPGATE_ADMIN / VIPGATE_TOKEN / VIPGATE_CACERT) and returns a constructor
// to call once the flags are parsed.
func adminFlags(fs *pflag.FlagSet) func() *adminClient {
	// The environment is read when the command runs, not into the flag
	// defaults: help and the man pages would show (and leak) its values.
	addr := fs.String("admin", "127.0.0.1:9900", "admin API address of a node, https://host:port for TLS (env VIPGATE_ADMIN)")
	token := fs.String("token", "", "admin API bearer token (env VIPGATE_TOKEN)")
	cacert := fs.String("cacert", "", "PEM file of the CA that signed the admin API's TLS certificate (env VIPGATE_CACERT; default: system roots)")
	fromEnv := func(name, env string, v *string) string {
		if f := fs.Lookup(name); f != nil && !f.Changed {
			return envOr(env, *v)
		}
		return *v
	}
	return func() *adminClient {
		ca := fromEnv("cacert", "VIPGATE_CACERT", cacert)
		c := &adminClient{addr: fromEnv("admin", "VIPGATE_ADMIN", addr), token: fromEnv("token", "VIPGATE_TOKEN", token), http: &http.Client{Timeout: 30 * time.Second}}
		if ca != "" {
			pool, err := config.LoadCA(ca)
			if err != nil {
				c.err = fmt.Errorf("--cacert: %w", err)
			}
			c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		}
		return c
	}
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func (c *adminClient) url(path string) string {
	if strings.HasPrefix(c.addr, "http://") || strings.HasPrefix(c.addr, "https://") {
		return strings.TrimSuffix(c.addr, "/") + path
	}
	return "http://" + c.addr + path
}

// apiError is a non-2xx answer from the API.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("admin API: %s (HTTP %d)", e.Msg, e.Status) }

// do sends in (JSON, may be nil) and decodes the answer into out (may be nil).
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, c.http, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading admin API answer: %w", err)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], data...)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		if json.Valid(data) { // vipgate, another version
			return fmt.Errorf("decoding admin API answer: %w", err)
		}
		return fmt.Errorf("%s did not answer as a vipgate admin API (is --admin the right address?): %s", c.addr, firstLine(data))
	}
	return nil
}

// stream GETs path and hands each line of the answer to line until the
// answer ends, ctx ends or line fails. It has no overall timeout (do has).
func (c *adminClient) stream(ctx context.Context, path string, line func([]byte) error) error {
	hc := *c.http
	hc.Timeout = 0
	resp, err := c.send(ctx, &hc, "GET", path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if err := line(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading admin API stream: %w", err)
	}
	return nil
}

// send makes one call; an answer that is not 2xx is an *apiError (the body
// is read and closed), any other is the caller's to read and close.
func (c *adminClient) send(ctx context.Context, hc *http.Client, method, path string, in any) (*http.Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue x509.UnknownAuthorityError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("the admin API at %s presents a certificate this client does not trust (give its CA with --cacert or VIPGATE_CACERT): %w", c.addr, err)
		}
		var oe *net.OpError
		if errors.As(err, &oe) {
			return nil, fmt.Errorf("cannot reach the admin API at %s (is vipgate running? set --admin or VIPGATE_ADMIN): %v", c.addr, oe.Err)
		}
		return nil, fmt.Errorf("cannot reach the admin API at %s: %w", c.addr, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading admin API answer: %w", err)
	}
	var eb struct {
		Error string `json:"error"`
	}
	var msg string
	switch {
	case json.Unmarshal(data, &eb) == nil && eb.Error != "":
		msg = eb.Error
	case strings.Contains(string(data), "HTTP request to an HTTPS server"):
		return nil, &apiError{Status: resp.StatusCode, Msg: fmt.Sprintf("the admin API at %s speaks TLS: use --admin https://%s", c.addr, c.addr)}
	default:
		// Not vipgate's JSON: another program on that port, or a proxy
		// in the way. Its page is no use in a terminal.
		return nil, &apiError{Status: resp.StatusCode, Msg: fmt.Sprintf("%s did not answer as a vipgate admin API (is --admin the right address?): %s", c.addr, firstLine(data))}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		msg += " — the token was refused (set --token or VIPGATE_TOKEN)"
	case http.StatusForbidden:
		msg += " — this token may not do that"
	}
	return nil, &apiError{Status: resp.StatusCode, Msg: msg}
}

var markupRE = regexp.MustCompile(`<[^>]*>`)

// firstLine is a short excerpt of a foreign answer: its first line with
// text once markup is stripped, at most 100 bytes.
func firstLine(data []byte) string {
	for _, l := range strings.Split(markupRE.ReplaceAllString(string(data), ""), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if len(l) > 100 {
			l = l[:100] + "…"
		}
		return strconv.Quote(l)
	}
	return "an empty answer"
}
