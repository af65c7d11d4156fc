// Package testenv gives tests a uniform way to need root or an external
// tool: locally they skip with a reason; under CI (CI=true, as root, with
// the packages .ci/run installs) a missing requirement is a failure, so a
// forgotten install step cannot hide behind a skip.
package testenv

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI.
func InCI() bool { return os.Getenv("CI") == "true" }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips (or fails under CI) unless running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
}

// RequireTool returns the path of an external program, skipping (or failing
// under CI) when it is not installed.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
			if _, serr := os.Stat(dir + "/" + name); serr == nil {
				return dir + "/" + name
			}
		}
		missing(t, "needs %s (see .ci/deps)", name)
	}
	return p
}

// Short skips long tests under -short.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that this process has not handed out before.
//
// It deliberately avoids the kernel's ephemeral range: a port taken from
// 127.0.0.1:0 is exactly what the next outgoing connection or ":0" listener
// of a parallel test binary may get before the caller binds it again, which
// made tests that start processes on "free" ports flaky under load. Ports
// below the ephemeral range are only used by whoever asks for them by number.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := portRange()
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if portsGiven[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		// UDP too: DNS tests bind both on the same number.
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		portsGiven[p] = true
		return p
	}
	t.Fatal("testenv: no free port found below the ephemeral range")
	return 0
}

var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{}
)

// portRange is the span below the ephemeral range (ip_local_port_range) that
// FreePort draws from.
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if n, _ := fmt.Sscan(string(b), &first, &last); n == 2 && first > lo+1000 {
			hi = first
		}
	}
	return lo, hi
}

// Eventually polls cond every 10ms until it is true or the deadline passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Serve accepts TCP connections on a fresh 127.0.0.1 port until the test
// ends, handling each on its own goroutine (the connection is closed when
// handle returns), and returns the address.
func Serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ServeListener(t, ln, handle)
	return ln.Addr().String()
}

// ServeListener is Serve on a listener the test made (and hands over: it
// closes with the test).
func ServeListener(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// MigrationInputs returns the directory of the real deployments' files
// that `vipgate import` must take over (shared/migration-inputs, beside
// the checkout: ../shared from the main checkout, ../../shared from a
// worktree under wt/), or $VIPGATE_MIGRATION_INPUTS. Missing, it skips
// (fails under CI, which has shared/ beside the checkout).
func MigrationInputs(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("VIPGATE_MIGRATION_INPUTS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		cand := filepath.Join(dir, "shared", "migration-inputs")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			missing(t, "needs shared/migration-inputs beside the checkout (or VIPGATE_MIGRATION_INPUTS)")
			return ""
		}
		dir = parent
	}
}

// AllocCeiling fails the test when f allocates more than max bytes (the
// whole process's allocations while f runs, so bounds should be generous:
// they catch gigabytes, not kilobytes).
func AllocCeiling(t testing.TB, what string, max uint64, f func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > max {
		t.Fatalf("%s allocated %d MB (ceiling %d MB)", what, got>>20, max>>20)
	}
}

// Fuzzing reports whether the test binary runs a fuzz target's engine
// (-test.fuzz given), not only its seed corpus as a unit test.
func Fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// Ceilings fails the test when f allocates more than maxBytes, or, while
// fuzzing (make fuzz-long), takes longer than maxTime. Seed corpora run in
// make test too, where timing must never decide: there only the
// allocation ceiling holds.
func Ceilings(t testing.TB, what string, maxBytes uint64, maxTime time.Duration, f func()) {
	t.Helper()
	start := time.Now()
	AllocCeiling(t, what, maxBytes, f)
	if d := time.Since(start); Fuzzing() && d > maxTime {
		t.Fatalf("%s took %v (ceiling %v)", what, d.Round(time.Millisecond), maxTime)
	}
}

// NotifySocket stands in for systemd's notification socket: a unixgram
// socket in a temporary directory, named by NOTIFY_SOCKET for the test.
func NotifySocket(t testing.TB) *net.UnixConn {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", p)
	return c
}

// LogBuffer is a log destination a logger's goroutines and the test can
// share: writes and reads are serialized.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
