//go:build linux

package dr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// packetLink is a Link over an AF_PACKET socket.
// vnetHdrLen is sizeof(struct virtio_net_hdr).
const vnetHdrLen = 10

type packetLink struct {
	ifi  *net.Interface
	conn *packet.Conn
	raw  syscall.RawConn
	mac  [6]byte
	vnet [vnetHdrLen]byte
	to   unix.SockaddrLinklayer
	// holes are the VIPs' blackhole routes installed (Blackhole).
	holes map[netip.Addr]bool

	arpOnce sync.Once
	arp     *arp.Client
	arpErr  error
}

// OpenPacket opens the AF_PACKET datapath on an interface.
func OpenPacket(ifname string) (Link, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address", ifname)
	}
	// Drop everything until Filter says what to keep: without a filter the
	// socket would copy every IPv4 frame of the link to user space.
	none, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return nil, err
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IP, &packet.Config{Filter: none})
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket on %s: %w", ifname, err)
	}
	l := &packetLink{ifi: ifi, conn: c}
	copy(l.mac[:], ifi.HardwareAddr)
	l.to = unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Protocol: htons(unix.ETH_P_IP)}
	// PACKET_VNET_HDR prefixes every frame with a virtio_net_hdr: on
	// receive it describes a frame the kernel aggregated (GRO: above the
	// MTU, to be cut into segments again) or whose TCP/UDP checksum is
	// still to be computed (offload, from a local VM or container); sent
	// back with the frame unchanged, it has the kernel (or the NIC) do
	// both on the way out, as IPVS's in-kernel forwarding would.
	if l.raw, err = c.SyscallConn(); err == nil {
		var serr error
		err = l.raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1) })
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("AF_PACKET socket on %s: PACKET_VNET_HDR: %w", ifname, err)
	}
	return l, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (l *packetLink) MAC() [6]byte { return l.mac }

// Read reads a frame into b; its virtio_net_hdr stays in l.vnet for the
// Write that sends the frame on (the reader goroutine does both).
func (l *packetLink) Read(b []byte, deadline time.Time) (int, error) {
	if err := l.conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	var n int
	var rerr error
	bufs := [][]byte{l.vnet[:], b}
	err := l.raw.Read(func(fd uintptr) bool {
		n, _, _, _, rerr = unix.RecvmsgBuffers(int(fd), bufs, nil, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN && rerr != unix.EWOULDBLOCK
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	if n < vnetHdrLen {
		return 0, nil
	}
	return n - vnetHdrLen, nil
}

// Write sends the frame last read (rewritten in place) to dst, with its
// virtio_net_hdr.
func (l *packetLink) Write(f []byte, dst [6]byte) error {
	copy(l.to.Addr[:6], dst[:])
	bufs := [][]byte{l.vnet[:], f}
	var werr error
	err := l.raw.Write(func(fd uintptr) bool {
		_, werr = unix.SendmsgBuffers(int(fd), bufs, nil, &l.to, 0)
		return werr != unix.EAGAIN && werr != unix.EWOULDBLOCK
	})
	if err == nil {
		err = werr
	}
	return err
}

// Filter installs a classic BPF program: frames the kernel delivers to
// this host (PACKET_HOST: not our own sends, not another host's unicast
// seen in promiscuous mode), IPv4, to one of the VIPs.
func (l *packetLink) Filter(vips []netip.Addr) error {
	prog, err := bpf.Assemble(filterProgram(vips))
	if err != nil {
		return err
	}
	return l.conn.SetBPF(prog)
}

func filterProgram(vips []netip.Addr) []bpf.Instruction {
	drop, keep := bpf.RetConstant{Val: 0}, bpf.RetConstant{Val: 1 << 18}
	if len(vips) == 0 {
		return []bpf.Instruction{drop}
	}
	p := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_HOST, SkipFalse: uint8(len(vips) + 3)},
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: ethTypeIPv4, SkipFalse: uint8(len(vips) + 1)},
		bpf.LoadAbsolute{Off: ethHeader + 16, Size: 4},
	}
	for i, v := range vips {
		a := v.As4()
		p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(a[:]), SkipTrue: uint8(len(vips) - i)})
	}
	return append(p, drop, keep)
}

// Resolve reads the kernel's neighbour table, and asks by ARP when the
// server is not in it (the director may never have spoken to it: no checks).
func (l *packetLink) Resolve(ip netip.Addr) ([6]byte, bool) {
	var mac [6]byte
	ns, err := netlink.NeighList(l.ifi.Index, netlink.FAMILY_V4)
	if err == nil {
		for _, n := range ns {
			if n.IP.Equal(ip.AsSlice()) && len(n.HardwareAddr) == 6 &&
				n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
				copy(mac[:], n.HardwareAddr)
				return mac, true
			}
		}
	}
	l.arpOnce.Do(func() { l.arp, l.arpErr = arp.Dial(l.ifi) })
	if l.arp == nil {
		return mac, false
	}
	_ = l.arp.SetDeadline(time.Now().Add(300 * time.Millisecond))
	hw, err := l.arp.Resolve(ip)
	if err != nil || len(hw) != 6 {
		return mac, false
	}
	copy(mac[:], hw)
	return mac, true
}

// OnLink: the kernel's route to ip leaves by this interface without a
// gateway.
func (l *packetLink) OnLink(ip netip.Addr) bool {
	rs, err := netlink.RouteGet(ip.AsSlice())
	if err != nil || len(rs) == 0 {
		return false
	}
	return rs[0].Gw == nil && rs[0].LinkIndex == l.ifi.Index
}

// rtProtoVipgate marks the routes vipgate installs (rtnetlink protocol,
// outside the numbers the kernel and routing daemons use).
const rtProtoVipgate = 118

// Blackhole: with IPv4 forwarding on, the kernel would route a frame for
// a VIP it does not own back out on the link (to a VIP nobody answers ARP
// for here: ICMP host unreachable to the client after seconds, redirects)
// beside the director's copy; a blackhole route for the VIP makes it drop
// them silently. With forwarding off it drops them anyway: no routes.
func (l *packetLink) Blackhole(vips []netip.Addr) (bool, error) {
	want := map[netip.Addr]bool{}
	b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + l.ifi.Name + "/forwarding")
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		for _, v := range vips {
			want[v] = true
		}
	}
	var errs []error
	for a := range l.holes {
		if !want[a] {
			if err := netlink.RouteDel(blackhole(a)); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("remove blackhole route %s: %w", a, err))
			}
			delete(l.holes, a)
		}
	}
	for a := range want {
		if err := netlink.RouteReplace(blackhole(a)); err != nil {
			errs = append(errs, fmt.Errorf("blackhole route %s: %w", a, err))
			continue
		}
		if l.holes == nil {
			l.holes = map[netip.Addr]bool{}
		}
		l.holes[a] = true
	}
	return len(l.holes) > 0, errors.Join(errs...)
}

func blackhole(a netip.Addr) *netlink.Route {
	return &netlink.Route{Dst: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}, Type: unix.RTN_BLACKHOLE, Protocol: rtProtoVipgate}
}

func (l *packetLink) Close() error {
	_, _ = l.Blackhole(nil)
	if l.arp != nil {
		l.arp.Close()
	}
	return l.conn.Close()
}
