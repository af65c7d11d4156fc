package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/core/config"
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
	slow := newWorker(s)
	slow.noFast = true
	src := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, tcp := range []bool{false, true} {
			out := w.handle(pkt, src, tcp)
			// The fast parser must not change any answer.
			ref := slow.handle(pkt, src, tcp)
			if (out == nil) != (ref == nil) || out != nil && canonical(t, out) != canonical(t, ref) {
				t.Fatalf("fast and full parser answer differently:\n%v\n%v", out, ref)
			}
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
			o := m.IsEdns0()
			o.Option = append(o.Option, &mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0123456789abcdef"},
				&mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: netip.MustParseAddr("198.18.20.0").AsSlice()})
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
		if (ro == nil) != (go_ == nil) || ro != nil && (ro.Hdr.Class != go_.Hdr.Class || ro.Hdr.Ttl != go_.Hdr.Ttl) {
			t.Fatalf("OPT %v, want %v", go_, ro)
		}
		if ro != nil {
			// Cookies are skipped by the fast path; ECS must match.
			ecs := func(o *mdns.OPT) []string {
				var out []string
				for _, e := range o.Option {
					if s, ok := e.(*mdns.EDNS0_SUBNET); ok {
						out = append(out, fmt.Sprintf("%d %d %d %s", s.Family, s.SourceNetmask, s.SourceScope, s.Address))
					}
				}
				return out
			}
			if a, b := ecs(go_), ecs(ro); !slices.Equal(a, b) {
				t.Fatalf("ECS %v, want %v", a, b)
			}
		}
	})
}

// FuzzConfigToAnswers: every dns section the config accepts compiles, and
// the server answers questions about its names without panicking.
func FuzzConfigToAnswers(f *testing.F) {
	f.Add("www", "A", "198.18.0.1", "mail")
	f.Add("*.dev", "CNAME", "www", "x.dev")
	f.Add("sub", "NS", "ns.sub", "a.sub")
	f.Add("@", "MX", "10 @", "@")
	f.Add("_s._tcp", "SRV", "1 2 3 .", "_s._tcp")
	f.Fuzz(func(t *testing.T, name, typ, data, qname string) {
		doc := "datacenters: [{name: dc1, networks: [198.18.0.0/16]}, {name: dc2}]\ndns:\n  zones:\n    - name: example.com\n      ns: [ns1.example.com]\n" +
			"      records: [{name: " + strconv.Quote(name) + ", type: " + strconv.Quote(typ) + ", data: " + strconv.Quote(data) + "}]\n" +
			"      services: [{name: svc, policy: topology, vips: {dc1: [198.18.1.1], dc2: [\"2001:db8::1\"]}}]\n"
		c, err := config.Parse("fuzz.yaml", []byte(doc))
		if err != nil {
			return
		}
		s := New(Options{})
		if err := s.Apply(c); err != nil {
			t.Fatalf("config accepted but not compiled: %v\n%s", err, doc)
		}
		w := newWorker(s)
		for _, qt := range []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeANY, mdns.TypeMX, mdns.TypeNS, mdns.TypeCNAME} {
			m := new(mdns.Msg)
			m.SetQuestion(config.DNSFQDN(qname, "example.com"), qt)
			pkt, err := m.Pack()
			if err != nil {
				return
			}
			if out := w.handle(pkt, netip.MustParseAddr("198.18.3.3"), false); out != nil {
				var r mdns.Msg
				if err := r.Unpack(out); err != nil {
					t.Fatalf("reply does not parse: %v", err)
				}
			}
		}
	})
}

// canonical renders a reply with its answer section sorted (weighted and
// all-healthy answers are shuffled per query).
func canonical(t *testing.T, b []byte) string {
	var m mdns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	slices.SortFunc(m.Answer, func(a, b mdns.RR) int { return strings.Compare(a.String(), b.String()) })
	return m.String()
}
