//go:build linux

package evloop

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// run starts l on a goroutine; the returned stop cancels it and waits.
func run(t *testing.T, l *Loop) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("loop did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// on posts f to l and waits for it to have run.
func on(t *testing.T, l *Loop, f func()) {
	t.Helper()
	ch := make(chan struct{})
	l.Post(func() { f(); close(ch) })
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("posted function did not run: the loop was not woken")
	}
}

type recorder struct {
	mu sync.Mutex
	ev []uint32
	ch chan uint32
}

func (r *recorder) Event(ev uint32) {
	r.mu.Lock()
	r.ev = append(r.ev, ev)
	r.mu.Unlock()
	select {
	case r.ch <- ev:
	default:
	}
}

func socketpair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// A parked loop is woken by its descriptors' readiness and by Post, many
// times over (a lost wake-up would hang one round).
func TestWakeUps(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	run(t, l)
	a, b := socketpair(t)
	r := &recorder{ch: make(chan uint32, 1)}
	var tok Token
	on(t, l, func() {
		var err error
		if tok, err = l.Add(a, r); err != nil {
			t.Error(err)
		}
	})
	defer on(t, l, func() { _ = l.Del(tok, a) })
	// The registration reports the socket writable at once.
	waitEvent(t, r, unix.EPOLLOUT)
	for i := range 200 {
		if _, err := unix.Write(b, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, r, unix.EPOLLIN)
		on(t, l, func() {
			var buf [8]byte
			_, _ = unix.Read(a, buf[:])
		})
	}
}

func waitEvent(t *testing.T, r *recorder, bit uint32) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-r.ch:
			if ev&bit != 0 {
				return
			}
		case <-deadline:
			t.Fatalf("no event with %#x: the loop missed a wake-up", bit)
		}
	}
}

// Timers fire in deadline order, a stopped one never, a rescheduled one at
// its new time, while the loop is otherwise idle.
func TestTimers(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	run(t, l)
	var mu sync.Mutex
	var fired []string
	done := make(chan struct{})
	rec := func(name string) func() {
		return func() {
			mu.Lock()
			fired = append(fired, name)
			if name == "last" {
				close(done)
			}
			mu.Unlock()
		}
	}
	ta, tb, tc, td := NewTimer(rec("a")), NewTimer(rec("b")), NewTimer(rec("stopped")), NewTimer(rec("last"))
	var start time.Time
	on(t, l, func() {
		start = time.Now()
		now := l.Now()
		l.Schedule(&tb, now+int64(60*time.Millisecond))
		l.Schedule(&ta, now+int64(20*time.Millisecond))
		l.Schedule(&tc, now+int64(40*time.Millisecond))
		l.Schedule(&td, now+int64(10*time.Millisecond))
		l.Stop(&tc)
		l.Schedule(&td, now+int64(100*time.Millisecond)) // moved later
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("timers did not fire")
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("the last timer fired after %s, before its 100ms", el)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(fired, ","); got != "a,b,last" {
		t.Fatalf("fired %s, want a,b,last", got)
	}
}

// An event for a registration removed earlier in the same batch is not
// delivered, though its slot is already someone else's: the killer removes
// the victim and registers an heir, which takes the victim's slot; the
// victim's input event, fetched in the same batch, must not reach the heir.
func TestRemovedInBatchDropsEvents(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	run(t, l)
	for range 50 {
		a1, b1 := socketpair(t)
		a2, b2 := socketpair(t)
		a3, _ := socketpair(t)
		k := &killer{l: l, fd: a2, heirFd: a3, heir: &victim{}}
		v := &victim{k: k}
		on(t, l, func() {
			var err error
			if k.victim, err = l.Add(a2, v); err != nil {
				t.Error(err)
			}
			if k.self, err = l.Add(a1, k); err != nil {
				t.Error(err)
			}
		})
		on(t, l, func() {}) // the registrations' first (writable) events
		// Both readable before the loop polls again, the killer first in
		// the ready list: one batch.
		on(t, l, func() {
			unix.Write(b1, []byte("x"))
			unix.Write(b2, []byte("x"))
		})
		on(t, l, func() {})
		var removed, bad, stale bool
		on(t, l, func() { removed, bad, stale = k.removed, v.late, k.heir.input })
		if !removed {
			t.Fatal("the killer never ran")
		}
		if bad || stale {
			t.Fatal("an event was delivered after its registration was removed")
		}
		on(t, l, func() {
			_ = l.Del(k.self, a1)
			_ = l.Del(k.heirTok, a3)
		})
	}
}

// killer removes the victim's registration when it first reads input,
// and registers the heir (which reuses the victim's slot).
type killer struct {
	l            *Loop
	victim, self Token
	heirTok      Token
	fd, heirFd   int
	heir         *victim
	removed      bool
}

func (k *killer) Event(ev uint32) {
	if ev&unix.EPOLLIN == 0 || k.removed {
		return
	}
	_ = k.l.Del(k.victim, k.fd)
	k.removed = true
	k.heirTok, _ = k.l.Add(k.heirFd, k.heir)
}

type victim struct {
	k     *killer
	late  bool // called after its removal
	input bool // saw input (the heir has none of its own)
}

func (v *victim) Event(ev uint32) {
	if v.k != nil && v.k.removed {
		v.late = true
	}
	if ev&unix.EPOLLIN != 0 {
		v.input = true
	}
}

// A panicking handler is reported and the loop keeps serving.
func TestPanicRecovered(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan any, 1)
	l.OnPanic = func(h Handler, v any) { got <- v }
	run(t, l)
	l.Post(func() { panic("boom") })
	select {
	case v := <-got:
		if v != "boom" {
			t.Fatalf("OnPanic got %v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("panic not reported")
	}
	on(t, l, func() {}) // still alive
}

// Run ends once ctx is over and the last registration is gone, not before.
func TestRunOutlivesContextWhileRegistered(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	stopDone := make(chan error, 1)
	stop := run(t, l)
	a, _ := socketpair(t)
	var tok Token
	on(t, l, func() { tok, _ = l.Add(a, &recorder{ch: make(chan uint32, 1)}) })
	go func() { stopDone <- stop() }()
	// Still serving: a posted function runs.
	on(t, l, func() {})
	select {
	case <-stopDone:
		t.Fatal("Run returned while a descriptor was registered")
	default:
	}
	l.Post(func() { _ = l.Del(tok, a) })
	select {
	case err := <-stopDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return once empty")
	}
}

// Work posted after Run has returned is dropped: the loop's descriptors
// are closed, and their numbers may already be another file's.
func TestPostAfterRunDropped(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	on(t, l, func() {})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{}, 1)
	l.Post(func() { ran <- struct{}{} })
	l.mu.Lock()
	queued := len(l.posted)
	l.mu.Unlock()
	if queued != 0 {
		t.Fatalf("%d functions queued on a closed loop", queued)
	}
}
