package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpAndVersion: help and the version go to stdout with exit 0;
// usage errors go to stderr with exit 2, as they always did.
func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		stdout   string // a substring of stdout ("" = stdout empty)
		stderr   string // a substring of stderr ("" = stderr empty)
		noStdout bool
	}{
		{args: []string{"--help"}, stdout: "Available Commands:"},
		{args: []string{"-h"}, stdout: "Available Commands:"},
		{args: []string{"help"}, stdout: "Available Commands:"},
		{args: []string{"help", "apply"}, stdout: "--dry-run"},
		{args: []string{"apply", "--help"}, stdout: "--allow-empty"},
		{args: []string{"help", "cluster", "join"}, stdout: "--nonvoter"},
		{args: []string{"cluster", "join", "-h"}, stdout: "--nonvoter"},
		{args: []string{"ctl", "--help"}, stdout: "server shutdown-sessions BACKEND/SERVER"},
		{args: []string{"import", "--help"}, stdout: "--keepalived"},
		{args: []string{"--version"}, stdout: "vipgate dev\ncommit:"},
		{args: []string{"version"}, stdout: "go:      go1."},
		{args: nil, code: 2, stderr: "no command given", noStdout: true},
		{args: []string{"aply"}, code: 2, stderr: `unknown command "aply" (did you mean "apply"?)`, noStdout: true},
		{args: []string{"cluster"}, code: 2, stderr: "which cluster command?", noStdout: true},
		{args: []string{"cluster", "bogus"}, code: 2, stderr: `unknown command "bogus"`, noStdout: true},
		{args: []string{"cluster", "join", "n1"}, code: 2, stderr: "want 2 argument(s), got 1", noStdout: true},
		{args: []string{"apply"}, code: 2, stderr: "-f FILE is required", noStdout: true},
		{args: []string{"status", "--bogus"}, code: 2, stderr: "unknown flag: --bogus", noStdout: true},
		{args: []string{"config", "rollback", "x"}, code: 2, stderr: `version "x" is not a number`, noStdout: true},
		{args: []string{"dc", "failover", "dc2", "--hold", "-1s"}, code: 2, stderr: "--hold -1s is negative", noStdout: true},
	} {
		var out, errb bytes.Buffer
		code := execute(t.Context(), tc.args, &out, &errb)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d\nstdout %s\nstderr %s", tc.args, code, tc.code, out.String(), errb.String())
			continue
		}
		if tc.stdout != "" && !strings.Contains(out.String(), tc.stdout) {
			t.Errorf("%q: stdout lacks %q:\n%s", tc.args, tc.stdout, out.String())
		}
		if tc.noStdout && out.Len() != 0 {
			t.Errorf("%q: stdout %q, want nothing", tc.args, out.String())
		}
		if tc.stderr == "" && errb.Len() != 0 {
			t.Errorf("%q: stderr %q, want nothing", tc.args, errb.String())
		}
		if tc.stderr != "" && !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%q: stderr lacks %q:\n%s", tc.args, tc.stderr, errb.String())
		}
		if tc.code == 2 && !strings.Contains(errb.String(), "Usage:") {
			t.Errorf("%q: a usage error without the usage:\n%s", tc.args, errb.String())
		}
	}
}

// TestFlagLinesReadable: no flag's help line loses words to the back-quote
// rule of Go's flag package (and pflag's): `make run` in a usage became the
// flag's value name ("-demo-backends make run"). Back-quotes are kept only
// around a value name written as one (FILE, [NODE=]FILE, NODE=DC).
func TestFlagLinesReadable(t *testing.T) {
	valueName := regexp.MustCompile(`^[A-Z][A-Z=\[\]]*$|^\[[A-Z]+=\][A-Z]+$`)
	walk(newRootCmd(), func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			name, _ := pflag.UnquoteUsage(f)
			if strings.Contains(f.Usage, "`") && !valueName.MatchString(name) {
				t.Errorf("%s --%s: back-quotes in the usage make a value name of the words between them: %q", c.CommandPath(), f.Name, f.Usage)
			}
		})
	})
	for _, tc := range []struct{ args, want string }{
		{"import", "--haproxy [NODE=]FILE"},
		{"import", "-o, --output FILE"},
		{"apply", "-f, --file string"},
		{"check", "-q, --quiet"},
	} {
		var out bytes.Buffer
		execute(t.Context(), []string{tc.args, "--help"}, &out, &out)
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s --help lacks %q:\n%s", tc.args, tc.want, out.String())
		}
	}
	var out bytes.Buffer
	execute(t.Context(), []string{"run", "--help"}, &out, &out)
	if !strings.Contains(out.String(), "--demo-backends string") {
		t.Errorf("run --help:\n%s", out.String())
	}
}

// TestGoStyleFlags: -name, as Go's flag package took it, still works;
// one-letter flags stay shorthands; a word after -- is left alone.
func TestGoStyleFlags(t *testing.T) {
	root := newRootCmd()
	got := goStyleFlags(root, []string{"apply", "-f", "x.yaml", "-admin", "h:1", "-dry-run", "-m", "-admin", "--", "-token"})
	want := []string{"apply", "-f", "x.yaml", "--admin", "h:1", "--dry-run", "-m", "--admin", "--", "-token"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// End to end: a single-dash long flag reaches the command.
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("frontends: [{name: f, bind: ':80', default_backend: app}]\nbackends: [{name: app, servers: [{name: s, address: 'h:1'}]}]\n"), 0o600)
	var out, errb bytes.Buffer
	if code := execute(t.Context(), []string{"check", "-q", good}, &out, &errb); code != 0 || out.Len() != 0 {
		t.Errorf("check -q: %d %q %q", code, out.String(), errb.String())
	}
}

// TestJSONErrors: with --json a failure is a JSON object on stdout, exit 1.
func TestJSONErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{
		{"status", "--json", "--admin", dead},
		{"ctl", "server", "drain", "be/a", "--json", "--admin", dead},
		{"alerts", "status", "--json", "--admin", dead},
	} {
		var out, errb bytes.Buffer
		if code := execute(t.Context(), args, &out, &errb); code != 1 {
			t.Errorf("%q: exit %d", args, code)
		}
		var e struct{ Error string }
		if err := json.Unmarshal(out.Bytes(), &e); err != nil || !strings.Contains(e.Error, "cannot reach the admin API at "+dead) {
			t.Errorf("%q: stdout %q (%v)", args, out.String(), err)
		}
		if errb.Len() != 0 {
			t.Errorf("%q: stderr %q", args, errb.String())
		}
	}
	// Without --json, the same failure is a line on stderr.
	var out, errb bytes.Buffer
	if code := execute(t.Context(), []string{"status", "--admin", dead}, &out, &errb); code != 1 || out.Len() != 0 ||
		!strings.HasPrefix(errb.String(), "vipgate status: cannot reach the admin API at "+dead) {
		t.Errorf("status: %d %q %q", code, out.String(), errb.String())
	}
}

// TestGenDocs: the man pages and the completions come from the one tree:
// a page for every command, and every command in the completions.
func TestGenDocs(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := execute(t.Context(), []string{"gendocs", "--man", filepath.Join(dir, "man"), "--completions", filepath.Join(dir, "comp")}, &out, &errb); code != 0 {
		t.Fatalf("gendocs: %d %s", code, errb.String())
	}
	var pages []string
	walk(newRootCmd(), func(c *cobra.Command) {
		if !c.Hidden && c.Name() != "help" {
			pages = append(pages, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		}
	})
	for _, p := range append(pages, "vipgate-completion-bash.1") {
		b, err := os.ReadFile(filepath.Join(dir, "man", p))
		if err != nil {
			t.Errorf("man page: %v", err)
			continue
		}
		if !bytes.Contains(b, []byte(".TH ")) {
			t.Errorf("%s is not a man page:\n%s", p, b)
		}
	}
	page, _ := os.ReadFile(filepath.Join(dir, "man", "vipgate-apply.1"))
	for _, want := range []string{"--dry-run", "VIPGATE_ADMIN", "SEE ALSO"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("vipgate-apply.1 lacks %q", want)
		}
	}
	for _, f := range []string{"vipgate.bash", "_vipgate", "vipgate.fish"} {
		b, err := os.ReadFile(filepath.Join(dir, "comp", f))
		if err != nil || !bytes.Contains(b, []byte("__complete")) {
			t.Errorf("completion %s: %v (it asks the binary: vipgate __complete)", f, err)
		}
	}
	// The completion asks the binary; it knows the ctl grammar.
	out.Reset()
	if code := execute(t.Context(), []string{"__complete", "ctl", "server", ""}, &out, &errb); code != 0 || !strings.Contains(out.String(), "shutdown-sessions") {
		t.Errorf("__complete ctl server: %d %q", code, out.String())
	}
	out.Reset()
	if code := execute(t.Context(), []string{"__complete", "cluster", ""}, &out, &errb); code != 0 || !strings.Contains(out.String(), "recover") {
		t.Errorf("__complete cluster: %d %q", code, out.String())
	}
}
