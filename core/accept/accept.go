// Package accept is the one accept loop step every listener of the node
// uses (proxy frontends, DNS over TCP, raft, stick-table peers): a failed
// Accept that is not the end of the listener (EMFILE, ENFILE, ECONNABORTED,
// a timeout) is logged and retried after a backoff, as net/http's server
// does, instead of ending the listener or spinning.
package accept

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"
)

// Backoff bounds the wait between failed accepts: it starts at Min and
// doubles up to Max while accepts keep failing.
const (
	Min = 5 * time.Millisecond
	Max = time.Second
)

// Next returns the next connection of ln. It returns an error only when
// the listener is closed or ctx ends; other failures are logged on log (nil:
// not logged) and retried with backoff.
func Next(ctx context.Context, ln net.Listener, log *slog.Logger) (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		delay = min(max(2*delay, Min), Max)
		if log != nil {
			log.Warn("accept failed", "listener", ln.Addr().String(), "err", err, "retry_in", delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}
