package importer

import (
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

func TestHAProxySource(t *testing.T) {
	clientIP := &config.Source{UseSrc: config.UseSrcClientIP, SetupRouting: true}
	tests := []struct {
		name      string
		cfg       string
		be, s1    *config.Source // want on the backend and its first server
		warns     []string
		noWarning bool
	}{
		{name: "usesrc clientip", cfg: "backend b\n  source 0.0.0.0 usesrc clientip\n  server s1 198.18.1.1:25\n", be: clientIP, noWarning: true},
		{name: "usesrc client", cfg: "backend b\n  source 0.0.0.0 usesrc client\n  server s1 198.18.1.1:25\n", be: clientIP,
			warns: []string{"h.cfg:2: source usesrc client: the client's port is not kept"}},
		{name: "fixed address", cfg: "backend b\n  source 198.18.0.5\n  server s1 198.18.1.1:25\n", be: &config.Source{Address: "198.18.0.5"}, noWarning: true},
		{name: "fixed address and port", cfg: "backend b\n  source 198.18.0.5:1025-2000\n  server s1 198.18.1.1:25\n", be: &config.Source{Address: "198.18.0.5"},
			warns: []string{"h.cfg:2: source 198.18.0.5:1025-2000: the source port (range) is not kept"}},
		{name: "any address", cfg: "backend b\n  source 0.0.0.0\n  server s1 198.18.1.1:25\n", noWarning: true},
		{name: "from defaults", cfg: "defaults\n  mode tcp\n  source 0.0.0.0 usesrc clientip\n" + srv, be: clientIP, noWarning: true},
		{name: "foreign address", cfg: "backend b\n  source 0.0.0.0 usesrc 198.18.9.9\n  server s1 198.18.1.1:25\n",
			warns: []string{"h.cfg:2: source usesrc 198.18.9.9: only clientip (and client) translate"}},
		{name: "interface", cfg: "backend b\n  source 198.18.0.5 interface eth1\n  server s1 198.18.1.1:25\n", be: &config.Source{Address: "198.18.0.5"},
			warns: []string{"h.cfg:2: source interface eth1: not supported"}},
		{name: "per server", cfg: "backend b\n  server s1 198.18.1.1:25 source 0.0.0.0 usesrc clientip check\n  server s2 198.18.1.2:25 check\n",
			s1: clientIP, noWarning: true},
		{name: "frontend", cfg: "frontend f\n  bind :25\n  source 0.0.0.0 usesrc clientip\n  default_backend b\n" + srv,
			warns: []string{"h.cfg:3: source: only allowed in a backend"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := importHA(t, tt.cfg)
			b := r.Cluster.Backend("b")
			if b == nil {
				t.Fatalf("no backend b: %+v", r.Cluster.Backends)
			}
			if !sameSource(b.Source, tt.be) {
				t.Errorf("backend source %+v, want %+v", b.Source, tt.be)
			}
			if !sameSource(b.Servers[0].Source, tt.s1) {
				t.Errorf("server source %+v, want %+v", b.Servers[0].Source, tt.s1)
			}
			if len(b.Servers) > 1 && b.Servers[1].Source != nil {
				t.Errorf("s2 has a source: %+v", b.Servers[1].Source)
			}
			if strings.Contains(tt.cfg, "check") && (b.Check == nil) {
				t.Errorf("the words after source were not read as server keywords: %+v", b.Servers)
			}
			wantWarnings(t, r, tt.warns, false)
			if tt.noWarning {
				for _, w := range r.Warnings {
					if strings.Contains(w.Directive, "source") {
						t.Errorf("warning %s", w)
					}
				}
			}
			if _, err := config.Parse("cluster.yaml", r.YAML); err != nil {
				t.Errorf("the imported document does not load: %v", err)
			}
			if (tt.be.ClientIP() || tt.s1.ClientIP()) && !strings.Contains(string(r.YAML), "their default route must point to") {
				t.Errorf("no note on the servers' route:\n%s", r.YAML)
			}
		})
	}
}

func sameSource(a, b *config.Source) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
