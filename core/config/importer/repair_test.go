package importer

import (
	"fmt"
	"strings"
	"testing"
)

// Hundreds of elements the schema refuses are all dropped, each with a
// warning at its own line, in a few rounds.
func TestRepairManyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("backend b\n  server s 198.18.1.1:80\n")
	const n = 300
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "frontend f%d\n  bind 198.18.0.1:80\n  default_backend b\n", i)
	}
	r := importHA(t, b.String())
	if got := len(r.Cluster.Frontends); got != 1 {
		t.Fatalf("%d frontends kept, want 1", got)
	}
	if len(r.Warnings) != n-1 {
		t.Fatalf("%d warnings, want %d", len(r.Warnings), n-1)
	}
	// The first dropped bind is the second frontend's (line 7).
	if w := r.Warnings[0].String(); !strings.HasPrefix(w, `h.cfg:7: bind 198.18.0.1:80: dropped: bind "198.18.0.1:80" is already used by frontend "f0"`) {
		t.Errorf("first warning = %s", w)
	}
}

func TestRepairCascade(t *testing.T) {
	// A weight HAProxy accepts in no version, a server that is the
	// backend's only one: the server goes, then the empty backend, then the
	// rule and the frontend that used it.
	r := importHA(t, "frontend f\n  bind :80\n  use_backend b if { src 198.18.0.0/16 }\nbackend b\n  server s 198.18.1.1:80 weight 999\n")
	wantWarnings(t, r, []string{
		"h.cfg:1: frontend f: dropped: frontend \"f\" has neither default_backend nor rules",
		"h.cfg:3: use_backend b: dropped: backend \"b\" is not defined",
		"h.cfg:4: backend b: dropped: backend \"b\" has no servers",
		"h.cfg:5: server s: dropped: weight 999 out of range 0-256",
	}, true)
	assertEmpty(t, r.Cluster)
}
