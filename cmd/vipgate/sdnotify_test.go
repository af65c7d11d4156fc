package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// notifySocket stands in for systemd: it receives the node's
// notifications on a unixgram socket named by NOTIFY_SOCKET.
type notifySocket struct {
	t        *testing.T
	msgs     chan string
	watchdog chan struct{}
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	c := testenv.NotifySocket(t)
	ns := &notifySocket{t: t, msgs: make(chan string, 64), watchdog: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if m := string(buf[:n]); m == "WATCHDOG=1" {
				select {
				case ns.watchdog <- struct{}{}:
				default:
				}
			} else {
				ns.msgs <- m
			}
		}
	}()
	return ns
}

// next is the next notification other than WATCHDOG=1.
func (ns *notifySocket) next(what string) string {
	ns.t.Helper()
	select {
	case m := <-ns.msgs:
		return m
	case <-time.After(20 * time.Second):
		ns.t.Fatalf("no notification: want %s", what)
		return ""
	}
}

func mustAccept(t *testing.T, network, addr, when string) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %s %s does not accept: %v", when, network, addr, err)
	}
	c.Close()
}

// A node run by systemd (Type=notify) says READY=1 only with its frontends
// and DNS listening, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around
// a SIGHUP reload, good or refused, and pets the watchdog when systemd
// asks for it (WATCHDOG_USEC).
func TestNodeNotifiesSystemd(t *testing.T) {
	ns := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	// A SIGHUP still in flight when the node stops must not end the test
	// binary (the node's handler is gone by then).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)

	fe1 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	fe2 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cluster := func(binds ...string) string {
		var b strings.Builder
		b.WriteString("backends: [{name: be, servers: [{name: s, address: '127.0.0.1:1'}]}]\nfrontends:\n")
		for i, a := range binds {
			fmt.Fprintf(&b, "  - {name: fe%d, bind: %q, default_backend: be}\n", i+1, a)
		}
		return b.String()
	}
	nd := startNodeFile(t, cluster(fe1), "", fmt.Sprintf("dns: {listen: [%q], sockets: 1}\n", dnsAddr))

	if m := ns.next("READY=1"); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	mustAccept(t, "tcp", fe1, "at READY=1, the frontend")
	mustAccept(t, "tcp", dnsAddr, "at READY=1, DNS")

	reload := func(doc string) {
		t.Helper()
		if err := os.WriteFile(nd.clusterFile, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		m := ns.next("RELOADING=1")
		lines := strings.Split(m, "\n")
		if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
			t.Fatalf("after SIGHUP got %q, want RELOADING=1 and MONOTONIC_USEC", m)
		}
		if m := ns.next("READY=1 after the reload"); m != "READY=1" {
			t.Fatalf("after RELOADING got %q, want READY=1", m)
		}
	}
	reload(cluster(fe1, fe2))
	mustAccept(t, "tcp", fe2, "at READY=1 after the reload, the new frontend")

	// A refused reload still ends in READY=1: the node serves on.
	reload("frontends: [{name: fe, bnid: x}]\n")
	mustAccept(t, "tcp", fe2, "after a refused reload, the frontend")

	select {
	case <-ns.watchdog:
	case <-time.After(20 * time.Second):
		t.Fatal("no WATCHDOG=1 with WATCHDOG_USEC set")
	}

	nd.stop()
	if m := ns.next("STOPPING=1"); m != "STOPPING=1" {
		t.Fatalf("on stop got %q, want STOPPING=1", m)
	}
}
