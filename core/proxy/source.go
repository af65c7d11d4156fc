package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// srcDial is how connections to one server choose their source address
// (config.Source): nothing (the kernel's choice), a fixed address, or the
// client's (transparent: IP_TRANSPARENT lets the socket bind an address
// that is not the node's).
type srcDial struct {
	fixed    net.Addr // a *net.TCPAddr, port 0
	clientIP bool
}

func newSrcDial(s *config.Source) *srcDial {
	switch {
	case s == nil:
		return nil
	case s.ClientIP():
		return &srcDial{clientIP: true}
	case s.Address != "":
		a, err := netip.ParseAddr(s.Address) // validated by config
		if err != nil {
			return nil
		}
		return &srcDial{fixed: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a.Unmap(), 0))}
	}
	return nil
}

// clientSource reports whether connections to s come from their client's
// address.
func (b *Backend) clientSource(s *upstream.Server) bool {
	sd := b.srcDial[s]
	return sd != nil && sd.clientIP
}

// dialer returns d set up for a connection of client: d itself without a
// source, else a copy with the local address (and the transparent
// option when it is the client's).
func (sd *srcDial) dialer(d *net.Dialer, client netip.Addr) (*net.Dialer, error) {
	if sd == nil {
		return d, nil
	}
	nd := *d
	if sd.fixed != nil {
		nd.LocalAddr = sd.fixed
		nd.Control = bindNoPort
		return &nd, nil
	}
	if !client.IsValid() {
		return nil, errors.New("usesrc clientip: the client's address is unknown")
	}
	nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(client.Unmap(), 0))
	nd.Control = transparent
	return &nd, nil
}

// transparent lets the socket bind a foreign address (the client's). The
// port is left to connect (IP_BIND_ADDRESS_NO_PORT): bind alone would have
// to pick a port unique for the address whatever the destination.
func transparent(network, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if network == "tcp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
		}
		if serr == nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return transparentErr(serr)
	}
	return nil
}

func transparentErr(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("usesrc clientip: IP_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW (run vipgate as root or grant it, e.g. AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW in the systemd unit): %w", err)
	}
	return fmt.Errorf("usesrc clientip: setting IP_TRANSPARENT: %w", err)
}

func bindNoPort(_, _ string, rc syscall.RawConn) error {
	return rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
}

// CheckTransparent reports whether this process may open transparent
// sockets (the capability usesrc clientip needs): one socket and one
// setsockopt, so a missing capability is said once when the config is
// applied, not only on every connection.
func CheckTransparent() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("usesrc clientip: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TRANSPARENT, 1); err != nil {
		return transparentErr(err)
	}
	return nil
}
