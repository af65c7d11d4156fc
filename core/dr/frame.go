package dr

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers a director forwards.
const (
	protoTCP = 6
	protoUDP = 17
)

// Ethernet and IPv4 offsets (untagged frames: the director's socket is on
// the interface itself, where the kernel has already removed a VLAN tag).
const (
	ethHeader   = 14
	ethTypeIPv4 = 0x0800
	minIPv4     = 20
)

// flowKey is a packet's 5-tuple as it arrives from the client.
type flowKey struct {
	src, dst     [4]byte
	sport, dport uint16
	proto        uint8
}

func (k flowKey) client() netip.Addr { return netip.AddrFrom4(k.src) }

// hash is the flow's Maglev key. It must be the same function on every
// director (a flow's server must not depend on which node forwards it),
// so it is FNV-1a over the tuple in wire order, finished with a 64-bit
// mixer; never 0 (balance reads 0 as "no flow").
func (k flowKey) hash() uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	add := func(b byte) { h = (h ^ uint64(b)) * prime }
	for _, b := range k.src {
		add(b)
	}
	for _, b := range k.dst {
		add(b)
	}
	add(byte(k.sport >> 8))
	add(byte(k.sport))
	add(byte(k.dport >> 8))
	add(byte(k.dport))
	add(k.proto)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	if h == 0 {
		h = 1
	}
	return h
}

// packetInfo is what the director needs from a frame.
type packetInfo struct {
	key flowKey
	// tcpFlags of a TCP segment (0 for UDP).
	tcpFlags uint8
	// ipLen is the IP packet's length (what the counters add); ihl its
	// header's.
	ipLen, ihl int
}

// TCP flags the flow table reacts to.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// parse reads an Ethernet frame carrying IPv4 TCP or UDP. ok is false for
// anything else, and for fragments after the first (they carry no ports:
// the director cannot tell their flow; servers get unfragmented traffic
// from a path-MTU-discovering client).
func parse(f []byte) (packetInfo, bool) {
	var pi packetInfo
	if len(f) < ethHeader+minIPv4 || binary.BigEndian.Uint16(f[12:14]) != ethTypeIPv4 {
		return pi, false
	}
	ip := f[ethHeader:]
	if ip[0]>>4 != 4 {
		return pi, false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < minIPv4 || total < ihl || len(ip) < ihl+8 {
		return pi, false
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return pi, false // a non-first fragment
	}
	pi.key.proto = ip[9]
	copy(pi.key.src[:], ip[12:16])
	copy(pi.key.dst[:], ip[16:20])
	l4 := ip[ihl:]
	pi.key.sport = binary.BigEndian.Uint16(l4[0:2])
	pi.key.dport = binary.BigEndian.Uint16(l4[2:4])
	pi.ipLen, pi.ihl = total, ihl
	if total > len(ip) {
		return pi, false
	}
	switch pi.key.proto {
	case protoTCP:
		if len(l4) < 14 {
			return pi, false
		}
		pi.tcpFlags = l4[13]
	case protoUDP:
	default:
		return pi, false
	}
	return pi, true
}

// rewrite makes f leave for dst from src: the only change direct routing
// makes (the IP packet, TTL included, is the client's, as LVS-DR sends it).
func rewrite(f []byte, dst, src [6]byte) {
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
}
