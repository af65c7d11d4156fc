//go:build linux

package dr

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// xdpFrame builds an Ethernet frame to dst carrying IPv4 proto from
// 198.18.0.50:40000 to 198.18.0.100:80, with ihl 4-byte words of IP
// header, fragment field frag and TCP flags, padded to total bytes.
func xdpFrame(dst [6]byte, ethType uint16, proto byte, ihl int, frag uint16, flags byte, total int) []byte {
	f := make([]byte, total)
	copy(f[0:6], dst[:])
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 0x50})
	binary.BigEndian.PutUint16(f[12:14], ethType)
	if total < ethHeader+minIPv4 {
		return f
	}
	ip := f[ethHeader:]
	ip[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(ip[2:4], uint16(total-ethHeader))
	binary.BigEndian.PutUint16(ip[6:8], frag)
	ip[8], ip[9] = 64, proto
	copy(ip[12:16], []byte{198, 18, 0, 50})
	copy(ip[16:20], []byte{198, 18, 0, 100})
	l4 := ip[ihl*4:]
	if len(l4) >= 14 {
		binary.BigEndian.PutUint16(l4[0:2], 40000)
		binary.BigEndian.PutUint16(l4[2:4], 80)
		l4[13] = flags
	}
	return f
}

// TestXDPProgram runs the fast path's program on crafted frames
// (BPF_PROG_TEST_RUN): a flow's packet leaves rewritten and counted,
// everything else goes on to the stack unchanged.
func TestXDPProgram(t *testing.T) {
	testenv.RequireRoot(t)
	me := [6]byte{2, 0, 0, 0x9a, 0, 0x11} // byte 3 ≥ 0x80: the 32-bit compare of the first four bytes must not sign-extend
	srv := [6]byte{2, 0, 0, 0, 0, 0x21}
	other := [6]byte{2, 0, 0, 0, 0, 0x99}
	x, err := loadXDP(me, 1500)
	if err != nil {
		t.Fatalf("loading the XDP program: %v", err)
	}
	defer x.close()
	tcpKey := flowKey{src: [4]byte{198, 18, 0, 50}, dst: [4]byte{198, 18, 0, 100}, sport: 40000, dport: 80, proto: protoTCP}
	udpKey := tcpKey
	udpKey.proto = protoUDP
	for _, k := range []flowKey{tcpKey, udpKey} {
		if err := x.put(k, srv, 7); err != nil {
			t.Fatal(err)
		}
	}
	const ack = 0x10
	for _, tc := range []struct {
		name string
		in   []byte
		want uint32
	}{
		{"tcp flow: forwarded", xdpFrame(me, ethTypeIPv4, protoTCP, 5, 0x4000, ack, 100), xdpTX},
		{"udp flow: forwarded", xdpFrame(me, ethTypeIPv4, protoUDP, 5, 0, 0, 80), xdpTX},
		{"full-size frame: forwarded", xdpFrame(me, ethTypeIPv4, protoTCP, 5, 0, ack, ethHeader+1500), xdpTX},
		{"aggregated frame above the MTU: passed", xdpFrame(me, ethTypeIPv4, protoTCP, 5, 0, ack, ethHeader+1501), xdpPass},
		{"syn: passed (user space places)", xdpFrame(me, ethTypeIPv4, protoTCP, 5, 0, tcpSYN, 100), xdpPass},
		{"fin: passed", xdpFrame(me, ethTypeIPv4, protoTCP, 5, 0, tcpFIN|ack, 100), xdpPass},
		{"rst: passed", xdpFrame(me, ethTypeIPv4, protoTCP, 5, 0, tcpRST, 100), xdpPass},
		{"another host's mac: passed", xdpFrame(other, ethTypeIPv4, protoTCP, 5, 0, ack, 100), xdpPass},
		{"ip options: passed", xdpFrame(me, ethTypeIPv4, protoTCP, 6, 0, ack, 100), xdpPass},
		{"first fragment: passed", xdpFrame(me, ethTypeIPv4, protoUDP, 5, 0x2000, 0, 100), xdpPass},
		{"later fragment: passed", xdpFrame(me, ethTypeIPv4, protoUDP, 5, 0x0010, 0, 100), xdpPass},
		{"icmp: passed", xdpFrame(me, ethTypeIPv4, 1, 5, 0, 0, 100), xdpPass},
		{"arp: passed", xdpFrame(me, 0x0806, 0, 5, 0, 0, 60), xdpPass},
		{"ipv6: passed", xdpFrame(me, 0x86dd, 0, 5, 0, 0, 100), xdpPass},
		{"truncated udp: passed", xdpFrame(me, ethTypeIPv4, protoUDP, 5, 0, 0, ethHeader+minIPv4+7), xdpPass},
		{"truncated tcp: passed", xdpFrame(me, ethTypeIPv4, protoTCP, 5, 0, 0, ethHeader+minIPv4+13), xdpPass},
		{"ethernet only: passed", xdpFrame(me, ethTypeIPv4, 0, 5, 0, 0, ethHeader), xdpPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]byte, len(tc.in)+256)
			got, err := x.prog.Run(&ebpf.RunOptions{Data: tc.in, DataOut: out})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("verdict %d, want %d", got, tc.want)
			}
			out = out[:len(tc.in)]
			want := append([]byte(nil), tc.in...)
			if tc.want == xdpTX {
				rewrite(want, srv, me)
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("frame out\n%x\nwant\n%x", out, want)
			}
		})
	}
	// Three frames forwarded: 86+66+1500 IP bytes, counted in slot 7.
	if p, b, err := x.count(7); err != nil || p != 3 || b != 86+66+1500 {
		t.Fatalf("slot 7 counts %d frames, %d bytes (%v); want 3, %d", p, b, err, 86+66+1500)
	}
	seen, ok := x.lastSeen(tcpKey)
	if d := time.Since(time.Unix(0, seen)); !ok || d < -time.Second || d > time.Minute {
		t.Fatalf("the flow's last-seen stamp: %v %v (%s ago)", seen, ok, d)
	}
	x.del(tcpKey)
	if got, err := x.prog.Run(&ebpf.RunOptions{Data: xdpFrame(me, ethTypeIPv4, protoTCP, 5, 0, ack, 100)}); err != nil || got != xdpPass {
		t.Fatalf("a removed flow: verdict %d, %v; want pass", got, err)
	}
}

// TestXDPWithDirector: user space places a flow's first packet and enters
// the flow in the program's map; the program forwards the next ones to the
// same server; their counts reach the server's counters at the sweep; a
// flow whose frontend goes leaves the map.
func TestXDPWithDirector(t *testing.T) {
	testenv.RequireRoot(t)
	srv := servers(2)
	l, fl, svcs, neigh := director(t, "maglev", 0, srv)
	x, err := loadXDP([6]byte{2, 0, 0, 0, 0, 1}, 1500) // frame()'s destination
	if err != nil {
		t.Fatalf("loading the XDP program: %v", err)
	}
	defer x.close()
	l.xdp, l.flows.kernel = x, x
	// A minute ago in user space's clock: the kernel's stamps (now) are
	// clearly later than the table's own times.
	now := time.Now().Add(-time.Minute)
	syn := frame(protoTCP, "198.18.0.50", "198.18.0.100", 40000, 80, tcpSYN, 0)
	synLen := len(syn) - ethHeader
	l.forward(syn, svcs, neigh, now.UnixNano())
	if len(fl.to) != 1 {
		t.Fatalf("user space sent %d frames of the SYN", len(fl.to))
	}
	to := fl.to[0]
	ack := frame(protoTCP, "198.18.0.50", "198.18.0.100", 40000, 80, 0x10, 100)
	out := make([]byte, len(ack))
	if v, err := x.prog.Run(&ebpf.RunOptions{Data: ack, DataOut: out}); err != nil || v != xdpTX {
		t.Fatalf("the flow's next packet: verdict %d, %v; want XDP_TX", v, err)
	}
	if [6]byte(out[0:6]) != to {
		t.Fatalf("the kernel sent the flow to %x, user space to %x", out[0:6], to)
	}
	l.sweep(now, svcs, neigh)
	var got *upstream.Server
	for _, s := range srv {
		if macOf(s) == to {
			got = s
		}
	}
	if p, b := got.Counters.PacketsIn.Load(), got.Counters.BytesIn.Load(); p != 2 || b != uint64(synLen+len(ack)-ethHeader) {
		t.Fatalf("the server counts %d packets, %d bytes; want 2, %d", p, b, synLen+len(ack)-ethHeader)
	}
	if l.xdpForwarded.Load() != 1 {
		t.Fatalf("xdp forwarded %d, want 1", l.xdpForwarded.Load())
	}
	// The server's MAC changes (a replaced machine): the kernel follows
	// at the next sweep.
	moved := [6]byte{2, 7, 7, 7, 7, 0x77}
	neigh[serverAddr(got)].set(moved)
	var key flowKey
	for k := range l.flows.m {
		key = k
	}
	seen, ok := x.lastSeen(key)
	if !ok {
		t.Fatal("no kernel stamp on the flow the program forwarded")
	}
	l.sweep(now, svcs, neigh)
	if v, err := x.prog.Run(&ebpf.RunOptions{Data: ack, DataOut: out}); err != nil || v != xdpTX || [6]byte(out[0:6]) != moved {
		t.Fatalf("after the server's MAC changed: verdict %d, %v, sent to %x; want XDP_TX to %x", v, err, out[0:6], moved)
	}
	// The move rewrote the map's value, stamp included: the flow keeps the
	// life the kernel's last packet gave it.
	if f := l.flows.m[key]; f == nil || f.expires < seen+f.idle(key.proto) {
		t.Fatalf("after the MAC move the flow expires at %v, before the kernel's last packet + idle (%v)", f, time.Unix(0, seen))
	}
	// The frontend goes: the flow leaves the table and the map.
	l.sweep(now, map[svcKey]*service{}, neigh)
	if v, err := x.prog.Run(&ebpf.RunOptions{Data: ack}); err != nil || v != xdpPass {
		t.Fatalf("a packet of a flow whose frontend went: verdict %d, %v; want XDP_PASS", v, err)
	}
	if l.flows.len() != 0 || got.Counters.CurSessions.Load() != 0 {
		t.Fatalf("%d flows left, %d counted", l.flows.len(), got.Counters.CurSessions.Load())
	}
}

// TestXDPLoadsWithCapBPF: the program and its maps load with the
// capabilities the systemd unit grants (CAP_BPF, CAP_NET_ADMIN), not only
// as root: without CAP_PERFMON the verifier refuses more (pointer
// arithmetic). The test runs itself again as nobody with just those.
func TestXDPLoadsWithCapBPF(t *testing.T) {
	if os.Getenv("VIPGATE_XDP_CAPS_CHILD") == "1" {
		x, err := loadXDP([6]byte{2, 0, 0, 0, 0, 1}, 1500)
		if err != nil {
			t.Fatalf("loading the XDP program with CAP_BPF and CAP_NET_ADMIN: %v", err)
		}
		x.close()
		return
	}
	testenv.RequireRoot(t)
	setpriv := testenv.RequireTool(t, "setpriv")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary where nobody can run it.
	dir, err := os.MkdirTemp("/tmp", "vipgate-xdpcaps-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dr.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	caps := "+bpf,+net_admin"
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps="+caps, "--ambient-caps="+caps,
		bin, "-test.run=^TestXDPLoadsWithCapBPF$", "-test.v")
	cmd.Env = append(os.Environ(), "VIPGATE_XDP_CAPS_CHILD=1")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestXDPLoadsWithCapBPF") {
		t.Fatalf("as nobody with CAP_BPF and CAP_NET_ADMIN: %v\n%s", err, out)
	}
}
