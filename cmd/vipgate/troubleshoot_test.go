package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testenv"
)

// cli runs a vipgate command line against node n (its admin address and
// write token) and returns the exit status, stdout and stderr.
func (n *node) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(t.Context(), append(args, "--admin", n.admin, "--token", writeTok), &out, &errb)
	return code, out.String(), errb.String()
}

// TestApplyIfVersion: apply --if-version N commits only while version N is
// the committed one; a later apply naming the old version is refused with
// the versions named, nothing changed, even when its document is the
// committed one. Of concurrent writes naming the same version exactly one
// wins: the raft log decides, not a read before the write.
func TestApplyIfVersion(t *testing.T) {
	a := startGreeter(t, "a", "127.0.0.1:0")
	doc := func(weight int) string {
		return fmt.Sprintf("frontends: [{name: fe, bind: \"127.0.0.1:0\", default_backend: be}]\nbackends: [{name: be, servers: [{name: a, address: %q, weight: %d}]}]\n", a.addr, weight)
	}
	n := startRaftNode(t, doc(1), "tokens: ["+writeTok+"]")
	dir := t.TempDir()
	file := func(weight int) string {
		f := filepath.Join(dir, fmt.Sprintf("w%d.yaml", weight))
		os.WriteFile(f, []byte(doc(weight)), 0o600)
		return f
	}
	var v1 uint64
	testenv.Eventually(t, 20*time.Second, "the seed committed", func() bool {
		var out struct{ Version uint64 }
		return n.get("/api/v1/config", &out) == nil && out.Version > 0 && func() bool { v1 = out.Version; return true }()
	})

	code, out, errs := n.cli(t, "apply", "-f", file(2), "--if-version", fmt.Sprint(v1))
	if code != 0 || !strings.Contains(out, fmt.Sprintf("committed version %d", v1+1)) {
		t.Fatalf("apply --if-version %d (current): %d\n%s%s", v1, code, out, errs)
	}
	for _, w := range []int{3, 2} { // another document, then the committed one
		code, out, errs = n.cli(t, "apply", "-f", file(w), "--if-version", fmt.Sprint(v1))
		want := fmt.Sprintf("the configuration changed meanwhile (now version %d, expected %d)", v1+1, v1)
		if code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, "nothing was changed") {
			t.Errorf("apply weight %d --if-version %d (stale): %d, stderr lacks %q:\n%s%s", w, v1, code, want, out, errs)
		}
	}
	// --json: the refusal as an object.
	code, out, _ = n.cli(t, "status", "--json", "nosuchsection")
	var je struct {
		Error  string
		Status int
	}
	if code != 1 || json.Unmarshal([]byte(out), &je) != nil || je.Status != 404 {
		t.Errorf("status --json of a missing section: %d %q", code, out)
	}

	// Concurrent writers, each having reviewed version v1+1: one wins.
	const writers = 6
	var wg sync.WaitGroup
	codes := make([]int, writers)
	outs := make([]string, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var o, e bytes.Buffer
			codes[i] = execute(context.Background(), []string{"apply", "-f", file(10 + i), "--if-version", fmt.Sprint(v1 + 1), "--admin", n.admin, "--token", writeTok}, &o, &e)
			outs[i] = o.String() + e.String()
		}()
	}
	wg.Wait()
	won := 0
	for i, c := range codes {
		switch {
		case c == 0:
			won++
		case c == 1 && strings.Contains(outs[i], "changed meanwhile"):
		default:
			t.Errorf("writer %d: exit %d\n%s", i, c, outs[i])
		}
	}
	var cur struct{ Version uint64 }
	if err := n.get("/api/v1/config", &cur); err != nil {
		t.Fatal(err)
	}
	if won != 1 || cur.Version != v1+2 {
		t.Fatalf("%d of %d concurrent writers at version %d won; committed version %d (want one, %d)\n%q", won, writers, v1+1, cur.Version, v1+2, outs)
	}
}

// TestEventsAndChecks: vipgate events prints the history with the reason
// of each change and filters it; --follow prints new events as they
// happen; vipgate status checks shows the failing server's state, streak,
// last result and reason, and its events.
func TestEventsAndChecks(t *testing.T) {
	good := startGreeter(t, "good", "127.0.0.1:0")
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) // nothing listens
	n := startNodeWith(t, fmt.Sprintf(`frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends:
  - name: be
    check: {kind: tcp, inter: 100ms, rise: 2, fall: 2}
    servers: [{name: ok, address: %q}, {name: gone, address: %q}]
`, good.addr, dead), "tokens: ["+writeTok+"]")

	testenv.Eventually(t, 10*time.Second, "be/gone DOWN", func() bool {
		st, _ := n.serverRow("be", "gone")
		return st == "DOWN"
	})
	code, out, errs := n.cli(t, "events", "--subject", "be/gone")
	if code != 0 || !strings.Contains(out, "server.down") || !strings.Contains(out, "server be/gone is DOWN: ") || strings.Contains(out, "be/ok") {
		t.Fatalf("events --subject be/gone: %d\n%s%s", code, out, errs)
	}
	code, out, _ = n.cli(t, "events", "--kind", "server", "--level", "warning", "--json")
	sc := bufio.NewScanner(strings.NewReader(out))
	lines := 0
	for sc.Scan() {
		var ev events.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || !strings.HasPrefix(string(ev.Kind), "server.") || ev.Level > events.Warning {
			t.Errorf("events --kind server --level warning --json: %q (%v)", sc.Text(), err)
		}
		lines++
	}
	if code != 0 || lines == 0 {
		t.Errorf("events --json: exit %d, %d lines", code, lines)
	}
	if code, _, errs := n.cli(t, "events", "--kind", "nosuch"); code != 0 || !strings.Contains(errs, "no matching event") {
		t.Errorf("events --kind nosuch: %d %q", code, errs)
	}
	if code, _, errs := n.cli(t, "events", "--level", "loud"); code != 2 || !strings.Contains(errs, "loud") {
		t.Errorf("events --level loud: %d %q", code, errs)
	}

	code, out, errs = n.cli(t, "status", "checks", "be/gone")
	for _, want := range []string{"ADDRESS", dead, "DOWN", "tcp", "FAILED", "connection refused", "recent events of be/gone", "server.down"} {
		if !strings.Contains(out, want) {
			t.Errorf("status checks be/gone lacks %q: %d\n%s%s", want, code, out, errs)
		}
	}
	if strings.Contains(out, good.addr) {
		t.Errorf("status checks be/gone shows be/ok:\n%s", out)
	}
	code, out, _ = n.cli(t, "status", "checks")
	if code != 0 || !strings.Contains(out, good.addr) || !strings.Contains(out, dead) {
		t.Errorf("status checks: %d\n%s", code, out)
	}
	if code, _, errs := n.cli(t, "status", "checks", "be/nosuch"); code != 1 || !strings.Contains(errs, "no server be/nosuch") {
		t.Errorf("status checks be/nosuch: %d %q", code, errs)
	}

	// --follow: a drain made after the stream started arrives on it.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		var errb bytes.Buffer
		done <- execute(ctx, []string{"events", "--follow", "-n", "1", "--kind", "server.admin", "--admin", n.admin, "--token", writeTok}, pw, &errb)
		pw.Close()
	}()
	lines2 := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines2 <- sc.Text()
		}
		close(lines2)
	}()
	// Act until the event shows (the stream may not be open at the first drain).
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	state := "drain"
	for got := false; !got; {
		select {
		case l := <-lines2:
			got = strings.Contains(l, "be/ok")
		case <-tick.C:
			if code, out, errs := n.cli(t, "ctl", "server", state, "be/ok"); code != 0 {
				t.Fatalf("ctl server %s: %d %s%s", state, code, out, errs)
			}
			state = map[string]string{"drain": "ready", "ready": "drain"}[state]
		case <-deadline:
			t.Fatal("events --follow printed no server.admin event of be/ok")
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("events --follow, interrupted: exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events --follow did not stop when interrupted")
	}
}
