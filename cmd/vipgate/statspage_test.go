package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vipgate/vipgate/core/stats"
	"github.com/vipgate/vipgate/internal/testenv"
)

// artifactDir is where tests keep files for people to look at (CI uploads
// or prints it): $VIPGATE_ARTIFACTS, else artifacts/ at the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("VIPGATE_ARTIFACTS")
	if d == "" {
		_, file, _, _ := runtime.Caller(0)
		d = filepath.Join(filepath.Dir(file), "..", "..", "artifacts")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// newBrowser starts headless Chromium (a fresh profile, nothing fetched
// in the background) for one test; the context ends with the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	chromium := testenv.RequireTool(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // --headless, --no-first-run…
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	return ctx
}

// loginSteps open the page and log in with tok.
func loginSteps(ctx context.Context, t *testing.T, url, tok, waitFor string) {
	t.Helper()
	steps := []struct {
		name string
		a    chromedp.Action[chromedp.Void]
	}{
		{"navigate", chromedp.Navigate(url)},
		{"login form", chromedp.WaitVisible(chromedp.CSS("#login"))},
		{"type token", chromedp.SendKeys(chromedp.CSS("#token"), tok)},
		{"submit", chromedp.Click(chromedp.CSS(`#loginform button[type="submit"]`))},
		{"loaded", chromedp.WaitVisible(chromedp.CSS(waitFor))},
		{"refresh 2s", chromedp.SetValue(chromedp.CSS("#refresh"), "2")},
	}
	for _, st := range steps {
		if err := chromedp.Do(ctx, st.a); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
}

// checkNoRawValues fails when the page shows what a person should never
// read: JSON nulls, Go zero times, JavaScript's undefined/NaN.
func checkNoRawValues(ctx context.Context, t *testing.T) string {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"null", "0001-01-01", "undefined", "NaN", "[object Object]", "Invalid Date"} {
		if i := strings.Index(text, bad); i >= 0 {
			t.Errorf("page shows %q: …%s…", bad, text[max(0, i-80):min(len(text), i+80)])
		}
	}
	return text
}

// screenshot keeps a full-page PNG in the artifacts directory.
func screenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
}

// TestStatsPageInBrowser drives the stats page in headless Chromium: log in
// with a token, see a server go down after its backend is stopped, click
// "drain" on another and see the API report it drained. A screenshot is kept.
func TestStatsPageInBrowser(t *testing.T) {
	testenv.Short(t)
	a := startGreeter(t, "a", "127.0.0.1:0")
	b := startGreeter(t, "b", "127.0.0.1:0")
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	n := startNodeWith(t, fmt.Sprintf(`
frontends: [{name: web, bind: %q, default_backend: app}]
backends:
  - name: app
    check: {kind: tcp, inter: 100ms, rise: 2, fall: 2}
    servers:
      - {name: a, address: %q}
      - {name: b, address: %q}
`, fe, a.addr, b.addr), fmt.Sprintf("tokens: [%s]", writeTok))

	ctx := newBrowser(t)

	statusOf := func(server string) string {
		return fmt.Sprintf(`(() => { const c = document.querySelector('table[data-backend="app"] tr[data-server=%q] td[data-status]'); return c ? c.textContent : ""; })()`, server)
	}
	waitStatus := func(server, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](statusOf(server)))
			if err != nil {
				t.Fatal(err)
			}
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("page shows %s as %q, want %q", server, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Anonymous: the login form, no data.
	loginSteps(ctx, t, "http://"+n.admin+"/stats", writeTok, `table[data-backend="app"]`)
	waitStatus("a", "UP")
	waitStatus("b", "UP")

	b.kill()
	waitStatus("b", "DOWN")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`table[data-backend="app"] tr[data-server="a"] button[data-act="drain"]`))); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "API reports a drained", func() bool {
		var s stats.Snapshot
		if n.get("/api/v1/stats", &s) != nil {
			return false
		}
		return s.Backends[0].Servers[0].Admin == "drain"
	})
	waitStatus("a", "DRAIN")

	// HAProxy's columns: the check code per server.
	for server, code := range map[string]string{"a": "L4OK", "b": "L4CON"} {
		js := fmt.Sprintf(`document.querySelector('table[data-backend="app"] tr[data-server=%q] td[data-check]').textContent`, server)
		if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js)); err != nil || !strings.Contains(got, code) {
			t.Errorf("server %s's last check shows %q (%v), want %s", server, got, err, code)
		}
	}
	// The transitional states are drawn from the status and the last check.
	for _, tc := range []struct{ status, ok, want string }{
		{"UP", "false", "UP ↓"}, {"DOWN", "true", "DOWN ↑"}, {"UP", "true", "UP"}, {"DOWN", "false", "DOWN"}, {"MAINT", "false", "MAINT"},
	} {
		js := fmt.Sprintf(`srvState({status: %q, check: true, check_ok: %s})[0]`, tc.status, tc.ok)
		if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js)); err != nil || got != tc.want {
			t.Errorf("%s with a last check ok=%s is drawn %q (%v), want %q", tc.status, tc.ok, got, err, tc.want)
		}
	}
	screenshot(ctx, t, "stats-page.png")
	// Hide DOWN: b goes, a stays.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#hidedown"))); err != nil {
		t.Fatal(err)
	}
	waitStatus("b", "")
	waitStatus("a", "DRAIN")
	text := checkNoRawValues(ctx, t)
	for _, want := range []string{"server.down", "Backend app", "node t1"} {
		if !strings.Contains(text, want) {
			t.Errorf("page text lacks %q", want)
		}
	}
}
