package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// TestStatusCommand: `vipgate status` against a node: the show-stat-like
// table, one section, --json for scripts, and a clear error without a
// token.
func TestStatusCommand(t *testing.T) {
	n, fe := apiNode(t)
	testenv.Eventually(t, 10*time.Second, "server a checked", func() bool {
		_, ok := n.serverRow("be", "a")
		return ok
	})
	if name, err := dialName(fe); err != nil || name != "a" {
		t.Fatalf("traffic: %q %v", name, err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runStatus(context.Background(), append(args, "--admin", n.admin, "--token", readTok), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errs := run()
	if code != 0 {
		t.Fatalf("status: %d %s", code, errs)
	}
	lines := strings.Split(out, "\n")
	if lines[0] != "== node ==" {
		t.Errorf("first section %q, want node", lines[0])
	}
	for _, want := range []string{
		"PROXY  NAME      STATUS  WEIGHT  SCUR  SMAX  SLIM  STOT",
		"fe     FRONTEND  OPEN",
		"be     BACKEND   UP",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	var row string
	for _, l := range lines {
		if strings.HasPrefix(l, "be     a ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 8 || f[2] != "UP" || f[3] != "1" || f[7] != "1" {
		t.Errorf("server row %q: want UP, weight 1, 1 session in total", row)
	}
	if code, out, _ = run("node"); code != 0 || !strings.Contains(out, "datacenter:") || strings.Contains(out, "PROXY") {
		t.Errorf("one section: %d\n%s", code, out)
	}
	code, out, _ = run("--json")
	var doc map[string]json.RawMessage
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc["proxy"] == nil {
		t.Errorf("--json: %d %.200s", code, out)
	}
	if code, _, errs = run("nosuch"); code != 1 || !strings.Contains(errs, `no status section "nosuch"`) {
		t.Errorf("unknown section: %d %s", code, errs)
	}
	var o, e bytes.Buffer
	if code := runStatus(context.Background(), []string{"--admin", n.admin}, &o, &e); code != 1 || !strings.Contains(e.String(), "missing bearer token") {
		t.Errorf("without a token: %d %s", code, e.String())
	}
}
