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

	"github.com/vipgate/vipgate/internal/testenv"

	"github.com/vipgate/vipgate/core/proxy/inspect"
)

// helloBackend answers a ClientHello with a TLS 1.2 ServerHello echoing the
// client's session ID (a resumption), then closes: the server side of one
// short TLS connection, without the crypto.
func helloBackend(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := inspect.Peek(c, 5*time.Second, inspect.ClientHelloComplete)
				h, err := inspect.ParseClientHello(b)
				if err != nil {
					return
				}
				_, _ = c.Write(serverHelloRecord(h.SessionID))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
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
// with SSL session-ID persistence off and on, in one run: each connection
// sends a TLS 1.2 ClientHello (256 sessions, resumed over and over), reads
// the ServerHello, and closes. "on" adds the inspect delay's peek, the
// table lookup, the server-first read and the store.
func BenchmarkTCPConns(b *testing.B) {
	bes := []*opensslBackend{{name: "s1", addr: helloBackend(b)}, {name: "s2", addr: helloBackend(b)}, {name: "s3", addr: helloBackend(b)}}
	hellos := make([][]byte, 256)
	for i := range hellos {
		hellos[i] = tls12Hello(b, byte(i))
	}
	for _, mode := range []string{"off", "on", "haproxy-off", "haproxy-on"} {
		b.Run(mode, func(b *testing.B) {
			var h *stickHarness
			if strings.HasPrefix(mode, "haproxy") {
				h = &stickHarness{fe: startHAProxy(b, bes, mode == "haproxy-on")}
			} else {
				doc := stickDoc("{table: ssl, on: ssl_session_id}", bes)
				if mode == "off" {
					doc = strings.Replace(doc, "    stick: {table: ssl, on: ssl_session_id}\n", "", 1)
				}
				h = startStickProxy(b, nil, doc)
			}
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 4096)
				i := 0
				for pb.Next() {
					c, err := net.Dial("tcp", h.fe)
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := c.Write(hellos[i%len(hellos)]); err != nil {
						b.Error(err)
					}
					_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
					if n, err := c.Read(buf); err != nil || n < 5 || buf[0] != 0x16 {
						b.Error(fmt.Errorf("no ServerHello: %d bytes, %v", n, err))
					}
					c.Close()
					i++
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
			if mode == "on" && b.N > 2*len(hellos) && h.m != nil {
				tb := h.m.Table("ssl")
				if tb.Hits.Load() == 0 {
					b.Fatal("no table hits: persistence not exercised")
				}
			}
		})
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
