//go:build linux

package evloop

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls a loop's handlers make on their non-blocking sockets,
// made raw: without the scheduler's entersyscall/exitsyscall around them.
// They never block, so the P has no reason to be handed off during one;
// through syscall.Syscall, sysmon would take the P away from any call that
// lasts past its 20µs tick (a loopback write that runs the peer's receive
// path often does), and the loop's goroutine would then have to win it
// back, a futex and a context switch later, while sysmon, finding work to
// do each tick, never slows its polling down. HAProxy's loop makes plain
// system calls; these are the same.
//
// Errors are unix.Errno values (compare with errors.Is).

func errno(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// bufCall makes a raw call whose arguments are fd, p's address and
// length, then a4 (flags) and zeros: read, write, recvfrom, sendto.
func bufCall(trap uintptr, fd int, p []byte, a4 uintptr) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall6(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)), a4, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Read is read(2) (the eventfd; sockets use Recv).
func Read(fd int, p []byte) (int, error) { return bufCall(unix.SYS_READ, fd, p, 0) }

// Write is write(2) (the eventfd; sockets use Send).
func Write(fd int, p []byte) (int, error) { return bufCall(unix.SYS_WRITE, fd, p, 0) }

// Recv is recv(2) on a socket: read(2)'s result, without the file layer
// read(2) goes through (fdget_pos, vfs_read, sock_read_iter).
func Recv(fd int, p []byte) (int, error) { return bufCall(unix.SYS_RECVFROM, fd, p, 0) }

// Send is send(2) on a socket with MSG_NOSIGNAL: a peer that has gone is
// EPIPE, never a SIGPIPE; like Recv, it skips the file layer.
func Send(fd int, p []byte) (int, error) {
	return bufCall(unix.SYS_SENDTO, fd, p, unix.MSG_NOSIGNAL)
}

// Splice is splice(2) between two descriptors at their current offsets.
func Splice(in, out, n int, flags int) (int, error) {
	m, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), uintptr(flags))
	if e != 0 {
		return 0, e
	}
	return int(m), nil
}

// Close is close(2).
func Close(fd int) error {
	_, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	return errno(e)
}

// Shutdown is shutdown(2).
func Shutdown(fd, how int) error {
	_, _, e := unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0)
	return errno(e)
}

// SetsockoptInt is setsockopt(2) with an int value.
func SetsockoptInt(fd, level, opt, v int) error {
	iv := int32(v)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&iv)), 4, 0)
	return errno(e)
}

// Socket is socket(2).
func Socket(domain, typ, proto int) (int, error) {
	fd, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(domain), uintptr(typ), uintptr(proto))
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// Accept4 is accept4(2); the peer's address is decoded for IPv4 and IPv6
// (others give the zero AddrPort).
func Accept4(fd, flags int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	nfd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)), uintptr(flags), 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(nfd), decodeSockaddr(&rsa), nil
}

// Getsockname is getsockname(2), decoded as Accept4's peer.
func Getsockname(fd int) (netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return netip.AddrPort{}, e
	}
	return decodeSockaddr(&rsa), nil
}

func decodeSockaddr(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), port(a.Port))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), port(a.Port))
	}
	return netip.AddrPort{}
}

// port reads a sockaddr's port, stored in network byte order.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func htons(p uint16) uint16 {
	var v uint16
	b := (*[2]byte)(unsafe.Pointer(&v))
	b[0], b[1] = byte(p>>8), byte(p)
	return v
}

// Connect is connect(2) to ap (IPv4 or IPv6); a non-blocking socket gives
// EINPROGRESS.
func Connect(fd int, ap netip.AddrPort) error {
	var e unix.Errno
	if ap.Addr().Is4() {
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(ap.Port()), Addr: ap.Addr().As4()}
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
	} else {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(ap.Port()), Addr: ap.Addr().As16()}
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet6)
	}
	return errno(e)
}

// epollWait is epoll_pwait(2) without a signal mask and with a zero timeout
// (epoll_wait(2) does not exist on every architecture).
func epollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// epollCtl is epoll_ctl(2).
func epollCtl(epfd, op, fd int, e *unix.EpollEvent) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(e)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
