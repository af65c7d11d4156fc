package proxy

import (
	"fmt"
	"testing"

	"github.com/vipgate/vipgate/core/upstream"
)

// A checked server new to a running backend is out of rotation from the
// moment the data path can see it (before any health manager has run its
// first check), unless its init_state says otherwise; servers present at
// the first apply, unchecked servers and servers of a new backend start
// UP as before.
func TestAddedServerStartsDownUntilChecked(t *testing.T) {
	doc := func(extra string) string {
		return fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    check: {kind: tcp, inter: 1h}
    servers:
      - {name: s1, address: "127.0.0.1:1"}
%s`, extra)
	}
	h := startProxy(t, doc(""))
	if s := h.p.Server("be", "s1"); s.Health() != upstream.Up || h.p.Backend("be").StartState(s) != "up" {
		t.Fatalf("a server present at start: %v, start state %q", s.Health(), h.p.Backend("be").StartState(s))
	}
	err := h.apply(doc(`      - {name: s2, address: "127.0.0.1:2"}
      - {name: s3, address: "127.0.0.1:3", init_state: up}
      - {name: s4, address: "127.0.0.1:4", check: false}
      - {name: s5, address: "127.0.0.1:5", init_state: fully-down}
  - name: other
    check: {kind: tcp, inter: 1h}
    servers: [{name: o1, address: "127.0.0.1:6"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		backend, server string
		health          upstream.Health
		start           string
	}{
		{"be", "s1", upstream.Up, "up"},
		{"be", "s2", upstream.Down, "down"},
		{"be", "s3", upstream.Up, "up"},
		{"be", "s4", upstream.Up, "down"}, // not checked: the state does not apply
		{"be", "s5", upstream.Down, "fully-down"},
		{"other", "o1", upstream.Up, "up"},
	}
	for _, tt := range tests {
		s := h.p.Server(tt.backend, tt.server)
		if s.Health() != tt.health || h.p.Backend(tt.backend).StartState(s) != tt.start {
			t.Errorf("%s/%s: %v, start state %q; want %v, %q", tt.backend, tt.server, s.Health(), h.p.Backend(tt.backend).StartState(s), tt.health, tt.start)
		}
	}
	// A later apply changes nothing for servers it already has.
	if err := h.apply(doc(`      - {name: s2, address: "127.0.0.1:2"}
`)); err != nil {
		t.Fatal(err)
	}
	if s := h.p.Server("be", "s2"); h.p.Backend("be").StartState(s) != "up" {
		t.Errorf("s2 still counts as added after a second apply: %q", h.p.Backend("be").StartState(s))
	}
}
