package proxy

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// greetFrom is greet from a chosen loopback source address (127.0.0.0/8 is
// all local), for the algorithms that hash the client.
func greetFrom(t testing.TB, src net.IP, addr string) string {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("from %s: %v", src, err)
	}
	return strings.TrimSpace(line)
}

// hold opens a connection through the proxy and keeps it; it returns the
// server's name.
func hold(t testing.TB, addr string) (string, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line), c
}

func balanceDoc(alg, hashType string, a, b, c *testServer, extra string) string {
	return fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    balance: {algorithm: %s, hash_type: %q}
    servers:
      - {name: a, address: %q, weight: 1%s}
      - {name: b, address: %q, weight: 2%s}
      - {name: c, address: %q, weight: 3%s}
`, alg, hashType, a.addr(), extra, b.addr(), extra, c.addr(), extra)
}

// TestTCPDistributionPerAlgorithm: each balancing algorithm, through the
// proxy over real loopback connections, distributes as HAProxy's does.
func TestTCPDistributionPerAlgorithm(t *testing.T) {
	a, b, c := newTestServer(t, "a"), newTestServer(t, "b"), newTestServer(t, "c")

	t.Run("roundrobin and static-rr: exact 1:2:3", func(t *testing.T) {
		for _, alg := range []string{"roundrobin", "static-rr"} {
			h := startProxy(t, balanceDoc(alg, "", a, b, c, ""))
			counts := map[string]int{}
			for i := 0; i < 600; i++ {
				name, err := greet(t, h.addr("fe"))
				if err != nil {
					t.Fatal(err)
				}
				counts[name]++
			}
			if counts["a"] != 100 || counts["b"] != 200 || counts["c"] != 300 {
				t.Errorf("%s: %v, want a:100 b:200 c:300", alg, counts)
			}
		}
	})

	t.Run("random: weighted", func(t *testing.T) {
		h := startProxy(t, balanceDoc("random", "", a, b, c, ""))
		counts := map[string]int{}
		const n = 1200
		for i := 0; i < n; i++ {
			name, _ := greet(t, h.addr("fe"))
			counts[name]++
		}
		// One standard deviation of a share is under 1.5% at 1200
		// draws; 7% is a >4σ bound.
		for i, name := range []string{"a", "b", "c"} {
			if got, want := float64(counts[name])/n, float64(i+1)/6; math.Abs(got-want) > 0.07 {
				t.Errorf("random: %s got %.3f of the connections, want %.3f (%v)", name, got, want, counts)
			}
		}
	})

	t.Run("leastconn: the least loaded per weight", func(t *testing.T) {
		h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    balance: {algorithm: leastconn}
    servers: [{name: a, address: %q}, {name: b, address: %q}, {name: c, address: %q}]
`, a.addr(), b.addr(), c.addr()))
		held := map[string][]net.Conn{}
		for i := 0; i < 6; i++ {
			name, conn := hold(t, h.addr("fe"))
			held[name] = append(held[name], conn)
		}
		if len(held["a"]) != 2 || len(held["b"]) != 2 || len(held["c"]) != 2 {
			t.Fatalf("6 held connections spread %d/%d/%d, want 2/2/2", len(held["a"]), len(held["b"]), len(held["c"]))
		}
		// Free b's two: the next two go to b.
		for _, conn := range held["b"] {
			conn.Close()
		}
		s := h.p.Server("be", "b")
		testenv.Eventually(t, 5*time.Second, "b's sessions closed", func() bool { return s.Counters.CurSessions.Load() == 0 })
		for i := 0; i < 2; i++ {
			if name, _ := hold(t, h.addr("fe")); name != "b" {
				t.Fatalf("after b was freed, connection %d went to %s", i, name)
			}
		}
	})

	t.Run("first: fill servers in order up to maxconn", func(t *testing.T) {
		h := startProxy(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    balance: {algorithm: first}
    servers: [{name: a, address: %q, maxconn: 2}, {name: b, address: %q, maxconn: 2}, {name: c, address: %q, maxconn: 2}]
`, a.addr(), b.addr(), c.addr()))
		var got []string
		for i := 0; i < 5; i++ {
			name, _ := hold(t, h.addr("fe"))
			got = append(got, name)
		}
		if strings.Join(got, "") != "aabbc" {
			t.Fatalf("first: %v, want a a b b c", got)
		}
	})

	for _, ht := range []string{"map-based", "consistent"} {
		t.Run("source "+ht+": a client keeps its server", func(t *testing.T) {
			h := startProxy(t, balanceDoc("source", ht, a, b, c, ""))
			first := map[int]string{}
			used := map[string]bool{}
			for i := 1; i <= 30; i++ {
				src := net.IPv4(127, 0, 1, byte(i))
				first[i] = greetFrom(t, src, h.addr("fe"))
				used[first[i]] = true
				for k := 0; k < 3; k++ {
					if again := greetFrom(t, src, h.addr("fe")); again != first[i] {
						t.Fatalf("client %s went to %s, then %s", src, first[i], again)
					}
				}
			}
			if len(used) < 2 {
				t.Fatalf("30 clients all went to %v", used)
			}
			if ht != "consistent" {
				return
			}
			// Consistent hashing: when a server goes down, only its
			// clients move.
			down := first[1]
			h.p.Server("be", down).SetHealth(upstream.Down, "test")
			for i := 1; i <= 30; i++ {
				now := greetFrom(t, net.IPv4(127, 0, 1, byte(i)), h.addr("fe"))
				if first[i] != down && now != first[i] {
					t.Errorf("client %d moved from %s to %s although only %s went down", i, first[i], now, down)
				}
				if now == down {
					t.Errorf("client %d still sent to the down server %s", i, down)
				}
			}
		})
	}
}

// TestTCPServerDisabled: `disabled: true` is maintenance (no traffic);
// lifting it in a reload returns the server to service, while an
// operator's runtime state on another server survives the reload.
func TestTCPServerDisabled(t *testing.T) {
	a, b := newTestServer(t, "a"), newTestServer(t, "b")
	doc := func(disabled bool) string {
		return fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    servers: [{name: a, address: %q}, {name: b, address: %q, disabled: %v}]
`, a.addr(), b.addr(), disabled)
	}
	h := startProxy(t, doc(true))
	for i := 0; i < 6; i++ {
		if name, _ := greet(t, h.addr("fe")); name != "a" {
			t.Fatalf("connection %d went to %q while b is disabled", i, name)
		}
	}
	if st := h.p.Server("be", "b").Admin(); st != upstream.Maint {
		t.Fatalf("disabled server's state %s, want maint", st)
	}
	h.p.Server("be", "a").SetAdmin(upstream.Drain) // an operator's action
	addr := h.addr("fe")
	if err := h.apply(strings.Replace(doc(false), `"127.0.0.1:0"`, fmt.Sprintf("%q", addr), 1)); err != nil {
		t.Fatal(err)
	}
	if st := h.p.Server("be", "a").Admin(); st != upstream.Drain {
		t.Fatalf("a's runtime drain did not survive the reload: %s", st)
	}
	for i := 0; i < 6; i++ {
		if name, _ := greet(t, addr); name != "b" {
			t.Fatalf("after enabling b (a drained), connection %d went to %q", i, name)
		}
	}
}
