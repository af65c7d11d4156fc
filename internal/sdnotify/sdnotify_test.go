package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSend(t *testing.T) {
	c := testenv.NotifySocket(t)
	n := FromEnv()
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	got := read(t, c)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("got %q", got)
	}
	if us, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || us <= 0 {
		t.Fatalf("MONOTONIC_USEC in %q", got)
	}
}

func TestNilNotifierSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n != nil {
		t.Fatal("want nil without NOTIFY_SOCKET")
	}
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
}

func TestNoListener(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	if err := FromEnv().Ready(); err == nil || !strings.Contains(err.Error(), "absent.sock") {
		t.Fatalf("want an error naming the socket, got %v", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		bad       bool
	}{
		{"", "", 0, false},
		{"4000000", "", 2 * time.Second, false},
		{"4000000", me, 2 * time.Second, false},
		{"4000000", "1", 0, false},
		{"x", "", 0, true},
		{"-5", "", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("USEC=%q PID=%q: got %v, %v", tc.usec, tc.pid, got, err)
		}
	}
}
