package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// TestWorkers: an accepted connection is served by a worker that takes the
// next connection once its own has ended, so connections one after another
// start at most one worker per accept loop; a burst leaves at most
// maxIdleWorkers waiting per loop (the others exit); closing the listener
// ends the idle workers.
func TestWorkers(t *testing.T) {
	g := newGoBackend(t, "web1")
	h := startProxy(t, httpDoc("", "", oneBackend(g.addr())))
	addr := h.addr("fe")
	h.p.mu.Lock()
	var l *listener
	for _, x := range h.p.listeners {
		l = x
	}
	h.p.mu.Unlock()
	counts := func() (idle, alive, started int) {
		for _, ws := range l.workers {
			i, a, s := ws.counts()
			idle, alive, started = idle+i, alive+a, started+s
		}
		return
	}
	parked := func() bool { idle, alive, _ := counts(); return idle == alive }

	// One connection after another.
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 20; i++ {
		if resp, body := get(t, cl, "http://"+addr+"/"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		testenv.Eventually(t, 5*time.Second, "the worker waits for the next connection", parked)
	}
	if _, _, started := counts(); started < 1 || started > len(l.workers) {
		t.Fatalf("20 connections one after another started %d workers, want 1 to %d (one per accept loop)", started, len(l.workers))
	}

	// A burst: every connection holds a worker while it is open.
	const burst = maxIdleWorkers + 36
	conns := make([]net.Conn, 0, burst)
	for i := 0; i < burst; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		conns = append(conns, c)
	}
	for i, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("burst connection %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if _, alive, _ := counts(); alive < burst {
		t.Fatalf("%d open connections, %d workers", burst, alive)
	}
	for _, c := range conns {
		c.Close()
	}
	testenv.Eventually(t, 5*time.Second, "the burst's workers parked or exited", parked)
	idle, _, _ := counts()
	if idle < maxIdleWorkers {
		t.Fatalf("after a burst of %d, %d workers wait: want at least %d", burst, idle, maxIdleWorkers)
	}
	for i, ws := range l.workers {
		if n, _, _ := ws.counts(); n > maxIdleWorkers {
			t.Fatalf("accept loop %d keeps %d idle workers, more than %d", i, n, maxIdleWorkers)
		}
	}

	// Closing the listener ends the idle workers' goroutines.
	before := runtime.NumGoroutine()
	l.close()
	testenv.Eventually(t, 5*time.Second, "the idle workers exit", func() bool {
		_, alive, _ := counts()
		return alive == 0 && runtime.NumGoroutine() <= before-idle
	})
}
