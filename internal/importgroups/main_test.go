package main

import (
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name, imports, want string
	}{
		{"house order", "\"fmt\"\n\"os\"\n\n\"golang.org/x/sys/unix\"\n\n\"github.com/vipgate/vipgate/core/config\"\n", ""},
		{"std only", "\"fmt\"\n", ""},
		{"mixed group", "\"fmt\"\n\"golang.org/x/sys/unix\"\n", `"golang.org/x/sys/unix" (other modules) shares a group with standard library imports`},
		{"split std", "\"time\"\n\n\"fmt\"\n", `standard library imports are split over several groups`},
		{"local before module", "\"github.com/vipgate/vipgate/core/config\"\n\n\"golang.org/x/sys/unix\"\n", `other modules imports come before github.com/vipgate/vipgate ones`},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, "x.go")
			if err := os.WriteFile(file, []byte("package x\n\nimport (\n"+c.imports+")\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			probs, err := check(token.NewFileSet(), file)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(probs, "\n")
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}
