package stick

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// buildVipgate compiles the binary once per test run.
func buildVipgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vipgate")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/vipgate/vipgate/cmd/vipgate")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type vipgateProc struct {
	admin, fe string
}

func startVipgate(t *testing.T, bin, dir, name, peer string, peerAddr, myPeers string, bes []*opensslBackend) *vipgateProc {
	t.Helper()
	p := &vipgateProc{
		admin: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		fe:    fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
	}
	node := fmt.Sprintf(`name: %s
datacenter: dc1
data_dir: %s
admin: {listen: %q}
log: {level: debug}
peers:
  listen: %q
  secret: "two-processes-shared-secret"
  nodes: [{name: %s, address: %q}]
`, name, dir, p.admin, myPeers, peer, peerAddr)
	cluster := strings.Replace(stickDoc("{table: ssl, on: ssl_session_id}", bes), "127.0.0.1:0", p.fe, 1)
	cluster = strings.Replace(cluster, "{name: ssl, type: binary, len: 32, size: 30000, expire: 1m}", "{name: ssl, type: binary, len: 32, size: 30000, expire: 1m, peers: true}", 1)
	nf, cf := filepath.Join(dir, name+".node.yaml"), filepath.Join(dir, name+".cluster.yaml")
	if err := os.WriteFile(nf, []byte(node), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf, []byte(cluster), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "run", "--node", nf, "--config", cf)
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", name, b)
		}
	})
	return p
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

type stickStatus struct {
	Tables []TableStatus `json:"tables"`
	Peers  []struct {
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
	} `json:"peers"`
}

// TestTwoProcessesSync: two `vipgate run` processes as peers; a TLS
// session learned through one is honoured by the other (the VIP moved).
func TestTwoProcessesSync(t *testing.T) {
	testenv.Short(t)
	bes := startOpenSSLBackends(t, []string{"ex1", "ex2", "ex3"})
	bin := buildVipgate(t)
	dir := t.TempDir()
	pa, pb := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	a := startVipgate(t, bin, dir, "gw-a", "gw-b", pb, pa, bes)
	b := startVipgate(t, bin, dir, "gw-b", "gw-a", pa, pb, bes)
	for _, p := range []*vipgateProc{a, b} {
		testenv.Eventually(t, 20*time.Second, "peer link up on "+p.admin, func() bool {
			var st stickStatus
			return getJSON("http://"+p.admin+"/api/v1/stick", &st) == nil && len(st.Peers) == 1 && st.Peers[0].Connected
		})
	}

	sess := filepath.Join(dir, "sess")
	first, _ := sClient(t, a.fe, "", sess)
	for i := 0; i < 3; i++ {
		testenv.Eventually(t, 10*time.Second, "session synced to gw-b", func() bool {
			var st stickStatus
			if getJSON("http://"+b.admin+"/api/v1/stick", &st) != nil {
				return false
			}
			for _, tb := range st.Tables {
				if tb.Name == "ssl" && tb.Synced > 0 {
					return true
				}
			}
			return false
		})
		got, reused := sClient(t, b.fe, sess, "")
		if got != first || !reused {
			t.Fatalf("through gw-b the session went to %s (reused %v), want %s resumed", got, reused, first)
		}
	}

	// The node-local clear endpoint.
	var entries struct {
		Scope   string        `json:"scope"`
		Entries []EntryStatus `json:"entries"`
	}
	if err := getJSON("http://"+b.admin+"/api/v1/stick/ssl", &entries); err != nil || len(entries.Entries) == 0 {
		t.Fatalf("entries: %v %+v", err, entries)
	}
	req, _ := http.NewRequest(http.MethodDelete, "http://"+b.admin+"/api/v1/stick/ssl/"+entries.Entries[0].Key, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var del map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&del)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || del["scope"] != "node" || del["deleted"] != true {
		t.Fatalf("DELETE: %s %v", resp.Status, del)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second DELETE: %s, want 404", resp.Status)
	}
}
