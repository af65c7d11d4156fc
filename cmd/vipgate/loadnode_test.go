package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

// A witness's node file need not say anything a gateway needs (datacenter,
// proxy or DNS settings): `vipgate run --witness` validates it as a witness.
func TestLoadNodeAsWitness(t *testing.T) {
	f := filepath.Join(t.TempDir(), "witness.yaml")
	doc := "name: w\ndata_dir: /tmp/w\nraft:\n  listen: 127.0.0.1:9901\n  join: [127.0.0.1:9902]\n  tls: {ca: c, cert: a, key: b}\n"
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadNode(f); err == nil || !strings.Contains(err.Error(), "datacenter") {
		t.Fatalf("as a gateway the file lacks a datacenter; got %v", err)
	}
	n, err := loadNodeAs(f, config.RoleWitness)
	if err != nil {
		t.Fatal(err)
	}
	if n.Role != config.RoleWitness {
		t.Fatalf("role %q", n.Role)
	}
	// Without a file, --witness has no raft to run: said at load time.
	if _, err := loadNodeAs("", config.RoleWitness); err == nil || !strings.Contains(err.Error(), "raft") {
		t.Fatalf("witness without a node file: got %v", err)
	}
}

// `vipgate check --node --witness` judges a node file as `run --witness`
// will.
func TestCheckNodeAsWitness(t *testing.T) {
	f := filepath.Join(t.TempDir(), "witness.yaml")
	doc := "name: w\ndata_dir: /tmp/w\nraft:\n  listen: 127.0.0.1:9901\n  join: [127.0.0.1:9902]\n  tls: {ca: c, cert: a, key: b}\n"
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := runCheck([]string{"--node", f}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "needs a datacenter") {
		t.Fatalf("as a gateway: exit %d\n%s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := runCheck([]string{"--node", "--witness", f}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok") {
		t.Fatalf("as a witness: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

// `vipgate run` without --node reads $VIPGATE_NODE or /etc/vipgate/node.yaml,
// and says which file it missed and how to name another.
func TestRunDefaultNodeFile(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(present, []byte("name: n\ndatacenter: dc1\ndata_dir: /tmp/n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(dir, "absent.yaml")
	for _, tc := range []struct {
		name, flag, env, want, err string
	}{
		{"flag wins", "given.yaml", present, "given.yaml", ""},
		{"env", "", present, present, ""},
		{"env names a missing file", "", absent, "", absent + " (from VIPGATE_NODE without --node) does not exist; give --node FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("VIPGATE_NODE", tc.env)
			got, err := nodeFileOrDefault(tc.flag)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// Without the variable: the default path, named in the error when absent.
	t.Setenv("VIPGATE_NODE", "")
	if _, err := os.Stat(defaultNodeFile); err == nil {
		t.Skipf("%s exists on this machine", defaultNodeFile)
	}
	if _, err := nodeFileOrDefault(""); err == nil || !strings.Contains(err.Error(), defaultNodeFile+" (the default without --node)") {
		t.Fatalf("got %v", err)
	}
	t.Setenv("VIPGATE_NODE", absent)
	if code := cmdRun(t.Context(), nil); code != 1 {
		t.Fatalf("vipgate run without a node file: exit %d, want 1", code)
	}
}
