// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): one datagram of NAME=value lines to the unix socket named
// by $NOTIFY_SOCKET. It is small enough that a library would only add a
// dependency.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends to the service manager. A nil *Notifier (not started by
// systemd with Type=notify) sends nothing, so callers need no checks.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns the notifier for $NOTIFY_SOCKET, or nil when it is unset.
// A leading '@' names an abstract socket; Go's unix addresses read it so.
func FromEnv() *Notifier {
	s := os.Getenv("NOTIFY_SOCKET")
	if s == "" {
		return nil
	}
	return &Notifier{addr: &net.UnixAddr{Name: s, Net: "unixgram"}}
}

// Send sends one notification (lines like "READY=1").
func (n *Notifier) Send(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// Ready says start-up (or a reload) is complete.
func (n *Notifier) Ready() error { return n.Send("READY=1") }

// Reloading says a reload begins. systemd (since 253, Type=notify-reload)
// wants the time of the request on CLOCK_MONOTONIC beside it, to tell this
// reload's READY=1 from an older one's.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: monotonic clock: %w", err)
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	return n.Send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// Watchdog pets the watchdog.
func (n *Notifier) Watchdog() error { return n.Send("WATCHDOG=1") }

// WatchdogInterval is how often to pet the watchdog: half of
// $WATCHDOG_USEC (as sd_watchdog_enabled(3) advises), or 0 when the
// watchdog is off or meant for another process ($WATCHDOG_PID).
func WatchdogInterval() (time.Duration, error) {
	s := os.Getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, nil
	}
	usec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || usec <= 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC=%q: want a positive number of microseconds", s)
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	return time.Duration(usec) * time.Microsecond / 2, nil
}
