// Package vrrp is vipgate's VRRP speaker: VRRPv2 (RFC 3768) and VRRPv3
// (RFC 5798) on the wire exactly as keepalived speaks them, a pure,
// steppable state machine (machine.go), and the I/O around it (raw sockets,
// netlink for the addresses, gratuitous ARP / unsolicited NA) behind small
// interfaces so the logic is testable without root.
//
// Like every subsystem, it reconciles to the config snapshot pushed to it
// (Manager.Apply: instances started, changed or stopped); the cluster's
// decisions do not move VIPs, the datacenter's own VRRP election does.
package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is the IP protocol number of VRRP.
const Protocol = 112

// TTL is the only TTL / hop limit VRRP packets may carry (RFC 3768 §7.1,
// RFC 5798 §7.1): a packet with another value was routed and is dropped.
const TTL = 255

// Well-known multicast groups.
var (
	Group4 = netip.MustParseAddr("224.0.0.18")
	Group6 = netip.MustParseAddr("ff02::12")
)

// Authentication types of VRRPv2.
const (
	AuthNone = 0
	AuthPass = 1 // simple text password, 8 bytes (RFC 2338)
)

const (
	typeAdvert = 1
	headerLen  = 8
	authLen    = 8
	// maxAdvertV3 is the 12-bit centisecond field's largest value.
	maxAdvertV3 = 0xfff * 10 * time.Millisecond
)

// Packet is one VRRP advertisement.
type Packet struct {
	Version  uint8 // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval: whole seconds in v2,
	// centiseconds in v3.
	Interval time.Duration
	AuthType uint8   // v2 only
	Auth     [8]byte // v2 only: PASS data, NUL padded
	Addrs    []netip.Addr
}

// Errors the decoder reports; instances count them by kind.
var (
	ErrShort    = errors.New("packet too short")
	ErrVersion  = errors.New("unsupported VRRP version")
	ErrType     = errors.New("not an advertisement")
	ErrChecksum = errors.New("bad checksum")
	ErrLength   = errors.New("address count does not match the packet length")
)

// AppendMarshal appends the wire form of p to b. src and dst are needed
// for the v3 pseudo-header checksum (v2's checksum covers the VRRP
// message only); they must be of the family of p.Addrs.
func (p *Packet) AppendMarshal(b []byte, src, dst netip.Addr) ([]byte, error) {
	if p.Version != 2 && p.Version != 3 {
		return b, fmt.Errorf("%w %d", ErrVersion, p.Version)
	}
	if len(p.Addrs) > 255 {
		return b, fmt.Errorf("too many addresses (%d, at most 255)", len(p.Addrs))
	}
	v6 := src.Is6() && !src.Is4In6()
	if p.Version == 2 && v6 {
		return b, errors.New("VRRPv2 is IPv4 only")
	}
	start := len(b)
	b = append(b, p.Version<<4|typeAdvert, p.VRID, p.Priority, uint8(len(p.Addrs)))
	if p.Version == 2 {
		secs := p.Interval / time.Second
		if secs < 1 || secs > 255 || p.Interval%time.Second != 0 {
			return b[:start], fmt.Errorf("VRRPv2 advert interval %s: must be whole seconds from 1 to 255", p.Interval)
		}
		b = append(b, p.AuthType, uint8(secs), 0, 0)
	} else {
		cs := p.Interval / (10 * time.Millisecond)
		if cs < 1 || p.Interval > maxAdvertV3 || p.Interval%(10*time.Millisecond) != 0 {
			return b[:start], fmt.Errorf("VRRPv3 advert interval %s: must be whole centiseconds from 10ms to 40.95s", p.Interval)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(cs)&0x0fff)
		b = append(b, 0, 0)
	}
	for _, a := range p.Addrs {
		if a.Is4() != !v6 {
			return b[:start], fmt.Errorf("address %s is not of the packet's family", a)
		}
		b = append(b, a.AsSlice()...)
	}
	if p.Version == 2 {
		b = append(b, p.Auth[:]...)
	}
	msg := b[start:]
	var sum uint32
	if p.Version == 3 {
		sum = pseudoSum(src, dst, len(msg))
	}
	binary.BigEndian.PutUint16(msg[6:], finish(sum, msg))
	return b, nil
}

// Parse decodes and verifies an advertisement. src and dst are the IP
// header's addresses (for the v3 checksum); the address family of the
// listed addresses follows src's.
func Parse(b []byte, src, dst netip.Addr) (Packet, error) {
	var p Packet
	if len(b) < headerLen {
		return p, ErrShort
	}
	p.Version = b[0] >> 4
	if p.Version != 2 && p.Version != 3 {
		return p, fmt.Errorf("%w %d", ErrVersion, p.Version)
	}
	if b[0]&0x0f != typeAdvert {
		return p, fmt.Errorf("%w (type %d)", ErrType, b[0]&0x0f)
	}
	v6 := src.Is6() && !src.Is4In6()
	if p.Version == 2 && v6 {
		return p, fmt.Errorf("%w 2 over IPv6", ErrVersion)
	}
	p.VRID, p.Priority = b[1], b[2]
	n := int(b[3])
	alen := 4
	if v6 {
		alen = 16
	}
	want := headerLen + n*alen
	if p.Version == 2 {
		want += authLen
	}
	// keepalived and routers may pad; only a short packet is wrong. The
	// checksum covers what the sender meant: the computed length.
	if len(b) < want {
		return p, ErrLength
	}
	b = b[:want]
	var sum uint32
	if p.Version == 3 {
		sum = pseudoSum(src, dst, len(b))
	}
	if finish(sum, b) != 0 {
		return p, ErrChecksum
	}
	if p.Version == 2 {
		p.AuthType = b[4]
		p.Interval = time.Duration(b[5]) * time.Second
		copy(p.Auth[:], b[want-authLen:])
	} else {
		p.Interval = time.Duration(binary.BigEndian.Uint16(b[4:])&0x0fff) * 10 * time.Millisecond
	}
	if n > 0 {
		p.Addrs = make([]netip.Addr, n)
		for i := range n {
			o := headerLen + i*alen
			if v6 {
				p.Addrs[i] = netip.AddrFrom16([16]byte(b[o : o+16]))
			} else {
				p.Addrs[i] = netip.AddrFrom4([4]byte(b[o : o+4]))
			}
		}
	}
	return p, nil
}

// pseudoSum is the partial one's-complement sum of the IPv4 or IPv6
// pseudo-header (RFC 5798 §5.2.8).
func pseudoSum(src, dst netip.Addr, n int) uint32 {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	if src.Is4() {
		a, d := src.As4(), dst.As4()
		add(a[:])
		add(d[:])
	} else {
		a, d := src.As16(), dst.As16()
		add(a[:])
		add(d[:])
	}
	s += Protocol + uint32(n)
	return s
}

// finish adds b to the partial sum and returns the folded complement.
func finish(s uint32, b []byte) uint16 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// PassAuth returns the 8-byte PASS authentication data for a password
// (longer passwords are cut to 8 bytes, as keepalived does).
func PassAuth(pass string) (a [8]byte) {
	copy(a[:], pass)
	return a
}
