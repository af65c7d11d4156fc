package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// listenQueues returns, for each IPv4 listening socket on port, the number
// of connections waiting in its accept queue (/proc/net/tcp's rx_queue of a
// LISTEN socket).
func listenQueues(t *testing.T, port int) []int {
	q, _ := listenSockets(t, port)
	return q
}

// listenSockets returns each IPv4 listening socket on port: its accept
// queue's length and its inode (which tells one socket from another).
func listenSockets(t *testing.T, port int) (queues []int, inodes []string) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		if p, _ := strconv.ParseInt(hexPort, 16, 32); int(p) != port {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		q, _ := strconv.ParseInt(rx, 16, 64)
		queues, inodes = append(queues, int(q)), append(inodes, f[9])
	}
	slices.Sort(inodes)
	return queues, inodes
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestListenShards: a bind gets one SO_REUSEPORT socket per P, the kernel
// spreads new connections over all of them, every one is served once the
// proxy runs, a reload keeps the sockets and removing the frontend closes
// them all.
func TestListenShards(t *testing.T) {
	withProcs(t, 4)
	srv := newTestServer(t, "s")
	doc := func(extra string) string {
		return fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be%s}]
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, extra, srv.addr())
	}
	c, err := config.Parse("t.yaml", []byte(doc("")))
	if err != nil {
		t.Fatal(err)
	}
	p := New(Options{})
	if err := p.Apply(c); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, p: p}
	addr := h.addr("fe")
	port := portOf(t, addr)
	q, before := listenSockets(t, port)
	if len(q) != 4 {
		t.Fatalf("%d listening sockets on %s, want 4 (GOMAXPROCS)", len(q), addr)
	}
	// Not running yet: connections wait in the kernel's accept queues,
	// where /proc shows which socket each one landed on.
	const n = 64
	conns := make([]net.Conn, n)
	for i := range conns {
		if conns[i], err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		q = listenQueues(t, port)
		sum := 0
		for _, v := range q {
			sum += v
		}
		if sum == n || time.Now().After(deadline) {
			break
		}
	}
	for i, v := range q {
		if v == 0 {
			t.Errorf("socket %d of %d got none of %d connections (queues %v)", i+1, len(q), n, q)
		}
	}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if l, err := bufio.NewReader(c).ReadString('\n'); l != "s\n" {
			t.Fatalf("connection %d: %q %v", i, l, err)
		}
	}
	if err := h.apply(doc(", maxconn: 100")); err != nil {
		t.Fatal(err)
	}
	if got := h.addr("fe"); got != addr {
		t.Fatalf("reload moved the frontend from %s to %s", addr, got)
	}
	if _, after := listenSockets(t, port); !slices.Equal(after, before) {
		t.Fatalf("after a reload listening sockets %v, want the same 4 %v", after, before)
	}
	if name, err := greet(t, addr); err != nil || name != "s" {
		t.Fatalf("after a reload: %q %v", name, err)
	}
	if err := h.apply(fmt.Sprintf("backends: [{name: be, servers: [{name: s, address: %q}]}]\n", srv.addr())); err != nil {
		t.Fatal(err)
	}
	if q := listenQueues(t, port); len(q) != 0 {
		t.Fatalf("frontend removed, still %d listening sockets", len(q))
	}
}

// TestMaxConnAcrossShards: maxconn is one limit over all of a bind's
// sockets. Clients are served up to it whichever socket they land on (an
// accept loop waiting for a slot must not strand clients queued on another
// socket), no further, and each client that leaves lets exactly one waiting
// client in.
func TestMaxConnAcrossShards(t *testing.T) {
	withProcs(t, 4)
	srv := newTestServer(t, "s")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, maxconn: 2}]
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, srv.addr()))
	addr := h.addr("fe")
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Fill the two slots; repeat so that clients land on every socket.
	for i := range 20 {
		a, b := dial(), dial()
		for _, c := range []net.Conn{a, b} {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if l, err := bufio.NewReader(c).ReadString('\n'); l != "s\n" {
				t.Fatalf("round %d: a client within maxconn 2 not served: %q %v", i, l, err)
			}
		}
		a.Close()
		b.Close()
	}
	first, second := dial(), dial()
	for _, c := range []net.Conn{first, second} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if l, err := bufio.NewReader(c).ReadString('\n'); l != "s\n" {
			t.Fatalf("a client within maxconn 2 not served: %q %v", l, err)
		}
	}
	served := make(chan int, 16)
	waiting := make([]net.Conn, 8)
	for i := range waiting {
		waiting[i] = dial()
		go func(i int, c net.Conn) {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if l, _ := bufio.NewReader(c).ReadString('\n'); l == "s\n" {
				served <- i
			}
		}(i, waiting[i])
	}
	quiet := func(what string) {
		select {
		case i := <-served:
			t.Fatalf("%s: waiting client %d served beyond maxconn 2", what, i)
		case <-time.After(300 * time.Millisecond):
		}
	}
	quiet("full")
	first.Close()
	var in int
	select {
	case in = <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("a client left and no waiting client was served")
	}
	quiet("one left, one let in")
	second.Close()
	waiting[in].Close()
	for range len(waiting) - 1 {
		select {
		case i := <-served:
			waiting[i].Close()
		case <-time.After(10 * time.Second):
			t.Fatal("waiting clients not served as others left")
		}
	}
}

// TestShardsRefuseAPortHeldWithReusePort: a bind on an address another
// socket of this user holds with SO_REUSEPORT (the DNS server's TCP
// listener, a second vipgate) fails as in use, as it does without shards,
// instead of quietly taking part of that socket's connections.
func TestShardsRefuseAPortHeldWithReusePort(t *testing.T) {
	withProcs(t, 4)
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = reusePort(fd) }); err != nil {
			return err
		}
		return serr
	}}
	held, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	srv := newTestServer(t, "s")
	for _, bind := range []string{held.Addr().String(), fmt.Sprintf("0.0.0.0:%d", portOf(t, held.Addr().String()))} {
		c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
frontends: [{name: fe, bind: %q, default_backend: be}]
backends: [{name: be, servers: [{name: s, address: %q}]}]
`, bind, srv.addr())))
		if err != nil {
			t.Fatal(err)
		}
		err = New(Options{}).Apply(c)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("bind %s on a port held with SO_REUSEPORT: want address already in use, got %v", bind, err)
		}
		if q := listenQueues(t, portOf(t, held.Addr().String())); len(q) != 1 {
			t.Fatalf("bind %s: %d listening sockets on the port, want only the one held", bind, len(q))
		}
	}
}

// On a host without IPv6 (ipv6.disable=1) a wildcard bind (":443") listens
// on 0.0.0.0, as Go's Listen does there; the probe must follow, not fail
// with "address family not supported", and still find a held port.
func TestProbeBindWithoutIPv6(t *testing.T) {
	noV6 := func(domain, typ, proto int) (int, error) {
		if domain == syscall.AF_INET6 {
			return -1, syscall.EAFNOSUPPORT
		}
		return syscall.Socket(domain, typ, proto)
	}
	// A port just freed can be taken by another process before the probe
	// binds it (an outgoing connection's ephemeral port): then another.
	for attempt := 1; ; attempt++ {
		free, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := free.Addr().(*net.TCPAddr).Port
		free.Close()
		var errs []string
		inUse := false
		for _, addr := range []string{fmt.Sprintf(":%d", port), fmt.Sprintf("[::]:%d", port)} {
			if err := probeBindWith(noV6, "tcp", addr, false, false); err != nil {
				errs = append(errs, fmt.Sprintf("%s on a host without IPv6: %v", addr, err))
				inUse = inUse || errors.Is(err, syscall.EADDRINUSE)
			}
		}
		if inUse && attempt < 5 {
			continue
		}
		for _, e := range errs {
			t.Error(e)
		}
		break
	}
	held, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := fmt.Sprintf(":%d", held.Addr().(*net.TCPAddr).Port)
	if err := probeBindWith(noV6, "tcp", addr, false, false); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("%s held on 0.0.0.0, on a host without IPv6: %v, want address already in use", addr, err)
	}
}

// TestDrainClosesEveryShard: a graceful stop closes all of a bind's
// sockets, not only the first: a socket left open would keep taking
// clients that nothing accepts.
func TestDrainClosesEveryShard(t *testing.T) {
	withProcs(t, 4)
	srv := newTestServer(t, "s")
	h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s, address: "%s"}]}]
`, srv.addr()))
	addr := h.addr("fe")
	if name, err := greet(t, addr); err != nil || name != "s" {
		t.Fatalf("before the drain: %q %v", name, err)
	}
	if q := listenQueues(t, portOf(t, addr)); len(q) != 4 {
		t.Fatalf("%d listening sockets, want 4", len(q))
	}
	h.p.Drain()
	if q := listenQueues(t, portOf(t, addr)); len(q) != 0 {
		t.Fatalf("drained, still %d listening sockets on %s", len(q), addr)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("drained, a new connection to %s was still accepted by the kernel", addr)
	}
}
