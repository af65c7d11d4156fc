package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckExplainsTransparentRoute: vipgate check says what the servers
// of a usesrc clientip backend need (their default route through the
// node), which no check of the document itself can see.
func TestCheckExplainsTransparentRoute(t *testing.T) {
	tests := []struct{ name, source, want, not string }{
		{"routing", "{usesrc: clientip, setup_routing: true}", "vipgate installs the routing", "without setup_routing"},
		{"no routing", "{usesrc: clientip}", "without setup_routing: true the node needs the policy routing", "vipgate installs"},
		{"fixed address", "{address: 198.18.0.1}", "", "note:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c.yaml")
			doc := "frontends:\n  - {name: smtp, bind: \"198.18.0.1:25\", default_backend: exch}\nbackends:\n  - name: exch\n    source: " +
				tt.source + "\n    servers:\n      - {name: ex1, address: \"198.18.1.11:25\"}\n"
			s := checkOutput(t, f, doc)
			if tt.want != "" && (!strings.Contains(s, tt.want) || !strings.Contains(s, "default route, must go through the vipgate node")) {
				t.Errorf("want %q and the default route in:\n%s", tt.want, s)
			}
			if strings.Contains(s, tt.not) {
				t.Errorf("%q in:\n%s", tt.not, s)
			}
		})
	}
}
