package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config/importer"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestImportedDeploymentsPassCheck: `vipgate import` of each real
// deployment (shared/migration-inputs), every node's files at once, and
// `vipgate check` of the result, as an operator runs them. seed000 names a
// certificate that exists only on its nodes: the import warns about it and
// check reports exactly that, nothing else.
func TestImportedDeploymentsPassCheck(t *testing.T) {
	root := testenv.MigrationInputs(t)
	tests := []struct {
		dir     string
		args    []string
		missing string // the one file check may report
	}{
		{"seed000-lab", []string{"--haproxy", "haproxy.cfg", "--keepalived", "keepalived-lb01.conf", "--keepalived", "keepalived-lb02.conf"}, "/home/certs/test.aaa.com.server.pem"},
		{"seed001-compose-unicast", []string{"--haproxy", "haproxy.cfg", "--keepalived", "master=keepalived-master.conf", "--keepalived", "slave=keepalived-slave.conf"}, ""},
		{"seed004-exchange-2dc", []string{"--haproxy", "node1=haproxy-node1.cfg", "--haproxy", "node2=haproxy-node2.cfg",
			"--keepalived", "node1=keepalived-master.conf", "--keepalived", "node2=keepalived-slave.conf", "--datacenter", "node1=dc1", "--datacenter", "node2=dc2"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			var args []string
			for _, a := range tt.args {
				if strings.HasSuffix(a, ".cfg") || strings.HasSuffix(a, ".conf") {
					node, file, ok := strings.Cut(a, "=")
					if !ok {
						node, file = "", a
					}
					a = filepath.Join(root, tt.dir, file)
					if node != "" {
						a = node + "=" + a
					}
				}
				args = append(args, a)
			}
			out := filepath.Join(t.TempDir(), "cluster.yaml")
			var so, se bytes.Buffer
			if code := importer.RunCLI(append(args, "-o", out), &so, &se); code != 0 {
				t.Fatalf("vipgate import: exit %d\n%s", code, se.String())
			}
			if tt.missing != "" && !strings.Contains(se.String(), "bind crt "+tt.missing+": not readable") {
				t.Errorf("no warning about %s:\n%s", tt.missing, se.String())
			}
			var co, ce bytes.Buffer
			code := runCheck([]string{out}, &co, &ce)
			if tt.missing == "" {
				if code != 0 {
					data, _ := os.ReadFile(out)
					t.Fatalf("vipgate check: exit %d\n%s\n%s", code, ce.String(), data)
				}
				return
			}
			if code != 1 || !strings.Contains(ce.String(), "certificate "+tt.missing) || !strings.Contains(ce.String(), "1 problem(s)") {
				t.Errorf("vipgate check: exit %d, want only the missing certificate:\n%s", code, ce.String())
			}
		})
	}
}
