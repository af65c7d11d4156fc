package dns

import (
	"context"
	"net"
	"strings"
	"testing"
)

// A port some other socket of this user holds with SO_REUSEPORT (a
// frontend's per-core sockets, bound before DNS at start) makes Listen
// fail: DNS over TCP must not join that group and take a share of the
// frontend's connections.
func TestListenRefusesAReusePortHolder(t *testing.T) {
	lc := net.ListenConfig{Control: reusePort}
	held, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s := New(Options{Listen: []string{held.Addr().String()}, Sockets: 2, State: &StaticState{}})
	err = s.Listen()
	if err == nil {
		s.mu.Lock()
		s.closeLocked()
		s.mu.Unlock()
		t.Fatalf("DNS listened on %s, held by another SO_REUSEPORT socket", held.Addr())
	}
	if !strings.Contains(err.Error(), "dns listen tcp") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error %q does not name the TCP bind and its cause", err)
	}
}
