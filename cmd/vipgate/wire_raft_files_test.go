package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/cluster/state"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/stats"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestRaftConfigFiles: a raft node applying a committed document that names
// a file missing on this node (a check CA file here) commits and serves what
// it can, and says so: the apply answer warns with the position, each
// problem is logged on its own line, the status section config_files lists
// it, a config.files event (err) is published, and once the file is there a
// re-apply clears it with a config.files notice (count 0).
func TestRaftConfigFiles(t *testing.T) {
	a := startGreeter(t, "a", "127.0.0.1:0")
	n := startRaftNode(t, fmt.Sprintf(`frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: a, address: %q}]}]
`, a.addr), "tokens: ["+writeTok+"]")

	caFile := filepath.Join(t.TempDir(), "check-ca.pem")
	doc := fmt.Sprintf(`frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    check: {kind: tls, ca_file: %q}
    servers: [{name: a, address: %q}]
`, caFile, a.addr)
	apply := func(yaml string) configResponse {
		t.Helper()
		body, _ := json.Marshal(configRequest{YAML: yaml})
		var resp configResponse
		var code int
		var out string
		testenv.Eventually(t, 20*time.Second, "config committed (once there is a leader)", func() bool {
			code, out = n.do(t, call{method: "POST", path: "/api/v1/config", body: string(body), token: writeTok})
			return code == 200
		})
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("apply answer %q: %v", out, err)
		}
		return resp
	}

	const where = "cluster.yaml:4:33: backends.0.check.ca_file: CA file: open "
	resp := apply(doc)
	if !resp.Changed || len(resp.FileWarnings) != 1 || !strings.HasPrefix(resp.FileWarnings[0], where) || resp.FileNode != "t1" {
		t.Fatalf("apply answer: %+v, want one file warning at %q from node t1", resp, where)
	}
	version := resp.Version

	var fc state.FileCheck
	testenv.Eventually(t, 10*time.Second, "status config_files shows the problem", func() bool {
		return n.get("/api/v1/status/config_files", &fc) == nil && fc.Version == version && len(fc.Problems) == 1
	})
	if !strings.HasPrefix(fc.Problems[0], where) {
		t.Fatalf("status config_files: %+v", fc)
	}
	if logs := n.logs.String(); !strings.Contains(logs, "config names a file this node cannot use") || !strings.Contains(logs, "backends.0.check.ca_file") {
		t.Fatalf("the problem is not logged on its own line:\n%s", logs)
	}
	findEvent := func(level events.Level) *events.Event {
		var evs []events.Event
		if err := n.get("/api/v1/events?n=1000", &evs); err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			if evs[i].Kind == events.ConfigFiles && evs[i].Level == level {
				return &evs[i]
			}
		}
		return nil
	}
	ev := findEvent(events.Err)
	if ev == nil || ev.Attr("count") != "1" || ev.Attr("version") != fmt.Sprint(version) || !strings.Contains(ev.Attr("problems"), "backends.0.check.ca_file") {
		t.Fatalf("config.files event: %+v", ev)
	}
	// The node still serves: the document is applied (the server is checked
	// and reported DOWN with the reason rather than the proxy left behind).
	testenv.Eventually(t, 10*time.Second, "the new document applied by the proxy", func() bool {
		st, _ := n.serverRow("be", "a")
		return st == "DOWN"
	})

	// The operator puts the file in place and sends SIGHUP (runNode
	// listens for it): the committed version is re-applied and clean.
	if err := os.WriteFile(caFile, []byte(mustRead(t, n.raftCA)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "status config_files clear after SIGHUP", func() bool {
		return n.get("/api/v1/status/config_files", &fc) == nil && fc.Version == version && len(fc.Problems) == 0
	})
	if ev := findEvent(events.Notice); ev == nil || ev.Attr("count") != "0" {
		t.Fatalf("no config.files notice once the files are usable: %+v", ev)
	}
	// The health check is rebuilt with the CA now readable: its reason is
	// no longer "check unavailable" (the greeter speaks no TLS, so it fails).
	testenv.Eventually(t, 10*time.Second, "check rebuilt after SIGHUP", func() bool {
		r := checkReason(n, "be", "a")
		return r != "" && !strings.Contains(r, "check unavailable")
	})
	resp = apply(doc + "# CA file installed\n")
	if len(resp.FileWarnings) != 0 {
		t.Fatalf("warnings once the file is there: %v", resp.FileWarnings)
	}
}

// startRaftNode runs a node that is a one-node raft cluster (bootstrap,
// short timeouts), cluster being its seed document.
func startRaftNode(t *testing.T, cluster, adminExtra string) *node {
	t.Helper()
	return startRaftNodes(t, cluster, adminExtra, "")[0]
}

// startRaftNodes starts a raft cluster of loopback nodes sharing one CA:
// t1 (dc1) bootstraps it with cluster as the seed, then one node joins per
// extra entry, whose node-file lines must begin with its "name:" and
// "datacenter:" (and may add more, as may the first's nodeExtra).
func startRaftNodes(t *testing.T, cluster, adminExtra, nodeExtra string, extra ...string) []*node {
	t.Helper()
	ca, err := rafttest.NewCA(t.TempDir(), "raft")
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*node
	var first string
	for i, ne := range append([]string{nodeExtra}, extra...) {
		name := "t1"
		if i > 0 {
			name = strings.TrimSpace(strings.TrimPrefix(strings.SplitN(ne, "\n", 2)[0], "name:"))
		}
		tf, err := ca.Issue(name)
		if err != nil {
			t.Fatal(err)
		}
		raftAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		how := "bootstrap: true"
		if i == 0 {
			first = raftAddr
		} else {
			how = fmt.Sprintf("join: [%q]", first)
		}
		n := startNodeFile(t, cluster, adminExtra, fmt.Sprintf(`%s
raft:
  listen: %q
  %s
  tls: {ca: %q, cert: %q, key: %q}
  heartbeat_timeout: 200ms
  election_timeout: 200ms
  leader_lease_timeout: 100ms
`, ne, raftAddr, how, tf.CA, filepath.Clean(tf.Cert), tf.Key))
		n.raftCA = tf.CA
		nodes = append(nodes, n)
	}
	return nodes
}

// checkReason is the last check's reason for backend/server in the stats.
func checkReason(n *node, backend, server string) string {
	var s stats.Snapshot
	if err := n.get("/api/v1/stats", &s); err != nil {
		return ""
	}
	for _, b := range s.Backends {
		for _, sv := range b.Servers {
			if b.Name == backend && sv.Name == server {
				return sv.CheckReason
			}
		}
	}
	return ""
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPrintFileWarnings: vipgate apply shows the receiving node's file
// problems as warnings at the user's file name, and says they do not block.
func TestPrintFileWarnings(t *testing.T) {
	var b strings.Builder
	printFileWarnings(&b, configResponse{FileNode: "gw1", FileWarnings: []string{"cluster.yaml:4:33: backends.0.check.ca_file: CA file: open /x: no such file or directory"}}, "prod.yaml")
	out := b.String()
	if !strings.Contains(out, "warning: prod.yaml:4:33: backends.0.check.ca_file: CA file: open /x: no such file or directory (on node gw1)\n") ||
		!strings.Contains(out, "does not block the commit") {
		t.Fatalf("warnings:\n%s", out)
	}
	b.Reset()
	printFileWarnings(&b, configResponse{FileNode: "gw1"}, "prod.yaml")
	if b.Len() != 0 {
		t.Fatalf("no problems, yet: %q", b.String())
	}
}
