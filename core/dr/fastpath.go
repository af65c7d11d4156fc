package dr

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// fastPath loads the XDP fast path on l's interface unless the node says
// af_packet, and logs which datapath forwards there and why.
func (d *Director) fastPath(l *linkRunner) {
	want := config.DatapathAuto
	if d.o.Node != nil && d.o.Node.DR.Datapath != "" {
		want = d.o.Node.DR.Datapath
	}
	afPacket := func(why string, err error) {
		lvl, args := slog.LevelInfo, []any{"interface", l.name, "datapath", config.DatapathAFPacket}
		if err != nil {
			args = append(args, "err", err)
			lvl = slog.LevelWarn
			if want == config.DatapathXDP {
				lvl = slog.LevelError
			}
		}
		d.log.Log(context.Background(), lvl, "direct routing: forwarding with the AF_PACKET datapath ("+why+"): every forwarded frame crosses user space once; see docs/forwarding.md", args...)
	}
	if want == config.DatapathAFPacket {
		afPacket("dr.datapath: af_packet in the node file", nil)
		return
	}
	if !d.xdpOK {
		afPacket("the datapath is not a kernel interface", nil)
		return
	}
	ifi, err := net.InterfaceByName(l.name)
	var x *xdpPath
	if err == nil {
		x, err = openXDP(ifi, want == config.DatapathXDP)
	}
	if errors.Is(err, errNoNativeXDP) {
		afPacket(err.Error(), nil)
		return
	}
	if err != nil {
		why := "the XDP program could not be loaded"
		if errors.Is(err, os.ErrPermission) {
			why += ": loading it needs CAP_BPF and CAP_NET_ADMIN (root, or AmbientCapabilities in the systemd unit), and before Linux 5.11 a memlock limit the maps fit in (LimitMEMLOCK=infinity)"
		}
		afPacket(why, err)
		return
	}
	l.xdp, l.datapath, l.flows.kernel = x, config.DatapathXDP, x
	d.log.Info("direct routing: forwarding with the XDP datapath: the kernel forwards the packets of known flows; a flow's first packet, TCP SYN/FIN/RST, fragments and aggregated frames cross user space (AF_PACKET), which places the flow; see docs/forwarding.md",
		"interface", l.name, "datapath", config.DatapathXDP, "xdp_mode", x.mode)
}

// slotKey is what a counter slot of the fast path counts for: a server's
// counters and its backend's.
type slotKey struct {
	srv     *upstream.Server
	backend *upstream.Counters
}

// kernelCounters are the fast path's per-server counter slots (the
// reader's): which slot counts for whom, the free ones, and each slot's
// totals when last read (a slot's totals never go back to zero, so a
// reused slot carries on from them).
type kernelCounters struct {
	of    map[slotKey]uint32
	owner map[uint32]slotKey
	free  []uint32
	next  uint32
	read  map[uint32][2]uint64
}

// slot is the counter slot of a server in a backend (ok false: none left).
func (c *kernelCounters) slot(k slotKey) (uint32, bool) {
	if s, ok := c.of[k]; ok {
		return s, true
	}
	if c.of == nil {
		c.of, c.owner, c.read = map[slotKey]uint32{}, map[uint32]slotKey{}, map[uint32][2]uint64{}
	}
	var s uint32
	switch {
	case len(c.free) > 0:
		s, c.free = c.free[len(c.free)-1], c.free[:len(c.free)-1]
	case c.next < xdpSlots:
		s = c.next
		c.next++
	default:
		return 0, false
	}
	c.of[k], c.owner[s] = s, k
	return s, true
}

// toKernel enters a flow in the fast path: its next packets are forwarded
// to mac in the kernel. Without a counter slot it stays in user space.
func (l *linkRunner) toKernel(k flowKey, fl *flow, mac [6]byte) {
	slot, ok := l.kc.slot(slotKey{fl.srv, fl.backend})
	if !ok {
		return
	}
	if err := l.xdp.put(k, mac, slot); err != nil {
		l.full++
		return
	}
	fl.inKernel, fl.mac, fl.slot = true, mac, slot
}

// kernelCount adds what the program forwarded since the last call to the
// servers' and backends' counters, and frees the slots of servers no
// longer live (nil: the last call, every slot).
func (l *linkRunner) kernelCount(live map[*upstream.Server]bool) {
	if l.xdp == nil {
		return
	}
	for s, k := range l.kc.owner {
		p, b, err := l.xdp.count(s)
		last := l.kc.read[s]
		// Never a delta from a failed read (it would wrap round to 2^64 in
		// the counters for good); the next read catches up.
		if err == nil && p >= last[0] && b >= last[1] {
			if dp, db := p-last[0], b-last[1]; dp > 0 {
				k.srv.Counters.PacketsIn.Add(dp)
				k.srv.Counters.BytesIn.Add(db)
				if k.backend != nil {
					k.backend.PacketsIn.Add(dp)
					k.backend.BytesIn.Add(db)
				}
				l.xdpForwarded.Add(dp)
			}
			l.kc.read[s] = [2]uint64{p, b}
		}
		if live != nil && !live[k.srv] {
			delete(l.kc.of, k)
			delete(l.kc.owner, s)
			l.kc.free = append(l.kc.free, s)
		}
	}
}

// kernelMACs sends the fast path's flows to a server whose hardware
// address changed (a replaced machine, a failed-over NIC) to the new one.
func (l *linkRunner) kernelMACs(neigh map[netip.Addr]*neighbour) {
	moved := map[netip.Addr][6]byte{}
	for a, n := range neigh {
		n.mu.Lock()
		if n.moved {
			moved[a] = n.mac
			n.moved = false
		}
		n.mu.Unlock()
	}
	if len(moved) == 0 {
		return
	}
	for k, fl := range l.flows.m {
		if mac, ok := moved[serverAddr(fl.srv)]; ok && fl.inKernel && fl.mac != mac {
			// put writes a new value, stamp included: keep what the
			// kernel saw, or a flow idle since the move expires early.
			if seen, ok := l.xdp.lastSeen(k); ok {
				fl.expires = max(fl.expires, seen+fl.idle(k.proto))
			}
			if err := l.xdp.put(k, mac, fl.slot); err == nil {
				fl.mac = mac
			}
		}
	}
}
