// Package logtarget sends the node's log lines to syslog receivers (a unix
// socket such as /dev/log, UDP, TCP; RFC 3164 or RFC 5424 headers) and to
// stderr/stdout, as HAProxy's `log` lines do. A sender never blocks the
// caller: lines wait in a bounded queue, and when it is full they are
// dropped and counted.
package logtarget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// Target is one destination with its queue.
type Target struct {
	cfg      config.LogTarget
	stream   string // node or access
	network  string // "" for stderr/stdout
	addr     string
	facility int
	hostname string
	pid      string
	q        chan []byte
	// std is stderr or stdout for those targets (tests swap it).
	std io.Writer

	sent, dropped atomic.Uint64
}

// NewTarget makes a target from a validated config.
func NewTarget(c config.LogTarget, std io.Writer) *Target {
	network, addr := config.LogTargetNetwork(c.Address)
	fac, _ := config.SyslogFacility(c.Facility)
	host, _ := os.Hostname()
	if host == "" {
		host = "-"
	}
	if std == nil {
		std = os.Stderr
		if addr == "stdout" {
			std = os.Stdout
		}
	}
	return &Target{cfg: c, network: network, addr: addr, facility: fac, hostname: host,
		pid: strconv.Itoa(os.Getpid()), q: make(chan []byte, c.Buffer), std: std}
}

// Name is the target's address, as configured.
func (t *Target) Name() string { return t.cfg.Address }

// Facility is the target's syslog facility, by name.
func (t *Target) Facility() string { return t.cfg.Facility }

// Stream is what the target receives: "node" (log.targets) or "access"
// (log.access).
func (t *Target) Stream() string { return t.stream }

// Sent and Dropped count lines written and lines lost (queue full, or a
// write that failed).
func (t *Target) Sent() uint64    { return t.sent.Load() }
func (t *Target) Dropped() uint64 { return t.dropped.Load() }

// severity is the syslog severity of a slog level.
func severity(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// send queues one message; msgid names the stream in RFC 5424 ("access"
// for access lines). It never waits.
func (t *Target) send(l slog.Level, ts time.Time, msg []byte, msgid string) {
	if len(t.q) == cap(t.q) {
		t.dropped.Add(1)
		return
	}
	if m := t.cfg.MaxLength; m > 0 && len(msg) > m {
		msg = msg[:m]
	}
	var b []byte
	if t.network == "" {
		b = append(make([]byte, 0, len(msg)+1), msg...)
	} else {
		b = t.header(make([]byte, 0, len(msg)+96), l, ts, msgid)
		b = append(b, msg...)
	}
	select {
	case t.q <- b:
	default:
		t.dropped.Add(1)
	}
}

// header is the syslog header. RFC 3164 over a unix socket leaves out the
// host name, as glibc's syslog() does: the local daemon (journald,
// rsyslog) adds its own, and journald would read a host name as the tag.
func (t *Target) header(b []byte, l slog.Level, ts time.Time, msgid string) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(t.facility*8+severity(l)), 10)
	b = append(b, '>')
	if t.cfg.Format == "rfc5424" {
		b = append(b, "1 "...)
		b = ts.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		b = append(b, ' ')
		b = append(b, t.hostname...)
		b = append(b, ' ')
		b = append(b, t.cfg.Tag...)
		b = append(b, ' ')
		b = append(b, t.pid...)
		b = append(b, ' ')
		if msgid == "" {
			msgid = "-"
		}
		b = append(b, msgid...)
		return append(b, " - "...)
	}
	b = ts.AppendFormat(b, time.Stamp)
	b = append(b, ' ')
	if t.network != "unix" && t.network != "unixgram" {
		b = append(b, t.hostname...)
		b = append(b, ' ')
	}
	b = append(b, t.cfg.Tag...)
	b = append(b, '[')
	b = append(b, t.pid...)
	return append(b, "]: "...)
}

// Run writes the queue out until ctx ends, reconnecting (with backoff up
// to 5 s) whenever the receiver is absent or a write fails.
func (t *Target) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		w, network, err := t.dial(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		t.drain(ctx, w, network)
		if c, ok := w.(net.Conn); ok {
			_ = c.Close()
		}
	}
	return nil
}

func (t *Target) dial(ctx context.Context) (io.Writer, string, error) {
	if t.network == "" {
		return t.std, "", nil
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	if t.network == "unix" {
		// /dev/log is a datagram socket; a stream one (some rsyslog
		// setups) refuses a datagram dial with EPROTOTYPE.
		c, err := d.DialContext(ctx, "unixgram", t.addr)
		if err == nil {
			return c, "unixgram", nil
		}
		if !errors.Is(err, syscall.EPROTOTYPE) {
			return nil, "", err
		}
		c, err = d.DialContext(ctx, "unix", t.addr)
		return c, "unix", err
	}
	c, err := d.DialContext(ctx, t.network, t.addr)
	return c, t.network, err
}

// drain writes queued lines to w until ctx ends or a write fails (the
// line is then counted as dropped, and Run reconnects). When ctx ends,
// what is queued still gets up to a second.
func (t *Target) drain(ctx context.Context, w io.Writer, network string) {
	c, _ := w.(net.Conn)
	var buf []byte
	var stopAt time.Time
	for {
		var m []byte
		if stopAt.IsZero() {
			select {
			case <-ctx.Done():
				// The last lines (the node's "shutting down") are still
				// worth a second to reach the receiver.
				stopAt = time.Now().Add(time.Second)
				continue
			case m = <-t.q:
			}
		} else {
			select {
			case m = <-t.q:
			default:
				return
			}
			if time.Now().After(stopAt) {
				t.dropped.Add(uint64(len(t.q)) + 1)
				return
			}
		}
		buf = frame(buf[:0], m, network, t.cfg.Framing)
		if c != nil {
			d := time.Now().Add(5 * time.Second)
			if !stopAt.IsZero() {
				d = stopAt
			}
			_ = c.SetWriteDeadline(d)
		}
		if _, err := w.Write(buf); err != nil {
			t.dropped.Add(1)
			return
		}
		t.sent.Add(1)
	}
}

// frame delimits one message for the transport: datagrams carry one each;
// a stream needs RFC 6587 octet counting ("LEN MSG") or a newline.
func frame(b, m []byte, network, framing string) []byte {
	switch network {
	case "udp", "unixgram":
		return append(b, m...)
	case "tcp":
		if framing == "octet-counting" {
			b = strconv.AppendInt(b, int64(len(m)), 10)
			b = append(b, ' ')
			return append(b, m...)
		}
	}
	b = append(b, m...)
	return append(b, '\n')
}

// String is for logs.
func (t *Target) String() string { return fmt.Sprintf("log target %s", t.cfg.Address) }
