package vrrp

import (
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/vipgate/vipgate/internal/testnet"
)

// dropAddr against the kernel: a VIP left on an interface (as a SIGKILLed
// master leaves it) is removed, whichever interface has it; another
// address is not touched; a second call finds nothing.
func TestDropAddrNetns(t *testing.T) {
	n := testnet.New(t)
	h := n.AddHost("gw", "198.18.0.1/24")
	h.MustRun(t, "ip", "addr", "add", "198.18.0.100/24", "dev", "eth0")
	h.MustRun(t, "ip", "addr", "add", "198.18.0.101/32", "dev", "lo")

	var removed [3]bool
	var errs [3]error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		ns, err := netns.GetFromName(h.NS)
		if err != nil {
			errs[0] = err
			return
		}
		defer ns.Close()
		if errs[0] = netns.Set(ns); errs[0] != nil {
			return
		}
		removed[0], errs[0] = dropAddr(netip.MustParsePrefix("198.18.0.100/24"))
		removed[1], errs[1] = dropAddr(netip.MustParsePrefix("198.18.0.101/32"))
		removed[2], errs[2] = dropAddr(netip.MustParsePrefix("198.18.0.100/24"))
	}()
	<-done
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if removed != [3]bool{true, true, false} {
		t.Errorf("removed %v, want true true false", removed)
	}
	if h.HasAddr("198.18.0.100") || !h.HasAddr("198.18.0.1") {
		t.Errorf("eth0 after: VIP still there or own address gone")
	}
	if out := h.MustRun(t, "ip", "-o", "addr", "show", "dev", "lo"); strings.Contains(out, "198.18.0.101") {
		t.Errorf("lo still has the VIP: %s", out)
	}
}
