package dns

import (
	"encoding/binary"

	mdns "github.com/miekg/dns"
)

// fastParse decodes the common query shape — one question, no answer or
// authority records, at most an OPT without options — into w.req without
// allocating: the question name comes from the snapshot's interned names
// when the client wrote it as we store it (lower case). Anything else
// returns false and goes through miekg/dns's full parser.
func (w *worker) fastParse(in []byte, snap *snapshot) bool {
	if len(in) < 12+5 || snap == nil {
		return false
	}
	qd := binary.BigEndian.Uint16(in[4:])
	an := binary.BigEndian.Uint16(in[6:])
	ns := binary.BigEndian.Uint16(in[8:])
	ar := binary.BigEndian.Uint16(in[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return false
	}
	// The name as text ("www.example.com.") into w.name; only plain
	// host-name bytes, so that no escaping is involved.
	name := w.name[:0]
	off := 12
	for {
		if off >= len(in) {
			return false
		}
		l := int(in[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(in) || len(name)+l+1 > 254 {
			return false
		}
		for _, c := range in[off : off+l] {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*') {
				return false
			}
		}
		name = append(name, in[off:off+l]...)
		name = append(name, '.')
		off += l
	}
	if len(name) == 0 {
		name = append(name, '.')
	}
	w.name = name
	if off+4 > len(in) {
		return false
	}
	qtype := binary.BigEndian.Uint16(in[off:])
	qclass := binary.BigEndian.Uint16(in[off+2:])
	off += 4
	s, ok := snap.intern[string(name)] // no allocation for a map lookup
	if !ok {
		return false
	}
	hasOpt := false
	if ar == 1 {
		// OPT: root name, type 41, class = UDP size, TTL = ext-rcode,
		// version, flags; options COOKIE (ignored: we do not implement
		// RFC 7873, which a server may) and ECS only.
		if off+11 > len(in) || in[off] != 0 || binary.BigEndian.Uint16(in[off+1:]) != mdns.TypeOPT {
			return false
		}
		rdlen := int(binary.BigEndian.Uint16(in[off+9:]))
		w.reqOpt = mdns.OPT{Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT, Class: binary.BigEndian.Uint16(in[off+3:]), Ttl: binary.BigEndian.Uint32(in[off+5:])}}
		off += 11
		if off+rdlen != len(in) || !w.fastOptions(in[off:off+rdlen]) {
			return false
		}
		off += rdlen
		hasOpt = true
	}
	if off != len(in) {
		return false
	}
	bits := binary.BigEndian.Uint16(in[2:])
	req := &w.req
	req.MsgHdr = mdns.MsgHdr{
		Id:                 binary.BigEndian.Uint16(in[0:]),
		Response:           bits&(1<<15) != 0,
		Opcode:             int(bits>>11) & 0xF,
		Authoritative:      bits&(1<<10) != 0,
		Truncated:          bits&(1<<9) != 0,
		RecursionDesired:   bits&(1<<8) != 0,
		RecursionAvailable: bits&(1<<7) != 0,
		Zero:               bits&(1<<6) != 0,
		AuthenticatedData:  bits&(1<<5) != 0,
		CheckingDisabled:   bits&(1<<4) != 0,
		Rcode:              int(bits & 0xF),
	}
	req.Question = append(req.Question[:0], mdns.Question{Name: s, Qtype: qtype, Qclass: qclass})
	req.Answer, req.Ns, req.Extra = req.Answer[:0], req.Ns[:0], req.Extra[:0]
	if hasOpt {
		req.Extra = append(req.Extra, &w.reqOpt)
		// As miekg/dns does: the OPT's extended rcode bits join the header's.
		req.Rcode |= int(w.reqOpt.Hdr.Ttl>>24) << 4
	}
	return true
}

// fastOptions accepts EDNS options the fast path understands: COOKIE
// (skipped) and at most one well-formed ECS, decoded into w.ecsIn the way
// miekg/dns does (IPv4 addresses in 16-byte form).
func (w *worker) fastOptions(b []byte) bool {
	w.optList = w.optList[:0]
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		code, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			return false
		}
		data := b[4 : 4+l]
		b = b[4+l:]
		switch code {
		case mdns.EDNS0COOKIE:
		case mdns.EDNS0SUBNET:
			if len(w.optList) > 0 || len(data) < 4 {
				return false
			}
			e := &w.ecsIn
			*e = mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: binary.BigEndian.Uint16(data), SourceNetmask: data[2], SourceScope: data[3]}
			addr := w.ecsAddr[:]
			clear(addr)
			switch e.Family {
			case 0:
				if e.SourceNetmask != 0 {
					return false
				}
				addr[10], addr[11] = 0xff, 0xff
			case 1:
				if e.SourceNetmask > 32 || e.SourceScope > 32 {
					return false
				}
				addr[10], addr[11] = 0xff, 0xff
				copy(addr[12:], data[4:])
			case 2:
				if e.SourceNetmask > 128 || e.SourceScope > 128 {
					return false
				}
				copy(addr, data[4:])
			default:
				return false
			}
			e.Address = addr
			w.optList = append(w.optList, e)
		default:
			return false
		}
	}
	if len(w.optList) > 0 {
		w.reqOpt.Option = w.optList
	}
	return true
}
