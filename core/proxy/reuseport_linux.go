package proxy

import (
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
