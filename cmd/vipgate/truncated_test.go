package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestEveryPrefixOfTheExamplesKeepsAListener: an editor or a tool writing
// the file in place while a reload fires makes the reload read a prefix of
// it. Every byte-prefix of every example document, read by the reload path
// of a standalone gateway node, is either refused or keeps a frontend: none
// closes every listener (32 of the 341 prefixes of a small document used
// to pass, `defaults: {mode: http}` among them).
func TestEveryPrefixOfTheExamplesKeepsAListener(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/cluster.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	node := &config.Node{Name: "gw-a1", Datacenter: "dc1", Role: config.RoleGateway}
	for _, file := range files {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			refusedEmpty := 0
			for n := 0; n <= len(data); n++ {
				c, err := parseReload(file, data[:n], node, true)
				switch {
				case err != nil:
					if strings.Contains(err.Error(), config.ServesNothingMsg) {
						refusedEmpty++
					}
				case len(c.Frontends) == 0:
					t.Errorf("the first %d bytes are accepted on reload and close every listener:\n%s", n, data[:n])
				}
			}
			t.Logf("%d prefixes, %d refused as serving nothing", len(data)+1, refusedEmpty)
			if refusedEmpty == 0 {
				t.Error("no prefix reached the serves-nothing gate (the test would not notice it missing)")
			}
		})
	}
}

// TestTruncatedConfigRefused: the reproduction through SIGHUP on a
// running standalone node (the listener stays), `vipgate check` (a
// warning, exit 0) and `vipgate apply` on a raft node (refused unless
// allow_empty).
func TestTruncatedConfigRefused(t *testing.T) {
	const truncated = "defaults:\n  mode: http\n"
	t.Run("SIGHUP", func(t *testing.T) {
		dir := t.TempDir()
		f := filepath.Join(dir, "c.yaml")
		good := "frontends: [{name: fe, bind: '127.0.0.1:0', default_backend: be}]\nbackends: [{name: be, servers: [{name: s, address: 'h:1'}]}]\n"
		os.WriteFile(f, []byte(good), 0o600)
		src := newFileSource(f, &config.Node{Name: "t1", Datacenter: "dc1"}, slog.New(slog.DiscardHandler))
		go src.Run(t.Context())
		select {
		case <-src.Updates():
		case <-time.After(10 * time.Second):
			t.Fatal("no first snapshot")
		}
		os.WriteFile(f, []byte(truncated), 0o600)
		src.Reload()
		testenv.Eventually(t, 10*time.Second, "truncated reload refused", func() bool { return src.rejected.Load() == 1 })
		select {
		case c := <-src.Updates():
			t.Fatalf("a document with %d frontends was delivered", len(c.Frontends))
		default:
		}
	})
	t.Run("check", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(f, []byte(truncated), 0o600)
		var out, errb bytes.Buffer
		if code := runCheck([]string{f}, &out, &errb); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if !strings.Contains(errb.String(), f+": warning: the document has no frontend, no VRRP instance and no DNS zone") {
			t.Fatalf("no warning: %q", errb.String())
		}
	})
	t.Run("apply", func(t *testing.T) {
		n := startRaftNode(t, "frontends: [{name: fe, bind: \"127.0.0.1:0\", default_backend: be}]\nbackends: [{name: be, servers: [{name: a, address: 'h:1'}]}]\n", "tokens: ["+writeTok+"]")
		post := func(req configRequest) (int, string) {
			body, _ := json.Marshal(req)
			var code int
			var out string
			testenv.Eventually(t, 20*time.Second, "an answer other than no leader", func() bool {
				code, out = n.do(t, call{method: "POST", path: "/api/v1/config", body: string(body), token: writeTok})
				return code != 503
			})
			return code, out
		}
		if code, out := post(configRequest{YAML: truncated}); code != 422 || !strings.Contains(out, "--allow-empty") {
			t.Fatalf("without allow_empty: %d %s", code, out)
		}
		code, out := post(configRequest{YAML: truncated, AllowEmpty: true})
		var resp configResponse
		if code != 200 || json.Unmarshal([]byte(out), &resp) != nil || !resp.Changed || resp.Version < 2 {
			t.Fatalf("with allow_empty: %d %s", code, out)
		}
	})
}

// FuzzReload is the reload path's part of make fuzz-long: whatever a
// standalone node's file holds when SIGHUP comes (seeded with the
// examples, their prefixes, the alias bomb), the reload decides within an
// allocation ceiling and, while fuzzing, a time ceiling, and never accepts
// a document that leaves the node serving nothing.
func FuzzReload(f *testing.F) {
	files, _ := filepath.Glob("../../examples/*/cluster.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/3])
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte(bombDoc()))
	f.Add([]byte("defaults:\n  mode: http\n"))
	f.Add([]byte("vrrp:\n  instances: [{name: v, interface: eth0, vrid: 1, datacenter: dc2, vips: ['198.18.0.1/24']}]\n"))
	node := &config.Node{Name: "gw-a1", Datacenter: "dc1", Role: config.RoleGateway}
	f.Fuzz(func(t *testing.T, data []byte) {
		testenv.Ceilings(t, "a reload", 64<<20+uint64(len(data))*2048, 5*time.Second, func() {
			c, err := parseReload("fuzz.yaml", data, node, true)
			if err == nil && c.ServesNothing(node) {
				t.Fatalf("accepted a document serving nothing on this node: %q", data)
			}
		})
	})
}
