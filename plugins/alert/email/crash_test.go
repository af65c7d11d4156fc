package email

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testenv"
)

const crashRules = `
  rules:
    - min_level: notice
      to: ops@example.test
      coalesce: 0
`

// TestCrashChild is the process TestCrashDuringDelivery kills: it mails
// one event and is killed (SIGKILL, as kill -9) at the named point of the
// delivery. It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	point := os.Getenv("VIPGATE_TEST_CRASH_AT")
	if point == "" {
		t.Skip("the process TestCrashDuringDelivery starts and kills")
	}
	bus := events.New("gw1", "dc1")
	a, err := New(Options{Bus: bus, DataDir: os.Getenv("VIPGATE_TEST_CRASH_DIR"), Node: "gw1", DC: "dc1"})
	if err != nil {
		t.Fatal(err)
	}
	a.crashAt = func(p string) {
		if p == point {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	if err := a.Apply(clusterDoc(t, os.Getenv("VIPGATE_TEST_CRASH_MTA"), crashRules)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go a.Run(ctx)
	bus.Publish(downEvent("b", "s1", "before the crash"))
	<-ctx.Done()
	t.Fatalf("not killed at %s", point)
}

// TestCrashDuringDelivery: a node killed during delivery does not mail the
// event twice once the relay has accepted it (issue 23: the queue entry was
// removed only after QUIT, and 8 kill -9 gave 28 mails for 20 events). A
// kill after the relay's 250 but before the delivery is on disk (the window
// the protocol leaves: the same as a kill while the 250 is on its way)
// sends it again with the same Message-ID, for the receiver to drop.
func TestCrashDuringDelivery(t *testing.T) {
	for _, tc := range []struct {
		point  string
		copies int // of the first mail, after the restart
	}{
		{"delivery-recorded", 1},
		{"data-accepted", 2},
	} {
		t.Run(tc.point, func(t *testing.T) {
			mta := newFakeMTA(t)
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "VIPGATE_TEST_CRASH_AT="+tc.point, "VIPGATE_TEST_CRASH_DIR="+dir, "VIPGATE_TEST_CRASH_MTA="+mta.addr)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the child was not killed at %s: %v\n%s", tc.point, err, out)
			}
			if n := len(mta.Messages()); n != 1 {
				t.Fatalf("%d mails before the restart, want 1", n)
			}

			// Restart on the same queue, then mail a second event: the
			// queue is sent in order, so once the second mail is in,
			// whatever the first left behind has been sent too.
			bus := events.New("gw1", "dc1")
			r := startAlerter(t, Options{Bus: bus, DataDir: dir}, clusterDoc(t, mta.addr, crashRules))
			bus.Publish(downEvent("b", "s2", "after the restart"))
			testenv.Eventually(t, 10*time.Second, "the second event mailed", func() bool {
				return len(mta.With("after the restart")) == 1
			})
			testenv.Eventually(t, 5*time.Second, "queue empty", func() bool { return r.a.Stats().Queued == 0 })
			first := mta.With("before the crash")
			if len(first) != tc.copies {
				t.Fatalf("the event before the crash was mailed %d times, want %d", len(first), tc.copies)
			}
			id := first[0].Header.Get("Message-Id")
			if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@gw1>") {
				t.Errorf("Message-ID %q", id)
			}
			for _, m := range first[1:] {
				if got := m.Header.Get("Message-Id"); got != id {
					t.Errorf("the copy sent again has Message-ID %q, the first %q", got, id)
				}
			}
			if got := mta.With("after the restart")[0].Header.Get("Message-Id"); got == id {
				t.Errorf("two mails share the Message-ID %q", got)
			}
		})
	}
}
