package proxy

import "golang.org/x/sys/unix"

// freebind lets the socket bind an address the node does not hold yet
// (IP_FREEBIND; HAProxy's `freebind`): a frontend on a VIP listens on a
// backup node and receives traffic the moment VRRP adds the address.
func freebind(fd uintptr, v6 bool) error {
	if v6 {
		return unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
	}
	return unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
}
