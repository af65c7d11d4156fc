package dns

import (
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

func benchHandle(b *testing.B, name string, qtype uint16, edns bool) {
	st := &StaticState{}
	st.SetActive("dc1")
	s := New(Options{State: st})
	if err := s.Apply(loadTestConfig(b)); err != nil {
		b.Fatal(err)
	}
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(1232, false)
	}
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
func BenchmarkHandleStaticA(b *testing.B)     { benchHandle(b, "www.example.com.", mdns.TypeA, false) }
func BenchmarkHandleNXDOMAIN(b *testing.B)    { benchHandle(b, "nope.example.com.", mdns.TypeA, false) }
func BenchmarkHandleCNAMEChain(b *testing.B) {
	benchHandle(b, "alias2.example.com.", mdns.TypeA, false)
}
func BenchmarkHandleRefused(b *testing.B) { benchHandle(b, "www.example.net.", mdns.TypeA, false) }
