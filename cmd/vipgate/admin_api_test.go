package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/stats"
	"github.com/vipgate/vipgate/internal/testenv"
)

const (
	writeTok = "write-token-0123456789"
	readTok  = "read-token-0123456789ab"
)

func apiNode(t *testing.T) (*node, string) {
	t.Helper()
	a := startGreeter(t, "a", "127.0.0.1:0")
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	n := startNodeWith(t, fmt.Sprintf(`
frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    check: {kind: tcp, inter: 50ms}
    servers: [{name: a, address: %q}]
`, fe, a.addr), fmt.Sprintf("tokens: [%s], read_tokens: [%s]", writeTok, readTok))
	return n, fe
}

type call struct {
	method, path, body, token string
	header                    map[string]string
	cookie                    string
}

func (n *node) do(t *testing.T, c call) (int, string) {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, n.url()+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "vipgate_token", Value: c.cookie})
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := n.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminAPI: every endpoint, with its auth rules and bad input.
func TestAdminAPI(t *testing.T) {
	n, _ := apiNode(t)
	cases := []struct {
		name string
		c    call
		code int
		want string // substring of the body
	}{
		{"status", call{method: "GET", path: "/api/v1/status", token: readTok}, 200, `"proxy"`},
		{"status section", call{method: "GET", path: "/api/v1/status/node", token: readTok}, 200, `"datacenter": "dc1"`},
		{"status unknown section", call{method: "GET", path: "/api/v1/status/nope", token: readTok}, 404, `no status section \"nope\"`},
		{"stats", call{method: "GET", path: "/api/v1/stats", token: readTok}, 200, `"backends"`},
		{"checks", call{method: "GET", path: "/api/v1/checks", token: readTok}, 200, `"kind": "tcp"`},
		{"events", call{method: "GET", path: "/api/v1/events?n=5", token: readTok}, 200, `[`},
		{"events bad n", call{method: "GET", path: "/api/v1/events?n=x", token: readTok}, 400, `want a positive number`},
		{"log get", call{method: "GET", path: "/api/v1/log", token: readTok}, 200, `"level": "info"`},
		{"metrics", call{method: "GET", path: "/metrics", token: readTok}, 200, `vipgate_server_up{backend="be",server="a"}`},

		{"no token", call{method: "GET", path: "/api/v1/status"}, 401, `missing bearer token`},
		{"bad token", call{method: "GET", path: "/api/v1/status", token: "wrong-token-0123456789"}, 401, `invalid token`},
		{"read token cannot write", call{method: "POST", path: "/api/v1/servers/be/a/state", token: readTok, body: `{"state":"drain"}`}, 403, `may only read`},
		{"cookie write without csrf header", call{method: "POST", path: "/api/v1/servers/be/a/state", cookie: writeTok, body: `{"state":"drain"}`}, 403, `X-Vipgate-Csrf`},
		{"cookie write with csrf header", call{method: "POST", path: "/api/v1/servers/be/a/state", cookie: writeTok, header: map[string]string{"X-Vipgate-Csrf": "1"}, body: `{"state":"ready"}`}, 200, `"scope": "node"`},
		{"metrics need a token", call{method: "GET", path: "/metrics"}, 401, ``},
		{"pprof needs write", call{method: "GET", path: "/debug/pprof/", token: readTok}, 403, ``},

		{"drain", call{method: "POST", path: "/api/v1/servers/be/a/state", token: writeTok, body: `{"state":"drain"}`}, 200, `"state": "drain"`},
		{"ready", call{method: "POST", path: "/api/v1/servers/be/a/state", token: writeTok, body: `{"state":"ready"}`}, 200, `"state": "ready"`},
		{"bad state", call{method: "POST", path: "/api/v1/servers/be/a/state", token: writeTok, body: `{"state":"sleepy"}`}, 400, `unknown admin state \"sleepy\"`},
		{"unknown server", call{method: "POST", path: "/api/v1/servers/be/zz/state", token: writeTok, body: `{"state":"drain"}`}, 404, `no server be/zz`},
		{"unknown field", call{method: "POST", path: "/api/v1/servers/be/a/state", token: writeTok, body: `{"stat":"drain"}`}, 400, `unknown field`},
		{"not json", call{method: "POST", path: "/api/v1/servers/be/a/state", token: writeTok, body: `drain`}, 400, `bad request body`},
		{"weight", call{method: "POST", path: "/api/v1/servers/be/a/weight", token: writeTok, body: `{"weight":7}`}, 200, `"weight": 7`},
		{"bad weight", call{method: "POST", path: "/api/v1/servers/be/a/weight", token: writeTok, body: `{"weight":300}`}, 400, `out of range 0-256`},
		{"missing weight", call{method: "POST", path: "/api/v1/servers/be/a/weight", token: writeTok, body: `{}`}, 400, `missing weight`},
		{"weight unknown server", call{method: "POST", path: "/api/v1/servers/nope/a/weight", token: writeTok, body: `{"weight":1}`}, 404, `no server nope/a`},
		{"checks off", call{method: "POST", path: "/api/v1/servers/be/a/check", token: writeTok, body: `{"enabled":false}`}, 200, `"checks": false`},
		{"checks on", call{method: "POST", path: "/api/v1/servers/be/a/check", token: writeTok, body: `{"enabled":true}`}, 200, `"checks": true`},
		{"checks missing", call{method: "POST", path: "/api/v1/servers/be/a/check", token: writeTok, body: `{}`}, 400, `missing enabled`},
		{"frontend disable", call{method: "POST", path: "/api/v1/frontends/fe/state", token: writeTok, body: `{"enabled":false}`}, 200, `"enabled": false`},
		{"frontend enable", call{method: "POST", path: "/api/v1/frontends/fe/state", token: writeTok, body: `{"enabled":true}`}, 200, `"enabled": true`},
		{"frontend unknown", call{method: "POST", path: "/api/v1/frontends/zz/state", token: writeTok, body: `{"enabled":true}`}, 404, `no frontend \"zz\"`},
		{"log set", call{method: "PUT", path: "/api/v1/log", token: writeTok, body: `{"level":"warn"}`}, 200, `"level": "warn"`},
		{"log bad", call{method: "PUT", path: "/api/v1/log", token: writeTok, body: `{"level":"loud"}`}, 400, `want debug, info, warn or error`},
		// Back to info: the runtime actions below are logged at info.
		{"log reset", call{method: "PUT", path: "/api/v1/log", token: writeTok, body: `{"level":"info"}`}, 200, `"level": "info"`},
		{"shutdown-sessions", call{method: "POST", path: "/api/v1/servers/be/a/shutdown-sessions", token: writeTok, body: `{}`}, 200, `"sessions": 0`},
		{"shutdown-sessions unknown server", call{method: "POST", path: "/api/v1/servers/be/zz/shutdown-sessions", token: writeTok, body: `{}`}, 404, `no server be/zz`},
		{"cluster action on a standalone node", call{method: "POST", path: "/api/v1/cluster/servers/be/a/state", token: writeTok, body: `{"state":"drain"}`}, 409, `runs standalone`},
		{"stick tables", call{method: "GET", path: "/api/v1/stick", token: readTok}, 200, `"tables"`},
		{"stick unknown table", call{method: "GET", path: "/api/v1/stick/nope", token: readTok}, 404, `no stick table \"nope\"`},
		{"stick bad limit", call{method: "GET", path: "/api/v1/stick/nope?limit=0", token: readTok}, 400, `want a positive number`},
		{"stick clear needs write", call{method: "DELETE", path: "/api/v1/stick/nope", token: readTok}, 403, `may only read`},
		{"stick clear unknown table", call{method: "DELETE", path: "/api/v1/stick/nope", token: writeTok}, 404, `no stick table \"nope\"`},
		{"stick clear key unknown table", call{method: "DELETE", path: "/api/v1/stick/nope/k", token: writeTok}, 404, `no stick table \"nope\"`},
		{"lua", call{method: "GET", path: "/api/v1/lua", token: readTok}, 200, `{`},
		{"unknown endpoint", call{method: "GET", path: "/api/v1/nope", token: readTok}, 404, `"error": "no endpoint GET /api/v1/nope on this node`},
		{"unknown endpoint needs a token", call{method: "GET", path: "/api/v1/nope"}, 401, `missing bearer token`},
		{"config on a standalone node", call{method: "GET", path: "/api/v1/config", token: readTok}, 409, `runs standalone`},
		{"membership on a standalone node", call{method: "GET", path: "/api/v1/cluster/members", token: readTok}, 409, `runs standalone`},
		{"dc failover on a standalone node", call{method: "POST", path: "/api/v1/dc/failover", token: writeTok, body: `{"datacenter":"dc2"}`}, 409, `runs standalone`},
		{"stats page anonymous shows login", call{method: "GET", path: "/stats"}, 401, `id="login"`},
		{"stats page with token", call{method: "GET", path: "/stats", cookie: readTok}, 200, `<title>vipgate statistics</title>`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := n.do(t, c.c)
			if code != c.code || !strings.Contains(body, c.want) {
				t.Fatalf("%s %s: HTTP %d %q; want %d containing %q", c.c.method, c.c.path, code, body, c.code, c.want)
			}
		})
	}
	// Operators' actions are logged (HAProxy: "Server be/a is going DRAIN");
	// refused ones are not.
	for _, want := range []string{
		`level=INFO msg="runtime action" action=state backend=be server=a state=drain client=127.0.0.1:`,
		`msg="runtime action" action=weight backend=be server=a weight=7 client=127.0.0.1:`,
		`msg="runtime action" action=check backend=be server=a checks=false client=`,
		`msg="runtime action" action=shutdown-sessions backend=be server=a sessions=0 client=`,
		`msg="runtime action" action=frontend frontend=fe enabled=false client=`,
	} {
		if !strings.Contains(n.logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(n.logs.String(), "state=sleepy") || strings.Contains(n.logs.String(), "weight=300") {
		t.Error("a refused action was logged as done")
	}
}

// TestAdminActionsTakeEffect: the write endpoints change what the proxy does.
func TestAdminActionsTakeEffect(t *testing.T) {
	n, fe := apiNode(t)
	if name, err := dialName(fe); err != nil || name != "a" {
		t.Fatalf("before: %q %v", name, err)
	}
	if code, body := n.do(t, call{method: "POST", path: "/api/v1/servers/be/a/state", token: writeTok, body: `{"state":"maint"}`}); code != 200 {
		t.Fatalf("maint: %d %s", code, body)
	}
	if name, err := dialName(fe); err == nil {
		t.Fatalf("server in maintenance still served %q", name)
	}
	n.do(t, call{method: "POST", path: "/api/v1/servers/be/a/state", token: writeTok, body: `{"state":"ready"}`})
	if name, err := dialName(fe); err != nil || name != "a" {
		t.Fatalf("after ready: %q %v", name, err)
	}
	if code, _ := n.do(t, call{method: "POST", path: "/api/v1/frontends/fe/state", token: writeTok, body: `{"enabled":false}`}); code != 200 {
		t.Fatal(code)
	}
	if _, err := dialName(fe); err == nil {
		t.Fatal("disabled frontend still accepts")
	}
	var s stats.Snapshot
	if err := n.get("/api/v1/stats", &s); err != nil {
		t.Fatal(err)
	}
	if s.Frontends[0].Status != "STOP" {
		t.Fatalf("frontend status %s after disable", s.Frontends[0].Status)
	}
	n.do(t, call{method: "POST", path: "/api/v1/frontends/fe/state", token: writeTok, body: `{"enabled":true}`})
	if name, err := dialName(fe); err != nil || name != "a" {
		t.Fatalf("re-enabled frontend: %q %v", name, err)
	}
}

// TestMetricsParse: /metrics is valid Prometheus text exposition.
func TestMetricsParse(t *testing.T) {
	n, _ := apiNode(t)
	fams := scrape(t, n)
	for _, want := range []string{
		"vipgate_frontend_sessions_total", "vipgate_backend_connect_time_seconds", "vipgate_server_status",
		"vipgate_server_request_time_seconds", "vipgate_backend_up", "go_goroutines",
	} {
		if _, ok := fams[want]; !ok {
			t.Errorf("metric family %s missing", want)
		}
	}
}
