package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testcert"
	"github.com/vipgate/vipgate/internal/testenv"
)

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// waitReadable waits until c has bytes (or its end) to read, without
// reading them.
func waitReadable(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "bytes to read", func() bool {
		var ready bool
		_ = rc.Control(func(fd uintptr) { ready = pending(fd) })
		return ready
	})
}

// runRawIOCase runs one case on a rawIO attached to a fresh loopback pair.
func runRawIOCase(t *testing.T, name string, run func(t *testing.T, r *rawIO, local, peer *net.TCPConn)) {
	t.Run(name, func(t *testing.T) {
		local, peer := tcpPair(t)
		var r rawIO
		if !r.attach(local) {
			t.Fatal("attach refused a *net.TCPConn")
		}
		run(t, &r, local, peer)
	})
}

// TestRawIO: rawIO's reads and writes give what net.Conn's give, data and
// errors alike (the session's error checks and access-log states depend
// on them): bytes both ways, a large write that must wait for the reader,
// EOF, a deadline as a timeout, a closed connection as net.ErrClosed, a
// reset as ECONNRESET, and a write to a reset peer as an error (no
// SIGPIPE taking the process down).
func TestRawIO(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, r *rawIO, local, peer *net.TCPConn)
	}{
		{"bytes both ways", func(t *testing.T, r *rawIO, _, peer *net.TCPConn) {
			if _, err := r.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			n, err := io.ReadFull(peer, buf[:4])
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("peer read %q, %v", buf[:n], err)
			}
			if _, err := peer.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			n, err = r.Read(buf)
			if err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("raw read %q, %v", buf[:n], err)
			}
		}},
		{"a write larger than the socket buffers waits for the reader", func(t *testing.T, r *rawIO, _, peer *net.TCPConn) {
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
			got := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big)))); got <- b }()
			n, err := r.Write(big)
			if err != nil || n != len(big) {
				t.Fatalf("wrote %d of %d: %v", n, len(big), err)
			}
			if b := <-got; !bytes.Equal(b, big) {
				t.Fatalf("the peer read %d bytes, not the %d written", len(b), len(big))
			}
		}},
		{"EOF", func(t *testing.T, r *rawIO, _, peer *net.TCPConn) {
			_ = peer.CloseWrite()
			if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
				t.Fatalf("read after the peer's FIN: %d, %v", n, err)
			}
		}},
		{"a read deadline is a timeout", func(t *testing.T, r *rawIO, local, _ *net.TCPConn) {
			_ = local.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, err := r.Read(make([]byte, 8))
			var ne net.Error
			if !isTimeout(err) || !errors.As(err, &ne) || !strings.HasPrefix(err.Error(), "read tcp ") {
				t.Fatalf("read past its deadline: %v", err)
			}
		}},
		{"a closed connection", func(t *testing.T, r *rawIO, local, _ *net.TCPConn) {
			done := make(chan error, 1)
			go func() { _, err := r.Read(make([]byte, 8)); done <- err }()
			// Closed before the read or while it waits on the poller:
			// either way it ends, with net.ErrClosed.
			_ = local.Close()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("a read when the connection closes: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a parked read did not end when its connection closed")
			}
		}},
		{"a reset", func(t *testing.T, r *rawIO, _, peer *net.TCPConn) {
			_ = peer.SetLinger(0)
			_ = peer.Close()
			_, err := r.Read(make([]byte, 8))
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read after the peer's reset: %v", err)
			}
			// Writing on: an error (EPIPE once the reset was read), never a
			// signal.
			var werr error
			for i := 0; i < 3 && werr == nil; i++ {
				_, werr = r.Write([]byte("after the reset"))
			}
			if werr == nil {
				t.Fatal("writes to a reset peer did not fail")
			}
		}},
	} {
		runRawIOCase(t, tc.name, tc.run)
	}
	var r rawIO
	a, _ := net.Pipe()
	if r.attach(a) {
		t.Fatal("attach took a connection that is not plain TCP")
	}
}

// TestRawConnOfUnderTLS: TLS over a rawTCPConn (as the frontends and the
// backends' ssl run it) moves bytes both ways and still ends in EOF, and
// syscallConnOf finds the TCP connection under it (the idle check's peek
// needs it).
func TestRawConnOfUnderTLS(t *testing.T) {
	local, peer := tcpPair(t)
	rc := rawConnOf(local)
	if w, ok := rc.(*rawTCPConn); !ok || w.TCPConn != local || syscallConnOf(rc) == nil || syscallConnOf(rc) != w.rio.rawConn() || syscallConnOf(local) == nil {
		t.Fatalf("rawConnOf(%T) = %T, syscallConnOf = %v", local, rc, syscallConnOf(rc))
	}
	if a, _ := net.Pipe(); rawConnOf(a) != a || syscallConnOf(a) != nil {
		t.Fatal("rawConnOf or syscallConnOf took a connection that is not plain TCP")
	}
	cp, kp := testcert.PEM(t, testcert.Cert{CN: "raw.test", DNS: []string{"raw.test"}})
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	srv := tls.Server(rc, &tls.Config{Certificates: []tls.Certificate{cert}})
	cli := tls.Client(peer, &tls.Config{InsecureSkipVerify: true, ServerName: "raw.test"})
	errc := make(chan error, 1)
	go func() {
		if _, err := cli.Write([]byte("hello over tls")); err != nil {
			errc <- err
			return
		}
		buf := make([]byte, 64)
		n, err := io.ReadFull(cli, buf[:5])
		if err == nil && string(buf[:n]) != "hi yo" {
			err = fmt.Errorf("client read %q", buf[:n])
		}
		_ = cli.Close()
		errc <- err
	}()
	buf := make([]byte, 64)
	n, err := io.ReadFull(srv, buf[:14])
	if err != nil || string(buf[:n]) != "hello over tls" {
		t.Fatalf("server read %q, %v", buf[:n], err)
	}
	if _, err := srv.Write([]byte("hi yo")); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Read(buf); err != io.EOF {
		t.Fatalf("after the client's close_notify: %v", err)
	}
}

// TestRawIOWriteRead: WriteRead sends a request and reads its answer in
// one call: the answer that arrives after the write wakes the read (the
// read is not tried before it); a socket buffer the write cannot fill at
// once leaves the rest to the caller with nothing read; the peer's FIN is
// EOF; a deadline while waiting is a read timeout and one passed before
// the call a write error; a reset peer is a write error.
func TestRawIOWriteRead(t *testing.T) {
	// answer reads n bytes and writes ans.
	answer := func(peer *net.TCPConn, n int, ans string) {
		go func() {
			if _, err := io.ReadFull(peer, make([]byte, n)); err == nil && ans != "" {
				_, _ = peer.Write([]byte(ans))
			}
		}()
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, r *rawIO, local, peer *net.TCPConn)
	}{
		{"the answer wakes the read", func(t *testing.T, r *rawIO, _, peer *net.TCPConn) {
			answer(peer, 7, "answer")
			buf := make([]byte, 64)
			wn, werr, rn, rerr, done := r.WriteRead([]byte("request"), buf, false)
			if wn != 7 || werr != nil || rerr != nil || !done || string(buf[:rn]) != "answer" {
				t.Fatalf("WriteRead: wrote %d (%v), read %q (%v), done %v", wn, werr, buf[:rn], rerr, done)
			}
		}},
		{"a full socket buffer leaves the rest to the caller", func(t *testing.T, r *rawIO, _, _ *net.TCPConn) {
			big := bytes.Repeat([]byte("x"), 64<<20) // more than loopback buffers hold
			wn, werr, rn, rerr, done := r.WriteRead(big, make([]byte, 64), false)
			if done || werr != nil || rerr != nil || rn != 0 || wn <= 0 || wn >= len(big) {
				t.Fatalf("WriteRead of 64 MiB to a peer that does not read: wrote %d (%v), read %d (%v), done %v", wn, werr, rn, rerr, done)
			}
		}},
		{"EOF as the answer", func(t *testing.T, r *rawIO, _, peer *net.TCPConn) {
			go func() {
				if _, err := io.ReadFull(peer, make([]byte, 7)); err == nil {
					_ = peer.CloseWrite()
				}
			}()
			wn, werr, rn, rerr, done := r.WriteRead([]byte("request"), make([]byte, 64), false)
			if wn != 7 || werr != nil || rn != 0 || rerr != io.EOF || !done {
				t.Fatalf("WriteRead to a peer that closes: wrote %d (%v), read %d (%v), done %v", wn, werr, rn, rerr, done)
			}
		}},
		{"a deadline while waiting is a read timeout", func(t *testing.T, r *rawIO, local, peer *net.TCPConn) {
			answer(peer, 7, "")
			_ = local.SetDeadline(time.Now().Add(50 * time.Millisecond))
			wn, werr, _, rerr, done := r.WriteRead([]byte("request"), make([]byte, 64), false)
			if wn != 7 || werr != nil || !done || !isTimeout(rerr) || !strings.HasPrefix(rerr.Error(), "read tcp ") {
				t.Fatalf("WriteRead past its deadline: wrote %d (%v), read error %v", wn, werr, rerr)
			}
		}},
		{"a deadline passed before the call is a write error", func(t *testing.T, r *rawIO, local, _ *net.TCPConn) {
			_ = local.SetDeadline(time.Now().Add(-time.Second))
			wn, werr, rn, rerr, done := r.WriteRead([]byte("request"), make([]byte, 64), false)
			if wn != 0 || !isTimeout(werr) || !strings.HasPrefix(werr.Error(), "write tcp ") || rn != 0 || rerr != nil || !done {
				t.Fatalf("WriteRead after its deadline: wrote %d (%v), read %d (%v)", wn, werr, rn, rerr)
			}
		}},
		{"an idle connection that was closed is not idle: nothing is sent", func(t *testing.T, r *rawIO, _, peer *net.TCPConn) {
			// The server closes its side and lingers (reads on): no reset
			// would ever wake a wait for the answer.
			_ = peer.CloseWrite()
			// Seen by a read before the call: its wake-up is spent.
			if _, err := r.Read(make([]byte, 8)); err != io.EOF {
				t.Fatalf("read after the peer's FIN: %v", err)
			}
			wn, werr, rn, rerr, done := r.WriteRead([]byte("request"), make([]byte, 64), true)
			if !errors.Is(werr, errNotIdle) || wn != 0 || rn != 0 || rerr != nil || !done {
				t.Fatalf("idle WriteRead after the peer's FIN: wrote %d (%v), read %d (%v)", wn, werr, rn, rerr)
			}
			_ = peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := peer.Read(make([]byte, 8)); n != 0 || !isTimeout(err) {
				t.Fatalf("the peer received %d bytes (%v): the request went out", n, err)
			}
		}},
		{"an idle connection that holds stray bytes is not idle", func(t *testing.T, r *rawIO, local, peer *net.TCPConn) {
			if _, err := peer.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			waitReadable(t, local)
			_, werr, _, _, _ := r.WriteRead([]byte("request"), make([]byte, 64), true)
			if !errors.Is(werr, errNotIdle) {
				t.Fatalf("idle WriteRead with stray bytes pending: %v", werr)
			}
		}},
		{"on a new connection, bytes already there are read at once", func(t *testing.T, r *rawIO, local, peer *net.TCPConn) {
			// A server that speaks first and then only reads (a 503 and a
			// lingering close) must not leave the call waiting.
			if _, err := peer.Write([]byte("busy")); err != nil {
				t.Fatal(err)
			}
			_ = peer.CloseWrite()
			waitReadable(t, local)
			_ = local.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			wn, werr, rn, rerr, done := r.WriteRead([]byte("request"), buf, false)
			if wn != 7 || werr != nil || rerr != nil || !done || string(buf[:rn]) != "busy" {
				t.Fatalf("WriteRead with an answer already there: wrote %d (%v), read %q (%v)", wn, werr, buf[:rn], rerr)
			}
		}},
		{"a reset peer is a write error", func(t *testing.T, r *rawIO, _, peer *net.TCPConn) {
			_ = peer.SetLinger(0)
			_ = peer.Close()
			// Once the reset has been read, the socket is closed: the
			// write fails, and nothing waits.
			if _, err := r.Read(make([]byte, 8)); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("read after the peer's reset: %v", err)
			}
			_, werr, rn, rerr, done := r.WriteRead([]byte("request"), make([]byte, 64), false)
			if werr == nil || !strings.HasPrefix(werr.Error(), "write tcp ") || rn != 0 || rerr != nil || !done {
				t.Fatalf("WriteRead to a reset peer: write error %v, read %d (%v)", werr, rn, rerr)
			}
		}},
	} {
		runRawIOCase(t, tc.name, tc.run)
	}
}
