package dns

import (
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

// FuzzHandle feeds arbitrary packets to the query handler, over the UDP and
// the TCP path: it must never panic, and whatever it sends must be a
// well-formed response to the same ID.
func FuzzHandle(f *testing.F) {
	seed := func(name string, t uint16, mod func(*mdns.Msg)) {
		m := new(mdns.Msg)
		m.SetQuestion(name, t)
		if mod != nil {
			mod(m)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed("mail.example.com.", mdns.TypeA, nil)
	seed("vdi.example.com.", mdns.TypeA, func(m *mdns.Msg) {
		m.SetEdns0(4096, true)
		o := m.IsEdns0()
		o.Option = append(o.Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: netip.MustParseAddr("198.18.20.0").AsSlice()})
	})
	seed("x.dev.example.com.", mdns.TypeTXT, nil)
	seed("alias2.example.com.", mdns.TypeANY, nil)
	seed("host.sub.example.com.", mdns.TypeA, nil)
	seed("example.com.", mdns.TypeAXFR, nil)
	seed("big.example.com.", mdns.TypeTXT, nil)
	seed("www.example.net.", mdns.TypeA, func(m *mdns.Msg) { m.SetEdns0(512, false); m.IsEdns0().SetVersion(1) })
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1})
	f.Add([]byte{})

	st := &StaticState{}
	st.SetActive("dc1")
	s := New(Options{State: st})
	if err := s.Apply(loadTestConfig(f)); err != nil {
		f.Fatal(err)
	}
	w := newWorker(s)
	src := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, tcp := range []bool{false, true} {
			out := w.handle(pkt, src, tcp)
			if out == nil {
				continue
			}
			if !tcp && len(out) > ednsSize {
				t.Fatalf("UDP answer of %d bytes", len(out))
			}
			var m mdns.Msg
			if err := m.Unpack(out); err != nil {
				t.Fatalf("our reply does not parse: %v", err)
			}
			if !m.Response || m.Id != uint16(pkt[0])<<8|uint16(pkt[1]) {
				t.Fatalf("reply qr=%v id=%#x", m.Response, m.Id)
			}
		}
	})
}

// FuzzFastParse checks the allocation-free parser against miekg/dns's:
// whatever it accepts must decode to the same header, question and OPT.
func FuzzFastParse(f *testing.F) {
	for _, q := range []struct {
		name string
		t    uint16
		edns bool
	}{{"mail.example.com.", mdns.TypeA, false}, {"www.example.com.", mdns.TypeAAAA, true}, {"example.com.", mdns.TypeSOA, true}} {
		m := new(mdns.Msg)
		m.SetQuestion(q.name, q.t)
		if q.edns {
			m.SetEdns0(1232, true)
		}
		b, _ := m.Pack()
		f.Add(b)
	}
	s := New(Options{})
	if err := s.Apply(loadTestConfig(f)); err != nil {
		f.Fatal(err)
	}
	w := newWorker(s)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if !w.fastParse(pkt, s.snap.Load()) {
			return
		}
		var ref mdns.Msg
		if err := ref.Unpack(pkt); err != nil {
			t.Fatalf("fast parser accepted what miekg rejects: %v", err)
		}
		got := &w.req
		if got.MsgHdr != ref.MsgHdr {
			t.Fatalf("header %+v, want %+v", got.MsgHdr, ref.MsgHdr)
		}
		if len(ref.Question) != 1 || got.Question[0] != ref.Question[0] {
			t.Fatalf("question %v, want %v", got.Question, ref.Question)
		}
		ro, go_ := ref.IsEdns0(), got.IsEdns0()
		if (ro == nil) != (go_ == nil) || ro != nil && (ro.Hdr.Class != go_.Hdr.Class || ro.Hdr.Ttl != go_.Hdr.Ttl || len(ro.Option) != 0) {
			t.Fatalf("OPT %v, want %v", go_, ro)
		}
	})
}
