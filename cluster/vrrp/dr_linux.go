//go:build linux

package vrrp

import (
	"bytes"
	"errors"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
)

// Direct routing (core/dr): a VIP that a mode dr frontend forwards must
// not be a local address of the director, or the kernel would answer its
// packets itself (a SYN-ACK, a RST, an ICMP port unreachable) beside the
// server the director forwards them to. So the master does not add it:
// it answers ARP requests for it with its own MAC, as the kernel would for
// an address it owns, and announces it by gratuitous ARP like any VIP.
// Frames for the VIP then reach the master's NIC, where the director's
// AF_PACKET socket takes them, and the kernel drops them (with IPv4
// forwarding off it does not route what it does not own).

// startDR answers ARP for the dr VIPs while the instance is master.
func (io *linuxIO) startDR(vips []netip.Addr) {
	io.dr = map[netip.Addr]bool{}
	for _, a := range vips {
		io.dr[a] = true
	}
	io.wg.Add(1)
	go io.answerARP()
}

func (io *linuxIO) answerARP() {
	defer io.wg.Done()
	own := io.ifi.HardwareAddr
	for {
		p, _, err := io.arp.Read()
		if err != nil {
			select {
			case <-io.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		// Our own requests (the kernel's, seen on the way out) are not
		// answered: the director never routes to the VIP itself.
		if p.Operation != arp.OperationRequest || !io.drOn.Load() || !io.dr[p.TargetIP] || bytes.Equal(p.SenderHardwareAddr, own) {
			continue
		}
		io.wmu.Lock()
		err = io.arp.Reply(p, own, p.TargetIP)
		io.wmu.Unlock()
		if err != nil {
			io.log.Warn("mode dr: ARP reply", "vip", p.TargetIP, "to", p.SenderIP, "err", err)
		}
	}
}
