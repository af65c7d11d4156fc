package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// serverAdmin finds server name's admin state in a node's /api/v1/stats.
func serverAdmin(p *proc, name string) string {
	var doc any
	if err := get(p.admin, "/api/v1/stats", &doc); err != nil {
		return "?"
	}
	var find func(v any) string
	find = func(v any) string {
		switch x := v.(type) {
		case map[string]any:
			if x["name"] == name && x["addr"] != nil {
				a, _ := x["admin"].(string)
				if a == "" {
					a = "ready"
				}
				return a
			}
			for _, c := range x {
				if r := find(c); r != "" {
					return r
				}
			}
		case []any:
			for _, c := range x {
				if r := find(c); r != "" {
					return r
				}
			}
		}
		return ""
	}
	return find(doc)
}

func postJSON(addr, path string, body any) (int, string) {
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+addr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// A drain committed through one node reaches every gateway's proxy, survives
// a config reload that keeps the server, and is cleared everywhere by ready;
// without quorum, writes answer 503 and nothing changes.
func TestProcessesClusterDrain(t *testing.T) {
	c := newCluster(t)
	n1 := c.add("n1", "dc1", "gateway", backendsDoc(2, 1))
	n2 := c.add("n2", "dc2", "gateway", "")
	w := c.add("w", "", "witness", "")
	c.waitAll("joined", func(p *proc) bool {
		return p.members() == 3 && p.version() == 1 && (p.role == "witness" || serverAdmin(p, "s1") == "ready")
	})

	if code, body := postJSON(n2.admin, "/api/v1/cluster/servers/app/s1/state", map[string]any{"state": "drain", "author": "bob"}); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	c.waitAll("s1 drained on every gateway", func(p *proc) bool { return p.role == "witness" || serverAdmin(p, "s1") == "drain" })
	// A new document (weights change, s1 kept) does not undo the drain.
	if _, err := cli(t, n1, "apply", "-f", c.writeDoc("v2.yaml", backendsDoc(2, 3))); err != nil {
		t.Fatal(err)
	}
	c.waitAll("version 2", func(p *proc) bool { return p.version() == 2 })
	c.waitAll("s1 still drained after the reload", func(p *proc) bool { return p.role == "witness" || serverAdmin(p, "s1") == "drain" })
	if code, body := postJSON(n1.admin, "/api/v1/cluster/servers/app/nosuch/state", map[string]any{"state": "drain"}); code != 422 || !strings.Contains(body, `no server \"nosuch\"`) {
		t.Errorf("unknown server: %d %s", code, body)
	}
	if code, _ := postJSON(n1.admin, "/api/v1/cluster/servers/app/s1/state", map[string]any{"state": "ready"}); code != 200 {
		t.Fatal("ready refused")
	}
	c.waitAll("s1 ready everywhere", func(p *proc) bool { return p.role == "witness" || serverAdmin(p, "s1") == "ready" })

	// Without quorum: 503, and the state is unchanged.
	c.stop(n2, syscall.SIGKILL)
	c.stop(w, syscall.SIGKILL)
	testenv.Eventually(t, 20*time.Second, "n1 without a leader", func() bool { _, l := n1.raftState(); return l == "" })
	code, body := postJSON(n1.admin, "/api/v1/config", map[string]any{"yaml": backendsDoc(2, 9)})
	if code != 503 || !strings.Contains(body, "no raft leader") {
		t.Errorf("apply without quorum: %d %s", code, body)
	}
	if v := n1.version(); v != 2 {
		t.Errorf("version %d", v)
	}
}
