// Package testexch stands in for Exchange servers and their Windows
// clients in end-to-end tests: nginx serving TLS 1.2 with resumption by
// session ID only, and openssl s_client resuming a saved session, as
// SChannel clients do. The load balancers in front stick on that ID.
package testexch

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/vipgate/vipgate/internal/testnet"
)

// NginxConf is the nginx configuration of one "Exchange server" named
// name on ip:443: one process (so that SIGKILL kills the server), TLS 1.2
// only, a shared session cache and no tickets so that clients resume by
// session ID, serving dir (put ews/healthcheck.htm there; dir/tmp must
// exist) and /who (its name).
func NginxConf(dir, ip, cert, key, name string) string {
	return nginxHead(dir) + fmt.Sprintf(`  server {
    listen %[2]s:443 ssl;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    ssl_protocols TLSv1.2;
    ssl_session_cache shared:exchange:10m;
    ssl_session_timeout 10h;
    ssl_session_tickets off;
    root %[1]s;
    location = /who { return 200 "%[5]s\n"; }
  }
}
`, dir, ip, cert, key, name)
}

// NginxHTTPConf is a plain web server named name on each listen address:
// it answers its name and the client's address ("rs1 198.18.0.100") on
// every path, and 200 on /health. One process, as
// NginxConf; dir/tmp must exist.
func NginxHTTPConf(dir, name string, listen ...string) string {
	var ls strings.Builder
	for _, l := range listen {
		fmt.Fprintf(&ls, "    listen %s;\n", l)
	}
	return nginxHead(dir) + fmt.Sprintf(`  server {
%s    location = /health { return 200 "ok\n"; }
    location / { return 200 "%s $remote_addr\n"; }
  }
}
`, ls.String(), name)
}

// nginxHead is an nginx configuration up to its server blocks: one
// foreground process whose files are all in dir.
func nginxHead(dir string) string {
	return fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
`, dir)
}

var sessionIDRe = regexp.MustCompile(`Session-ID: ([0-9A-F]+)`)

// SClient is openssl s_client once through addr from host h (SNI
// servername unless empty): resume from sessIn when given, save the
// session to sessOut when given. It returns the server's name (its /who),
// whether the session was resumed, and the session ID.
func SClient(ctx context.Context, h *testnet.Host, addr, servername, sessIn, sessOut string) (server string, reused bool, id string, err error) {
	args := []string{"s_client", "-connect", addr, "-tls1_2", "-no_ticket", "-ign_eof"}
	if servername != "" {
		args = append(args, "-servername", servername)
	}
	if sessIn != "" {
		args = append(args, "-sess_in", sessIn)
	}
	if sessOut != "" {
		args = append(args, "-sess_out", sessOut)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, "openssl"}, args...)...)
	cmd.Stdin = strings.NewReader("GET /who HTTP/1.0\r\n\r\n")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if err != nil {
		return "", false, "", fmt.Errorf("s_client: %v: %s", err, lastLine(s))
	}
	reused = strings.Contains(s, "\nReused, ")
	if m := sessionIDRe.FindStringSubmatch(s); m != nil {
		id = m[1]
	}
	_, resp, ok := strings.Cut(s, "HTTP/1.1 200 OK\r\n")
	_, body, ok2 := strings.Cut(resp, "\r\n\r\n")
	if !ok || !ok2 {
		return "", reused, id, fmt.Errorf("s_client: no answer from a server: %s", lastLine(s))
	}
	server, _, _ = strings.Cut(body, "\n")
	return strings.TrimSpace(server), reused, id, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
