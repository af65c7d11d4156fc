// Package httpparse is a strict, zero-copy HTTP/1.x message head parser and
// chunked-body decoder for the proxy's hot path.
//
// It refuses everything that lets two HTTP implementations disagree on where
// a message ends (request smuggling / desync): Content-Length together with
// Transfer-Encoding, differing Content-Length values, transfer codings other
// than a single "chunked", obsolete line folding, whitespace before the
// colon, bare CR or LF, NUL and other control bytes, malformed chunk sizes.
// Parsed fields are slices of the caller's buffer: valid until it is reused.
package httpparse

import (
	"bytes"
	"errors"
)

// Error is a parse failure with the status the proxy should answer.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func bad(status int, msg string) *Error { return &Error{Status: status, Msg: msg} }

// ErrNeedMore means the head is not complete yet: read more and call again.
var ErrNeedMore = errors.New("incomplete message head")

// Limits bound a request head.
type Limits struct {
	MaxRequestLine int // 414 beyond
	MaxHeaderBytes int // 431 beyond (the whole head)
	MaxHeaders     int // 431 beyond
}

// Header is one field; Name and Value alias the parse buffer. Value has its
// surrounding whitespace removed.
type Header struct {
	Name, Value []byte
}

// Connection header tokens, as flags.
const (
	ConnClose = 1 << iota
	ConnKeepAlive
	ConnUpgrade
	ConnOther // the header names other tokens: those headers are hop-by-hop
)

// Message is what request and response heads share.
type Message struct {
	Minor   int // HTTP/1.Minor
	Headers []Header
	// ContentLength is -1 when absent.
	ContentLength int64
	Chunked       bool
	Conn          int // Conn* flags
	HasUpgrade    bool
	HeadLen       int // bytes of the head, CRLFCRLF included
}

// Request is a parsed request head.
type Request struct {
	Message
	Method, Target []byte
	Host           []byte // nil when absent
	Expect100      bool
}

// Response is a parsed response head.
type Response struct {
	Message
	Status int
	Reason []byte
}

// KeepAlive reports whether the sender wants the connection kept open.
func (m *Message) KeepAlive() bool {
	if m.Conn&ConnClose != 0 {
		return false
	}
	return m.Minor >= 1 || m.Conn&ConnKeepAlive != 0
}

// Get returns the first value of a header (case-insensitive name), or nil.
func (m *Message) Get(name string) []byte {
	for i := range m.Headers {
		if EqualFold(m.Headers[i].Name, name) {
			return m.Headers[i].Value
		}
	}
	return nil
}

// EqualFold compares ASCII case-insensitively without allocating.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// tchar per RFC 9110 token.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// IsToken reports whether b is a non-empty RFC 9110 token.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// vchar bytes allowed in a request target: visible ASCII only.
func targetOK(b []byte) bool {
	for _, c := range b {
		if c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// fieldValueOK: field-vchar / SP / HTAB / obs-text; no CTLs.
func fieldValueOK(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// line returns the next CRLF-terminated line of b (without CRLF) and the
// bytes consumed; n == 0 when no complete line is present. A bare LF or a
// CR not followed by LF is an error.
func line(b []byte) (l []byte, n int, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if j := bytes.IndexByte(b, '\r'); j >= 0 && j+1 < len(b) {
			return nil, 0, bad(400, "bare CR in message head")
		}
		return nil, 0, nil
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, 0, bad(400, "bare LF in message head")
	}
	l = b[:i-1]
	if bytes.IndexByte(l, '\r') >= 0 {
		return nil, 0, bad(400, "bare CR in message head")
	}
	return l, i + 1, nil
}

// ParseRequest parses a request head at the start of b into r (r.Headers is
// reused). It returns ErrNeedMore when b holds no complete head yet and the
// limits are not exceeded.
func ParseRequest(b []byte, lim Limits, r *Request) error {
	hdrs := r.Headers[:0]
	*r = Request{}
	r.Headers = hdrs
	r.ContentLength = -1

	// RFC 9112 2.2: a server SHOULD ignore at least one empty line before
	// the request line (some clients send CRLF after a POST body).
	off := 0
	if len(b) >= 2 && b[0] == '\r' && b[1] == '\n' {
		off = 2
	}
	l, n, err := line(b[off:])
	if err != nil {
		return err
	}
	if n == 0 {
		if len(b)-off > lim.MaxRequestLine {
			return bad(414, "request line too long")
		}
		return ErrNeedMore
	}
	if len(l) > lim.MaxRequestLine {
		return bad(414, "request line too long")
	}
	sp1 := bytes.IndexByte(l, ' ')
	if sp1 <= 0 {
		return bad(400, "malformed request line")
	}
	r.Method = l[:sp1]
	if !IsToken(r.Method) {
		return bad(400, "invalid method")
	}
	rest := l[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return bad(400, "malformed request line")
	}
	r.Target = rest[:sp2]
	proto := rest[sp2+1:]
	switch string(proto) {
	case "HTTP/1.1":
		r.Minor = 1
	case "HTTP/1.0":
		r.Minor = 0
	default:
		if bytes.HasPrefix(proto, []byte("HTTP/")) && len(proto) == 8 && proto[5] >= '2' {
			return bad(505, "HTTP version not supported")
		}
		return bad(400, "malformed HTTP version")
	}
	if !targetOK(r.Target) {
		return bad(400, "invalid request target")
	}
	switch {
	case r.Target[0] == '/':
	case string(r.Target) == "*":
		if string(r.Method) != "OPTIONS" {
			return bad(400, "asterisk target is only for OPTIONS")
		}
	case hasSchemePrefix(r.Target):
		// The authority replaces Host downstream: it must be as clean.
		a := r.Target[bytes.Index(r.Target, []byte("://"))+3:]
		if i := bytes.IndexAny(a, "/?#"); i >= 0 {
			a = a[:i]
		}
		if len(a) == 0 || !hostOK(a) {
			return bad(400, "invalid authority in request target")
		}
	default:
		if string(r.Method) == "CONNECT" {
			return bad(405, "CONNECT is not supported")
		}
		return bad(400, "invalid request target")
	}
	if string(r.Method) == "CONNECT" {
		return bad(405, "CONNECT is not supported")
	}
	off += n
	if err := parseFields(b, off, lim, &r.Message, true); err != nil {
		return err
	}
	m := &r.Message
	for i := range m.Headers {
		h := &m.Headers[i]
		switch {
		case EqualFold(h.Name, "host"):
			if r.Host != nil {
				return bad(400, "duplicate Host header")
			}
			r.Host = h.Value
			if !hostOK(h.Value) {
				return bad(400, "invalid Host header")
			}
		case EqualFold(h.Name, "expect"):
			if EqualFold(h.Value, "100-continue") {
				r.Expect100 = true
			}
		}
	}
	if r.Host == nil && r.Minor == 1 {
		return bad(400, "missing Host header")
	}
	if m.Chunked && r.Minor == 0 {
		// RFC 9112 6.1: chunked in HTTP/1.0 cannot be trusted (a downstream
		// 1.0 hop would not honour it): treat as faulty framing.
		return bad(400, "Transfer-Encoding in an HTTP/1.0 request")
	}
	return nil
}

func hasSchemePrefix(t []byte) bool {
	return len(t) > 7 && (EqualFold(t[:7], "http://") || (len(t) > 8 && EqualFold(t[:8], "https://")))
}

// hostOK accepts reg-name / IP literal with optional port; no userinfo, no
// path, no whitespace.
func hostOK(h []byte) bool {
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_' || c == '~' || c == '%':
		default:
			return false
		}
	}
	return true
}

// ParseResponse parses a response head at the start of b.
func ParseResponse(b []byte, lim Limits, r *Response) error {
	hdrs := r.Headers[:0]
	*r = Response{}
	r.Headers = hdrs
	r.ContentLength = -1
	l, n, err := line(b)
	if err != nil {
		return err
	}
	if n == 0 {
		if len(b) > lim.MaxHeaderBytes {
			return bad(502, "response status line too long")
		}
		return ErrNeedMore
	}
	if len(l) < 12 || !bytes.HasPrefix(l, []byte("HTTP/1.")) || (l[7] != '0' && l[7] != '1') || l[8] != ' ' {
		return bad(502, "malformed status line")
	}
	r.Minor = int(l[7] - '0')
	st := l[9:12]
	for _, c := range st {
		if c < '0' || c > '9' {
			return bad(502, "malformed status code")
		}
	}
	r.Status = int(st[0]-'0')*100 + int(st[1]-'0')*10 + int(st[2]-'0')
	if r.Status < 100 {
		return bad(502, "malformed status code")
	}
	if len(l) > 12 {
		if l[12] != ' ' {
			return bad(502, "malformed status line")
		}
		r.Reason = l[13:]
		if !fieldValueOK(r.Reason) {
			return bad(502, "invalid reason phrase")
		}
	}
	return parseFields(b, n, lim, &r.Message, false)
}

// parseFields parses header lines from b[off:] up to the empty line.
func parseFields(b []byte, off int, lim Limits, m *Message, req bool) error {
	status := 400
	if !req {
		status = 502
	}
	var teSeen bool
	for {
		if off > lim.MaxHeaderBytes {
			if req {
				return bad(431, "request header fields too large")
			}
			return bad(502, "response head too large")
		}
		l, n, err := line(b[off:])
		if err != nil {
			err.(*Error).Status = status
			return err
		}
		if n == 0 {
			if len(b) > lim.MaxHeaderBytes {
				if req {
					return bad(431, "request header fields too large")
				}
				return bad(502, "response head too large")
			}
			return ErrNeedMore
		}
		off += n
		if len(l) == 0 {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			return bad(status, "obsolete line folding")
		}
		c := bytes.IndexByte(l, ':')
		if c <= 0 {
			return bad(status, "malformed header line")
		}
		name := l[:c]
		if !IsToken(name) {
			// Includes "Name :" (whitespace before the colon, RFC 9112 5.1).
			return bad(status, "invalid header name")
		}
		v := trimOWS(l[c+1:])
		if !fieldValueOK(v) {
			return bad(status, "invalid character in header value")
		}
		if len(m.Headers) >= lim.MaxHeaders {
			if req {
				return bad(431, "too many header fields")
			}
			return bad(502, "too many header fields in response")
		}
		m.Headers = append(m.Headers, Header{Name: name, Value: v})
		switch {
		case EqualFold(name, "content-length"):
			cl, ok := parseContentLength(v)
			if !ok {
				return bad(status, "invalid Content-Length")
			}
			if m.ContentLength >= 0 && m.ContentLength != cl {
				return bad(status, "conflicting Content-Length values")
			}
			m.ContentLength = cl
		case EqualFold(name, "transfer-encoding"):
			// Only a single "chunked" is accepted: any other coding (or a
			// repeated chunked) is a framing the next hop may read
			// differently.
			if teSeen || !EqualFold(v, "chunked") {
				return bad(status, "unsupported Transfer-Encoding")
			}
			teSeen = true
			m.Chunked = true
		case EqualFold(name, "connection"):
			m.Conn |= connTokens(v)
		case EqualFold(name, "upgrade"):
			m.HasUpgrade = true
		}
	}
	if m.Chunked && m.ContentLength >= 0 {
		return bad(status, "both Content-Length and Transfer-Encoding")
	}
	m.HeadLen = off
	return nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseContentLength accepts 1*DIGIT, or a comma list of identical values
// (RFC 9110 8.6 lets a recipient collapse those).
func parseContentLength(v []byte) (int64, bool) {
	var first int64 = -1
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var part []byte
		if i < 0 {
			part, v = v, nil
		} else {
			part, v = v[:i], v[i+1:]
			if len(v) == 0 {
				return 0, false
			}
		}
		part = trimOWS(part)
		if len(part) == 0 || len(part) > 15 {
			return 0, false
		}
		var n int64
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		if first >= 0 && n != first {
			return 0, false
		}
		first = n
	}
	return first, first >= 0
}

func connTokens(v []byte) int {
	f := 0
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		t = trimOWS(t)
		switch {
		case len(t) == 0:
		case EqualFold(t, "close"):
			f |= ConnClose
		case EqualFold(t, "keep-alive"):
			f |= ConnKeepAlive
		case EqualFold(t, "upgrade"):
			f |= ConnUpgrade
		default:
			f |= ConnOther
		}
	}
	return f
}

// ConnectionNames calls fn for each token of a Connection header value.
func ConnectionNames(v []byte, fn func(tok []byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		if t = trimOWS(t); len(t) > 0 {
			fn(t)
		}
	}
}
