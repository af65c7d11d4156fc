//go:build linux

package proxy

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/vipgate/vipgate/core/proxy/evloop"
)

// rawIO reads and writes a plain TCP connection with raw system calls made
// inside the connection's RawConn callbacks. RawConn keeps what net.Conn
// gives (the descriptor cannot be closed under a call, deadlines, parking
// on Go's poller on EAGAIN); what goes is the runtime's system-call
// bookkeeping around each call (entersyscall/exitsyscall). That is user
// time per call, and worse: sysmon takes the P away from any goroutine
// whose call lasts past its 20 µs tick (a loopback write that delivers the
// segment to its reader does), which costs a thread hand-off and keeps
// sysmon itself waking every 20 µs. A read or write on a non-blocking
// socket never blocks, so it needs none of that. The same trade as the
// event loops' (core/proxy/evloop).
//
// Reads and writes keep separate state, so one goroutine may read while
// another writes (the tcp relay's two directions, HTTP/2 over TLS); two
// reads at once, or two writes, are not allowed (net.Conn's callers here
// never make them).
type rawIO struct {
	c  net.Conn
	rc syscall.RawConn
	// doRead, doWrite and doWriteRead, each bound on its first use (a
	// method value is an allocation; a server connection that takes its
	// answer in one WriteRead never binds the other two).
	rfn  func(uintptr) bool
	wfn  func(uintptr) bool
	xfn  func(uintptr) bool
	rp   []byte
	rn   int
	rerr error
	wp   []byte
	wn   int
	werr error
	// WriteRead's state: short, the write filled the socket buffer;
	// idle, its argument.
	short, idle bool
}

// attach points r at c when c is a plain TCP connection, and reports
// whether it did (else the caller keeps c's own Read and Write).
func (r *rawIO) attach(c net.Conn) bool {
	r.c, r.rc = nil, nil
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	r.c, r.rc = c, rc
	return true
}

// attached reports whether r serves a connection.
func (r *rawIO) attached() bool { return r.rc != nil }

// rawConn is the attached connection's RawConn (nil when none).
func (r *rawIO) rawConn() syscall.RawConn { return r.rc }

// detach forgets the connection (a recycled session must not keep its
// last client's connection reachable).
func (r *rawIO) detach() { r.c, r.rc = nil, nil }

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp, r.rn, r.rerr = p, 0, nil
	if r.rfn == nil {
		r.rfn = r.doRead
	}
	err := r.rc.Read(r.rfn)
	n, rerr := r.rn, r.rerr
	r.rp = nil
	if err != nil {
		return n, r.wrap("read", err)
	}
	return n, rerr
}

func (r *rawIO) doRead(fd uintptr) bool {
	for {
		n, err := evloop.Recv(int(fd), r.rp)
		switch {
		case err == nil:
			if n == 0 {
				r.rerr = io.EOF
			}
			r.rn = n
			return true
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			return false
		default:
			r.rerr = r.wrap("read", os.NewSyscallError("read", err))
			return true
		}
	}
}

func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.wp, r.wn, r.werr = p, 0, nil
	if r.wfn == nil {
		r.wfn = r.doWrite
	}
	err := r.rc.Write(r.wfn)
	n, werr := r.wn, r.werr
	r.wp = nil
	if err != nil {
		return n, r.wrap("write", err)
	}
	return n, werr
}

// doWrite writes all of wp, parking on the poller (false) when the socket
// buffer is full.
func (r *rawIO) doWrite(fd uintptr) bool { return !r.send(fd) }

// send writes wp from wn on, until all is written or an error (werr);
// full reports a socket buffer that takes no more for now.
func (r *rawIO) send(fd uintptr) (full bool) {
	for r.wn < len(r.wp) {
		n, err := evloop.Send(int(fd), r.wp[r.wn:])
		switch {
		case err == nil:
			r.wn += n
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			return true
		default:
			r.werr = r.wrap("write", os.NewSyscallError("write", err))
			return false
		}
	}
	return false
}

// WriteRead writes all of wp and then reads into rp, both inside one
// RawConn.Read: a request and the wait for its answer. Go's poller forgets
// the readiness it has seen when a read call begins, so a read made after
// a write of its own would first try the socket and get EAGAIN (a system
// call for nothing, on every request). Made inside the read call, the
// write comes after that reset: the answer it asks for can only arrive
// later, and its arrival wakes the wait. So once the write is out the
// callback waits without trying, and reads when woken.
//
// What arrived before the call may have had its wake-up forgotten with
// that reset, so the callback first peeks (MSG_PEEK, one byte): on an idle
// connection (idle) anything there, bytes or the end, means the server
// closed it or spoke out of turn, and the call ends with errNotIdle and
// nothing sent (this peek is the connection's idle check); on a new one,
// the write goes out and the read is made at once.
//
// When the socket cannot take all of wp at once, done is false and nothing
// was read: the caller writes wp[wn:] and reads as usual. A write error
// (werr) ends the call with nothing read; a read error comes back as rerr.
func (r *rawIO) WriteRead(wp, rp []byte, idle bool) (wn int, werr error, rn int, rerr error, done bool) {
	r.wp, r.wn, r.werr, r.short = wp, 0, nil, false
	r.rp, r.rn, r.rerr = rp, 0, nil
	r.idle = idle
	if r.xfn == nil {
		r.xfn = r.doWriteRead
	}
	err := r.rc.Read(r.xfn)
	wn, werr, rn, rerr = r.wn, r.werr, r.rn, r.rerr
	r.wp, r.rp = nil, nil
	switch {
	case werr != nil:
		return wn, werr, 0, nil, true
	case r.short:
		return wn, nil, 0, nil, false
	case err != nil && wn < len(wp):
		// The call failed before the write (closed, or the deadline had
		// passed): a write error.
		return wn, r.wrap("write", err), 0, nil, true
	case err != nil:
		return wn, nil, 0, r.wrap("read", err), true
	}
	return wn, nil, rn, rerr, true
}

// doWriteRead is WriteRead's callback: the peek and the write on the first
// call (the only one that finds wp unwritten: it either writes all of it or
// ends the call), the read on the calls after the wait.
func (r *rawIO) doWriteRead(fd uintptr) bool {
	if r.wn == len(r.wp) {
		return r.doRead(fd)
	}
	readNow := false
	if pending(fd) {
		if r.idle {
			r.werr = errNotIdle
			return true
		}
		readNow = true
	}
	if r.send(fd) {
		// Waiting for room is a write call's job.
		r.short = true
		return true
	}
	if r.werr != nil {
		return true
	}
	if readNow {
		return r.doRead(fd)
	}
	return false // the answer cannot be there yet: wait for it
}

// wrap gives an error the shape net.Conn's have (*net.OpError, with the
// timeout and closed-connection errors inside), which the callers'
// error checks and the logs expect.
func (r *rawIO) wrap(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		// RawConn's own (deadline, closed): keep its cause, name the op.
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: err}
}

// rawTCPConn is a plain TCP connection whose Read and Write go through a
// rawIO: what TLS is layered over, client side and server side, so the
// records' system calls are raw too. Everything else (deadlines,
// CloseWrite, addresses) is the TCP connection's own.
type rawTCPConn struct {
	*net.TCPConn
	rio rawIO
}

func (c *rawTCPConn) Read(p []byte) (int, error)  { return c.rio.Read(p) }
func (c *rawTCPConn) Write(p []byte) (int, error) { return c.rio.Write(p) }

// rawConnOf is c for TLS to run over: a rawTCPConn when c is plain TCP,
// else c.
func rawConnOf(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc := &rawTCPConn{TCPConn: tc}
	if !rc.rio.attach(tc) {
		return c
	}
	return rc
}

// syscallConnOf is the RawConn of a plain TCP connection, c itself or the
// one under a rawTCPConn (whose rawIO already holds it), or nil.
func syscallConnOf(c net.Conn) syscall.RawConn {
	switch v := c.(type) {
	case *rawTCPConn:
		return v.rio.rawConn()
	case *net.TCPConn:
		rc, _ := v.SyscallConn()
		return rc
	}
	return nil
}
