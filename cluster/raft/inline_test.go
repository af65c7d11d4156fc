package raft

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

func TestInlineLuaFiles(t *testing.T) {
	dir := t.TempDir()
	code := "function route(txn)\n  return nil\nend\n"
	if err := os.WriteFile(filepath.Join(dir, "route.lua"), []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	src := []byte("# routing\nlua:\n  plugins:\n    - name: r\n      file: route.lua\n")
	if err := SelfContained(src); err == nil || !strings.Contains(err.Error(), "cluster.yaml:5:13: lua.plugins.0.file") {
		t.Fatalf("a document naming a local file was accepted for replication: %v", err)
	}
	out, err := InlineFiles(src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := SelfContained(out); err != nil {
		t.Fatalf("inlined document refused: %v\n%s", err, out)
	}
	// Another node, elsewhere, parses it without the file.
	t.Chdir(t.TempDir())
	c, err := config.Parse("cluster.yaml", out)
	if err != nil {
		t.Fatalf("inlined document does not parse:\n%s\n%v", out, err)
	}
	if got := c.Lua.Plugins[0].Source; got != code {
		t.Errorf("source %q, want %q", got, code)
	}
	if !strings.Contains(string(out), "# routing") {
		t.Errorf("comments lost:\n%s", out)
	}
	same, _ := InlineFiles(doc(1), dir)
	if string(same) != string(doc(1)) {
		t.Error("a document without files was rewritten")
	}
	if _, err := InlineFiles([]byte("lua:\n  plugins:\n    - {name: x, file: missing.lua}\n"), dir); err == nil {
		t.Error("a missing file was not reported")
	}
	// Every missing file is reported, not only the first.
	_, err = InlineFiles([]byte("lua:\n  plugins:\n    - {name: x, file: missing.lua}\n    - {name: y, file: gone.lua}\n"), dir)
	if err == nil || !strings.Contains(err.Error(), "line 3: lua plugin file: open") || !strings.Contains(err.Error(), "line 4: lua plugin file: open") {
		t.Errorf("two missing files: %v", err)
	}
}
