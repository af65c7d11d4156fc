package proxy

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/upstream"
)

// TestHTTPMonitor: the monitor URI is answered by the proxy (HAProxy
// monitor-uri): 200 while every watched backend (a tcp-mode one too) has a
// usable server, 503 once one has none; other paths go to the servers.
func TestHTTPMonitor(t *testing.T) {
	g := newGoBackend(t, "web1")
	dead := fmt.Sprintf("127.0.0.1:%d", func() int {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}())
	doc := httpDoc("    monitor: {uri: /gw-health, backends: [be, mail]}", "",
		oneBackend(g.addr())+fmt.Sprintf("  - {name: mail, mode: tcp, servers: [{name: m1, address: %q}]}\n", dead))
	h := startProxy(t, doc)
	url := "http://" + h.addr("fe")
	c := noRedirect()
	if resp, body := get(t, c, url+"/gw-health"); resp.StatusCode != 200 || !strings.Contains(body, "Service ready") {
		t.Fatalf("monitor: %d %q, want 200 Service ready", resp.StatusCode, body)
	}
	if resp, body := get(t, c, url+"/other"); resp.StatusCode != 200 || !strings.Contains(body, "web1") {
		t.Fatalf("other path: %d %q, want the server's answer", resp.StatusCode, body)
	}
	h.p.Backend("mail").Servers[0].SetAdmin(upstream.Maint)
	if resp, _ := get(t, c, url+"/gw-health"); resp.StatusCode != 503 {
		t.Fatalf("monitor with mail's only server in maintenance: %d, want 503", resp.StatusCode)
	}
}
