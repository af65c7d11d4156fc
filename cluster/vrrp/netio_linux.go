//go:build linux

package vrrp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/vipgate/vipgate/core/config"
)

// linuxIO is NetIO over a raw IP socket (protocol 112), netlink and
// ARP / ICMPv6.
type linuxIO struct {
	ifi  *net.Interface
	self netip.Addr
	vips []config.VIP
	log  *slog.Logger
	v4   *ipv4.RawConn
	v6   *ipv6.PacketConn
	arp  *arp.Client
	nd   *ipv6.PacketConn // unsolicited NA
	recv chan Received
	link chan bool
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
	wmu  sync.Mutex
	// lastProbe rate-limits neighbour checks per unicast peer (under wmu).
	lastProbe map[netip.Addr]time.Time
	hwVIP     net.HardwareAddr
	// use_vmac (vmac_linux.go)
	vmac        *net.Interface
	vmacCreated string
	vmacArp     *arp.Client
	v4send      *ipv4.RawConn
	// dr: VIPs forwarded in mode dr (dr_linux.go), answered by ARP while
	// drOn (master) instead of being added to the interface.
	dr   map[netip.Addr]bool
	drOn atomic.Bool
}

// OpenLinux opens the network side of one instance on its interface.
// unicast disables joining the multicast group.
func OpenLinux(cfg *config.VRRPInstance, log *slog.Logger) (NetIO, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", cfg.Interface, err)
	}
	io := &linuxIO{ifi: ifi, log: log, recv: make(chan Received, 64), link: make(chan bool, 4), stop: make(chan struct{})}
	v6 := false
	for _, s := range cfg.VIPs {
		v, err := config.ParseVIP(s)
		if err != nil {
			return nil, err
		}
		if v.Dev == "" {
			v.Dev = cfg.Interface
		}
		v6 = v.Prefix.Addr().Is6()
		io.vips = append(io.vips, v)
	}
	if io.self, err = pickSelf(ifi, cfg, v6, io.vips); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			io.closeSockets()
		}
	}()
	if !v6 {
		if err := io.open4(len(cfg.UnicastPeers) == 0); err != nil {
			return nil, err
		}
		if cfg.UseVMAC {
			if err := io.openVMAC(cfg); err != nil {
				io.closeVMAC()
				return nil, err
			}
		}
		if io.arp, err = arp.Dial(ifi); err != nil {
			if len(cfg.DR) > 0 {
				return nil, fmt.Errorf("interface %s: mode dr VIPs need ARP on it: %w", ifi.Name, err)
			}
			// No ARP (no Ethernet, no address): VIPs still move, switches learn later.
			log.Warn("gratuitous ARP unavailable", "interface", ifi.Name, "err", err)
			io.arp = nil
		}
		if len(cfg.DR) > 0 {
			io.startDR(cfg.DR)
		}
	} else {
		if err := io.open6(len(cfg.UnicastPeers) == 0); err != nil {
			return nil, err
		}
	}
	if err := io.watchLink(); err != nil {
		return nil, err
	}
	io.wg.Add(1)
	go io.reader()
	ok = true
	return io, nil
}

// pickSelf chooses the advertisement source: unicast_src_ip, else our own
// entry in unicast_peers, else the interface's primary address (IPv4) or
// link-local address (IPv6, RFC 5798 §5.1.2.1).
func pickSelf(ifi *net.Interface, cfg *config.VRRPInstance, v6 bool, vips []config.VIP) (netip.Addr, error) {
	if cfg.UnicastSrcIP != "" {
		return netip.ParseAddr(cfg.UnicastSrcIP)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", ifi.Name, err)
	}
	local := map[netip.Addr]bool{}
	var first netip.Addr
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		ip = ip.Unmap()
		local[ip] = true
		isVIP := false
		for _, v := range vips {
			isVIP = isVIP || v.Prefix.Addr() == ip
		}
		if isVIP || first.IsValid() {
			continue
		}
		if (!v6 && ip.Is4()) || (v6 && ip.Is6() && ip.IsLinkLocalUnicast()) {
			first = ip
		}
	}
	for _, s := range cfg.UnicastPeers {
		if a, err := netip.ParseAddr(s); err == nil && local[a] {
			return a, nil
		}
	}
	if !first.IsValid() {
		fam := "IPv4"
		if v6 {
			fam = "IPv6 link-local"
		}
		return first, fmt.Errorf("interface %s has no %s address to send advertisements from", ifi.Name, fam)
	}
	return first, nil
}

func bindToDevice(c syscall.RawConn, name string) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), name) })
	return errors.Join(err, serr)
}

func (io *linuxIO) open4(multicast bool) error {
	pc, err := net.ListenPacket(fmt.Sprintf("ip4:%d", Protocol), "0.0.0.0")
	if err != nil {
		return fmt.Errorf("raw socket for VRRP: %w", err)
	}
	sc, _ := pc.(*net.IPConn).SyscallConn()
	if err := bindToDevice(sc, io.ifi.Name); err != nil {
		pc.Close()
		return fmt.Errorf("bind to %s: %w", io.ifi.Name, err)
	}
	rc, err := ipv4.NewRawConn(pc)
	if err != nil {
		pc.Close()
		return err
	}
	io.v4 = rc
	if err := rc.SetMulticastInterface(io.ifi); err != nil {
		return fmt.Errorf("multicast interface %s: %w", io.ifi.Name, err)
	}
	_ = rc.SetMulticastLoopback(false)
	if multicast {
		if err := rc.JoinGroup(io.ifi, &net.IPAddr{IP: Group4.AsSlice()}); err != nil {
			return fmt.Errorf("join %s on %s: %w", Group4, io.ifi.Name, err)
		}
	}
	return nil
}

func (io *linuxIO) open6(multicast bool) error {
	pc, err := net.ListenPacket(fmt.Sprintf("ip6:%d", Protocol), "::")
	if err != nil {
		return fmt.Errorf("raw socket for VRRP: %w", err)
	}
	sc, _ := pc.(*net.IPConn).SyscallConn()
	if err := bindToDevice(sc, io.ifi.Name); err != nil {
		pc.Close()
		return fmt.Errorf("bind to %s: %w", io.ifi.Name, err)
	}
	c := ipv6.NewPacketConn(pc)
	io.v6 = c
	if err := c.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
		return err
	}
	_ = c.SetMulticastInterface(io.ifi)
	_ = c.SetMulticastHopLimit(TTL)
	_ = c.SetHopLimit(TTL)
	_ = c.SetMulticastLoopback(false)
	if multicast {
		if err := c.JoinGroup(io.ifi, &net.IPAddr{IP: Group6.AsSlice()}); err != nil {
			return fmt.Errorf("join %s on %s: %w", Group6, io.ifi.Name, err)
		}
	}
	nd, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return fmt.Errorf("ICMPv6 socket for neighbour advertisements: %w", err)
	}
	io.nd = nd.IPv6PacketConn()
	_ = io.nd.SetMulticastInterface(io.ifi)
	_ = io.nd.SetMulticastHopLimit(TTL)
	return nil
}

func (io *linuxIO) Self() netip.Addr      { return io.self }
func (io *linuxIO) Recv() <-chan Received { return io.recv }
func (io *linuxIO) Link() <-chan bool     { return io.link }

func (io *linuxIO) Send(b []byte, dst netip.Addr) error {
	io.wmu.Lock()
	defer io.wmu.Unlock()
	if !dst.IsMulticast() {
		io.unstick(dst)
	}
	if io.v4 != nil {
		h := &ipv4.Header{
			Version: 4, Len: ipv4.HeaderLen, TOS: 0xc0, TotalLen: ipv4.HeaderLen + len(b),
			TTL: TTL, Protocol: Protocol, Src: io.self.AsSlice(), Dst: dst.AsSlice(),
		}
		if io.v4send != nil {
			return io.v4send.WriteTo(h, b, nil)
		}
		return io.v4.WriteTo(h, b, nil)
	}
	cm := &ipv6.ControlMessage{HopLimit: TTL, Src: io.self.AsSlice(), IfIndex: io.ifi.Index}
	_, err := io.v6.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: io.ifi.Name})
	return err
}

func (io *linuxIO) reader() {
	defer io.wg.Done()
	buf := make([]byte, 1500)
	for {
		var r Received
		if io.v4 != nil {
			h, p, _, err := io.v4.ReadFrom(buf)
			if err != nil {
				return
			}
			src, _ := netip.AddrFromSlice(h.Src.To4())
			dst, _ := netip.AddrFromSlice(h.Dst.To4())
			r = Received{Data: append([]byte(nil), p...), Src: src, Dst: dst, TTL: h.TTL}
		} else {
			n, cm, from, err := io.v6.ReadFrom(buf)
			if err != nil {
				return
			}
			src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			r = Received{Data: append([]byte(nil), buf[:n]...), Src: src.Unmap()}
			if cm != nil {
				r.TTL = cm.HopLimit
				r.Dst, _ = netip.AddrFromSlice(cm.Dst)
			}
		}
		select {
		case io.recv <- r:
		case <-io.stop:
			return
		}
	}
}

func (io *linuxIO) watchLink() error {
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(ch, done); err != nil {
		return fmt.Errorf("watch link %s: %w", io.ifi.Name, err)
	}
	l, err := netlink.LinkByIndex(io.ifi.Index)
	if err != nil {
		close(done)
		return fmt.Errorf("link %s: %w", io.ifi.Name, err)
	}
	io.link <- linkUp(l.Attrs().RawFlags)
	io.wg.Add(1)
	go func() {
		defer io.wg.Done()
		defer close(done)
		for {
			select {
			case <-io.stop:
				return
			case u, ok := <-ch:
				if !ok {
					return
				}
				if int(u.Index) != io.ifi.Index {
					continue
				}
				select {
				case io.link <- linkUp(u.IfInfomsg.Flags):
				case <-io.stop:
					return
				}
			}
		}
	}()
	return nil
}

// linkUp: administratively up and with carrier.
func linkUp(flags uint32) bool {
	return flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0
}

func (io *linuxIO) AddVIPs() error {
	var errs []error
	for _, v := range io.vips {
		if io.dr[v.Prefix.Addr()] {
			continue // answered by ARP, not owned (dr_linux.go)
		}
		if err := addrChange(v, true); err != nil {
			errs = append(errs, err)
		}
	}
	io.drOn.Store(len(io.dr) > 0)
	return errors.Join(errs...)
}

func (io *linuxIO) DelVIPs() error {
	io.drOn.Store(false)
	var errs []error
	for _, v := range io.vips {
		if err := addrChange(v, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func addrChange(v config.VIP, add bool) error {
	l, err := netlink.LinkByName(v.Dev)
	if err != nil {
		return fmt.Errorf("vip %s: device %s: %w", v.Prefix, v.Dev, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: v.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(v.Prefix.Bits(), v.Prefix.Addr().BitLen())}, Label: v.Label}
	if v.Prefix.Addr().Is6() {
		// A VIP must answer at once, not after duplicate address detection.
		a.Flags = unix.IFA_F_NODAD
	}
	if add {
		if err := netlink.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add %s to %s: %w", v.Prefix, v.Dev, err)
		}
		return nil
	}
	if err := netlink.AddrDel(l, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s from %s: %w", v.Prefix, v.Dev, err)
	}
	return nil
}

// dropAddr removes p from every interface that has it.
func dropAddr(p netip.Prefix) (bool, error) {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(nil, family)
	if err != nil {
		return false, fmt.Errorf("listing addresses: %w", err)
	}
	removed := false
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ones, _ := a.Mask.Size(); !ok || ip.Unmap() != p.Addr() || ones != p.Bits() {
			continue
		}
		l, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			return removed, fmt.Errorf("remove %s: interface %d: %w", p, a.LinkIndex, err)
		}
		if err := netlink.AddrDel(l, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return removed, fmt.Errorf("remove %s from %s: %w", p, l.Attrs().Name, err)
		}
		removed = true
	}
	return removed, nil
}

// Announce sends one gratuitous ARP (a request for the VIP from the VIP,
// as keepalived sends) or one unsolicited NA per VIP.
func (io *linuxIO) Announce() error {
	hw := io.ifi.HardwareAddr
	if io.hwVIP != nil {
		hw = io.hwVIP
	}
	var errs []error
	ac := io.arp
	if io.vmac != nil {
		c, err := io.vmacARP()
		if err != nil {
			return fmt.Errorf("gratuitous ARP on %s: %w", io.vmac.Name, err)
		}
		ac = c
	}
	for _, v := range io.vips {
		a := v.Prefix.Addr()
		if a.Is4() {
			if ac == nil || len(hw) != 6 {
				continue
			}
			p, err := arp.NewPacket(arp.OperationRequest, hw, a, ethernet.Broadcast, a)
			if err == nil {
				err = ac.WriteTo(p, ethernet.Broadcast)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("gratuitous ARP for %s: %w", a, err))
			}
			continue
		}
		if io.nd == nil {
			continue
		}
		body := make([]byte, 4, 28)
		body[0] = 0x20 // Override
		t := a.As16()
		body = append(body, t[:]...)
		if len(hw) == 6 {
			body = append(body, 2, 1)
			body = append(body, hw...)
		}
		m := icmp.Message{Type: ipv6.ICMPTypeNeighborAdvertisement, Body: &icmp.RawBody{Data: body}}
		b, err := m.Marshal(nil)
		if err == nil {
			cm := &ipv6.ControlMessage{HopLimit: TTL, IfIndex: io.ifi.Index}
			_, err = io.nd.WriteTo(b, cm, &net.IPAddr{IP: net.IPv6linklocalallnodes, Zone: io.ifi.Name})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("unsolicited NA for %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}

// Reach sends a gratuitous ARP for our own address (peers update the
// entry they have for us and flush what they queued) and an ARP request
// to each peer (its reply refreshes ours). IPv6 relies on the kernel.
func (io *linuxIO) Reach(peers []netip.Addr) error {
	if io.arp == nil || !io.self.Is4() || len(io.ifi.HardwareAddr) != 6 {
		return nil
	}
	p, err := arp.NewPacket(arp.OperationRequest, io.ifi.HardwareAddr, io.self, ethernet.Broadcast, io.self)
	if err == nil {
		err = io.arp.WriteTo(p, ethernet.Broadcast)
	}
	for _, peer := range peers {
		if peer.Is4() {
			if rerr := io.arp.Request(peer); rerr != nil && err == nil {
				err = rerr
			}
		}
	}
	return err
}

// unstick: a unicast peer whose neighbour entry failed (its link was down
// while we sent) would only be retried by the kernel after seconds, while
// our adverts queue and the peer takes over. At most every 200ms, look at
// the entry and, if it is failed or incomplete, ask the peer directly.
func (io *linuxIO) unstick(dst netip.Addr) {
	if io.arp == nil || !dst.Is4() {
		return
	}
	now := time.Now()
	if io.lastProbe == nil {
		io.lastProbe = map[netip.Addr]time.Time{}
	}
	if now.Sub(io.lastProbe[dst]) < 200*time.Millisecond {
		return
	}
	io.lastProbe[dst] = now
	ns, err := netlink.NeighList(io.ifi.Index, netlink.FAMILY_V4)
	if err != nil {
		return
	}
	for _, n := range ns {
		if n.IP.Equal(dst.AsSlice()) && n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) != 0 {
			_ = io.arp.Request(dst)
		}
	}
}

func (io *linuxIO) closeSockets() {
	if io.v4 != nil {
		io.v4.Close()
	}
	if io.v6 != nil {
		io.v6.Close()
	}
	if io.nd != nil {
		io.nd.Close()
	}
	if io.arp != nil {
		io.arp.Close()
	}
}

func (io *linuxIO) Close() error {
	io.once.Do(func() {
		close(io.stop)
		io.closeSockets()
		io.wg.Wait()
		if err := io.closeVMAC(); err != nil {
			io.log.Warn("use_vmac: cleanup", "err", err)
		}
	})
	return nil
}
