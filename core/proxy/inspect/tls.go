// Package inspect reads the first bytes of a TCP stream without consuming
// them (HAProxy's tcp-request inspect-delay) and parses TLS ClientHello and
// ServerHello messages for routing (SNI) and persistence (session ID).
//
// The parser works on raw bytes as they arrive: it reassembles a handshake
// message split across TLS records and tells the caller when it needs more
// bytes (ErrNeedMore). It never panics on malformed input; everything it
// returns is copied out of the input.
package inspect

import (
	"errors"
	"fmt"
)

// TLS constants used here.
const (
	recordHandshake   = 0x16
	typeClientHello   = 1
	typeServerHello   = 2
	extServerName     = 0
	extALPN           = 16
	extSessionTicket  = 35
	extSupportedVers  = 43
	VersionTLS10      = 0x0301
	VersionTLS12      = 0x0303
	VersionTLS13      = 0x0304
	maxRecordLen      = 16384 + 2048 // TLSCiphertext bound (RFC 8446 5.2)
	maxHandshakeBytes = 1 << 16      // a hello larger than this is refused
)

var (
	// ErrNeedMore means the bytes so far are a valid prefix: read more.
	ErrNeedMore = errors.New("tls: need more bytes")
	// ErrNotTLS means the stream does not start with a TLS handshake record.
	ErrNotTLS = errors.New("not a TLS handshake")
)

// Hello is what a ClientHello or ServerHello tells a proxy.
type Hello struct {
	// Server is true for a ServerHello.
	Server bool
	// Version is the legacy_version field (0x0303 for TLS 1.2 and 1.3).
	Version uint16
	// SupportedVersions: the client's offer, or the one version the server
	// selected (TLS 1.3 negotiation, RFC 8446 4.2.1).
	SupportedVersions []uint16
	// SessionID is the legacy session ID (0..32 bytes).
	SessionID []byte
	// SNI is the server_name host name (client only), lower-cased as sent.
	SNI string
	// ALPN is the offered protocols (client) or the selected one (server).
	ALPN []string
	// CipherSuite is the server's selection (server only).
	CipherSuite uint16
	// SessionTicket is true when the session_ticket extension is present
	// (RFC 5077): a resuming client may send a ticket and a fresh session ID.
	SessionTicket bool
	// TicketLen is the length of the ticket a client presents (RFC 5077):
	// non-zero means the client resumes by ticket, and its session ID is
	// only a random marker the server echoes when it accepts the ticket.
	TicketLen int
	// Len is how many stream bytes the records holding the hello took.
	Len int
}

// NegotiatedVersion is the version a ServerHello selected: the
// supported_versions selection when present, else legacy_version.
func (h *Hello) NegotiatedVersion() uint16 {
	if h.Server && len(h.SupportedVersions) == 1 {
		return h.SupportedVersions[0]
	}
	return h.Version
}

// OffersTLS13 reports whether a ClientHello offers TLS 1.3: such a client's
// session ID is a random echo (RFC 8446 appendix D.4) and its resumption
// uses PSK tickets, so the session ID identifies nothing.
func (h *Hello) OffersTLS13() bool {
	for _, v := range h.SupportedVersions {
		if v == VersionTLS13 {
			return true
		}
	}
	return false
}

// ParseClientHello parses a ClientHello at the start of b.
func ParseClientHello(b []byte) (*Hello, error) { return parseHello(b, typeClientHello) }

// ParseServerHello parses a ServerHello at the start of b (the first bytes
// a TLS server sends).
func ParseServerHello(b []byte) (*Hello, error) { return parseHello(b, typeServerHello) }

// ClientHelloComplete is a Peek stop condition: true once b holds a whole
// ClientHello, or once it is clear that b is not one (no point waiting).
func ClientHelloComplete(b []byte) bool {
	_, err := ParseClientHello(b)
	return err != ErrNeedMore
}

// ServerHelloComplete is true once b holds a whole ServerHello (however
// many records and reads it took), or once it is clear that b is not one.
func ServerHelloComplete(b []byte) bool {
	_, err := ParseServerHello(b)
	return err != ErrNeedMore
}

// parseHello reassembles the first handshake message from the records at
// the start of b and decodes it.
func parseHello(b []byte, want byte) (*Hello, error) {
	msg, used, err := firstHandshake(b)
	if err != nil {
		return nil, err
	}
	if msg[0] != want {
		return nil, fmt.Errorf("tls: handshake message type %d, want %d", msg[0], want)
	}
	h, err := decodeHello(msg[4:], want == typeServerHello)
	if err != nil {
		return nil, err
	}
	h.Len = used
	return h, nil
}

// firstHandshake returns the first complete handshake message (header
// included) carried by the handshake records at the start of b, and how
// many bytes of b those records took.
func firstHandshake(b []byte) (msg []byte, used int, err error) {
	var hs []byte
	rlen0 := 0
	need := -1 // total message length once the 4-byte header is in
	for off := 0; ; {
		if len(b)-off < 5 {
			if off == 0 && len(b) > 0 && b[0] != recordHandshake {
				return nil, 0, ErrNotTLS
			}
			return nil, 0, ErrNeedMore
		}
		if b[off] != recordHandshake {
			if off == 0 {
				return nil, 0, ErrNotTLS
			}
			// Another record type before the message is complete.
			return nil, 0, fmt.Errorf("tls: record type %d inside a handshake message", b[off])
		}
		if b[off+1] != 3 {
			if off == 0 {
				return nil, 0, ErrNotTLS
			}
			return nil, 0, fmt.Errorf("tls: record version %d.%d", b[off+1], b[off+2])
		}
		rlen := int(b[off+3])<<8 | int(b[off+4])
		if rlen == 0 || rlen > maxRecordLen {
			return nil, 0, fmt.Errorf("tls: record length %d", rlen)
		}
		// Use what has arrived of this record even if it is incomplete:
		// the message header tells early whether it is plausible.
		end := off + 5 + rlen
		avail := min(end, len(b))
		if off == 0 {
			hs = b[5:avail] // the common case, one record: no copy
		} else {
			if off == 5+rlen0 {
				hs = append([]byte(nil), hs...)
			}
			hs = append(hs, b[off+5:avail]...)
		}
		if off == 0 {
			rlen0 = rlen
		}
		if need < 0 && len(hs) >= 4 {
			need = 4 + (int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3]))
			if need > maxHandshakeBytes {
				return nil, 0, fmt.Errorf("tls: handshake message of %d bytes", need)
			}
		}
		if need >= 0 && len(hs) >= need {
			return hs[:need], min(end, len(b)), nil
		}
		if avail < end {
			return nil, 0, ErrNeedMore
		}
		off = end
	}
}

// reader is a bounds-checked cursor; any short read sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	v := r.bytes(1)
	if v == nil {
		return 0
	}
	return int(v[0])
}

func (r *reader) u16() int {
	v := r.bytes(2)
	if v == nil {
		return 0
	}
	return int(v[0])<<8 | int(v[1])
}

// vec reads a vector with an n-byte length prefix as a sub-reader.
func (r *reader) vec(n int) reader {
	var l int
	switch n {
	case 1:
		l = r.u8()
	case 2:
		l = r.u16()
	}
	return reader{b: r.bytes(l), bad: r.bad}
}

func decodeHello(body []byte, server bool) (*Hello, error) {
	h := &Hello{Server: server}
	r := &reader{b: body}
	h.Version = uint16(r.u16())
	r.bytes(32) // random
	sid := r.vec(1)
	if len(sid.b) > 32 {
		return nil, fmt.Errorf("tls: session ID of %d bytes", len(sid.b))
	}
	h.SessionID = append([]byte(nil), sid.b...)
	if server {
		h.CipherSuite = uint16(r.u16())
		r.u8() // compression method
	} else {
		cs := r.vec(2)
		if !r.bad && (len(cs.b) == 0 || len(cs.b)%2 != 0) {
			return nil, fmt.Errorf("tls: cipher suites of %d bytes", len(cs.b))
		}
		if cm := r.vec(1); !r.bad && len(cm.b) == 0 {
			return nil, errors.New("tls: no compression methods")
		}
	}
	if r.bad {
		return nil, errors.New("tls: truncated hello")
	}
	if h.Version < VersionTLS10 || h.Version > VersionTLS12 {
		// Real clients send 0x0301..0x0303 here; anything else is not a
		// hello we understand (SSLv3 included: no session-ID semantics
		// worth keeping).
		return nil, fmt.Errorf("tls: legacy version %#04x", h.Version)
	}
	if len(r.b) == 0 {
		return h, nil // no extensions (allowed before TLS 1.3)
	}
	exts := r.vec(2)
	if r.bad || len(r.b) != 0 {
		return nil, errors.New("tls: malformed extensions block")
	}
	// Duplicates are refused (RFC 8446 4.2) for the extensions that
	// matter here; a bitmask avoids a map per hello.
	var seen uint64
	for len(exts.b) > 0 {
		typ := exts.u16()
		data := exts.vec(2)
		if exts.bad {
			return nil, errors.New("tls: truncated extension")
		}
		if typ < 64 {
			if seen&(1<<typ) != 0 {
				return nil, fmt.Errorf("tls: extension %d repeated", typ)
			}
			seen |= 1 << typ
		}
		if err := h.extension(typ, &data); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *Hello) extension(typ int, d *reader) error {
	switch typ {
	case extServerName:
		if h.Server {
			return nil // empty acknowledgement
		}
		list := d.vec(2)
		for len(list.b) > 0 && !list.bad {
			kind := list.u8()
			name := list.vec(2)
			if list.bad || name.bad {
				break
			}
			if kind == 0 && h.SNI == "" {
				if len(name.b) == 0 || len(name.b) > 255 {
					return fmt.Errorf("tls: server name of %d bytes", len(name.b))
				}
				h.SNI = string(name.b)
			}
		}
		if list.bad || d.bad || len(d.b) != 0 {
			return errors.New("tls: malformed server_name extension")
		}
	case extALPN:
		list := d.vec(2)
		for len(list.b) > 0 && !list.bad {
			p := list.vec(1)
			if p.bad || len(p.b) == 0 {
				return errors.New("tls: malformed ALPN extension")
			}
			h.ALPN = append(h.ALPN, string(p.b))
		}
		if list.bad || d.bad || len(d.b) != 0 {
			return errors.New("tls: malformed ALPN extension")
		}
	case extSupportedVers:
		if h.Server {
			v := d.u16()
			if d.bad || len(d.b) != 0 {
				return errors.New("tls: malformed supported_versions extension")
			}
			h.SupportedVersions = []uint16{uint16(v)}
			return nil
		}
		list := d.vec(1)
		if d.bad || len(d.b) != 0 || len(list.b)%2 != 0 || len(list.b) == 0 {
			return errors.New("tls: malformed supported_versions extension")
		}
		for len(list.b) > 0 {
			h.SupportedVersions = append(h.SupportedVersions, uint16(list.u16()))
		}
	case extSessionTicket:
		h.SessionTicket = true
		if !h.Server {
			h.TicketLen = len(d.b)
		}
	}
	return nil
}
