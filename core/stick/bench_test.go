package stick

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/proxy/inspect"
	"github.com/vipgate/vipgate/internal/testenv"
)

// helloBackend answers a ClientHello with a TLS 1.2 ServerHello echoing the
// client's session ID (a resumption), then closes: the server side of one
// short TLS connection, without the crypto.
func helloBackend(tb testing.TB) string {
	return testenv.Serve(tb, func(c net.Conn) {
		b, _ := inspect.Peek(c, 5*time.Second, inspect.ClientHelloComplete)
		h, err := inspect.ParseClientHello(b)
		if err != nil {
			return
		}
		_, _ = c.Write(serverHelloRecord(h.SessionID))
		_, _ = io.Copy(io.Discard, c)
	})
}

func serverHelloRecord(sid []byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, byte(len(sid)))
	body = append(body, sid...)
	body = append(body, 0xc0, 0x2f, 0)
	msg := append([]byte{2, 0, 0, byte(len(body))}, body...)
	return append([]byte{0x16, 3, 3, 0, byte(len(msg))}, msg...)
}

// BenchmarkTCPConns measures TCP-mode connections/s through the real proxy
// with SSL session-ID persistence off and on, and through HAProxy without
// and with the reference recipe, in one run: batches rotate over the four
// so that machine noise hits them alike. Each connection sends a TLS 1.2
// ClientHello (256 sessions, resumed over and over), reads the
// ServerHello, and closes; four clients run at once. "on" adds the
// table lookup, the server-first read and the store.
func BenchmarkTCPConns(b *testing.B) {
	bes := []*opensslBackend{{name: "s1", addr: helloBackend(b)}, {name: "s2", addr: helloBackend(b)}, {name: "s3", addr: helloBackend(b)}}
	hellos := make([][]byte, 256)
	for i := range hellos {
		hellos[i] = tls12Hello(b, byte(i))
	}
	modes := []string{"off", "on", "haproxy-off", "haproxy-on"}
	fes := map[string]string{}
	var on *stickHarness
	for _, mode := range modes {
		if strings.HasPrefix(mode, "haproxy") {
			fes[mode] = startHAProxy(b, bes, mode == "haproxy-on")
			continue
		}
		doc := stickDoc("{table: ssl, on: ssl_session_id}", bes)
		if mode == "off" {
			doc = strings.Replace(doc, "    stick: {table: ssl, on: ssl_session_id}\n", "", 1)
		}
		h := startStickProxy(b, nil, doc)
		fes[mode] = h.fe
		if mode == "on" {
			on = h
		}
	}
	const clients, batch = 4, 64
	// conn makes one connection: hello out, ServerHello in, close.
	conn := func(fe string, i int, buf []byte) error {
		c, err := net.Dial("tcp", fe)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write(hellos[i%len(hellos)]); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(buf); err != nil || n < 5 || buf[0] != 0x16 {
			return fmt.Errorf("no ServerHello: %d bytes, %v", n, err)
		}
		return nil
	}
	phase := func(fe string, round int) time.Duration {
		start := time.Now()
		errs := make(chan error, clients)
		for w := range clients {
			go func() {
				buf := make([]byte, 4096)
				for i := range batch {
					if err := conn(fe, round*batch*clients+w*batch+i, buf); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range clients {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	for _, m := range modes {
		phase(fes[m], 0) // warm up: connections, the table
	}
	spent := map[string]time.Duration{}
	n := 0
	b.ResetTimer()
	for round := 1; n < b.N; round++ {
		for _, m := range modes {
			spent[m] += phase(fes[m], round)
		}
		n += batch * clients
	}
	b.StopTimer()
	rate := map[string]float64{}
	for _, m := range modes {
		rate[m] = float64(n) / spent[m].Seconds()
		b.ReportMetric(rate[m], "conns/s-"+m)
	}
	b.ReportMetric((1-rate["on"]/rate["off"])*100, "cost-%")
	if on.m.Table("ssl").Hits.Load() == 0 {
		b.Fatal("no table hits: persistence not exercised")
	}
}

// startHAProxy runs HAProxy with the reference recipe (stick on
// payload_lv(43,1) / store-response) or without persistence, for the
// side-by-side numbers.
func startHAProxy(tb testing.TB, bes []*opensslBackend, stick bool) string {
	tb.Helper()
	bin := testenv.RequireTool(tb, "haproxy")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(tb))
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind %s
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  default_backend be
backend be
  balance roundrobin
`, addr)
	if stick {
		cfg.WriteString(`  stick-table type binary len 32 size 30k expire 1m
  acl clienthello req.ssl_hello_type 1
  acl serverhello res.ssl_hello_type 2
  tcp-response inspect-delay 5s
  tcp-response content accept if serverhello
  stick on payload_lv(43,1) if clienthello
  stick store-response payload_lv(43,1) if serverhello
`)
	}
	for _, be := range bes {
		fmt.Fprintf(&cfg, "  server %s %s\n", be.name, be.addr)
	}
	f := filepath.Join(tb.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(f, []byte(cfg.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", f)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	testenv.Eventually(tb, 10*time.Second, "haproxy listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}
