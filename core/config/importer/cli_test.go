package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunCLI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clean := write("clean.cfg", "frontend f\n  bind :80\n  default_backend b\nbackend b\n  server s 198.18.1.1:80 check\n")
	warny := write("warny.cfg", "frontend f\n  bind :80\n  compression algo gzip\n  default_backend b\nbackend b\n  server s 198.18.1.1:80\n")
	broken := write("broken.cfg", "frontend f\n  bind \"oops\n")
	ka := write("k.conf", "vrrp_instance V {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  198.18.0.10/24\n }\n}\n")
	kaBroken := write("kb.conf", "vrrp_instance V {\n")
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("conf.d/vi.conf", "vrrp_instance INC {\n interface eth0\n virtual_router_id 6\n virtual_ipaddress {\n  198.18.0.11\n }\n}\n")
	kaInclude := write("ki.conf", "global_defs {\n router_id gw9\n}\ninclude conf.d/*.conf\n")
	out := filepath.Join(dir, "out.yaml")
	named1 := write("named1.cfg", "global\n  localpeer gw1\nfrontend f\n  bind :80\n  default_backend b\nbackend b\n  server s1 198.18.1.1:80\n")
	named2 := write("named2.cfg", "global\n  node gw2\nfrontend f\n  bind :80\n  default_backend b\nbackend b\n  server s2 198.18.1.2:80\n")

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring
		stderr     []string
		outFile    bool
		noStdout   bool
		stderrNone bool
	}{
		{name: "clean to stdout", args: []string{"--haproxy", clean}, code: 0, stdout: "name: f", stderrNone: true},
		{name: "warnings still succeed", args: []string{"--haproxy", warny}, code: 0, stdout: "name: f",
			stderr: []string{warny + ":3: compression: not supported", "translated with 1 warning(s)"}},
		{name: "strict fails on warnings", args: []string{"--strict", "--haproxy", warny}, code: 1, noStdout: true,
			stderr: []string{warny + ":3: compression:", "--strict: nothing written"}},
		{name: "strict passes a clean file", args: []string{"--strict", "--haproxy", clean, "-o", out}, code: 0, outFile: true, noStdout: true},
		{name: "parse error is positioned", args: []string{"--haproxy", broken}, code: 1, noStdout: true, stderr: []string{broken + ":2: unterminated double quote"}},
		{name: "keepalived parse error", args: []string{"--keepalived", kaBroken}, code: 1, noStdout: true, stderr: []string{kaBroken + ":1: block \"vrrp_instance\" is not closed"}},
		{name: "both inputs", args: []string{"--haproxy", clean, "--keepalived", ka}, code: 0, stdout: "name: V", stderr: []string{ka + ":1: vrrp_instance V: this file describes one node"}},
		{name: "keepalived include from the file's directory", args: []string{"--keepalived", kaInclude}, code: 0, stdout: "name: INC",
			stderr: []string{filepath.Join(dir, "conf.d/vi.conf") + ":1: vrrp_instance INC: this file describes one node (gw9, priority 100)"}},
		{name: "missing file", args: []string{"--haproxy", filepath.Join(dir, "nope.cfg")}, code: 1, stderr: []string{"no such file"}},
		{name: "haproxy repeated without nodes is refused", args: []string{"--haproxy", clean, "--haproxy", warny}, code: 2, noStdout: true,
			stderr: []string{"--haproxy is given 2 times: say which node each file belongs to (--haproxy NODE=FILE"}},
		{name: "the same file twice", args: []string{"--keepalived", ka, "--keepalived", ka}, code: 1, noStdout: true, stderr: []string{"--keepalived " + ka + " is given twice"}},
		{name: "two files of one node", args: []string{"--keepalived", "n1=" + ka, "--keepalived", "n1=" + kaInclude}, code: 1, noStdout: true,
			stderr: []string{"both describe node n1"}},
		{name: "two haproxy.cfg of one node", args: []string{"--haproxy", "n1=" + clean, "--haproxy", "n1=" + warny}, code: 1, noStdout: true,
			stderr: []string{"are both node n1's haproxy.cfg"}},
		{name: "bad node name", args: []string{"--keepalived", "n 1=" + ka}, code: 1, noStdout: true, stderr: []string{`node name "n 1"`}},
		{name: "per-node files", args: []string{"--haproxy", "n1=" + clean, "--haproxy", "n2=" + warny, "--keepalived", "n1=" + ka, "--keepalived", "n2=" + ka}, code: 0,
			stdout: "nodes: [n1, n2]", stderr: []string{warny + ":3: compression"}},
		{name: "datacenters", args: []string{"--haproxy", "n1=" + clean, "--haproxy", "n2=" + warny, "--datacenter", "n1=dc1", "--datacenter", "n2=dc2"}, code: 0,
			stdout: "datacenters:\n  - name: dc1\n  - name: dc2\n"},
		{name: "a node in two datacenters", args: []string{"--haproxy", clean, "--datacenter", "n1=dc1", "--datacenter", "n1=dc2"}, code: 2, stderr: []string{"node n1 is given two datacenters"}},
		{name: "bad datacenter flag", args: []string{"--haproxy", clean, "--datacenter", "dc1"}, code: 2, stderr: []string{`--datacenter "dc1": want NODE=DC`}},
		{name: "nodes named by localpeer and node", args: []string{"--haproxy", named1, "--haproxy", named2}, code: 0,
			stdout: "name: s2, address: '198.18.1.2:80', nodes: [gw2]"},
		{name: "no input", args: nil, code: 2, stderr: []string{"usage: vipgate import"}},
		{name: "stray argument", args: []string{"x.cfg"}, code: 2, stderr: []string{"usage: vipgate import"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(out)
			var so, se bytes.Buffer
			code := RunCLI(tt.args, &so, &se)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, se.String())
			}
			if tt.stdout != "" && !strings.Contains(so.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, so.String())
			}
			if tt.noStdout && so.Len() != 0 {
				t.Errorf("stdout not empty:\n%s", so.String())
			}
			for _, s := range tt.stderr {
				if !strings.Contains(se.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, se.String())
				}
			}
			if tt.stderrNone && se.Len() != 0 {
				t.Errorf("stderr not empty:\n%s", se.String())
			}
			if tt.outFile {
				b, err := os.ReadFile(out)
				if err != nil || !bytes.Contains(b, []byte("name: f")) {
					t.Errorf("output file: %v\n%s", err, b)
				}
			}
		})
	}
}

// The command run where the example lives reproduces the committed file.
func TestRunCLIExample(t *testing.T) {
	t.Chdir(exampleDir)
	var so, se bytes.Buffer
	if code := RunCLI([]string{"--haproxy", "haproxy.cfg", "--keepalived", "keepalived.conf", "--keepalived", "keepalived.gw2-a.conf"}, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	want, err := os.ReadFile("cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(so.Bytes(), want) {
		t.Errorf("stdout differs from cluster.yaml")
	}
	wantW, _ := os.ReadFile("warnings.txt")
	if !strings.HasPrefix(se.String(), string(wantW)) {
		t.Errorf("stderr does not start with warnings.txt:\n%s", se.String())
	}
}
