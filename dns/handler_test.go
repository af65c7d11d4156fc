package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// raw sends one packet over UDP and returns the reply (nil on timeout).
func raw(t *testing.T, addr string, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// withCount sets the 16-bit header count at off (4 QD, 6 AN, 8 NS, 10 AR).
func withCount(pkt []byte, off int, n uint16) []byte {
	pkt[off], pkt[off+1] = byte(n>>8), byte(n)
	return pkt
}

func packQuery(t *testing.T, mod func(*mdns.Msg)) []byte {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion("mail.example.com.", mdns.TypeA)
	if mod != nil {
		mod(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMalformedAndOddQueries covers what dig cannot send.
func TestMalformedAndOddQueries(t *testing.T) {
	st := &StaticState{}
	st.SetActive("dc1")
	srv, addr := startServer(t, st)
	tests := []struct {
		name      string
		pkt       []byte
		wantReply bool
		rcode     int
	}{
		{"garbage after a header is FORMERR", append([]byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0}, 0xff, 0xff), true, mdns.RcodeFormatError},
		{"too short for a header is dropped", []byte{1, 2, 3}, false, 0},
		{"a response is not answered", packQuery(t, func(m *mdns.Msg) { m.Response = true }), false, 0},
		{"two questions is FORMERR", packQuery(t, func(m *mdns.Msg) {
			m.Question = append(m.Question, mdns.Question{Name: "www.example.com.", Qtype: mdns.TypeA, Qclass: mdns.ClassINET})
		}), true, mdns.RcodeFormatError},
		{"no question is FORMERR", packQuery(t, func(m *mdns.Msg) { m.Question = nil }), true, mdns.RcodeFormatError},
		{"UPDATE is NOTIMP", packQuery(t, func(m *mdns.Msg) { m.Opcode = mdns.OpcodeUpdate }), true, mdns.RcodeNotImplemented},
		{"NOTIFY is NOTIMP", packQuery(t, func(m *mdns.Msg) { m.Opcode = mdns.OpcodeNotify }), true, mdns.RcodeNotImplemented},
		{"CHAOS class is REFUSED", packQuery(t, func(m *mdns.Msg) { m.Question[0].Qclass = mdns.ClassCHAOS }), true, mdns.RcodeRefused},
		{"two OPT records is FORMERR", packQuery(t, func(m *mdns.Msg) { m.SetEdns0(1232, false); m.SetEdns0(1232, false) }), true, mdns.RcodeFormatError},
		{"ECS with bits past the prefix is FORMERR", ecsPastPrefix(t), true, mdns.RcodeFormatError},
		// RFC 6891 and NSD: an announced OPT that is not there, or is cut
		// short, is FORMERR (it was answered NOERROR without EDNS).
		{"ARCOUNT 1 without the OPT is FORMERR", withCount(packQuery(t, nil), 10, 1), true, mdns.RcodeFormatError},
		{"an OPT cut short is FORMERR", withCount(append(packQuery(t, nil), 0, 0, 41, 4, 0), 10, 1), true, mdns.RcodeFormatError},
		{"ARCOUNT 2 with one OPT is FORMERR", withCount(packQuery(t, func(m *mdns.Msg) { m.SetEdns0(1232, false) }), 10, 2), true, mdns.RcodeFormatError},
		{"ANCOUNT 1 without the record is FORMERR", withCount(packQuery(t, nil), 6, 1), true, mdns.RcodeFormatError},
		{"an OPT as announced is answered", packQuery(t, func(m *mdns.Msg) { m.SetEdns0(1232, false) }), true, mdns.RcodeSuccess},
		{"AXFR over UDP is NOTIMP", packQuery(t, func(m *mdns.Msg) {
			m.Question[0] = mdns.Question{Name: "example.com.", Qtype: mdns.TypeAXFR, Qclass: mdns.ClassINET}
		}), true, mdns.RcodeNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait := 2 * time.Second
			if !tt.wantReply {
				wait = 300 * time.Millisecond // a reply, if any, comes in well under this on loopback
			}
			reply := raw(t, addr, tt.pkt, wait)
			if !tt.wantReply {
				if reply != nil {
					t.Fatalf("got a %d-byte reply, want none", len(reply))
				}
				return
			}
			if reply == nil {
				t.Fatal("no reply")
			}
			var m mdns.Msg
			if err := m.Unpack(reply); err != nil {
				t.Fatalf("unpack reply: %v", err)
			}
			if m.Rcode != tt.rcode || !m.Response {
				t.Errorf("rcode %s qr=%v, want %s", mdns.RcodeToString[m.Rcode], m.Response, mdns.RcodeToString[tt.rcode])
			}
			if m.Id != uint16(tt.pkt[0])<<8|uint16(tt.pkt[1]) {
				t.Errorf("id %#x does not match the query", m.Id)
			}
			if m.RecursionAvailable {
				t.Error("RA set")
			}
		})
	}
	if srv.Stats().FormErr.Load() < 4 {
		t.Errorf("FORMERR counted %d times, want >= 4", srv.Stats().FormErr.Load())
	}
	// The server still answers after all that.
	if r := ask(t, addr, "mail.example.com.", mdns.TypeA, nil); !slices.Equal(addrsOf(r.Answer), []string{"198.18.1.100"}) {
		t.Errorf("after malformed queries: %v", r.Answer)
	}
}

// TestRRL limits one client network: of 40 quick queries at most
// burst+a few are answered fully, and some limited ones slip as TC.
func TestRRL(t *testing.T) {
	c := loadTestConfig(t)
	slip := 2
	c.DNS.RRL = config.DNSRRL{ResponsesPerSecond: 5, Burst: 5, Slip: &slip, IPv4Prefix: 24, IPv6Prefix: 56}
	s := New(Options{Listen: []string{"127.0.0.1:0"}, Sockets: 1, State: &StaticState{}})
	if err := s.Apply(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Run(ctx)
	conn, err := net.Dial("udp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// burst sends n queries for name(i) at once and counts the full and
	// the truncated (slipped) answers until none come for 500ms.
	burstQ := func(n int, question func(i int) (string, uint16)) (full, tc int) {
		for i := 0; i < n; i++ {
			name, qtype := question(i)
			if _, err := conn.Write(packQuery(t, func(m *mdns.Msg) { m.Id = uint16(i); m.Question[0].Name, m.Question[0].Qtype = name, qtype })); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 4096)
		for {
			conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			k, err := conn.Read(buf)
			if err != nil {
				return full, tc
			}
			var m mdns.Msg
			if m.Unpack(buf[:k]) != nil {
				t.Fatal("bad reply")
			}
			if m.Truncated {
				tc++
			} else {
				full++
			}
		}
	}
	burst := func(n int, name func(i int) string) (full, tc int) {
		return burstQ(n, func(i int) (string, uint16) { return name(i), mdns.TypeA })
	}
	const n = 40
	full, tc := burst(n, func(int) string { return "mail.example.com." })
	// 5 burst + 5/s refill while the 40 are answered: well under 20 even on
	// a loaded machine, and never fewer than the burst.
	if full < 5 || full > 20 {
		t.Errorf("%d full answers, want about 5 (burst)", full)
	}
	if tc == 0 || full+tc >= n {
		t.Errorf("%d truncated slips and %d full of %d; want some slipped and some dropped", tc, full, n)
	}
	if s.Stats().RRLDropped.Load() == 0 || s.Stats().RRLSlipped.Load() == 0 {
		t.Errorf("counters: dropped=%d slipped=%d", s.Stats().RRLDropped.Load(), s.Stats().RRLSlipped.Load())
	}
	// Buckets as BIND's: NXDOMAIN for random names shares the zone's
	// bucket, so a random-subdomain flood is limited like one name...
	if full, _ := burst(n, func(i int) string { return fmt.Sprintf("r%d.nothere.example.com.", i) }); full < 5 || full > 20 {
		t.Errorf("random NXDOMAIN names: %d full answers, want about 5 (burst)", full)
	}
	// ...and so are the other keys a spoofed flood could make up: names
	// under a wildcard share the wildcard's bucket, names below a
	// delegation the referral's, and empty answers for one name share
	// one bucket whatever the type (BIND's RRL alike).
	floods := map[string]func(i int) (string, uint16){
		"wildcard": func(i int) (string, uint16) { return fmt.Sprintf("h%d.dev.example.com.", i), mdns.TypeA },
		"referral": func(i int) (string, uint16) { return fmt.Sprintf("h%d.sub.example.com.", i), mdns.TypeA },
		"empty":    func(i int) (string, uint16) { return "ns1.example.com.", uint16(1000 + i) },
	}
	for what, q := range floods {
		if full, _ := burstQ(n, q); full < 5 || full > 20 {
			t.Errorf("%s flood: %d full answers, want about 5 (burst)", what, full)
		}
	}
	// Answers for different names (a resolver's for its many users) each
	// have their own bucket, and the floods above do not touch them.
	names := []string{"www", "alias", "alias2", "webmail", "mx1", "ns2", "deep.empty.nonterminal", "vdi", "web", "all"}
	if full, tc := burst(len(names), func(i int) string { return names[i] + ".example.com." }); full != len(names) {
		t.Errorf("%d different names: %d full answers and %d truncated, want all full", len(names), full, tc)
	}
}

// TestSerial: the serial moves forward on every change and only then.
func TestSerial(t *testing.T) {
	s := New(Options{})
	c := loadTestConfig(t)
	if err := s.Apply(c); err != nil {
		t.Fatal(err)
	}
	s1 := s.Serial("example.com.")
	if s1 == 0 {
		t.Fatal("no serial")
	}
	if err := s.Apply(loadTestConfig(t)); err != nil {
		t.Fatal(err)
	}
	if s2 := s.Serial("example.com."); s2 != s1 {
		t.Errorf("serial moved from %d to %d without a change", s1, s2)
	}
	prev := s1
	for i := 0; i < 3; i++ { // several changes within one second still increase it
		c2 := loadTestConfig(t)
		c2.DNS.Zones[0].Records[2].Data = config.StringList{netip.AddrFrom4([4]byte{198, 18, 0, byte(50 + i)}).String()}
		if err := s.Apply(c2); err != nil {
			t.Fatal(err)
		}
		got := s.Serial("example.com.")
		if !serialGreater(got, prev) {
			t.Errorf("change %d: serial %d not after %d", i, got, prev)
		}
		prev = got
	}
	// The other zone did not change.
	c3 := loadTestConfig(t)
	s3 := New(Options{})
	s3.Apply(c3)
	if s.Serial("example.org.") == 0 {
		t.Error("example.org has no serial")
	}
	// A serial set by the operator wins.
	c4 := loadTestConfig(t)
	c4.DNS.Zones[0].SOA.Serial = 2026112201
	s.Apply(c4)
	if got := s.Serial("example.com."); got != 2026112201 {
		t.Errorf("serial %d, want the configured 2026112201", got)
	}
}

// TestSerialReplicated: with serials decided in the replicated state
// (raft), every node serves that serial whatever its own clock and start
// time; a replicated serial behind what this process already served (the
// first change after an upgrade) never moves the serial back.
func TestSerialReplicated(t *testing.T) {
	withSerial := func(serial uint32, www string) *config.Cluster {
		c := loadTestConfig(t)
		c.DNS.Zones[0].Records[2].Data = config.StringList{www}
		c.ZoneSerials = map[string]uint32{"example.com.": serial}
		return c
	}
	a, b := New(Options{}), New(Options{})
	if err := a.Apply(withSerial(1700000000, "198.18.0.10")); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(withSerial(1700000000, "198.18.0.10")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Server{a, b} {
		if got := s.Serial("example.com."); got != 1700000000 {
			t.Errorf("serial %d, want the replicated 1700000000", got)
		}
	}
	if err := a.Apply(withSerial(1700000500, "198.18.0.11")); err != nil {
		t.Fatal(err)
	}
	if got := a.Serial("example.com."); got != 1700000500 {
		t.Errorf("serial %d after a change, want 1700000500", got)
	}
	// Locally derived first (no replicated serial), then a replicated one
	// that is behind it: the serial still only moves forward.
	c := New(Options{})
	if err := c.Apply(loadTestConfig(t)); err != nil {
		t.Fatal(err)
	}
	local := c.Serial("example.com.")
	if err := c.Apply(withSerial(1700000000, "198.18.0.12")); err != nil {
		t.Fatal(err)
	}
	if got := c.Serial("example.com."); !serialGreater(got, local) {
		t.Errorf("serial %d after a change, not after %d", got, local)
	}
}

func TestSerialGreater(t *testing.T) {
	tests := []struct {
		a, b uint32
		want bool
	}{
		{2, 1, true}, {1, 2, false}, {1, 1, false}, {0, 0xffffffff, true}, {0xffffffff, 0, false}, {1 << 30, 0, true},
	}
	for _, tt := range tests {
		if got := serialGreater(tt.a, tt.b); got != tt.want {
			t.Errorf("serialGreater(%d, %d) = %v", tt.a, tt.b, got)
		}
	}
}

// TestHook: a hook may override the answer; its errors, panics and
// slowness fall back to the policy.
func TestHook(t *testing.T) {
	st := &StaticState{}
	st.SetActive("dc1")
	srv, addr := startServer(t, st)
	var mu sync.Mutex // the hook runs on the server's goroutines
	var mode string
	var seen Query
	srv.SetHookResolver(func(name string) (Hook, bool) {
		if name != "pick" {
			return nil, false
		}
		return func(ctx context.Context, q Query) (Answer, bool, error) {
			mu.Lock()
			seen = q
			m := mode
			mu.Unlock()
			switch m {
			case "override":
				return Answer{Addrs: []netip.Addr{mustAddr("198.18.9.9"), mustAddr("2001:db8::9")}}, true, nil
			case "datacenter":
				return Answer{Datacenter: "dc2", TTL: 3}, true, nil
			case "no such datacenter":
				return Answer{Datacenter: "dc9"}, true, nil
			case "error":
				return Answer{}, false, errors.New("script failed")
			case "panic":
				panic("boom")
			case "slow":
				<-ctx.Done()
				return Answer{}, false, ctx.Err()
			}
			return Answer{}, false, nil
		}, true
	})
	tests := []struct {
		mode string
		want []string
	}{
		{"override", []string{"198.18.9.9"}},
		{"datacenter", []string{"198.18.2.105"}},
		{"no such datacenter", []string{"198.18.1.105"}},
		{"pass", []string{"198.18.1.105"}},
		{"error", []string{"198.18.1.105"}},
		{"panic", []string{"198.18.1.105"}},
		{"slow", []string{"198.18.1.105"}},
	}
	for _, tt := range tests {
		mu.Lock()
		mode = tt.mode
		mu.Unlock()
		r := ask(t, addr, "hooked.example.com.", mdns.TypeA, nil)
		if got := addrsOf(r.Answer); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.mode, got, tt.want)
		}
		wantTTL := uint32(10)
		if tt.mode == "datacenter" {
			wantTTL = 3 // the hook's
		}
		if len(r.Answer) > 0 && r.Answer[0].Header().Ttl != wantTTL {
			t.Errorf("%s: TTL %d, want %d", tt.mode, r.Answer[0].Header().Ttl, wantTTL)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if seen.Service != "hooked" || seen.Datacenter != "dc1" || !strings.HasPrefix(seen.Name, "hooked.") || len(seen.Answer) != 1 ||
		seen.Client != mustAddr("127.0.0.1") || seen.Subnet.IsValid() {
		t.Errorf("hook saw %+v", seen)
	}
	if n := srv.Stats().HookErrors.Load(); n != 4 {
		t.Errorf("%d hook errors counted, want 4", n)
	}
}

// ecsPastPrefix is a query whose ECS /20 address has bits set after the
// 20th: miekg masks when packing, so the last byte is set by hand.
func ecsPastPrefix(t *testing.T) []byte {
	pkt := packQuery(t, func(m *mdns.Msg) {
		m.SetEdns0(1232, false)
		o := m.IsEdns0()
		o.Option = append(o.Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1, SourceNetmask: 20, Address: net.ParseIP("198.18.16.0").To4()})
	})
	pkt[len(pkt)-1] |= 0x0f
	return pkt
}

// TestTCPPipelining sends three queries in one write on one connection
// and reads three answers (RFC 7766).
func TestTCPPipelining(t *testing.T) {
	_, addr := startServer(t, &StaticState{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch []byte
	names := []string{"www.example.com.", "mail.example.com.", "nope.example.com."}
	for i, n := range names {
		pkt := packQuery(t, func(m *mdns.Msg) { m.Id = uint16(100 + i); m.Question[0].Name = n })
		batch = append(batch, byte(len(pkt)>>8), byte(len(pkt)))
		batch = append(batch, pkt...)
	}
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := map[uint16]int{}
	for range names {
		var hdr [2]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, int(hdr[0])<<8|int(hdr[1]))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		var m mdns.Msg
		if err := m.Unpack(buf); err != nil {
			t.Fatal(err)
		}
		got[m.Id] = m.Rcode
	}
	want := map[uint16]int{100: mdns.RcodeSuccess, 101: mdns.RcodeSuccess, 102: mdns.RcodeNameError}
	if !maps.Equal(got, want) {
		t.Errorf("answers by id %v, want %v", got, want)
	}
}

// TestCollector: the Prometheus collector exposes what was counted.
func TestCollector(t *testing.T) {
	srv, addr := startServer(t, &StaticState{})
	ask(t, addr, "mail.example.com.", mdns.TypeA, nil)
	ask(t, addr, "www.example.net.", mdns.TypeA, nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(srv))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				got[key] = c.GetValue()
			} else {
				got[key] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		"vipgate_dns_queries_total,transport=udp":                                 2,
		"vipgate_dns_responses_total,name=mail.example.com.,rcode=NOERROR,type=A": 1,
		"vipgate_dns_events_total,event=refused":                                  1,
		"vipgate_dns_zone_serial,zone=example.com.":                               float64(srv.Serial("example.com")),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestNotify: a secondary listed in notify gets a NOTIFY with the new SOA
// when the zone changes.
func TestNotify(t *testing.T) {
	sec, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Close()
	c := loadTestConfig(t)
	c.DNS.Zones[0].Notify = config.StringList{sec.LocalAddr().String()}
	s := New(Options{Listen: []string{"127.0.0.1:0"}, Sockets: 1})
	if err := s.Apply(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	// receive answers one NOTIFY and returns the serial it announced.
	receive := func() uint32 {
		t.Helper()
		buf := make([]byte, 4096)
		sec.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := sec.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no NOTIFY: %v", err)
		}
		var m mdns.Msg
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if m.Opcode != mdns.OpcodeNotify || !m.Authoritative || len(m.Question) != 1 || m.Question[0].Name != "example.com." || m.Question[0].Qtype != mdns.TypeSOA || len(m.Answer) != 1 {
			t.Fatalf("not a NOTIFY for example.com: %v", &m)
		}
		ack := new(mdns.Msg)
		ack.SetReply(&m)
		b, _ := ack.Pack()
		sec.WriteTo(b, from)
		return m.Answer[0].(*mdns.SOA).Serial
	}
	if got, want := receive(), s.Serial("example.com"); got != want {
		t.Errorf("first NOTIFY serial %d, want %d", got, want)
	}
	c2 := loadTestConfig(t)
	c2.DNS.Zones[0].Notify = c.DNS.Zones[0].Notify
	c2.DNS.Zones[0].Records[2].Data = config.StringList{"198.18.0.88"}
	if err := s.Apply(c2); err != nil {
		t.Fatal(err)
	}
	if got, want := receive(), s.Serial("example.com"); got != want {
		t.Errorf("NOTIFY after a change: serial %d, want %d", got, want)
	}
	testenv.Eventually(t, 5*time.Second, "notifies acknowledged", func() bool { return s.Stats().Notifies.Load() == 2 })
}
