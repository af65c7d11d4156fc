//go:build linux

package dr

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// packetLink is a Link over an AF_PACKET socket.
type packetLink struct {
	ifi  *net.Interface
	conn *packet.Conn
	raw  syscall.RawConn
	oob  []byte
	mac  [6]byte

	arpOnce sync.Once
	arp     *arp.Client
	arpErr  error
	addrs   map[[6]byte]*packet.Addr // by destination (the reader's only)
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
	l := &packetLink{ifi: ifi, conn: c, addrs: map[[6]byte]*packet.Addr{}, oob: make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))}
	copy(l.mac[:], ifi.HardwareAddr)
	// PACKET_AUXDATA says, per frame, whether its TCP/UDP checksum is
	// still to be computed (sent by this host's own stack or a local
	// container or VM with checksum offload): it must be before the frame
	// goes out on the wire again.
	if l.raw, err = c.SyscallConn(); err == nil {
		var serr error
		err = l.raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_AUXDATA, 1) })
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("AF_PACKET socket on %s: PACKET_AUXDATA: %w", ifname, err)
	}
	return l, nil
}

func (l *packetLink) MAC() [6]byte { return l.mac }

func (l *packetLink) Read(b []byte, deadline time.Time) (int, bool, error) {
	if err := l.conn.SetReadDeadline(deadline); err != nil {
		return 0, false, err
	}
	var n, oobn int
	var rerr error
	err := l.raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), b, l.oob, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN && rerr != unix.EWOULDBLOCK
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, false, err
	}
	return n, csumNotReady(l.oob[:oobn]), nil
}

// csumNotReady reads TP_STATUS_CSUMNOTREADY from the frame's auxdata.
func csumNotReady(oob []byte) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data[0:4])&unix.TP_STATUS_CSUMNOTREADY != 0
		}
	}
	return false
}

func (l *packetLink) Write(f []byte, dst [6]byte) error {
	a := l.addrs[dst]
	if a == nil {
		a = &packet.Addr{HardwareAddr: net.HardwareAddr(append([]byte(nil), dst[:]...))}
		l.addrs[dst] = a
	}
	_, err := l.conn.WriteTo(f, a)
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

func (l *packetLink) Close() error {
	if l.arp != nil {
		l.arp.Close()
	}
	return l.conn.Close()
}
