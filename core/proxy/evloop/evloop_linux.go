//go:build linux

package evloop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Supported reports whether this platform has the event loop.
const Supported = true

type epollEvent = unix.EpollEvent

// token reads the registration's token from the event's data word (its
// two 32-bit halves, whatever the architecture's padding).
func tokenOf(e *epollEvent) Token { return Token(uint32(e.Fd)) | Token(uint32(e.Pad))<<32 }

// Edge-triggered, both directions, peer half-close: registered once, never
// modified (an EPOLL_CTL_MOD per direction change would be a system call
// per message); handlers remember what they wait for.
const edgeAll = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

func (l *Loop) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	// Non-blocking, so that os.NewFile hands it to the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return fmt.Errorf("epoll: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("eventfd: %w", err)
	}
	l.epfd, l.evfd = epfd, evfd
	l.file = os.NewFile(uintptr(epfd), "evloop")
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.close()
		return fmt.Errorf("epoll: %w", err)
	}
	l.rc = rc
	l.events = make([]epollEvent, 256)
	i, gen := l.alloc(nil)
	l.evtok = Token(i) | Token(gen)<<32
	if err := l.ctl(unix.EPOLL_CTL_ADD, evfd, unix.EPOLLIN|unix.EPOLLET, l.evtok); err != nil {
		l.close()
		return fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	return nil
}

func (l *Loop) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.file != nil {
		_ = l.file.Close() // closes epfd
	}
	if l.evfd > 0 {
		unix.Close(l.evfd)
	}
}

func (l *Loop) ctl(op, fd int, events uint32, t Token) error {
	e := unix.EpollEvent{Events: events, Fd: int32(uint32(t)), Pad: int32(uint32(t >> 32))}
	return epollCtl(l.epfd, op, fd, &e)
}

// Add registers fd, edge-triggered for input, output and the peer's
// half-close. h gets every event until Del or Forget.
func (l *Loop) Add(fd int, h Handler) (Token, error) { return l.add(fd, h, edgeAll) }

// AddLevel registers fd level-triggered for input only (a listening
// socket: a handler that accepts a bounded batch is called again while the
// accept queue is not empty).
func (l *Loop) AddLevel(fd int, h Handler) (Token, error) { return l.add(fd, h, unix.EPOLLIN) }

func (l *Loop) add(fd int, h Handler, events uint32) (Token, error) {
	i, gen := l.alloc(h)
	t := Token(i) | Token(gen)<<32
	if err := l.ctl(unix.EPOLL_CTL_ADD, fd, events, t); err != nil {
		l.release(t)
		return 0, err
	}
	l.n++
	return t, nil
}

// Del removes fd's registration. Needed only when the descriptor stays open
// (handed to other code) or is shared; a descriptor about to be closed only
// needs Forget.
func (l *Loop) Del(t Token, fd int) error {
	l.Forget(t)
	return l.ctl(unix.EPOLL_CTL_DEL, fd, 0, 0)
}

// poll takes the ready events without waiting.
func (l *Loop) poll() int {
	for {
		n, err := epollWait(l.epfd, l.events)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0
		}
		return n
	}
}

var one = func() []byte { b := make([]byte, 8); binary.NativeEndian.PutUint64(b, 1); return b }()

func (l *Loop) wake() { _, _ = Write(l.evfd, one) }

func (l *Loop) drainWake() {
	var b [8]byte
	_, _ = Read(l.evfd, b[:])
}
