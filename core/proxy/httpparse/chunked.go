package httpparse

import "bytes"

// MaxChunkLine bounds a chunk-size line with its extensions.
const MaxChunkLine = 4096

// ParseChunkSize parses a chunk-size line ("1a;ext=v\r\n") at the start of
// b. It returns the size and the bytes consumed, or ErrNeedMore. Anything
// but hex digits, well-formed extensions and CRLF is refused: sizes with a
// sign, "0x", spaces inside or overflow are classic desync vectors.
func ParseChunkSize(b []byte) (size int64, n int, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > MaxChunkLine {
			return 0, 0, bad(400, "chunk size line too long")
		}
		if bytes.IndexByte(b, '\r') >= 0 && b[len(b)-1] != '\r' {
			return 0, 0, bad(400, "bare CR in chunk size")
		}
		return 0, 0, ErrNeedMore
	}
	if i == 0 || b[i-1] != '\r' {
		return 0, 0, bad(400, "bare LF in chunk size")
	}
	if i > MaxChunkLine {
		return 0, 0, bad(400, "chunk size line too long")
	}
	l := b[:i-1]
	digits := 0
	for digits < len(l) {
		c := l[digits]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if digits >= 15 {
			return 0, 0, bad(400, "chunk size too large")
		}
		size = size<<4 | int64(d)
		digits++
	}
ext:
	if digits == 0 {
		return 0, 0, bad(400, "invalid chunk size")
	}
	if !chunkExtOK(l[digits:]) {
		return 0, 0, bad(400, "invalid chunk extension")
	}
	return size, i + 1, nil
}

// chunkExtOK validates *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
func chunkExtOK(e []byte) bool {
	ws := func() {
		for len(e) > 0 && (e[0] == ' ' || e[0] == '\t') {
			e = e[1:]
		}
	}
	tok := func() bool {
		n := 0
		for n < len(e) && tchar[e[n]] {
			n++
		}
		e = e[n:]
		return n > 0
	}
	for {
		ws()
		if len(e) == 0 {
			return true
		}
		if e[0] != ';' {
			return false
		}
		e = e[1:]
		ws()
		if !tok() {
			return false
		}
		ws()
		if len(e) == 0 || e[0] != '=' {
			continue
		}
		e = e[1:]
		ws()
		if len(e) > 0 && e[0] == '"' {
			e = e[1:]
			closed := false
			for len(e) > 0 {
				c := e[0]
				e = e[1:]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' {
					if len(e) == 0 {
						return false
					}
					c = e[0]
					e = e[1:]
				}
				if (c < 0x20 && c != '\t') || c == 0x7f {
					return false
				}
			}
			if !closed {
				return false
			}
		} else if !tok() {
			return false
		}
	}
}

// ParseTrailers checks the trailer section after the last chunk (header
// lines up to an empty line) and returns its length, CRLFs included.
func ParseTrailers(b []byte, maxBytes int) (int, error) {
	off := 0
	for {
		if off > maxBytes {
			return 0, bad(400, "trailer section too large")
		}
		l, n, err := line(b[off:])
		if err != nil {
			return 0, err
		}
		if n == 0 {
			if len(b) > maxBytes {
				return 0, bad(400, "trailer section too large")
			}
			return 0, ErrNeedMore
		}
		off += n
		if len(l) == 0 {
			return off, nil
		}
		if l[0] == ' ' || l[0] == '\t' {
			return 0, bad(400, "obsolete line folding in trailer")
		}
		c := bytes.IndexByte(l, ':')
		if c <= 0 || !IsToken(l[:c]) || !fieldValueOK(l[c+1:]) {
			return 0, bad(400, "malformed trailer field")
		}
		name := l[:c]
		// Framing fields in trailers would be a second opinion on the
		// message length: refuse.
		if EqualFold(name, "content-length") || EqualFold(name, "transfer-encoding") || EqualFold(name, "host") {
			return 0, bad(400, "forbidden field in trailer")
		}
	}
}
