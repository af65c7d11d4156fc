package dns

import (
	"net"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func benchHandle(b *testing.B, name string, qtype uint16, edns bool) {
	benchHandleMsg(b, name, qtype, func(m *mdns.Msg) {
		if edns {
			m.SetEdns0(1232, false)
		}
	})
}

func benchHandleMsg(b *testing.B, name string, qtype uint16, mod func(*mdns.Msg)) {
	st := &StaticState{}
	st.SetActive("dc1")
	s := New(Options{State: st})
	if err := s.Apply(loadTestConfig(b)); err != nil {
		b.Fatal(err)
	}
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	mod(m)
	pkt, _ := m.Pack()
	w := newWorker(s)
	src := netip.MustParseAddr("198.18.20.7")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if w.handle(pkt, src, false) == nil {
			b.Fatal("no answer")
		}
	}
}

func BenchmarkHandleServiceA(b *testing.B)    { benchHandle(b, "mail.example.com.", mdns.TypeA, false) }
func BenchmarkHandleServiceEDNS(b *testing.B) { benchHandle(b, "mail.example.com.", mdns.TypeA, true) }
func BenchmarkHandleTopology(b *testing.B)    { benchHandle(b, "vdi.example.com.", mdns.TypeA, true) }

// BenchmarkHandleResolverLike: what BIND-like resolvers send (EDNS with a
// cookie) and public resolvers add (ECS), to a topology name.
func BenchmarkHandleResolverLike(b *testing.B) {
	benchHandleMsg(b, "vdi.example.com.", mdns.TypeA, func(m *mdns.Msg) {
		m.SetEdns0(1232, true)
		o := m.IsEdns0()
		o.Option = append(o.Option, &mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0123456789abcdef"},
			&mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: netip.MustParseAddr("198.18.20.0").AsSlice()})
	})
}

func BenchmarkHandleStaticA(b *testing.B)  { benchHandle(b, "www.example.com.", mdns.TypeA, false) }
func BenchmarkHandleNXDOMAIN(b *testing.B) { benchHandle(b, "nope.example.com.", mdns.TypeA, false) }
func BenchmarkHandleCNAMEChain(b *testing.B) {
	benchHandle(b, "alias2.example.com.", mdns.TypeA, false)
}
func BenchmarkHandleRefused(b *testing.B) { benchHandle(b, "www.example.net.", mdns.TypeA, false) }

// BenchmarkUDPRoundTrip measures one query over loopback UDP through the
// whole serving path (batch receive, answer, batch send), with 16 queries
// in flight.
func BenchmarkUDPRoundTrip(b *testing.B) {
	st := &StaticState{}
	st.SetActive("dc1")
	_, addr := startServer(b, st)
	c, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	m := new(mdns.Msg)
	m.SetQuestion("mail.example.com.", mdns.TypeA)
	pkt, _ := m.Pack()
	buf := make([]byte, 512)
	const inflight = 16
	b.ResetTimer()
	sent, recv := 0, 0
	for recv < b.N {
		for sent < b.N && sent-recv < inflight {
			if _, err := c.Write(pkt); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(buf); err != nil {
			// A datagram lost on an overloaded loopback: send another.
			sent--
			continue
		}
		recv++
	}
}
