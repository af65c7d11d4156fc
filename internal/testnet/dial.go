package testnet

import (
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// Dial connects from inside the host's namespace (from local address
// laddr when not empty): the socket is made on a thread switched into the
// namespace and stays there for its whole life, whichever thread uses it
// later. The test process itself stays in the root namespace.
func (h *Host) Dial(network, laddr, raddr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if laddr != "" {
		la, err := net.ResolveTCPAddr(network, net.JoinHostPort(laddr, "0"))
		if err != nil {
			return nil, err
		}
		d.LocalAddr = la
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(h.NS)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("namespace %s: %w", h.NS, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- result{err: err}
			return
		}
		c, err := d.Dial(network, raddr)
		// A thread that cannot go back stays locked: the goroutine ends
		// with it and the runtime discards it.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
