package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckExplainsDirectRouting: vipgate check says what the servers of a
// mode dr frontend need (the VIP on lo, the ARP sysctls), which no check
// of the document can see; a proxied frontend gets no such note.
func TestCheckExplainsDirectRouting(t *testing.T) {
	tests := []struct{ name, mode, want string }{
		{"dr", "dr", `frontend "web" forwards 198.18.40.100:80 in direct routing (mode dr): each server of backend "web" needs the VIP on its loopback (ip addr add 198.18.40.100/32 dev lo) with net.ipv4.conf.all.arp_ignore=1 and arp_announce=2`},
		{"proxy", "tcp", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c.yaml")
			bind := "198.18.40.100:80"
			if tt.mode != "dr" {
				bind = "198.18.40.1:80"
			}
			doc := "vrrp:\n  instances:\n    - {name: vi1, interface: eth0, vrid: 51, vips: [\"198.18.40.100/24\"]}\n" +
				"frontends:\n  - {name: web, mode: " + tt.mode + ", bind: \"" + bind + "\", default_backend: web}\n" +
				"backends:\n  - {name: web, servers: [{name: s1, address: \"198.18.40.21:80\"}]}\n"
			s := checkOutput(t, f, doc)
			if tt.want == "" && strings.Contains(s, "direct routing") || tt.want != "" && !strings.Contains(s, tt.want) {
				t.Errorf("want %q in:\n%s", tt.want, s)
			}
		})
	}
}

// checkOutput writes doc to f and returns what vipgate check prints on
// stdout (it must accept the document).
func checkOutput(t *testing.T, f, doc string) string {
	t.Helper()
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := runCheck([]string{f}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	return out.String()
}
