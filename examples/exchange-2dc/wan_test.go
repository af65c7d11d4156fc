package exchange2dc

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vipgate/vipgate/internal/testnet"
)

// A delay line for kernels without sch_netem: the router's leg into a
// segment is a TAP device in the router's namespace, the bridge's port is a
// TAP device in the switch's namespace, and the driver copies Ethernet
// frames between the two, those leaving the router `delay` after they
// arrived, in order (what netem on the router's interface does).
// (TAP devices take and give whole frames: no offload super-frames, unlike
// a packet socket on a veth.)

type delayLine struct {
	files []*os.File
	wg    sync.WaitGroup
	// loss is the share (per mille) of the router's egress frames dropped:
	// a lossy link in one direction only (the soak's asymmetric loss).
	loss atomic.Uint32
}

// openTap creates a TAP device named name in namespace ns; it lives as long
// as the returned file is open.
func openTap(ns, name string) (*os.File, error) {
	var f *os.File
	var ferr error
	err := inNS(ns, func() {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			ferr = fmt.Errorf("/dev/net/tun: %w", err)
			return
		}
		var req [unix.IFNAMSIZ + 64]byte
		copy(req[:unix.IFNAMSIZ-1], name)
		*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TUNSETIFF), uintptr(unsafe.Pointer(&req[0]))); e != 0 {
			unix.Close(fd)
			ferr = fmt.Errorf("TUNSETIFF %s: %w", name, e)
			return
		}
		f = os.NewFile(uintptr(fd), name)
	})
	if err != nil {
		return nil, err
	}
	return f, ferr
}

// delayedLeg plugs the router into segment n through a delay line: the
// router gets iface with addr, the bridge a port; the returned Host is the
// router's leg (Cable on it takes the bridge port down).
func (l *lab) delayedLeg(n *testnet.Net, router *testnet.Host, iface, addr string, delay time.Duration) *testnet.Host {
	l.t.Helper()
	port := "d" + iface // unique in the switch namespace
	a, err := openTap(router.NS, iface)
	if err != nil {
		l.t.Fatal(err)
	}
	b, err := openTap(n.Switch, port)
	if err != nil {
		a.Close()
		l.t.Fatal(err)
	}
	dl := &delayLine{files: []*os.File{a, b}}
	l.t.Cleanup(dl.close)
	if err := testnet.CheckTestAddr(addr); err != nil {
		l.t.Fatal(err)
	}
	for _, c := range [][]string{
		{"-n", router.NS, "addr", "add", addr, "dev", iface},
		{"-n", router.NS, "link", "set", iface, "up"},
		{"-n", n.Switch, "link", "set", port, "master", "br0", "up"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			l.t.Fatalf("ip %v: %v: %s", c, err, out)
		}
	}
	// As netem on the router's interface: the router's egress is delayed.
	dl.pump(a, b, delay, &dl.loss)
	dl.pump(b, a, 0, nil)
	l.lines[iface] = dl
	return &testnet.Host{Name: router.Name, NS: router.NS, Iface: iface, Port: port}
}

type frame struct {
	due  time.Time
	data []byte
}

// pump copies frames from src to dst, each delay after it was read,
// dropping the share loss says (nil: none).
func (d *delayLine) pump(src, dst *os.File, delay time.Duration, loss *atomic.Uint32) {
	q := make(chan frame, 65536)
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		defer close(q)
		buf := make([]byte, 65536)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			if loss != nil && rand.N(uint32(1000)) < loss.Load() {
				continue
			}
			select {
			case q <- frame{due: time.Now().Add(delay), data: append([]byte(nil), buf[:n]...)}:
			default: // a full queue drops, like a full interface queue
			}
		}
	}()
	go func() {
		defer d.wg.Done()
		for f := range q {
			time.Sleep(time.Until(f.due))
			_, _ = dst.Write(f.data)
		}
	}()
}

func (d *delayLine) close() {
	for _, f := range d.files {
		f.Close()
	}
	d.wg.Wait()
}
