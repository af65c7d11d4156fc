package dns

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/core/config"
)

func loadTestConfig(t testing.TB) *config.Cluster {
	t.Helper()
	data, err := os.ReadFile("testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("testdata/cluster.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startServer runs a server on a loopback port until the test ends.
func startServer(t testing.TB, st State) (*Server, string) {
	t.Helper()
	s := New(Options{Listen: []string{"127.0.0.1:0"}, Sockets: 2, State: st})
	if err := s.Apply(loadTestConfig(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return")
		}
	})
	return s, s.Addrs()[0].String()
}

// ask sends one query over UDP (or TCP) with miekg's client.
func ask(t testing.TB, addr, name string, qtype uint16, mod func(*mdns.Msg)) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if mod != nil {
		mod(m)
	}
	c := &mdns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", name, mdns.TypeToString[qtype], err)
	}
	return r
}

func addrsOf(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *mdns.A:
			out = append(out, r.A.String())
		case *mdns.AAAA:
			out = append(out, r.AAAA.String())
		}
	}
	return out
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
