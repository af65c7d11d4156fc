package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestAppliedServerWaitsForItsFirstCheck: a server that an apply adds to a
// running, checked backend while nothing listens at its address gets no
// connection (none fails) before a check has seen it answer; once it
// listens, its first good check brings it in (server.up, initial=true).
func TestAppliedServerWaitsForItsFirstCheck(t *testing.T) {
	a := startGreeter(t, "a", "127.0.0.1:0")
	bAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) // nothing listens yet
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	doc := func(servers string) string {
		return fmt.Sprintf(`frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    retries: 0
    check: {kind: tcp, inter: 100ms, rise: 2, fall: 2}
    servers: [%s]
`, fe, servers)
	}
	one := fmt.Sprintf("{name: a, address: %q}", a.addr)
	n := startRaftNode(t, doc(one), "tokens: ["+writeTok+"]")
	put := func(yaml string) {
		t.Helper()
		body, _ := json.Marshal(configRequest{YAML: yaml})
		testenv.Eventually(t, 20*time.Second, "config committed", func() bool {
			code, _ := n.do(t, call{method: "POST", path: "/api/v1/config", body: string(body), token: writeTok})
			return code == 200
		})
	}
	put(doc(one) + "# committed once there is a leader\n")
	n.waitUpAndChecked("be", "a")

	put(doc(one + fmt.Sprintf(", {name: b, address: %q}", bAddr)))
	testenv.Eventually(t, 10*time.Second, "b in the running config", func() bool {
		st := n.serverStatus("be", "b")
		return st != "" && !strings.HasPrefix(st, "error")
	})
	for i := 0; i < 60; i++ {
		name, err := dialName(fe)
		if err != nil || name != "a" {
			t.Fatalf("connection %d after b was added: %q, %v (b: %s)", i, name, err, n.serverStatus("be", "b"))
		}
	}
	if st := n.serverStatus("be", "b"); st != "DOWN" {
		t.Fatalf("b, not listening, is %s", st)
	}
	startGreeter(t, "b", bAddr)
	n.waitUpAndChecked("be", "b")
	testenv.Eventually(t, 10*time.Second, "a connection reaches b", func() bool {
		name, err := dialName(fe)
		return err == nil && name == "b"
	})
	var evs []events.Event
	if err := n.get("/api/v1/events?n=1000", &evs); err != nil {
		t.Fatal(err)
	}
	var ups []events.Event
	for _, e := range evs {
		if e.Kind == events.ServerUp && e.Attr("server") == "b" {
			ups = append(ups, e)
		}
	}
	if len(ups) != 1 || ups[0].Attr("initial") != "true" || ups[0].Level != events.Info {
		t.Fatalf("b's server.up events: %+v", ups)
	}
}
