package proxy

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vipgate/vipgate/core/balance"
)

// TestServerConnNoDelay: connections to servers have TCP_NODELAY (small
// requests go out at once, not after the peer's delayed ACK) without the
// proxy setting it itself: Go's dialer does.
func TestServerConnNoDelay(t *testing.T) {
	be := sinkBackend(t)
	client := netip.MustParseAddr("198.18.0.1")
	var l Lease
	c, err := be.Connect(context.Background(), client, &balance.Request{Client: client}, nil, &l)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if v == 0 {
		t.Fatal("server connection without TCP_NODELAY")
	}
}
