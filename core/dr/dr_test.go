package dr

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/bpf"

	"github.com/vipgate/vipgate/core/balance"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// frame builds an Ethernet/IPv4 frame with a TCP or UDP header and payload,
// checksums computed.
func frame(proto uint8, src, dst string, sport, dport uint16, flags uint8, payload int) []byte {
	l4len := 20
	if proto == protoUDP {
		l4len = 8
	}
	total := 20 + l4len + payload
	f := make([]byte, ethHeader+total)
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 1})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 2})
	binary.BigEndian.PutUint16(f[12:], ethTypeIPv4)
	ip := f[ethHeader:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	ip[8] = 64
	ip[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	l4 := ip[20:]
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	if proto == protoTCP {
		l4[12] = 5 << 4
		l4[13] = flags
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len+payload))
	}
	for i := range payload {
		l4[l4len+i] = byte(i)
	}
	pi, _ := parse(f)
	fillChecksum(f, pi)
	return f
}

func TestParse(t *testing.T) {
	tcp := frame(protoTCP, "198.18.0.50", "198.18.0.100", 40000, 80, tcpSYN, 0)
	udp := frame(protoUDP, "198.18.0.50", "198.18.0.100", 5353, 53, 0, 30)
	frag := append([]byte(nil), tcp...)
	binary.BigEndian.PutUint16(frag[ethHeader+6:], 100) // offset 800: a later fragment
	icmp := append([]byte(nil), tcp...)
	icmp[ethHeader+9] = 1
	arp := append([]byte(nil), tcp...)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	for _, tc := range []struct {
		name  string
		f     []byte
		ok    bool
		proto uint8
		dport uint16
		flags uint8
	}{
		{"tcp syn", tcp, true, protoTCP, 80, tcpSYN},
		{"udp", udp, true, protoUDP, 53, 0},
		{"later fragment", frag, false, 0, 0, 0},
		{"icmp", icmp, false, 0, 0, 0},
		{"arp", arp, false, 0, 0, 0},
		{"short", tcp[:30], false, 0, 0, 0},
		{"truncated ip", tcp[:len(tcp)-4], false, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pi, ok := parse(tc.f)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if pi.key.proto != tc.proto || pi.key.dport != tc.dport || pi.tcpFlags != tc.flags || pi.key.client() != netip.MustParseAddr("198.18.0.50") {
				t.Fatalf("parsed %+v", pi)
			}
		})
	}
}

func TestRewriteChangesOnlyMACs(t *testing.T) {
	f := frame(protoTCP, "198.18.0.50", "198.18.0.100", 40000, 80, 0x10, 100)
	orig := append([]byte(nil), f...)
	dst, src := [6]byte{2, 1, 1, 1, 1, 1}, [6]byte{2, 2, 2, 2, 2, 2}
	rewrite(f, dst, src)
	if [6]byte(f[0:6]) != dst || [6]byte(f[6:12]) != src {
		t.Fatalf("MACs: %x %x", f[0:6], f[6:12])
	}
	if string(f[12:]) != string(orig[12:]) {
		t.Fatal("the IP packet changed")
	}
}

// TestFillChecksum: the test frames carry right checksums (known values,
// computed independently), and fillChecksum computes them over whatever
// the field held.
func TestFillChecksum(t *testing.T) {
	// Known values (computed independently) for 99 bytes of payload.
	for _, tc := range []struct {
		proto uint8
		off   int
		want  uint16
	}{{protoTCP, 16, 0xeab3}, {protoUDP, 6, 0x3a62}} {
		f := frame(tc.proto, "198.18.0.50", "198.18.0.100", 40000, 80, 0x18, 99)
		if got := binary.BigEndian.Uint16(f[ethHeader+20+tc.off:]); got != tc.want {
			t.Fatalf("proto %d: checksum %04x, want %04x", tc.proto, got, tc.want)
		}
	}
	for _, proto := range []uint8{protoTCP, protoUDP} {
		for _, n := range []int{0, 1, 99, 1000} {
			good := frame(proto, "198.18.0.50", "198.18.0.100", 40000, 80, 0x18, n)
			f := append([]byte(nil), good...)
			off := ethHeader + 20 + 16
			if proto == protoUDP {
				off = ethHeader + 20 + 6
			}
			f[off], f[off+1] = 0xde, 0xad // what offload leaves: not the checksum
			pi, _ := parse(f)
			fillChecksum(f, pi)
			if string(f) != string(good) {
				t.Fatalf("proto %d len %d: checksum %x, want %x", proto, n, f[off:off+2], good[off:off+2])
			}
			if verify(good, proto) != 0xffff {
				t.Fatalf("proto %d len %d: the checksum does not verify", proto, n)
			}
		}
	}
}

// verify sums the pseudo-header and segment: 0xffff when the checksum is right.
func verify(f []byte, proto uint8) uint16 {
	ip := f[ethHeader:]
	return pseudoSum(ip, ip[20:], proto)
}

func TestFilterProgram(t *testing.T) {
	vips := []netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.101")}
	for _, tc := range []struct {
		name string
		dst  string
		keep bool
	}{
		{"first vip", "198.18.0.100", true},
		{"second vip", "198.18.0.101", true},
		{"other address", "198.18.0.11", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm, err := bpf.NewVM(filterProgram(vips)[2:]) // the VM has no packet type: from the ethertype on
			if err != nil {
				t.Fatal(err)
			}
			n, err := vm.Run(frame(protoTCP, "198.18.0.50", tc.dst, 1, 80, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tc.keep {
				t.Fatalf("kept %d bytes, want keep=%v", n, tc.keep)
			}
		})
	}
	if p := filterProgram(nil); len(p) != 1 {
		t.Fatalf("no VIPs: %v, want drop all", p)
	}
}

func servers(n int) []*upstream.Server {
	out := make([]*upstream.Server, n)
	for i := range out {
		out[i] = upstream.NewServer("web", fmt.Sprintf("s%d", i+1), fmt.Sprintf("198.18.0.%d:80", 21+i), 1)
		out[i].SetSettings(upstream.Settings{Index: i, Weight: 1})
	}
	return out
}

func key(i int) flowKey {
	return flowKey{src: [4]byte{198, 18, byte(i >> 16), byte(i >> 8)}, dst: [4]byte{198, 18, 0, 100}, sport: uint16(i), dport: 80, proto: protoTCP}
}

// TestMaglevMinimalDisruption: when a server goes, only its flows move;
// when it comes back, only flows move to it. Two policies built alike
// (two directors) pick alike.
func TestMaglevMinimalDisruption(t *testing.T) {
	srv := servers(4)
	p1, _ := balance.New(config.Balance{Algorithm: "maglev"})
	p2, _ := balance.New(config.Balance{Algorithm: "maglev"})
	p1.Update(srv)
	p2.Update(srv)
	const n = 20000
	before := make([]*upstream.Server, n)
	count := map[*upstream.Server]int{}
	for i := range n {
		r := &balance.Request{Flow: key(i).hash()}
		before[i] = p1.Pick(r)
		if p2.Pick(r) != before[i] {
			t.Fatalf("flow %d: the two directors disagree", i)
		}
		count[before[i]]++
	}
	for _, s := range srv {
		if c := count[s]; c < n/4*8/10 || c > n/4*12/10 {
			t.Fatalf("%s got %d of %d flows: not an even spread", s.Name, c, n)
		}
	}
	srv[1].SetHealth(upstream.Down, "test")
	p1.Update(srv)
	moved := 0
	for i := range n {
		now := p1.Pick(&balance.Request{Flow: key(i).hash()})
		if now == srv[1] {
			t.Fatalf("flow %d still on the down server", i)
		}
		if before[i] != srv[1] && now != before[i] {
			moved++
		}
	}
	if moved != 0 {
		t.Fatalf("%d flows of the servers that stayed moved", moved)
	}
	srv[1].SetHealth(upstream.Up, "test")
	p1.Update(srv)
	for i := range n {
		if now := p1.Pick(&balance.Request{Flow: key(i).hash()}); now != before[i] {
			t.Fatalf("flow %d: %s after the server came back, %s before it went", i, now.Name, before[i].Name)
		}
	}
}

func TestFlowTable(t *testing.T) {
	srv := servers(2)
	be := &upstream.Counters{}
	t0 := time.Unix(1000, 0).UnixNano()
	for _, tc := range []struct {
		name  string
		proto uint8
		flags []uint8 // packets after the first
		idle  time.Duration
	}{
		{"tcp established", protoTCP, []uint8{tcpSYN, 0x10}, tcpIdle},
		{"tcp after fin", protoTCP, []uint8{tcpSYN, 0x10, tcpFIN | 0x10}, tcpClosing},
		{"tcp after rst", protoTCP, []uint8{tcpSYN, tcpRST}, tcpClosing},
		{"tcp reused after fin", protoTCP, []uint8{tcpFIN, tcpSYN}, tcpIdle},
		{"udp", protoUDP, []uint8{0, 0}, udpIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := newFlowTable()
			k := key(1)
			k.proto = tc.proto
			f, ok := ft.add(k, srv[0], be, t0)
			if !ok {
				t.Fatal("add refused")
			}
			for _, fl := range tc.flags {
				f.touch(tc.proto, fl, t0)
			}
			if got := ft.lookup(k, t0+int64(tc.idle)-1); got != f {
				t.Fatalf("expired before %s", tc.idle)
			}
			if srv[0].Counters.CurSessions.Load() != 1 || be.CurSessions.Load() != 1 {
				t.Fatal("flow not counted")
			}
			if got := ft.lookup(k, t0+int64(tc.idle)); got != nil {
				t.Fatalf("still there after %s", tc.idle)
			}
			if srv[0].Counters.CurSessions.Load() != 0 || be.CurSessions.Load() != 0 || ft.len() != 0 {
				t.Fatal("expired flow still counted")
			}
		})
	}
	t.Run("sweep drops a removed server's flows", func(t *testing.T) {
		ft := newFlowTable()
		for i := range 10 {
			f, _ := ft.add(key(i), srv[i%2], nil, t0)
			f.touch(protoTCP, 0x10, t0)
		}
		if n := ft.sweep(t0, func(_ flowKey, s *upstream.Server) bool { return s == srv[1] }); n != 5 {
			t.Fatalf("swept %d, want 5", n)
		}
		for i := range 10 {
			if got := ft.lookup(key(i), t0); (got != nil) != (i%2 == 0) {
				t.Fatalf("flow %d: %v", i, got)
			}
		}
		ft.clear()
		if srv[0].Counters.CurSessions.Load() != 0 {
			t.Fatal("clear left flows counted")
		}
	})
	t.Run("full table", func(t *testing.T) {
		ft := newFlowTable()
		ft.max = 2
		for i := range 2 {
			if _, ok := ft.add(key(i), srv[0], nil, t0); !ok {
				t.Fatal("refused below the bound")
			}
		}
		if _, ok := ft.add(key(3), srv[0], nil, t0); ok {
			t.Fatal("added beyond the bound")
		}
		ft.clear()
	})
}

func TestTemplates(t *testing.T) {
	srv := servers(1)[0]
	var ts templates
	a := netip.MustParseAddr("198.18.0.50")
	ts.put(a, srv, 0, 100)
	for _, tc := range []struct {
		now  int64
		want *upstream.Server
	}{{0, srv}, {99, srv}, {100, nil}} {
		if got := ts.get(a, tc.now); got != tc.want {
			t.Fatalf("at %d: %v", tc.now, got)
		}
	}
	ts.sweep(100)
	if len(ts.m) != 0 {
		t.Fatal("sweep kept an expired template")
	}
	// A template lives while a flow it placed lives (however long since
	// the last packet user space saw: with XDP it sees few), and persist
	// after that flow ends.
	tm := ts.put(a, srv, 0, 100)
	tm.flows++
	ts.sweep(1000)
	if ts.get(a, 1000) != srv {
		t.Fatal("a template with a live flow expired")
	}
	tm.release(1000)
	if ts.get(a, 1099) != srv {
		t.Fatal("a template expired before persist after its last flow")
	}
	if ts.sweep(1100); ts.get(a, 1100) != nil || len(ts.m) != 0 {
		t.Fatal("a template outlived persist after its last flow")
	}
}

// TestPersistenceWithLiveFlow: under roundrobin with
// persistence_timeout, a client's new flow goes where its live flow went,
// long after the last packet user space saw of it (with XDP: its SYN).
func TestPersistenceWithLiveFlow(t *testing.T) {
	srv := servers(2)
	l, fl, svcs, neigh := director(t, "roundrobin", time.Minute, srv)
	t0 := time.Unix(1000, 0)
	l.forward(frame(protoTCP, "198.18.0.50", "198.18.0.100", 40000, 80, tcpSYN, 0), svcs, neigh, t0.UnixNano())
	later := t0.Add(5 * time.Minute)
	l.sweep(later, svcs, neigh)
	for i := range 4 {
		l.forward(frame(protoTCP, "198.18.0.50", "198.18.0.100", uint16(40001+i), 80, tcpSYN, 0), svcs, neigh, later.UnixNano())
	}
	for i, to := range fl.to {
		if to != fl.to[0] {
			t.Fatalf("flow %d went to %x, the client's first to %x", i, to, fl.to[0])
		}
	}
}

// fakeLink records what the director sends.
type fakeLink struct {
	sent [][]byte
	to   [][6]byte
}

func (f *fakeLink) Read([]byte, time.Time) (int, error) { return 0, nil }
func (f *fakeLink) Write(b []byte, dst [6]byte) error {
	f.sent = append(f.sent, append([]byte(nil), b...))
	f.to = append(f.to, dst)
	return nil
}
func (f *fakeLink) Filter([]netip.Addr) error            { return nil }
func (f *fakeLink) MAC() [6]byte                         { return [6]byte{2, 9, 9, 9, 9, 9} }
func (f *fakeLink) Resolve(netip.Addr) ([6]byte, bool)   { return [6]byte{}, false }
func (f *fakeLink) OnLink(netip.Addr) bool               { return true }
func (f *fakeLink) Close() error                         { return nil }
func (f *fakeLink) Blackhole([]netip.Addr) (bool, error) { return false, nil }
func macOf(s *upstream.Server) [6]byte                   { return [6]byte{2, 7, 7, 7, 7, byte(s.Settings().Index)} }
func (f *fakeLink) count(mac [6]byte) (n int) {
	for _, m := range f.to {
		if m == mac {
			n++
		}
	}
	return n
}

// director builds a link runner over a fake link for one service.
func director(t testing.TB, alg string, persist time.Duration, srv []*upstream.Server) (*linkRunner, *fakeLink, map[svcKey]*service, map[netip.Addr]*neighbour) {
	pol, err := balance.New(config.Balance{Algorithm: alg})
	if err != nil {
		t.Fatal(err)
	}
	pol.Update(srv)
	be := &upstream.Counters{}
	d := New(Options{Backend: func(string) (Pool, bool) {
		return Pool{Pick: pol.Pick, Servers: srv, Counters: be}, true
	}})
	fl := &fakeLink{}
	l := newLinkRunner(d, "eth0", fl)
	svc := &service{name: "web", backend: "web", key: svcKey{vip: [4]byte{198, 18, 0, 100}, port: 80, proto: protoTCP}, persist: persist}
	neigh := map[netip.Addr]*neighbour{}
	for _, s := range srv {
		n := &neighbour{addr: serverAddr(s)}
		n.set(macOf(s))
		neigh[n.addr] = n
	}
	return l, fl, map[svcKey]*service{svc.key: svc}, neigh
}

// TestAlgorithms: new flows by the backend's algorithm, established ones
// stay on their server whatever the algorithm says next.
func TestAlgorithms(t *testing.T) {
	now := time.Unix(1000, 0).UnixNano()
	for _, tc := range []struct {
		name    string
		alg     string
		persist time.Duration
		// clients: flows i come from client i%clients
		clients int
		check   func(t *testing.T, fl *fakeLink, srv []*upstream.Server)
	}{
		{"roundrobin alternates", "roundrobin", 0, 100, func(t *testing.T, fl *fakeLink, srv []*upstream.Server) {
			if a, b := fl.count(macOf(srv[0])), fl.count(macOf(srv[1])); a != b {
				t.Fatalf("roundrobin: %d and %d flows", a, b)
			}
		}},
		{"leastconn by flow count", "leastconn", 0, 100, func(t *testing.T, fl *fakeLink, srv []*upstream.Server) {
			if a, b := srv[0].Counters.CurSessions.Load(), srv[1].Counters.CurSessions.Load(); a != b {
				t.Fatalf("leastconn: %d and %d flows", a, b)
			}
		}},
		{"source keeps a client on one server", "source", 0, 1, func(t *testing.T, fl *fakeLink, srv []*upstream.Server) {
			if a, b := fl.count(macOf(srv[0])), fl.count(macOf(srv[1])); a != 0 && b != 0 {
				t.Fatalf("source: one client spread over both servers (%d, %d)", a, b)
			}
		}},
		{"persistence_timeout sticks a client under roundrobin", "roundrobin", time.Minute, 1, func(t *testing.T, fl *fakeLink, srv []*upstream.Server) {
			if a, b := fl.count(macOf(srv[0])), fl.count(macOf(srv[1])); a != 0 && b != 0 {
				t.Fatalf("persistence: one client spread over both servers (%d, %d)", a, b)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servers(2)
			l, fl, svcs, neigh := director(t, tc.alg, tc.persist, srv)
			for i := range 40 {
				c := i % tc.clients
				f := frame(protoTCP, fmt.Sprintf("198.18.1.%d", c+1), "198.18.0.100", uint16(10000+i), 80, tcpSYN, 0)
				l.forward(f, svcs, neigh, now)
			}
			if len(fl.sent) != 40 {
				t.Fatalf("sent %d of 40", len(fl.sent))
			}
			tc.check(t, fl, srv)
			// Every later packet of each flow goes where its first did.
			first := append([][6]byte(nil), fl.to...)
			fl.sent, fl.to = nil, nil
			for i := range 40 {
				c := i % tc.clients
				f := frame(protoTCP, fmt.Sprintf("198.18.1.%d", c+1), "198.18.0.100", uint16(10000+i), 80, 0x10, 10)
				l.forward(f, svcs, neigh, now+1)
				if fl.to[i] != first[i] {
					t.Fatalf("flow %d moved", i)
				}
			}
		})
	}
}

func TestForwardDrops(t *testing.T) {
	srv := servers(2)
	l, fl, svcs, neigh := director(t, "maglev", 0, srv)
	now := time.Unix(1000, 0).UnixNano()
	for _, tc := range []struct {
		name string
		f    []byte
	}{
		{"other port", frame(protoTCP, "198.18.1.1", "198.18.0.100", 1000, 81, tcpSYN, 0)},
		{"udp to a tcp service", frame(protoUDP, "198.18.1.1", "198.18.0.100", 1000, 80, 0, 0)},
		{"other address", frame(protoTCP, "198.18.1.1", "198.18.0.101", 1000, 80, tcpSYN, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.forward(tc.f, svcs, neigh, now)
			if len(fl.sent) != 0 {
				t.Fatal("forwarded")
			}
		})
	}
	t.Run("no usable server", func(t *testing.T) {
		for _, s := range srv {
			s.SetAdmin(upstream.Maint)
		}
		defer func() {
			for _, s := range srv {
				s.SetAdmin(upstream.Ready)
			}
		}()
		l.forward(frame(protoTCP, "198.18.1.1", "198.18.0.100", 1000, 80, tcpSYN, 0), svcs, neigh, now)
		if len(fl.sent) != 0 || l.noServer != 1 {
			t.Fatalf("sent %d, noServer %d", len(fl.sent), l.noServer)
		}
	})
	t.Run("counters", func(t *testing.T) {
		f := frame(protoTCP, "198.18.1.1", "198.18.0.100", 1000, 80, tcpSYN, 0)
		l.forward(f, svcs, neigh, now)
		var pk, by uint64
		for _, s := range srv {
			pk += s.Counters.PacketsIn.Load()
			by += s.Counters.BytesIn.Load()
		}
		if pk != 1 || by != uint64(len(f)-ethHeader) {
			t.Fatalf("packets %d bytes %d", pk, by)
		}
	})
}

func BenchmarkFlowLookup(b *testing.B) {
	srv := servers(4)
	ft := newFlowTable()
	now := time.Now().UnixNano()
	const n = 100000
	for i := range n {
		f, _ := ft.add(key(i), srv[i%4], nil, now)
		f.touch(protoTCP, 0x10, now)
	}
	b.ResetTimer()
	for i := range b.N {
		if ft.lookup(key(i%n), now) == nil {
			b.Fatal("missing")
		}
	}
}

func BenchmarkMaglevPick(b *testing.B) {
	srv := servers(8)
	p, _ := balance.New(config.Balance{Algorithm: "maglev"})
	p.Update(srv)
	b.ResetTimer()
	for i := range b.N {
		if p.Pick(&balance.Request{Flow: key(i).hash()}) == nil {
			b.Fatal("no pick")
		}
	}
}

func BenchmarkFrameRewrite(b *testing.B) {
	f := frame(protoTCP, "198.18.1.1", "198.18.0.100", 1000, 80, 0x10, 0)
	dst, src := [6]byte{2, 1, 1, 1, 1, 1}, [6]byte{2, 2, 2, 2, 2, 2}
	b.ResetTimer()
	for range b.N {
		pi, ok := parse(f)
		if !ok {
			b.Fatal("parse")
		}
		_ = pi.key.hash()
		rewrite(f, dst, src)
	}
}

// BenchmarkForward is the whole hot path for an established flow: parse,
// service and flow lookup, rewrite, send (to a fake link), counters.
func BenchmarkForward(b *testing.B) {
	srv := servers(4)
	l, fl, svcs, neigh := director(b, "maglev", 0, srv)
	now := time.Now().UnixNano()
	f := frame(protoTCP, "198.18.1.1", "198.18.0.100", 1000, 80, 0x10, 0)
	l.forward(f, svcs, neigh, now)
	b.ResetTimer()
	for range b.N {
		fl.sent, fl.to = fl.sent[:0], fl.to[:0]
		l.forward(f, svcs, neigh, now)
	}
}

// TestReloadWhileForwarding: Apply replaces the services and neighbours
// while the reader forwards from the maps it took (run with -race).
func TestReloadWhileForwarding(t *testing.T) {
	srv := servers(2)
	l, fl, svcs, _ := director(t, "maglev", 0, srv)
	var list []*service
	for _, s := range svcs {
		s.servers = map[netip.Addr]bool{serverAddr(srv[0]): true, serverAddr(srv[1]): true}
		list = append(list, s)
	}
	l.setServices(list)
	for _, n := range l.neigh {
		n.set([6]byte{2, 7, 7, 7, 7, 7})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			l.setServices(list)
		}
	}()
	now := time.Unix(1000, 0).UnixNano()
	const n = 2000
	for i := range n {
		s, nb := l.snapshot()
		l.forward(frame(protoTCP, "198.18.1.1", "198.18.0.100", uint16(i), 80, tcpSYN, 0), s, nb, now)
	}
	<-done
	if len(fl.sent) != n {
		t.Fatalf("forwarded %d of %d frames while the services were replaced", len(fl.sent), n)
	}
}

// fillChecksum computes the TCP or UDP checksum of a test frame.
func fillChecksum(f []byte, pi packetInfo) {
	ip := f[ethHeader : ethHeader+pi.ipLen]
	l4 := ip[pi.ihl:]
	off := 16 // TCP
	if pi.key.proto == protoUDP {
		off = 6
	}
	if len(l4) < off+2 {
		return
	}
	l4[off], l4[off+1] = 0, 0
	sum := pseudoSum(ip, l4, pi.key.proto)
	c := ^sum
	if c == 0 && pi.key.proto == protoUDP {
		c = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}

// pseudoSum is the ones' complement sum of the IPv4 pseudo-header and the
// TCP or UDP segment (0xffff for a segment with a right checksum).
func pseudoSum(ip, l4 []byte, proto uint8) uint16 {
	var sum uint32
	for i := 12; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	sum += uint32(proto) + uint32(len(l4))
	for i := 0; i+1 < len(l4); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(l4[i:]))
	}
	if len(l4)%2 == 1 {
		sum += uint32(l4[len(l4)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// fakeKernel is the XDP fast path's flow map as the flow table sees it.
type fakeKernel struct {
	seen    map[flowKey]int64
	deleted []flowKey
}

func (k *fakeKernel) lastSeen(f flowKey) (int64, bool) {
	s, ok := k.seen[f]
	return s, ok
}

func (k *fakeKernel) del(f flowKey) {
	delete(k.seen, f)
	k.deleted = append(k.deleted, f)
}

// TestFlowTableKernel: a flow the kernel forwards lives as long as the
// kernel's stamp says, whatever user space saw; a flow the table forgets
// leaves the kernel's map.
func TestFlowTableKernel(t *testing.T) {
	t0 := time.Unix(1000, 0).UnixNano()
	idle := int64(tcpIdle)
	for _, tc := range []struct {
		name     string
		inKernel bool
		seen     int64 // 0: no stamp
		at       int64
		alive    bool
	}{
		{"user space only, idle past the timeout", false, 0, t0 + idle, false},
		{"in the kernel, never forwarded there", true, 0, t0 + idle, false},
		{"in the kernel, forwarded there recently", true, t0 + idle - 1, t0 + idle, true},
		{"in the kernel, idle there too", true, t0 + 10, t0 + idle + 10, false},
		{"a stamp does not matter to a user-space flow", false, t0 + idle - 1, t0 + idle, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := servers(1)
			k := &fakeKernel{seen: map[flowKey]int64{}}
			ft := newFlowTable()
			ft.kernel = k
			f, _ := ft.add(key(1), srv[0], nil, t0)
			f.touch(protoTCP, 0x10, t0)
			f.inKernel = tc.inKernel
			if tc.seen != 0 {
				k.seen[key(1)] = tc.seen
			}
			got := ft.lookup(key(1), tc.at) != nil
			if got != tc.alive {
				t.Fatalf("alive %v, want %v", got, tc.alive)
			}
			if removedFromKernel := len(k.deleted) == 1; removedFromKernel != (!tc.alive && tc.inKernel) {
				t.Fatalf("deleted from the kernel's map: %v", k.deleted)
			}
			if tc.alive {
				// Kept until the stamp's timeout, then swept (and deleted).
				if n := ft.sweep(tc.seen+idle-1, nil); n != 0 {
					t.Fatal("swept before the kernel's stamp timed out")
				}
				if n := ft.sweep(tc.seen+idle, nil); n != 1 || len(k.deleted) != 1 || srv[0].Counters.CurSessions.Load() != 0 {
					t.Fatalf("swept %d, deleted %v", n, k.deleted)
				}
			}
		})
	}
}

// TestSYNOnHeldTuple: a bare SYN on a tuple the table still holds is a new
// connection when the old one is closing or its server is no longer usable
// (LVS's conn_reuse_mode): it is placed again. A retransmitted SYN of an
// open flow, and the packets of an open flow whose server went down, stay.
func TestSYNOnHeldTuple(t *testing.T) {
	srv := servers(2)
	l, fl, svcs, neigh := director(t, "roundrobin", 0, srv)
	now := time.Unix(1000, 0).UnixNano()
	send := func(port uint16, flags uint8) [6]byte {
		t.Helper()
		l.forward(frame(protoTCP, "198.18.0.50", "198.18.0.100", port, 80, flags, 0), svcs, neigh, now)
		return fl.to[len(fl.to)-1]
	}
	first := send(40000, tcpSYN)
	other := macOf(srv[0])
	if first == other {
		other = macOf(srv[1])
	}
	for _, step := range []struct {
		what  string
		port  uint16
		flags uint8
		want  [6]byte
	}{
		{"the handshake's ACK", 40000, tcpACK, first},
		{"a retransmitted SYN of the open flow", 40000, tcpSYN, first},
		{"the client's FIN", 40000, tcpFIN | tcpACK, first},
		// roundrobin's next choice is the other server.
		{"a SYN after the FIN: placed again", 40000, tcpSYN, other},
		{"that connection's ACK", 40000, tcpACK, other},
	} {
		if got := send(step.port, step.flags); got != step.want {
			t.Fatalf("%s went to %x, want %x", step.what, got, step.want)
		}
	}
	// The server of the open flow goes down: its packets still go there
	// (no shutdown-sessions), a new SYN on the tuple does not.
	for _, s := range srv {
		if macOf(s) == other {
			s.SetHealth(upstream.Down, "test")
		}
	}
	if got := send(40000, tcpACK); got != other {
		t.Fatalf("an open flow's packet after its server went down went to %x, want %x", got, other)
	}
	if got := send(40000, tcpSYN); got != first {
		t.Fatalf("a SYN on a flow whose server is down went to %x, want %x", got, first)
	}
	if n := l.flows.len(); n != 1 {
		t.Fatalf("%d flows in the table, want 1", n)
	}
}
