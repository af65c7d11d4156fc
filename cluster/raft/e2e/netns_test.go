package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testnet"
)

// nsNode is a vipgate process inside its own network namespace; its admin
// API listens on the namespace's loopback and is read with curl inside it.
type nsNode struct {
	host *testnet.Host
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (n *nsNode) dc(t *testing.T) dcView {
	out, err := n.host.Run("curl", "-s", "--max-time", "3", "http://127.0.0.1:9900/api/v1/dc")
	var v dcView
	if err == nil {
		_ = json.Unmarshal([]byte(out), &v)
	}
	return v
}

func (n *nsNode) raftStatus() map[string]any {
	out, err := n.host.Run("curl", "-s", "--max-time", "3", "http://127.0.0.1:9900/api/v1/status/raft")
	m := map[string]any{}
	if err == nil {
		_ = json.Unmarshal([]byte(out), &m)
	}
	return m
}

// Partition over real networking: three namespaces on one bridge (dc1's
// gateway, dc2's gateway, the witness). dc1's cable is pulled — a
// blackhole, not a refused connection. The majority fails over after the
// hold-down, the isolated node never promotes itself, and after the cable
// is back there is one history.
func TestNetnsPartitionWithWitness(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "curl")
	nw := testnet.New(t)
	dir := t.TempDir()
	ca, err := rafttest.NewCA(dir, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	type spec struct{ name, dc, role, ip string }
	specs := []spec{{"a1", "dc1", "gateway", "198.18.0.1"}, {"b1", "dc2", "gateway", "198.18.0.2"}, {"w", "", "witness", "198.18.0.3"}}
	seed := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seed, []byte(dcDoc("127.0.0.1:1")), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*nsNode{}
	for i, s := range specs {
		tlsf, err := ca.Issue(s.name)
		if err != nil {
			t.Fatal(err)
		}
		h := nw.AddHost(s.name, s.ip+"/24")
		y := fmt.Sprintf("name: %s\nrole: %s\ndata_dir: %s\nadmin: {listen: \"127.0.0.1:9900\"}\nlog: {level: debug}\n", s.name, s.role, filepath.Join(dir, s.name))
		if s.dc != "" {
			y += "datacenter: " + s.dc + "\n"
		}
		y += fmt.Sprintf("raft:\n  listen: \"%s:9901\"\n  tls: {ca: %q, cert: %q, key: %q}\n", s.ip, tlsf.CA, tlsf.Cert, tlsf.Key)
		y += "  heartbeat_timeout: 1s\n  election_timeout: 1s\n  leader_lease_timeout: 500ms\n  report_interval: 250ms\n"
		if i == 0 {
			y += fmt.Sprintf("  bootstrap: true\nconfig: %q\n", seed)
		} else {
			y += "  join: [\"198.18.0.1:9901\"]\n"
		}
		nf := filepath.Join(dir, s.name+".yaml")
		if err := os.WriteFile(nf, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		n := &nsNode{host: h, log: filepath.Join(dir, s.name+".log"), done: make(chan struct{})}
		lf, err := os.Create(n.log)
		if err != nil {
			t.Fatal(err)
		}
		n.cmd = h.Command(binary, "run", "--node", nf)
		n.cmd.Stdout, n.cmd.Stderr = lf, lf
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = n.cmd.Wait(); lf.Close(); close(n.done) }()
		nodes[s.name] = n
	}
	t.Cleanup(func() {
		for name, n := range nodes {
			_ = n.cmd.Process.Signal(os.Interrupt)
			select {
			case <-n.done:
			case <-time.After(10 * time.Second):
				_ = n.cmd.Process.Kill()
				<-n.done
			}
			if t.Failed() {
				b, _ := os.ReadFile(n.log)
				t.Logf("---- log of %s ----\n%s", name, tail(b, 3000))
			}
		}
	})
	a1, b1, w := nodes["a1"], nodes["b1"], nodes["w"]
	testenv.Eventually(t, 40*time.Second, "both datacenters healthy, dc1 active", func() bool {
		v := w.dc(t)
		return v.Active == "dc1" && v.healthy("dc1") && v.healthy("dc2")
	})
	nw.Cable(a1.host, false)
	cut := time.Now()
	testenv.Eventually(t, 40*time.Second, "majority (dc2 + witness) fails over to dc2", func() bool {
		return b1.dc(t).Active == "dc2" && w.dc(t).Active == "dc2"
	})
	if el := time.Since(cut); el < 2*time.Second {
		t.Errorf("failover %v after the cut, before the 2s hold-down", el)
	}
	if v := a1.dc(t); v.Active != "dc1" {
		t.Errorf("the isolated node changed the active datacenter to %q", v.Active)
	}
	testenv.Eventually(t, 10*time.Second, "the isolated node has no leader", func() bool {
		st := a1.raftStatus()
		return st["state"] != nil && st["state"] != "Leader" && st["leader"] == ""
	})
	nw.Cable(a1.host, true)
	testenv.Eventually(t, 40*time.Second, "one history after the cable is back", func() bool {
		va, vb := a1.dc(t), b1.dc(t)
		ra, rb := a1.raftStatus(), b1.raftStatus()
		return va.Active == "dc2" && va.Decision == vb.Decision && ra["applied_index"] == rb["applied_index"] && ra["leader"] != ""
	})
}
