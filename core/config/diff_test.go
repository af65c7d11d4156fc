package config

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     []string // lines that must appear
		empty    bool
	}{
		{name: "same", old: "a: 1\nb: 2\n", new: "a: 1\nb: 2", empty: true},
		{name: "trailing space only", old: "a: 1  \n", new: "a: 1\n", empty: true},
		{name: "change", old: "a: 1\nb: 2\nc: 3\n", new: "a: 1\nb: 5\nc: 3\n", want: []string{"-b: 2", "+b: 5", " a: 1", "@@ -1,3 +1,3 @@"}},
		{name: "add at end", old: "a: 1\n", new: "a: 1\nb: 2\n", want: []string{"+b: 2"}},
		{name: "from nothing", old: "", new: "a: 1\n", want: []string{"+a: 1", "@@ -1,0 +1,1 @@"}},
		{name: "two hunks", old: "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", new: "x\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ny\n", want: []string{"-1", "+x", "-12", "+y", "@@ -10,3 +10,3 @@"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diff("old", []byte(tt.old), "new", []byte(tt.new), 2)
			if tt.empty {
				if d != "" {
					t.Fatalf("want no diff, got\n%s", d)
				}
				return
			}
			lines := strings.Split(d, "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("diff lacks %q:\n%s", w, d)
				}
			}
		})
	}
}

func TestNodeRaftSection(t *testing.T) {
	base := "name: n1\ndatacenter: dc1\n"
	tests := []struct {
		name, raft, wantErr string
	}{
		{"none", "", ""},
		{"ok bootstrap", "raft:\n  listen: 127.0.0.1:9901\n  bootstrap: true\n  tls: {ca: c, cert: a, key: b}\n", ""},
		{"no tls", "raft:\n  listen: 127.0.0.1:9901\n  bootstrap: true\n", "raft.tls"},
		{"wildcard without advertise", "raft:\n  listen: 0.0.0.0:9901\n  join: [10.0.0.1:9901]\n  tls: {ca: c, cert: a, key: b}\n", "set raft.advertise"},
		{"neither bootstrap nor join", "raft:\n  listen: 127.0.0.1:9901\n  tls: {ca: c, cert: a, key: b}\n", "bootstrap: true"},
		{"lease above heartbeat", "raft:\n  listen: 127.0.0.1:9901\n  bootstrap: true\n  heartbeat_timeout: 1s\n  leader_lease_timeout: 2s\n  tls: {ca: c, cert: a, key: b}\n", "leader_lease_timeout"},
		{"join without listen", "raft:\n  join: [127.0.0.1:1]\n", "raft needs a listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode("node.yaml", []byte(base+tt.raft))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n.Raft.Enabled() && n.Raft.HeartbeatTimeout.D() != DefaultRaftHeartbeat {
					t.Errorf("default heartbeat %v", n.Raft.HeartbeatTimeout.D())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want error with %q, got %v", tt.wantErr, err)
			}
		})
	}
}
