package scripting

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// The net module gives checks and event handlers blocking network calls,
// all bounded by the call's deadline (and an optional shorter timeout).
// Routing hooks run on the request path and may not use it. Failures are
// returned Lua-style (nil, "reason"), not raised, so a check can turn them
// into a reason.
func (s *state) netModule() *lua.LTable {
	L := s.L
	t := L.NewTable()
	t.RawSetString("tcp", L.NewFunction(s.waits(s.netTCP)))
	t.RawSetString("tls", L.NewFunction(s.waits(s.netTLS)))
	t.RawSetString("http", L.NewFunction(s.waits(s.netHTTP)))

	s.connMT = L.NewTable()
	methods := L.NewTable()
	methods.RawSetString("send", L.NewFunction(s.waits(s.connSend)))
	methods.RawSetString("receive", L.NewFunction(s.waits(s.connReceive)))
	methods.RawSetString("expect", L.NewFunction(s.waits(s.connExpect)))
	methods.RawSetString("starttls", L.NewFunction(s.waits(s.connStartTLS)))
	methods.RawSetString("close", L.NewFunction(s.waits(s.connClose)))
	s.connMT.RawSetString("__index", methods)
	s.connMT.RawSetString("__metatable", lua.LString("locked"))
	return t
}

// waits marks f as a network wait for the memory guard: the heap the rest
// of the process allocates meanwhile (a busy proxy with a large live heap
// grows it by hundreds of MB between two GCs) is not the script's, and
// must not get a health check killed for waiting on a slow server.
func (s *state) waits(f lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		m := &s.g.rt.guard
		m.pause(&s.guard)
		defer m.resume(&s.guard)
		return f(L)
	}
}

// netCtx is the call's context, optionally with a shorter timeout from
// opts.timeout (milliseconds). Routing hooks are refused.
func (s *state) netCtx(L *lua.LState, opts *lua.LTable) (context.Context, context.CancelFunc) {
	switch {
	case s.kind == kindLoad:
		L.RaiseError("net is not available at the top level of a plugin: it runs whenever a Lua state is created (use it in checks and handlers)")
	case s.kind == kindRoute || s.kind == kindDNS || s.ctx == nil:
		L.RaiseError("net is not available in %s hooks: they run on the request path (use it in checks and handlers)", s.kind)
	}
	if opts != nil {
		if ms, ok := opts.RawGetString("timeout").(lua.LNumber); ok && ms > 0 {
			return context.WithTimeout(s.ctx, time.Duration(float64(ms)*float64(time.Millisecond)))
		}
	}
	return context.WithCancel(s.ctx)
}

func optTable(L *lua.LState, n int) *lua.LTable {
	if t, ok := L.Get(n).(*lua.LTable); ok {
		return t
	}
	if L.Get(n) != lua.LNil {
		L.ArgError(n, "options must be a table")
	}
	return nil
}

func optString(t *lua.LTable, k, def string) string {
	if t == nil {
		return def
	}
	if v, ok := t.RawGetString(k).(lua.LString); ok {
		return string(v)
	}
	return def
}

func optBool(t *lua.LTable, k string, def bool) bool {
	if t == nil {
		return def
	}
	switch v := t.RawGetString(k).(type) {
	case lua.LBool:
		return bool(v)
	}
	return def
}

func fail(L *lua.LState, err error) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(shortErr(err)))
	return 2
}

// shortErr keeps the part of a network error a reason needs.
func shortErr(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errDeadline):
		return "timeout"
	case errors.Is(err, io.EOF):
		return "connection closed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "dial") {
		return msg[i+2:]
	}
	return msg
}

var errDeadline = errors.New("deadline")

// luaConn is a connection handed to a script. It is closed when the call
// ends whatever the script does.
type luaConn struct {
	c   net.Conn
	r   *bufio.Reader
	ctx context.Context
}

func (c *luaConn) Close() error { return c.c.Close() }

func tlsConfig(opts *lua.LTable, host string) *tls.Config {
	return &tls.Config{
		ServerName:         optString(opts, "sni", host),
		InsecureSkipVerify: !optBool(opts, "verify", false), //nolint:gosec // checks probe servers by address, like HAProxy's verify none default
		MinVersion:         tls.VersionTLS10,
	}
}

// net.tcp(addr, {timeout=ms, tls=bool, sni=, verify=}) → conn | nil, err
func (s *state) netTCP(L *lua.LState) int {
	addr := L.CheckString(1)
	opts := optTable(L, 2)
	ctx, cancel := s.netCtx(L, opts)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail(L, err)
	}
	s.conns = append(s.conns, c)
	// opts.timeout (or the call's deadline) bounds the whole connection.
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if optBool(opts, "tls", false) {
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(c, tlsConfig(opts, host))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(L, fmt.Errorf("tls handshake: %w", err))
		}
		c = tc
		s.conns = append(s.conns, c)
	}
	lc := &luaConn{c: c, r: bufio.NewReader(c), ctx: s.ctx}
	ud := L.NewUserData()
	ud.Value = lc
	ud.Metatable = s.connMT
	L.Push(ud)
	return 1
}

func (s *state) checkConn(L *lua.LState) *luaConn {
	ud := L.CheckUserData(1)
	lc, ok := ud.Value.(*luaConn)
	if !ok {
		L.ArgError(1, "connection expected (call with ':')")
	}
	if lc.ctx != s.ctx {
		L.RaiseError("connection used after the call that opened it ended")
	}
	return lc
}

// conn:send(data) → true | nil, err
func (s *state) connSend(L *lua.LState) int {
	lc := s.checkConn(L)
	if _, err := io.WriteString(lc.c, L.CheckString(2)); err != nil {
		return fail(L, err)
	}
	L.Push(lua.LTrue)
	return 1
}

// conn:receive([pattern]) where pattern is "*l" (a line without CR LF,
// the default), "*a" (until close) or a byte count → data | nil, err
func (s *state) connReceive(L *lua.LState) int {
	lc := s.checkConn(L)
	switch p := L.Get(2).(type) {
	case lua.LNumber:
		n := int(p)
		if n < 0 || n > s.maxS {
			L.ArgError(2, fmt.Sprintf("byte count out of range 0-%d", s.maxS))
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(lc.r, buf); err != nil {
			return fail(L, err)
		}
		L.Push(lua.LString(buf))
		return 1
	case lua.LString:
		if p == "*a" {
			b, err := io.ReadAll(io.LimitReader(lc.r, int64(s.maxS)+1))
			if err != nil {
				return fail(L, err)
			}
			if len(b) > s.maxS {
				return fail(L, fmt.Errorf("more than %d bytes", s.maxS))
			}
			L.Push(lua.LString(b))
			return 1
		}
		if p != "*l" {
			L.ArgError(2, `want "*l", "*a" or a byte count`)
		}
	}
	line, err := s.readLine(lc)
	if err != nil {
		return fail(L, err)
	}
	L.Push(lua.LString(line))
	return 1
}

func (s *state) readLine(lc *luaConn) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := lc.r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > s.maxS {
			return "", fmt.Errorf("line longer than %d bytes", s.maxS)
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// conn:expect(substring) reads lines until one contains substring →
// line | nil, err (the last line read is in the error).
func (s *state) connExpect(L *lua.LState) int {
	lc := s.checkConn(L)
	want := L.CheckString(2)
	last := ""
	for i := 0; i < 1000; i++ {
		line, err := s.readLine(lc)
		if err != nil {
			if last != "" {
				return fail(L, fmt.Errorf("%s (last line %q)", shortErr(err), last))
			}
			return fail(L, err)
		}
		if strings.Contains(line, want) {
			L.Push(lua.LString(line))
			return 1
		}
		last = line
	}
	return fail(L, fmt.Errorf("%q not found in 1000 lines", want))
}

// conn:starttls({sni=, verify=}) → true | nil, err (e.g. after SMTP STARTTLS)
func (s *state) connStartTLS(L *lua.LState) int {
	lc := s.checkConn(L)
	opts := optTable(L, 2)
	host, _, _ := net.SplitHostPort(lc.c.RemoteAddr().String())
	tc := tls.Client(lc.c, tlsConfig(opts, host))
	if err := tc.HandshakeContext(lc.ctx); err != nil {
		return fail(L, fmt.Errorf("tls handshake: %w", err))
	}
	lc.c = tc
	lc.r = bufio.NewReader(tc)
	L.Push(lua.LTrue)
	return 1
}

func (s *state) connClose(L *lua.LState) int {
	lc := s.checkConn(L)
	_ = lc.c.Close()
	return 0
}

// net.tls(addr, {sni=, verify=, alpn={...}}) → info | nil, err
// info = {version=, cipher=, alpn=, subject=, issuer=, not_after=unix, days_left=}
func (s *state) netTLS(L *lua.LState) int {
	addr := L.CheckString(1)
	opts := optTable(L, 2)
	ctx, cancel := s.netCtx(L, opts)
	defer cancel()
	host, _, _ := net.SplitHostPort(addr)
	cfg := tlsConfig(opts, host)
	if opts != nil {
		if a, ok := opts.RawGetString("alpn").(*lua.LTable); ok {
			s.eachEntry(L, a, "net.tls alpn", newConverter(s.ctx, s.maxS), func(_, v lua.LValue) { cfg.NextProtos = append(cfg.NextProtos, v.String()) })
		}
	}
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fail(L, err)
	}
	defer c.Close()
	st := c.(*tls.Conn).ConnectionState()
	t := L.NewTable()
	t.RawSetString("version", lua.LString(tls.VersionName(st.Version)))
	t.RawSetString("cipher", lua.LString(tls.CipherSuiteName(st.CipherSuite)))
	t.RawSetString("alpn", lua.LString(st.NegotiatedProtocol))
	if len(st.PeerCertificates) > 0 {
		crt := st.PeerCertificates[0]
		t.RawSetString("subject", lua.LString(crt.Subject.String()))
		t.RawSetString("issuer", lua.LString(crt.Issuer.String()))
		t.RawSetString("not_after", lua.LNumber(crt.NotAfter.Unix()))
		t.RawSetString("days_left", lua.LNumber(int(time.Until(crt.NotAfter).Hours()/24)))
	}
	L.Push(t)
	return 1
}

// net.http{url=, method=, headers=, body=, host=, timeout=, verify=,
// follow=false} → {status=, headers=, body=} | nil, err
func (s *state) netHTTP(L *lua.LState) int {
	opts := L.CheckTable(1)
	ctx, cancel := s.netCtx(L, opts)
	defer cancel()
	u := optString(opts, "url", "")
	if u == "" {
		L.ArgError(1, "url is required")
	}
	method := optString(opts, "method", "GET")
	var body io.Reader
	if b := optString(opts, "body", ""); b != "" {
		body = strings.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fail(L, err)
	}
	if h, ok := opts.RawGetString("headers").(*lua.LTable); ok {
		for k, vs := range s.stringMap(L, h, "net.http headers") {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
	}
	if host := optString(opts, "host", ""); host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "vipgate-lua")
	tr := &http.Transport{
		TLSClientConfig:   tlsConfig(opts, optString(opts, "sni", req.URL.Hostname())),
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	if !optBool(opts, "follow", false) {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap()
		}
		return fail(L, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(s.maxS)+1))
	if err != nil {
		return fail(L, err)
	}
	if len(b) > s.maxS {
		b = b[:s.maxS]
	}
	t := L.NewTable()
	t.RawSetString("status", lua.LNumber(resp.StatusCode))
	hdr := L.NewTable()
	for k, v := range resp.Header {
		hdr.RawSetString(strings.ToLower(k), lua.LString(strings.Join(v, ", ")))
	}
	t.RawSetString("headers", hdr)
	t.RawSetString("body", lua.LString(bytes.Clone(b)))
	L.Push(t)
	return 1
}
