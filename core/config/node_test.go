package config

import (
	"strings"
	"testing"
)

// The role override of `vipgate run --witness` is applied before the file
// is validated: the file is judged as the role it will run as.
func TestParseNodeAs(t *testing.T) {
	const raft = "raft:\n  listen: 127.0.0.1:9901\n  join: [127.0.0.1:9902]\n  tls: {ca: c, cert: a, key: b}\n"
	tests := []struct {
		name, doc, role string
		wantRole        string
		wantErr         string // substring; "" means valid
	}{
		{"witness file without datacenter, overridden", "name: w\n" + raft, RoleWitness, RoleWitness, ""},
		{"same file as a gateway", "name: w\n" + raft, "", "", "needs a datacenter"},
		{"role in the file", "name: w\nrole: witness\n" + raft, "", RoleWitness, ""},
		{"gateway file run as witness", "name: g\ndatacenter: dc1\n" + raft, RoleWitness, RoleWitness, ""},
		{"override wins over the file", "name: w\nrole: gateway\n" + raft, RoleWitness, RoleWitness, ""},
		{"witness without raft", "name: w\n", RoleWitness, "", "witness runs only raft"},
		{"witness cannot be a nonvoter", "name: w\n" + raft + "  nonvoter: true\n", RoleWitness, "", "cannot be a nonvoter"},
		{"error keeps file and line", "name: w\nrole: witness\nlog: {level: loud}\n" + raft, RoleWitness, "", "node.yaml:3"},
		{"gateway without override", "name: g\ndatacenter: dc1\n", "", RoleGateway, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNodeAs("node.yaml", []byte(tt.doc), tt.role)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error with %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantRole != "" && n.Role != tt.wantRole {
				t.Errorf("role %q, want %q", n.Role, tt.wantRole)
			}
		})
	}
}

func TestNodeMetricsLabels(t *testing.T) {
	for _, tc := range []struct {
		labels string
		ok     bool
	}{{"", true}, {"vipgate", true}, {"haproxy", true}, {"promex", false}} {
		_, err := ParseNode("node.yaml", []byte("name: n1\ndatacenter: dc1\nmetrics: {labels: "+tc.labels+"}\n"))
		if (err == nil) != tc.ok {
			t.Errorf("labels %q: err %v, want ok %v", tc.labels, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "metrics.labels") {
			t.Errorf("labels %q: error does not name metrics.labels: %v", tc.labels, err)
		}
	}
}

func TestNodeDRDatapath(t *testing.T) {
	for _, tc := range []struct {
		datapath string
		ok       bool
	}{{`""`, true}, {"auto", true}, {"xdp", true}, {"af_packet", true}, {"ipvs", false}} {
		_, err := ParseNode("node.yaml", []byte("name: n1\ndatacenter: dc1\ndr: {datapath: "+tc.datapath+"}\n"))
		if (err == nil) != tc.ok {
			t.Errorf("datapath %s: err %v, want ok %v", tc.datapath, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "dr.datapath") {
			t.Errorf("datapath %s: error does not name dr.datapath: %v", tc.datapath, err)
		}
	}
}
