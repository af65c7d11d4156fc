package proxy

import (
	"errors"
	"fmt"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// listenShards is how many sockets a bind address gets: one per P, each
// with its own accept loop, so that accepting does not funnel every new
// connection through one goroutine and one accept queue (HAProxy's
// per-thread `shards`). The kernel spreads connections over them by a hash
// of the client's address and port.
func listenShards() int { return runtime.GOMAXPROCS(0) }

// reusePort lets the shards of a bind share its address (SO_REUSEPORT).
// Only sockets that all set it, under the same user, may share: a port held
// by another program without it still fails with "address already in use".
func reusePort(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}

// probeBind binds, and closes at once, a socket without SO_REUSEPORT on
// the address the shards are about to share: SO_REUSEPORT would otherwise
// let the bind join sockets another listener of this user holds there (a
// second vipgate, or the DNS server's TCP socket, which sets it too) and
// take part of their connections, where without shards it fails as in use.
// The probe never listens, so no client can land on it.
func probeBind(network, addr string, v6only, vip bool) error {
	return probeBindWith(unix.Socket, network, addr, v6only, vip)
}

// probeBindWith is probeBind with the socket call given (tests stand in a
// host without IPv6).
func probeBindWith(socket func(domain, typ, proto int) (int, error), network, addr string, v6only, vip bool) error {
	ta, err := net.ResolveTCPAddr(network, addr)
	if err != nil || ta.Port == 0 || ta.Zone != "" {
		return nil // Listen says what is wrong; port 0 is always free
	}
	fam, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: ta.Port})
	if ip4 := ta.IP.To4(); network == "tcp4" || (ip4 != nil && !ta.IP.IsUnspecified()) {
		s4 := &unix.SockaddrInet4{Port: ta.Port}
		if ip4 != nil {
			s4.Addr = [4]byte(ip4)
		}
		fam, sa = unix.AF_INET, s4
	} else if ta.IP != nil {
		sa.(*unix.SockaddrInet6).Addr = [16]byte(ta.IP.To16())
	}
	fd, err := socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if errors.Is(err, unix.EAFNOSUPPORT) && fam == unix.AF_INET6 && network == "tcp" && (ta.IP == nil || ta.IP.IsUnspecified()) {
		// No IPv6 on this host (ipv6.disable=1): Go's Listen binds a
		// wildcard to 0.0.0.0 then, and so does the probe.
		fam, sa = unix.AF_INET, &unix.SockaddrInet4{Port: ta.Port}
		fd, err = socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("listen %s %s: %w", network, addr, err)
	}
	defer unix.Close(fd)
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil && fam == unix.AF_INET6 {
		only := 0
		if v6only {
			only = 1
		}
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, only)
	}
	if err == nil && vip {
		err = freebind(uintptr(fd), fam == unix.AF_INET6)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		return fmt.Errorf("listen %s %s: bind: %w", network, addr, err)
	}
	return nil
}
