package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// procTimer returns the timer column of /proc/net/tcp for the socket with
// local address local and remote address remote: "02" is the keepalive
// timer of an idle connection, "00" no timer.
func procTimer(t *testing.T, local, remote string) string {
	t.Helper()
	hex := func(s string) string {
		ap := netip.MustParseAddrPort(s)
		a := ap.Addr().As4()
		return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(a[:]), ap.Port())
	}
	l, r := hex(local), hex(remote)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 5 && fs[1] == l && fs[2] == r {
			return strings.SplitN(fs[5], ":", 2)[0]
		}
	}
	return "missing"
}

// TestTCPKeepAlive: tcp_keepalive turns TCP keepalive on for the proxy's
// client-side and server-side sockets (HAProxy option tcpka); it is off by
// default, as in HAProxy.
func TestTCPKeepAlive(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			var proxySide atomic.Value // the proxy's address toward the server
			be := testenv.Serve(t, func(c net.Conn) {
				proxySide.Store(c.RemoteAddr().String())
				_, _ = io.Copy(io.Discard, c)
			})
			h := startProxy(t, fmt.Sprintf(`
defaults: {mode: tcp, tcp_keepalive: %v, timeouts: {connect: 2s, client: 30s, server: 30s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s1, address: %q}]}]
`, on, be))
			c, err := net.Dial("tcp", h.addr("fe"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			testenv.Eventually(t, 5*time.Second, "the proxy connected to the server", func() bool { return proxySide.Load() != nil })
			want := "00"
			if on {
				want = "02"
			}
			if got := procTimer(t, h.addr("fe"), c.LocalAddr().String()); got != want {
				t.Errorf("client-side socket timer %s, want %s", got, want)
			}
			if got := procTimer(t, proxySide.Load().(string), be); got != want {
				t.Errorf("server-side socket timer %s, want %s", got, want)
			}
		})
	}
}
