package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vipgate/vipgate/internal/testenv"
)

// evalString runs js in the page and returns its string result.
func evalString(ctx context.Context, t *testing.T, js string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// text is the text of the first element matching css ("" when none).
func text(ctx context.Context, t *testing.T, css string) string {
	t.Helper()
	return evalString(ctx, t, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.textContent : ""; })()`, css))
}

// waitFor polls until the element css matches contains want.
func waitFor(ctx context.Context, t *testing.T, d time.Duration, css, want string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for got := text(ctx, t, css); !strings.Contains(got, want); got = text(ctx, t, css) {
		if time.Now().After(deadline) {
			t.Fatalf("%s shows %q, want %q", css, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkFirstRefresh waits for the page's first refresh asked after now
// (a failover to dc2 committed and pushed) and checks that it shows dc2
// active and mail.example.com answering dc2's address.
func checkFirstRefresh(ctx context.Context, t *testing.T) {
	t.Helper()
	num := func(js string) int64 {
		v, _ := strconv.ParseInt(evalString(ctx, t, js), 10, 64)
		return v
	}
	committed := num(`String(Date.now())`)
	testenv.Eventually(t, 10*time.Second, "the page's first refresh asked after the commit", func() bool {
		return num(`document.body.dataset.asked || "0"`) > committed
	})
	if got := text(ctx, t, `#banner [data-active]`); got != "dc2" {
		t.Errorf("after one refresh the banner shows %q active, want dc2", got)
	}
	if got := text(ctx, t, `tr[data-dns="mail.example.com."] td[data-answer]`); !strings.Contains(got, "198.18.2.100") {
		t.Errorf("after one refresh mail answers %q, want 198.18.2.100", got)
	}
	if got := text(ctx, t, `[data-dc="dc2"]`); !strings.Contains(got, "ACTIVE") {
		t.Errorf("dc2's card: %q, want ACTIVE", got)
	}
}

// TestClusterViewInBrowser loads the stats page of a raft gateway in
// headless Chromium, fails the cluster over to the other datacenter, and
// checks that the first refresh after the commit shows the new active
// datacenter and the DNS answer it implies, with no raw value anywhere.
// `make screenshots` keeps its screenshot for the docs.
func TestClusterViewInBrowser(t *testing.T) {
	testenv.Short(t)
	a := startGreeter(t, "a", "127.0.0.1:0")
	dnsAddr := func() string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }
	nodes := startRaftNodes(t, fmt.Sprintf(`
datacenters:
  - {name: dc1, role: primary, networks: [198.18.10.0/24]}
  - {name: dc2, networks: [198.18.20.0/24]}
failover: {mode: manual}
frontends: [{name: web, bind: "127.0.0.1:0", default_backend: app}]
backends:
  - name: app
    check: {kind: tcp, inter: 100ms}
    servers: [{name: a, address: %q}]
dns:
  zones:
    - name: example.com
      ns: [ns1.example.com]
      records: [{name: ns1, type: A, data: 198.18.1.53}]
      services:
        - {name: mail, policy: failover, vips: {dc1: [198.18.1.100], dc2: [198.18.2.100]}}
        - {name: vdi, policy: topology, vips: {dc1: [198.18.1.101], dc2: [198.18.2.101]}}
`, a.addr), fmt.Sprintf("tokens: [%s]", writeTok), fmt.Sprintf("dns: {listen: [%q]}\n", dnsAddr()),
		fmt.Sprintf("name: t2\ndatacenter: dc2\ndns: {listen: [%q]}\n", dnsAddr()),
		"name: w\nrole: witness\n")
	n := nodes[0]

	ctx := newBrowser(t)
	loginSteps(ctx, t, "http://"+n.admin+"/stats", writeTok, `#banner [data-active]`)
	waitText := func(css, want string) { t.Helper(); waitFor(ctx, t, 20*time.Second, css, want) }
	waitText(`#banner [data-active]`, "dc1")
	waitText(`tr[data-dns="mail.example.com."] td[data-answer]`, "198.18.1.100")
	// The member list (who leads may change on a loaded machine: the
	// timeouts are short).
	waitText(`[data-card="Raft"]`, "t2")
	waitText(`[data-card="Raft"]`, "witness")
	// dc2's gateway reports it healthy: a failover there moves DNS too.
	waitText(`[data-dc="dc2"] .pill.good`, "healthy")
	checkNoRawValues(ctx, t)

	// 503 while an election runs: the operator would try again.
	testenv.Eventually(t, 20*time.Second, "the failover committed", func() bool {
		code, body := n.do(t, call{method: "POST", path: "/api/v1/dc/failover", token: writeTok,
			body: `{"datacenter": "dc2", "reason": "browser test"}`})
		if code != 200 && code != 503 {
			t.Fatalf("failover: HTTP %d %s", code, body)
		}
		return code == 200
	})
	// Once the node's subsystems follow the commit (cluster/state pushed
	// it: DNS answers by it), the next status document the page draws
	// must show it.
	testenv.Eventually(t, 10*time.Second, "dc2 pushed to the node's subsystems", func() bool {
		var d struct {
			Active string `json:"active"`
			Pushed struct {
				Active string `json:"active"`
			} `json:"pushed"`
		}
		return n.get("/api/v1/dc", &d) == nil && d.Active == "dc2" && d.Pushed.Active == "dc2"
	})
	checkFirstRefresh(ctx, t)
	if got := text(ctx, t, `#banner`); !strings.Contains(got, "browser test") || !strings.Contains(got, "ago") {
		t.Errorf("banner %q does not say why and when", got)
	}
	screenshot(ctx, t, "stats-cluster.png")
	checkNoRawValues(ctx, t)

	// The witness's page: the cluster view without proxy, VRRP or DNS.
	wctx := newBrowser(t)
	loginSteps(wctx, t, "http://"+nodes[2].admin+"/stats", writeTok, `#banner [data-active]`)
	if got := text(wctx, t, `#banner [data-active]`); got != "dc2" {
		t.Errorf("the witness's banner shows %q active, want dc2", got)
	}
	if got := text(wctx, t, `[data-card="Raft"]`); !strings.Contains(got, "w ") && !strings.Contains(got, "witness") {
		t.Errorf("the witness's raft card: %q", got)
	}
	checkNoRawValues(wctx, t)
	screenshot(wctx, t, "stats-witness.png")
}
