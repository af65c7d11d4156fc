package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// TestQuickstartDemo runs what `make run` runs (examples/quickstart, the
// demo backends), on free ports, and checks what the README tells people
// to try: tcp balancing 1:2, http with cookie persistence, the status API.
func TestQuickstartDemo(t *testing.T) {
	ports := map[string]string{}
	for _, p := range []string{"8080", "8088", "8081", "8082", "8083", "9900"} {
		ports[p] = fmt.Sprint(testenv.FreePort(t))
	}
	dir := t.TempDir()
	for _, f := range []string{"cluster.yaml", "node.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", f))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for from, to := range ports {
			s = strings.ReplaceAll(s, ":"+from, ":"+to)
		}
		s = strings.ReplaceAll(s, "/tmp/vipgate-demo", filepath.Join(dir, "data"))
		if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cmdRun(ctx, []string{"--node", filepath.Join(dir, "node.yaml"), "--config", filepath.Join(dir, "cluster.yaml"),
			"--demo-backends", "127.0.0.1:" + ports["8081"] + ",127.0.0.1:" + ports["8082"]})
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("vipgate run exited %d", code)
		}
	})
	n := &node{t: t, admin: "127.0.0.1:" + ports["9900"]}
	testenv.Eventually(t, 20*time.Second, "both demo servers UP in both backends", func() bool {
		return n.serverStatus("demo", "web1") == "UP" && n.serverStatus("demo", "web2") == "UP" &&
			n.serverStatus("demo-http", "web1") == "UP" && n.serverStatus("demo-http", "web2") == "UP"
	})
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	count := map[string]int{}
	for i := 0; i < 30; i++ {
		resp, err := plain.Get("http://127.0.0.1:" + ports["8080"] + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		count[strings.Fields(string(b))[2]]++
	}
	if count["demo-backend-1"] != 10 || count["demo-backend-2"] != 20 {
		t.Errorf("tcp frontend: %v, want 10 and 20 (weights 1:2)", count)
	}
	resp, err := plain.Get("http://127.0.0.1:" + ports["8088"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ck := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 200 || !strings.HasPrefix(ck, "SRV=w") || resp.Header.Get("X-Served-By") != "vipgate" {
		t.Fatalf("http frontend: %d %v", resp.StatusCode, resp.Header)
	}
	want := map[string]string{"SRV=w1": "demo-backend-1", "SRV=w2": "demo-backend-2"}[strings.Split(ck, ";")[0]]
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+ports["8088"]+"/", nil)
		req.Header.Set("Cookie", strings.Split(ck, ";")[0])
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Fatalf("with cookie %s: %q, want %s", ck, b, want)
		}
	}
}
