package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// bombDoc is the red-team file (2.8 KB, 27 million header matches once its
// aliases are expanded; the unknown-key walk used to take 6 GB on it).
func bombDoc() string {
	rep := func(a string) string { return strings.TrimSuffix(strings.Repeat(a+",", 299), ",") }
	return fmt.Sprintf("frontends: [&F {name: f, rules: [&R {header: [&H {name: a, bogus: 1},%s]},%s]},%s]\n",
		rep("*H"), rep("*R"), rep("*F"))
}

const bombWant = "aliases expand the document by more than 100000 nodes"

// TestAliasBombRefusedByCheckReloadAndApply: the file is refused with its
// position, in bounded memory, by `vipgate check`, by a SIGHUP reload of a
// standalone node (which keeps serving), and by `apply --dry-run` on a raft
// node.
func TestAliasBombRefusedByCheckReloadAndApply(t *testing.T) {
	bomb := bombDoc()
	file := filepath.Join(t.TempDir(), "bomb.yaml")
	if err := os.WriteFile(file, []byte(bomb), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("check", func(t *testing.T) {
		var out, errb bytes.Buffer
		testenv.AllocCeiling(t, "vipgate check", 64<<20, func() {
			if code := runCheck([]string{file}, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
		})
		if !strings.HasPrefix(errb.String(), file+":1:") || !strings.Contains(errb.String(), bombWant) {
			t.Fatalf("stderr: %s", errb.String())
		}
	})
	t.Run("SIGHUP", func(t *testing.T) {
		g := startGreeter(t, "a", "127.0.0.1:0")
		fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		n := startNode(t, fmt.Sprintf("frontends: [{name: fe, bind: %q, default_backend: be}]\nbackends: [{name: be, servers: [{name: a, address: %q}]}]\n", fe, g.addr))
		if err := os.WriteFile(n.clusterFile, []byte(bomb), 0o600); err != nil {
			t.Fatal(err)
		}
		// The node starts listening for SIGHUP just after its first
		// config is applied: until then a SIGHUP would end the test
		// binary, so the test holds the signal too and repeats it. It
		// never lets go: a SIGHUP still in flight when the node stops
		// must not end the binary either.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
		testenv.AllocCeiling(t, "a SIGHUP reload", 256<<20, func() {
			testenv.Eventually(t, 30*time.Second, "reload refused", func() bool {
				if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
				l := n.logs.String()
				return strings.Contains(l, "reload refused") && strings.Contains(l, bombWant)
			})
		})
		if got, err := dialName(fe); err != nil || got != "a" {
			t.Fatalf("after the refused reload the frontend answers %q, %v", got, err)
		}
	})
	t.Run("apply --dry-run", func(t *testing.T) {
		n := startRaftNode(t, "frontends: [{name: fe, bind: \"127.0.0.1:0\", default_backend: be}]\nbackends: [{name: be, servers: [{name: a, address: 'h:1'}]}]\n", "tokens: ["+writeTok+"]")
		body, _ := json.Marshal(configRequest{YAML: bomb, DryRun: true})
		var code int
		var out string
		testenv.AllocCeiling(t, "apply --dry-run", 256<<20, func() {
			testenv.Eventually(t, 20*time.Second, "an answer other than no leader", func() bool {
				code, out = n.do(t, call{method: "POST", path: "/api/v1/config", body: string(body), token: writeTok})
				return code != 503
			})
		})
		if code != 422 || !strings.Contains(out, "cluster.yaml:1:") || !strings.Contains(out, bombWant) {
			t.Fatalf("%d %s", code, out)
		}
	})
}
