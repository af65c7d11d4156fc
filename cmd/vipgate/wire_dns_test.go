package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestNodeDNSLuaHook: in a running node (as `vipgate run` wires it), a DNS
// service naming a Lua hook is answered by the hook; a service without one,
// and a hook that declines, keep the policy's answer. Asked with dig.
func TestNodeDNSLuaHook(t *testing.T) {
	digBin := testenv.RequireTool(t, "dig")
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startNodeDNS(t, dnsAddr, `
datacenters: [{name: dc1}, {name: dc2}]
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: s1, address: "127.0.0.1:9"}]}]
dns:
  zones:
    - name: example.test
      ns: [ns1.example.test.]
      records: [{name: ns1, type: A, data: 198.18.0.53}]
      services:
        - {name: web, policy: failover, vips: {dc1: [198.18.1.10], dc2: [198.18.2.10]}, hook: steer.answer}
        - {name: plain, policy: failover, vips: {dc1: [198.18.1.20], dc2: [198.18.2.20]}, hook: steer.answer}
        - {name: nohook, policy: failover, vips: {dc1: [198.18.1.30], dc2: [198.18.2.30]}}
lua:
  plugins:
    - name: steer
      source: |
        function answer(q)
          if q.name == "plain.example.test." then return nil end
          if q.client == "127.0.0.1" then return {"198.18.9.9", "198.18.9.10"}, 7 end
        end
`)
	ask := func(name string) []string {
		host, port, _ := strings.Cut(dnsAddr, ":")
		out, err := exec.Command(digBin, "@"+host, "-p", port, "+time=2", "+tries=1", "+noall", "+answer", name, "A").CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", name, err, out)
		}
		var rrs []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(l); len(f) == 5 {
				rrs = append(rrs, f[1]+" "+f[4]) // TTL and address
			}
		}
		slices.Sort(rrs)
		return rrs
	}
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"web.example.test", []string{"7 198.18.9.10", "7 198.18.9.9"}}, // the hook's answer and TTL
		{"plain.example.test", []string{"10 198.18.1.20"}},              // the hook declines: policy
		{"nohook.example.test", []string{"10 198.18.1.30"}},
	} {
		if got := ask(tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// startNodeDNS runs a node (as `vipgate run` does) whose node file serves
// DNS on dnsAddr, and waits until the zone answers.
func startNodeDNS(t *testing.T, dnsAddr, cluster string) {
	t.Helper()
	dir := t.TempDir()
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	nodeYAML := fmt.Sprintf("name: t1\ndatacenter: dc1\ndata_dir: %s\nadmin: {listen: %q}\ndns: {listen: [%q], sockets: 1}\n",
		filepath.Join(dir, "data"), admin, dnsAddr)
	for f, s := range map[string]string{"node.yaml": nodeYAML, "cluster.yaml": cluster} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := config.LoadNodeFile(filepath.Join(dir, "node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n.Config = filepath.Join(dir, "cluster.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runNode(ctx, n, slog.New(slog.NewTextHandler(io.Discard, nil)), new(slog.LevelVar)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	})
	host, port, _ := strings.Cut(dnsAddr, ":")
	testenv.Eventually(t, 10*time.Second, "the zone served", func() bool {
		select {
		case err := <-done:
			t.Fatalf("node stopped: %v", err)
		default:
		}
		out, _ := exec.Command("dig", "@"+host, "-p", port, "+time=1", "+tries=1", "+short", "ns1.example.test", "A").Output()
		return strings.TrimSpace(string(out)) == "198.18.0.53"
	})
}
