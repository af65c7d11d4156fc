package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// stopLab is a node with an HTTP frontend on a server that answers only
// when released, and a TCP frontend on an echo server.
type stopLab struct {
	n           *node
	web, relay  string        // the frontends' addresses
	release     chan struct{} // closed: the slow server answers
	slowStarted chan struct{} // a request reached the slow server
}

func newStopLab(t *testing.T, nodeExtra string) *stopLab {
	l := &stopLab{release: make(chan struct{}), slowStarted: make(chan struct{}, 16)}
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			l.slowStarted <- struct{}{}
			<-l.release
		}
		fmt.Fprintf(w, "answer to %s", r.URL.Path)
	})}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go slow.Serve(sln)
	t.Cleanup(func() { slow.Close() })
	eln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eln.Close() })
	go func() {
		for {
			c, err := eln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	l.web = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	l.relay = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	l.n = startNodeFile(t, fmt.Sprintf(`frontends:
  - {name: web, mode: http, bind: %q, default_backend: slow}
  - {name: relay, bind: %q, default_backend: echo}
backends:
  - {name: slow, mode: http, servers: [{name: s, address: %q}]}
  - {name: echo, servers: [{name: e, address: %q}]}
`, l.web, l.relay, sln.Addr(), eln.Addr()), "tokens: ["+writeTok+"]", nodeExtra)
	return l
}

// dialLab connects to a frontend (closed at the end of the test).
func dialLab(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// echo sends a line on a relayed connection and reads it back.
func echo(c net.Conn, r *bufio.Reader, line string) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echo %q, want %q", got, line)
	}
	return nil
}

// refused waits until a new connection to addr is refused.
func refused(t *testing.T, addr string) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, "new connections to "+addr+" refused", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
}

// TestGracefulStop: on a stop (SIGTERM's path: the node's context ends) the
// node refuses new connections at once, closes idle keep-alive
// connections, and lets an HTTP request under way and a TCP relay finish
// within hard_stop_after; it exits when they are done, not before.
func TestGracefulStop(t *testing.T) {
	l := newStopLab(t, "hard_stop_after: 60s\n")
	// An idle keep-alive connection: one answered request, then silence.
	idle, idleR := dialLab(t, l.web)
	fmt.Fprintf(idle, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.SetDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(idleR, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	// A slow request under way.
	slowDone := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + l.web + "/slow")
		if err != nil {
			slowDone <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowDone <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-l.slowStarted
	// A TCP relay.
	rc, rr := dialLab(t, l.relay)
	if err := echo(rc, rr, "before"); err != nil {
		t.Fatal(err)
	}

	l.n.cancel() // what SIGTERM does
	refused(t, l.web)
	refused(t, l.relay)
	// The idle keep-alive connection is closed by the node.
	idle.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Errorf("idle keep-alive connection: read %v, want EOF (closed by the stop)", err)
	}
	// The relay still works, and the node waits for it.
	if err := echo(rc, rr, "during the grace"); err != nil {
		t.Fatalf("relay during the grace: %v", err)
	}
	select {
	case <-l.n.exited:
		t.Fatal("the node exited with a relay and a request open")
	default:
	}
	close(l.release)
	if got := <-slowDone; got != "200 answer to /slow" {
		t.Errorf("the request under way: %q", got)
	}
	rc.Close()
	select {
	case <-l.n.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the node did not exit once its connections were done")
	}
	if logs := l.n.logs.String(); !strings.Contains(logs, "every connection finished") || strings.Contains(logs, "connections cut") {
		t.Errorf("logs:\n%s", logs)
	}
}

// TestGracefulStopCuts: connections still open when hard_stop_after is
// over are cut, and the node exits; a soft stop through the admin API
// (vipgate ctl stop --grace) and SIGUSR1 take the same path.
func TestGracefulStopCuts(t *testing.T) {
	for _, how := range []string{"ctl stop", "SIGUSR1"} {
		t.Run(how, func(t *testing.T) {
			l := newStopLab(t, "hard_stop_after: 1s\n")
			rc, rr := dialLab(t, l.relay)
			if err := echo(rc, rr, "before"); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "ctl stop":
				code, out, errs := l.n.cli(t, "ctl", "stop", "--grace", "2s")
				if code != 0 || !strings.Contains(out, "ok (node scope): stop (1 connections open, cut after 2s)") {
					t.Fatalf("ctl stop: %d %s%s", code, out, errs)
				}
			case "SIGUSR1":
				if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
					t.Fatal(err)
				}
			}
			refused(t, l.relay)
			if err := echo(rc, rr, "during the grace"); err != nil {
				t.Fatalf("relay during the grace: %v", err)
			}
			// Then it is cut, and the node exits.
			rc.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := rr.ReadByte(); err == nil {
				t.Fatal("the relay still reads after the grace")
			}
			select {
			case <-l.n.exited:
			case <-time.After(20 * time.Second):
				t.Fatal("the node did not exit after the grace")
			}
			if logs := l.n.logs.String(); !strings.Contains(logs, "stopping: connections cut") || !strings.Contains(logs, "connections=1") {
				t.Errorf("logs lack the cut:\n%s", logs)
			}
		})
	}
}
