package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageListsEveryCommand: the top-level help (vipgate --help, on
// stdout, exit 0) names every command and the subcommands of those that
// have them.
func TestUsageListsEveryCommand(t *testing.T) {
	var b, e bytes.Buffer
	if code := execute(t.Context(), []string{"--help"}, &b, &e); code != 0 || e.Len() != 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, e.String())
	}
	out := b.String()
	for _, c := range topCommands() {
		if !strings.Contains(out, "  "+c.Name()+" ") || !strings.Contains(out, c.Short) {
			t.Errorf("usage lacks %s: %q:\n%s", c.Name(), c.Short, out)
		}
	}
	for _, want := range []string{"alerting: test, status", "stick show|clear", "dc failover", "shutdown-sessions", "completion"} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	// Every ctl action family is in the summary.
	ctl := newCtlCmd()
	for _, fam := range []string{"server ", "frontend ", "stick ", "dc ", "log "} {
		if !strings.Contains(ctl.Short, fam) {
			t.Errorf("ctl summary lacks %q", fam)
		}
	}
}

// TestCheckCommand: `vipgate check` prints every problem with its
// position and exits 1; a good file prints ok and exits 0.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("frontends:\n  - name: f\n    bnid: ':80'\n    default_backend: ap\nbackends:\n  - name: app\n    servers: [{name: s, address: 'h:1', weight: 300}]\n"), 0o600)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("frontends: [{name: f, bind: ':80', default_backend: app}]\nbackends: [{name: app, servers: [{name: s, address: 'h:1'}]}]\n"), 0o600)
	var out, errb bytes.Buffer
	if code := runCheck([]string{good, bad}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		bad + `:3:5: frontends.0.bnid: unknown key "bnid" (did you mean "bind"?)`,
		bad + `:4:22: frontends.0.default_backend: backend "ap" is not defined (did you mean "app"?)`,
		`weight 300 out of range 0-256`,
		bad + ": 4 problem(s)", // the misspelt bind is also a missing one
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	if out.String() != good+": ok\n" {
		t.Errorf("stdout %q", out.String())
	}
	out.Reset()
	if code := runCheck([]string{good, "-q"}, &out, &errb); code != 0 || out.Len() != 0 {
		t.Errorf("-q on a good file: exit %d, %q", code, out.String())
	}
}
