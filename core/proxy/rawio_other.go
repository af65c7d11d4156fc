//go:build !linux

package proxy

import (
	"net"
	"syscall"
)

// rawIO is Linux's (rawio_linux.go); elsewhere connections keep their own
// Read and Write.
type rawIO struct{}

func (r *rawIO) attach(net.Conn) bool      { return false }
func (r *rawIO) detach()                   {}
func (r *rawIO) attached() bool            { return false }
func (r *rawIO) rawConn() syscall.RawConn  { return nil }
func (r *rawIO) Read([]byte) (int, error)  { panic("rawIO without a connection") }
func (r *rawIO) Write([]byte) (int, error) { panic("rawIO without a connection") }
func (r *rawIO) WriteRead([]byte, []byte, bool) (int, error, int, error, bool) {
	panic("rawIO without a connection")
}

func rawConnOf(c net.Conn) net.Conn { return c }

func syscallConnOf(c net.Conn) syscall.RawConn {
	if tc, ok := c.(*net.TCPConn); ok {
		rc, _ := tc.SyscallConn()
		return rc
	}
	return nil
}
