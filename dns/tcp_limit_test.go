package dns

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// tcpQuery asks one question on an open TCP connection.
func tcpQuery(t *testing.T, c net.Conn, name string) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	out, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := writeTCP(c, out); err != nil {
		t.Fatalf("write: %v", err)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	in := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(c, in); err != nil {
		t.Fatalf("read: %v", err)
	}
	r := new(mdns.Msg)
	if err := r.Unpack(in); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTCPPerClientLimit: one client holding 1,100 idle TCP connections
// (issue 23: 1,024 took every slot and every other client's TCP query
// failed) keeps only dns.tcp.per_client of them; dig +tcp and kdig +tcp
// from other addresses get their answers meanwhile, and so do the
// client's own connections within its share.
func TestTCPPerClientLimit(t *testing.T) {
	for _, tool := range []string{"dig", "kdig"} {
		testenv.RequireTool(t, tool)
	}
	st := &StaticState{}
	st.SetActive("dc1")
	srv, addr := startServer(t, st)
	const hog = 1100
	conns := make([]net.Conn, 0, hog)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, Timeout: 5 * time.Second}
	for range hog {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}
	per := config.DefaultDNSTCPPerClient
	testenv.Eventually(t, 10*time.Second, "connections past the client's share closed", func() bool {
		return srv.Stats().TCPRefused.Load() == uint64(hog-per)
	})
	for i, src := range []string{"127.0.0.2", "127.0.0.3"} {
		tool := []string{"dig", "kdig"}[i]
		r := dig(t, tool, addr, "+tcp", "-b", src, "mail.example.com", "A")
		if r.status != "NOERROR" || !slices.Equal(addrsOf(r.answer), []string{"198.18.1.100"}) {
			t.Fatalf("%s +tcp from %s while 127.0.0.1 holds %d connections:\n%s", tool, src, per, r.out)
		}
	}
	// The first per connections are the client's share: they are served.
	if r := tcpQuery(t, conns[0], "mail.example.com."); len(addrsOf(r.Answer)) != 1 {
		t.Fatalf("the hog's first connection: %v", r)
	}
	if r := tcpQuery(t, conns[per-1], "mail.example.com."); len(addrsOf(r.Answer)) != 1 {
		t.Fatalf("the hog's last admitted connection: %v", r)
	}
	// One past the share was closed at accept.
	_ = conns[per].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[per].Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection past the share: read %v, want it closed", err)
	}
	// Closing connections gives the share back.
	for _, c := range conns[:per] {
		c.Close()
	}
	testenv.Eventually(t, 10*time.Second, "the share given back", func() bool { return tcpAnswered(&d, addr) })
}

// tcpAnswered reports whether a new connection from d gets an answer.
func tcpAnswered(d *net.Dialer, addr string) bool {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	m := new(mdns.Msg)
	m.SetQuestion("mail.example.com.", mdns.TypeA)
	out, _ := m.Pack()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if writeTCP(c, out) != nil {
		return false
	}
	var hdr [2]byte
	_, err = io.ReadFull(c, hdr[:])
	return err == nil
}

// TestTCPIdleTimeout: a connection that sends nothing is closed after
// dns.tcp.idle_timeout, and its slot is the client's again.
func TestTCPIdleTimeout(t *testing.T) {
	srv, addr := startServer(t, &StaticState{})
	c := loadTestConfig(t)
	c.DNS.TCP.IdleTimeout = config.Duration(300 * time.Millisecond)
	c.DNS.TCP.PerClient = 1
	if err := srv.Apply(c); err != nil {
		t.Fatal(err)
	}
	first, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_ = first.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF after the idle timeout", err)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	testenv.Eventually(t, 10*time.Second, "a new connection served after the idle one closed", func() bool { return tcpAnswered(&d, addr) })
}
