//go:build linux

package vrrp

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/vipgate/vipgate/core/config"
)

// vmacName is keepalived's default name for the virtual MAC interface.
func vmacName(vrid int) string { return fmt.Sprintf("vrrp.%d", vrid) }

// vmacAddr is the virtual router MAC of RFC 5798 §7.3 (IPv4).
func vmacAddr(vrid int) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, byte(vrid)}
}

// openVMAC creates (or adopts) the macvlan "vrrp.<vrid>" on the instance's
// interface with the virtual router MAC, as keepalived's use_vmac: the
// VIPs live on it, adverts and gratuitous ARPs leave from it, so switches
// learn the virtual MAC on the master's port and a failover needs no ARP
// cache change in the clients. ARP is answered per interface (arp_ignore
// 1 on both) so the parent never answers for a VIP nor the macvlan for the
// parent's own address. Like keepalived, these sysctls stay set on exit.
func (io *linuxIO) openVMAC(cfg *config.VRRPInstance) error {
	name := vmacName(cfg.VRID)
	mac := vmacAddr(cfg.VRID)
	if l, err := netlink.LinkByName(name); err == nil {
		mv, ok := l.(*netlink.Macvlan)
		if !ok || mv.ParentIndex != io.ifi.Index {
			return fmt.Errorf("use_vmac: %s exists and is not a macvlan on %s", name, io.ifi.Name)
		}
	} else {
		l := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: io.ifi.Index, HardwareAddr: mac}, Mode: netlink.MACVLAN_MODE_PRIVATE}
		if err := netlink.LinkAdd(l); err != nil {
			return fmt.Errorf("use_vmac: create %s on %s: %w", name, io.ifi.Name, err)
		}
	}
	io.vmacCreated = name
	// arp_announce 2: the parent's own ARP requests (e.g. to answer a
	// client that reached the VIP) must not claim the VIP with the
	// parent's MAC.
	for _, dev := range []string{io.ifi.Name, name} {
		for k, v := range map[string]string{"arp_ignore": "1", "arp_announce": "2"} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+dev+"/"+k, []byte(v), 0o644); err != nil {
				return fmt.Errorf("use_vmac: %s on %s: %w", k, dev, err)
			}
		}
	}
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		return fmt.Errorf("use_vmac: bring %s up: %w", name, err)
	}
	if io.vmac, err = net.InterfaceByName(name); err != nil {
		return fmt.Errorf("use_vmac: %w", err)
	}
	io.hwVIP = mac
	for i := range io.vips {
		if io.vips[i].Dev == io.ifi.Name {
			io.vips[i].Dev = name
		}
	}
	// Adverts leave from the macvlan (source MAC = virtual MAC); they are
	// still received on the parent, where unicast peers address them.
	pc, err := net.ListenPacket(fmt.Sprintf("ip4:%d", Protocol), "0.0.0.0")
	if err != nil {
		return fmt.Errorf("use_vmac: raw socket: %w", err)
	}
	sc, _ := pc.(*net.IPConn).SyscallConn()
	if err := bindToDevice(sc, name); err != nil {
		pc.Close()
		return fmt.Errorf("use_vmac: bind to %s: %w", name, err)
	}
	// Never read: a zero receive buffer keeps the kernel from queueing.
	_ = sc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 0) })
	rc, err := ipv4.NewRawConn(pc)
	if err != nil {
		pc.Close()
		return err
	}
	_ = rc.SetMulticastInterface(io.vmac)
	_ = rc.SetMulticastLoopback(false)
	io.v4send = rc
	return nil
}

// vmacARP is the ARP client on the macvlan, opened once it has an address
// (the VIP), so gratuitous ARPs carry the virtual MAC as Ethernet source.
func (io *linuxIO) vmacARP() (*arp.Client, error) {
	if io.vmacArp != nil {
		return io.vmacArp, nil
	}
	c, err := arp.Dial(io.vmac)
	if err != nil {
		return nil, err
	}
	io.vmacArp = c
	return c, nil
}

func (io *linuxIO) closeVMAC() error {
	var errs []error
	if io.v4send != nil {
		io.v4send.Close()
	}
	if io.vmacArp != nil {
		io.vmacArp.Close()
	}
	if io.vmacCreated != "" {
		if l, err := netlink.LinkByName(io.vmacCreated); err == nil {
			errs = append(errs, netlink.LinkDel(l))
		}
	}
	return errors.Join(errs...)
}
