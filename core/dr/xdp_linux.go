//go:build linux

package dr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// The XDP fast path: a program on the interface forwards the packets of
// the flows user space has placed, in the driver (or in the kernel's
// generic hook), without a copy to user space. User space stays the only
// place where flows are decided: a packet the program does not know (a
// new flow, or anything else) is passed on to the stack, where the
// AF_PACKET socket takes it as without XDP; the director places the flow,
// forwards that packet itself and enters the flow in the program's map.
//
// The program is built here with cilium/ebpf's assembler (no C compiler
// at build time); the interface's MAC and its largest ordinary frame are
// constants in it.

// Layout of a flow map key: the flow's addresses and ports as on the wire
// and its protocol (flowKey in network byte order, padded to 16 bytes).
const xdpKeyLen = 16

// Layout of a flow map value: where the program sends the flow's packets,
// the counter slot of its server, and when it last did (ktime ns,
// CLOCK_MONOTONIC: user space reads it to keep an active flow alive).
const (
	xdpValMAC  = 0
	xdpValSlot = 8
	xdpValSeen = 16
	xdpValLen  = 24
)

// xdpSlots bounds the per-server counter slots of an interface.
const xdpSlots = 4096

// XDP verdicts.
const (
	xdpPass = 2
	xdpTX   = 3
)

// xdpProgram forwards a frame whose flow is in flows: to this interface's
// MAC (not another host's seen in promiscuous mode), no larger than
// maxFrame (a GRO aggregate must be cut into segments again: the AF_PACKET
// path does it), IPv4 without options, not a fragment, TCP without SYN,
// FIN or RST (the flow table follows a connection's state by those) or
// UDP. It rewrites the Ethernet addresses as the AF_PACKET path does,
// stamps the flow, counts the frame in its server's per-CPU slot and
// sends it back out of the interface. Everything else goes on (XDP_PASS).
func xdpProgram(flows, counters *ebpf.Map, mac [6]byte, maxFrame int) asm.Instructions {
	const (
		rCtx   = asm.R6
		rVal   = asm.R7
		rData  = asm.R8
		rEnd   = asm.R9
		keyOff = -16 // the flow key on the stack
		slotOf = -20 // the counter slot index on the stack
	)
	mac4 := int32(binary.LittleEndian.Uint32(mac[0:4]))
	mac2 := int32(binary.LittleEndian.Uint16(mac[4:6]))
	return asm.Instructions{
		asm.Mov.Reg(rCtx, asm.R1),
		asm.LoadMem(rData, rCtx, 0, asm.Word), // xdp_md.data
		asm.LoadMem(rEnd, rCtx, 4, asm.Word),  // xdp_md.data_end
		// Ethernet + IPv4 (20) + the UDP header, or TCP up to its flags.
		asm.Mov.Reg(asm.R2, rData),
		asm.Add.Imm(asm.R2, ethHeader+minIPv4+8),
		asm.JGT.Reg(asm.R2, rEnd, "pass"),
		// Not above maxFrame. (Compared as pointers: subtracting one from
		// the other needs CAP_PERFMON, which the systemd unit does not
		// grant.)
		asm.Mov.Reg(asm.R2, rData),
		asm.Add.Imm(asm.R2, int32(maxFrame)),
		asm.JGT.Reg(rEnd, asm.R2, "pass"),
		// To us.
		asm.LoadMem(asm.R2, rData, 0, asm.Word),
		asm.JNE.Imm32(asm.R2, mac4, "pass"),
		asm.LoadMem(asm.R2, rData, 4, asm.Half),
		asm.JNE.Imm32(asm.R2, mac2, "pass"),
		// IPv4, a 20-byte header, not a fragment (MF or an offset).
		asm.LoadMem(asm.R2, rData, 12, asm.Half),
		asm.JNE.Imm(asm.R2, 0x0008, "pass"),
		asm.LoadMem(asm.R2, rData, ethHeader, asm.Byte),
		asm.JNE.Imm(asm.R2, 0x45, "pass"),
		asm.LoadMem(asm.R2, rData, ethHeader+6, asm.Half),
		asm.JSet.Imm(asm.R2, 0xff3f, "pass"),
		asm.LoadMem(asm.R3, rData, ethHeader+9, asm.Byte),
		asm.JEq.Imm(asm.R3, protoUDP, "key"),
		asm.JNE.Imm(asm.R3, protoTCP, "pass"),
		asm.Mov.Reg(asm.R2, rData),
		asm.Add.Imm(asm.R2, ethHeader+minIPv4+14),
		asm.JGT.Reg(asm.R2, rEnd, "pass"),
		asm.LoadMem(asm.R2, rData, ethHeader+minIPv4+13, asm.Byte),
		asm.JSet.Imm(asm.R2, tcpFIN|tcpSYN|tcpRST, "pass"),
		// The key: src, dst, sport, dport as on the wire, proto, padding.
		asm.LoadMem(asm.R2, rData, ethHeader+12, asm.Word).WithSymbol("key"),
		asm.StoreMem(asm.RFP, keyOff, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, rData, ethHeader+16, asm.Word),
		asm.StoreMem(asm.RFP, keyOff+4, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, rData, ethHeader+minIPv4, asm.Word),
		asm.StoreMem(asm.RFP, keyOff+8, asm.R2, asm.Word),
		asm.StoreMem(asm.RFP, keyOff+12, asm.R3, asm.Word),
		asm.LoadMapPtr(asm.R1, flows.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Reg(rVal, asm.R0),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(rVal, xdpValSeen, asm.R0, asm.DWord),
		// The Ethernet addresses: to the server, from this interface.
		asm.LoadMem(asm.R2, rVal, xdpValMAC, asm.Word),
		asm.StoreMem(rData, 0, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, rVal, xdpValMAC+4, asm.Half),
		asm.StoreMem(rData, 4, asm.R2, asm.Half),
		asm.StoreImm(rData, 6, int64(mac4), asm.Word),
		asm.StoreImm(rData, 10, int64(mac2), asm.Half),
		// Count the packet's IP length (as the AF_PACKET path counts, not
		// the Ethernet padding of a short frame).
		asm.LoadMem(asm.R2, rVal, xdpValSlot, asm.Word),
		asm.StoreMem(asm.RFP, slotOf, asm.R2, asm.Word),
		asm.LoadMapPtr(asm.R1, counters.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotOf),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "tx"),
		asm.LoadMem(asm.R2, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R2, 1),
		asm.StoreMem(asm.R0, 0, asm.R2, asm.DWord),
		asm.LoadMem(asm.R3, rData, ethHeader+2, asm.Half), // the IP total length
		asm.HostTo(asm.BE, asm.R3, asm.Half),
		asm.LoadMem(asm.R2, asm.R0, 8, asm.DWord),
		asm.Add.Reg(asm.R2, asm.R3),
		asm.StoreMem(asm.R0, 8, asm.R2, asm.DWord),
		asm.Mov.Imm(asm.R0, xdpTX).WithSymbol("tx"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	}
}

// xdpPath is the fast path loaded for one interface.
type xdpPath struct {
	flows, counters *ebpf.Map
	prog            *ebpf.Program
	attached        link.Link
	// mode is how it is attached: native (in the driver) or generic.
	mode string
	// monoOff converts the program's stamps (CLOCK_MONOTONIC) to unix
	// time, measured at load.
	monoOff int64
}

// loadXDP creates the maps and loads the program for an interface with
// this MAC and MTU (not attached yet).
func loadXDP(mac [6]byte, mtu int) (*xdpPath, error) {
	if !littleEndian() {
		// The program's constants and the map values are laid out for a
		// little-endian host; elsewhere it would never match a frame.
		return nil, errors.New("the XDP program is built for little-endian hosts")
	}
	x := &xdpPath{}
	flows := &ebpf.MapSpec{Name: "vipgate_flows", Type: ebpf.Hash, KeySize: xdpKeyLen, ValueSize: xdpValLen,
		MaxEntries: maxFlows, Flags: unix.BPF_F_NO_PREALLOC}
	var err error
	x.flows, err = ebpf.NewMap(flows)
	if errors.Is(err, unix.EPERM) {
		// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK (8 MiB
		// by default); raise it (CAP_SYS_RESOURCE, or LimitMEMLOCK in the
		// unit) and try once more. Not cilium/ebpf's rlimit package: its
		// init calls bpf() in every process, the CLI's too, which a
		// seccomp filter without bpf answers with SIGSYS.
		if unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}) == nil {
			x.flows, err = ebpf.NewMap(flows)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("flow map: %w", err)
	}
	x.counters, err = ebpf.NewMap(&ebpf.MapSpec{Name: "vipgate_count", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16, MaxEntries: xdpSlots})
	if err != nil {
		x.close()
		return nil, fmt.Errorf("counter map: %w", err)
	}
	x.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "vipgate_dr", Type: ebpf.XDP, License: "GPL",
		Instructions: xdpProgram(x.flows, x.counters, mac, ethHeader+mtu)})
	if err != nil {
		x.close()
		return nil, fmt.Errorf("program: %w", err)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		x.monoOff = time.Now().UnixNano() - ts.Nano()
	}
	return x, nil
}

// errNoNativeXDP: the interface's driver runs no XDP program (auto then
// forwards with AF_PACKET rather than at the generic hook).
var errNoNativeXDP = errors.New("no XDP in the interface's driver (dr.datapath: xdp would use the kernel's generic hook)")

// openXDP loads the fast path and attaches it to ifi in the driver. The
// kernel's generic hook only when generic is set (dr.datapath: xdp): it
// runs for every frame of the interface, the proxy's included, and copies
// each one that is not linear with enough headroom (most GRO aggregates),
// so auto does not pick it. veth goes straight to generic: native XDP_TX
// on a veth hands the frame to its peer, which drops it unless XDP runs
// there too.
func openXDP(ifi *net.Interface, generic bool) (*xdpPath, error) {
	isVeth := driver(ifi.Name) == "veth"
	if isVeth && !generic {
		return nil, fmt.Errorf("%w: a veth's cannot send frames on", errNoNativeXDP)
	}
	var mac [6]byte
	copy(mac[:], ifi.HardwareAddr)
	x, err := loadXDP(mac, ifi.MTU)
	if err != nil {
		return nil, err
	}
	var nerr error
	if !isVeth {
		x.attached, nerr = link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: ifi.Index, Flags: link.XDPDriverMode})
		x.mode = "native"
	}
	if x.attached == nil && !generic {
		x.close()
		return nil, fmt.Errorf("%w: %w", errNoNativeXDP, nerr)
	}
	if x.attached == nil {
		x.attached, err = link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: ifi.Index, Flags: link.XDPGenericMode})
		x.mode = "generic"
		if err != nil {
			x.close()
			return nil, fmt.Errorf("attach to %s: %w", ifi.Name, errors.Join(nerr, err))
		}
	}
	return x, nil
}

// driver names an interface's driver ("" when unknown).
func driver(ifname string) string {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, ifname)
	if err != nil {
		return ""
	}
	return unix.ByteSliceToString(info.Driver[:])
}

func xdpKey(k flowKey) []byte {
	b := make([]byte, xdpKeyLen)
	copy(b[0:4], k.src[:])
	copy(b[4:8], k.dst[:])
	binary.BigEndian.PutUint16(b[8:10], k.sport)
	binary.BigEndian.PutUint16(b[10:12], k.dport)
	b[12] = k.proto
	return b
}

// put enters (or updates) a flow: its packets go to mac, counted in slot.
func (x *xdpPath) put(k flowKey, mac [6]byte, slot uint32) error {
	v := make([]byte, xdpValLen)
	copy(v[xdpValMAC:], mac[:])
	binary.NativeEndian.PutUint32(v[xdpValSlot:], slot)
	return x.flows.Put(xdpKey(k), v)
}

func (x *xdpPath) del(k flowKey) {
	_ = x.flows.Delete(xdpKey(k))
}

// lastSeen is when the program last forwarded a packet of k (unix ns).
func (x *xdpPath) lastSeen(k flowKey) (int64, bool) {
	v := make([]byte, xdpValLen)
	if err := x.flows.Lookup(xdpKey(k), v); err != nil {
		return 0, false
	}
	seen := int64(binary.NativeEndian.Uint64(v[xdpValSeen:]))
	if seen == 0 {
		return 0, false
	}
	return seen + x.monoOff, true
}

// count is a slot's frames and IP bytes, over every CPU, since load.
func (x *xdpPath) count(slot uint32) (pkts, bytes uint64, err error) {
	var per []struct{ Pkts, Bytes uint64 }
	if err := x.counters.Lookup(slot, &per); err != nil {
		return 0, 0, err
	}
	for _, c := range per {
		pkts += c.Pkts
		bytes += c.Bytes
	}
	return pkts, bytes, nil
}

// close detaches the program and releases the maps.
func (x *xdpPath) close() error {
	var errs []error
	if x.attached != nil {
		errs = append(errs, x.attached.Close())
	}
	if x.prog != nil {
		errs = append(errs, x.prog.Close())
	}
	for _, m := range []*ebpf.Map{x.flows, x.counters} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}

// littleEndian: whether this host stores the low byte first.
func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }
