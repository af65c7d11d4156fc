package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestUsageListsEveryCommand: the top-level usage names every command and
// the subcommands of those that have them.
func TestUsageListsEveryCommand(t *testing.T) {
	var b bytes.Buffer
	usage(&b)
	out := b.String()
	for name, c := range commands() {
		want := "  " + name + " "
		if c.subs != "" {
			want = c.summary + ": " + c.subs
		}
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"alerts   alerting: test, status", "stick show|clear", "dc failover", "shutdown-sessions"} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	// Every ctl action family is in the summary.
	for _, fam := range []string{"server ", "frontend ", "stick ", "dc ", "log "} {
		if !strings.Contains(commands()["ctl"].subs, fam) {
			t.Errorf("ctl summary lacks %q", fam)
		}
	}
}
