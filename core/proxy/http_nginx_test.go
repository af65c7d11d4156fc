package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// startNginx runs nginx-light on a free loopback port serving dir.
func startNginx(t *testing.T, dir string) string {
	bin := testenv.RequireTool(t, "nginx")
	port := testenv.FreePort(t)
	tmp := t.TempDir()
	conf := fmt.Sprintf(`
worker_processes 1;
daemon off;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  keepalive_requests 10000;
  client_max_body_size 20m;
  server {
    listen 127.0.0.1:%[2]d;
    root %[3]s;
    location = /hello { return 200 "hello from nginx\n"; }
    location = /upload { client_body_buffer_size 1m; return 204; }
  }
}
`, tmp, port, dir)
	cf := filepath.Join(tmp, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cf, "-p", tmp)
	cmd.Stderr = os.Stderr
	// Its own process group, killed whole: killing the master alone left
	// its worker running for ever (holding the port, and any file the test
	// inherited, such as the lock of the system tests).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testenv.Eventually(t, 5*time.Second, "nginx listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

func TestHTTPNginxBackend(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("nginx-big-file-"), 100000)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startNginx(t, dir)
	h := startProxy(t, httpDoc("", "", oneBackend(addr)))
	url := "http://" + h.addr("fe")
	c := &http.Client{Timeout: 10 * time.Second}

	if resp, body := get(t, c, url+"/hello"); resp.StatusCode != 200 || body != "hello from nginx\n" {
		t.Fatalf("hello: %d %q", resp.StatusCode, body)
	}
	resp, body := get(t, c, url+"/big.bin")
	if resp.StatusCode != 200 || sha256.Sum256([]byte(body)) != sha256.Sum256(big) {
		t.Fatalf("big file: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := get(t, c, url+"/missing"); resp.StatusCode != 404 {
		t.Fatalf("missing: %d", resp.StatusCode)
	}
	// HEAD: the length is announced, no body follows; the connection goes on.
	conn, err := net.Dial("tcp", h.addr("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
	hr, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil || hr.ContentLength != int64(len(big)) {
		t.Fatalf("HEAD: %v %+v", err, hr)
	}
	// A 2 MB upload, then another request on the same connection.
	up := bytes.Repeat([]byte("u"), 2<<20)
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(up))
	conn.Write(up)
	ur, err := http.ReadResponse(br, nil)
	if err != nil || ur.StatusCode != 204 {
		t.Fatalf("upload: %v %+v", err, ur)
	}
	fmt.Fprintf(conn, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	gr, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(gr.Body)
	if !strings.HasPrefix(string(b), "hello") {
		t.Fatalf("after upload: %q", b)
	}
}
