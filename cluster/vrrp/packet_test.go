package vrrp

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var (
	src4 = netip.MustParseAddr("198.18.0.1")
	src6 = netip.MustParseAddr("fe80::1")
)

func TestPacketRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		p        Packet
		src, dst netip.Addr
	}{
		{"v2 no auth", Packet{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("198.18.1.100")}}, src4, Group4},
		{"v2 pass", Packet{Version: 2, VRID: 1, Priority: 255, Interval: 3 * time.Second, AuthType: AuthPass, Auth: PassAuth("secret"), Addrs: []netip.Addr{netip.MustParseAddr("198.18.1.100"), netip.MustParseAddr("198.18.1.101")}}, src4, Group4},
		{"v3 ipv4 centiseconds", Packet{Version: 3, VRID: 200, Priority: 1, Interval: 30 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.18.1.100")}}, src4, netip.MustParseAddr("198.18.0.2")},
		{"v3 ipv6", Packet{Version: 3, VRID: 7, Priority: 150, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::100")}}, src6, Group6},
		{"v3 resign no addrs", Packet{Version: 3, VRID: 7, Priority: 0, Interval: time.Second}, src4, Group4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.p.AppendMarshal(nil, tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b, tc.src, tc.dst)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.p) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.p)
			}
		})
	}
}

// TestPacketWire pins the exact bytes of a VRRPv2 advertisement, as
// laid out in RFC 3768 §5.1 (the interop tests check it against keepalived).
func TestPacketWire(t *testing.T) {
	p := Packet{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, AuthType: AuthPass, Auth: PassAuth("1111"), Addrs: []netip.Addr{netip.MustParseAddr("198.18.1.100")}}
	b, err := p.AppendMarshal(nil, src4, Group4)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x21, 51, 100, 1, 1, 1, 0, 0, 198, 18, 1, 100, '1', '1', '1', '1', 0, 0, 0, 0}
	sum := finish(0, want)
	want[6], want[7] = byte(sum>>8), byte(sum)
	if !bytes.Equal(b, want) {
		t.Fatalf("wire form\n got % x\nwant % x", b, want)
	}
	// v3: 12-bit centiseconds after a 4-bit reserved field.
	p3 := Packet{Version: 3, VRID: 51, Priority: 100, Interval: 4 * time.Second, Addrs: p.Addrs}
	b, _ = p3.AppendMarshal(nil, src4, Group4)
	if b[0] != 0x31 || b[4] != 0x01 || b[5] != 0x90 {
		t.Fatalf("v3 header % x: want 31 .. .. .. 01 90 (400 cs)", b[:8])
	}
}

func TestPacketRejects(t *testing.T) {
	good := Packet{Version: 3, VRID: 9, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("198.18.1.100")}}
	b, _ := good.AppendMarshal(nil, src4, Group4)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	tests := []struct {
		name string
		b    []byte
		src  netip.Addr
		want error
	}{
		{"empty", nil, src4, ErrShort},
		{"short header", b[:7], src4, ErrShort},
		{"version 4", mut(func(b []byte) []byte { b[0] = 0x41; return b }), src4, ErrVersion},
		{"type 2", mut(func(b []byte) []byte { b[0] = 0x32; return b }), src4, ErrType},
		{"count too big", mut(func(b []byte) []byte { b[3] = 2; return b }), src4, ErrLength},
		{"flipped bit", mut(func(b []byte) []byte { b[9] ^= 1; return b }), src4, ErrChecksum},
		{"wrong pseudo-header (other source)", b, netip.MustParseAddr("198.18.0.9"), ErrChecksum},
		{"v2 over ipv6", mut(func(b []byte) []byte { b[0] = 0x21; return b }), src6, ErrVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.b, tc.src, Group4)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Trailing padding is tolerated (the checksum covers the message).
	if _, err := Parse(append(append([]byte(nil), b...), 0, 0), src4, Group4); err != nil {
		t.Fatalf("padded packet: %v", err)
	}
}

func TestMarshalRejects(t *testing.T) {
	a := []netip.Addr{netip.MustParseAddr("198.18.1.100")}
	tests := []struct {
		name string
		p    Packet
		src  netip.Addr
	}{
		{"v2 sub-second", Packet{Version: 2, Interval: 500 * time.Millisecond, Addrs: a}, src4},
		{"v3 zero", Packet{Version: 3, Interval: 0, Addrs: a}, src4},
		{"v3 too long", Packet{Version: 3, Interval: 41 * time.Second, Addrs: a}, src4},
		{"v2 ipv6", Packet{Version: 2, Interval: time.Second, Addrs: []netip.Addr{src6}}, src6},
		{"mixed family", Packet{Version: 3, Interval: time.Second, Addrs: []netip.Addr{src6}}, src4},
		{"version 1", Packet{Version: 1, Interval: time.Second}, src4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.p.AppendMarshal(nil, tc.src, Group4); err == nil {
				t.Fatal("marshal succeeded")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []Packet{
		{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, AuthType: AuthPass, Auth: PassAuth("x"), Addrs: []netip.Addr{netip.MustParseAddr("198.18.1.100")}},
		{Version: 3, VRID: 1, Priority: 0, Interval: 10 * time.Millisecond},
	} {
		b, _ := p.AppendMarshal(nil, src4, Group4)
		f.Add(b, false)
	}
	p6 := Packet{Version: 3, VRID: 1, Priority: 9, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}
	b6, _ := p6.AppendMarshal(nil, src6, Group6)
	f.Add(b6, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		src, dst := src4, Group4
		if v6 {
			src, dst = src6, Group6
		}
		p, err := Parse(b, src, dst)
		if err != nil {
			return
		}
		// Whatever parses must re-encode to a packet that parses the same.
		out, err := p.AppendMarshal(nil, src, dst)
		if err != nil {
			if p.Interval == 0 || (p.Version == 2 && p.Interval > 255*time.Second) {
				return // a zero interval is on the wire but never sent by us
			}
			t.Fatalf("re-encode %+v: %v", p, err)
		}
		q, err := Parse(out, src, dst)
		if err != nil || !reflect.DeepEqual(p, q) {
			t.Fatalf("re-parse: %v\n%+v\n%+v", err, p, q)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	p := Packet{Version: 3, VRID: 51, Priority: 100, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.18.1.100")}}
	buf, _ := p.AppendMarshal(nil, src4, Group4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(buf, src4, Group4); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	p := Packet{Version: 3, VRID: 51, Priority: 100, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("198.18.1.100")}}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = p.AppendMarshal(buf[:0], src4, Group4)
	}
}
