package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/cluster/raft/rafttest"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testenv"
)

func TestCtlRequest(t *testing.T) {
	o := ctlOpts{limit: 100, author: "ann@gw"}
	cl := o
	cl.cluster = true
	for _, tc := range []struct {
		args   string
		o      ctlOpts
		method string
		path   string
		body   any
		err    string
	}{
		{"server drain be/a", o, "POST", "/api/v1/servers/be/a/state", map[string]string{"state": "drain"}, ""},
		{"server maint be/a", cl, "POST", "/api/v1/cluster/servers/be/a/state", map[string]string{"state": "maint", "author": "ann@gw"}, ""},
		{"server weight be/a 7", o, "POST", "/api/v1/servers/be/a/weight", map[string]int{"weight": 7}, ""},
		{"server weight be/a x", o, "", "", nil, `weight "x" is not a number`},
		{"server check disable be/a", o, "POST", "/api/v1/servers/be/a/check", map[string]bool{"enabled": false}, ""},
		{"server shutdown-sessions be/a", o, "POST", "/api/v1/servers/be/a/shutdown-sessions", struct{}{}, ""},
		{"server drain be", o, "", "", nil, "want BACKEND/SERVER"},
		{"server drain be/a/b", o, "", "", nil, "want BACKEND/SERVER"},
		{"server weight be/a 7", cl, "", "", nil, "--cluster applies to server ready|drain|maint only"},
		{"frontend disable web", o, "POST", "/api/v1/frontends/web/state", map[string]bool{"enabled": false}, ""},
		{"stick show ssl", o, "GET", "/api/v1/stick/ssl?limit=100", nil, ""},
		{"stick clear ssl", o, "DELETE", "/api/v1/stick/ssl", nil, ""},
		{"stick clear t a/b c", o, "DELETE", "/api/v1/stick/t/a%2Fb%20c", nil, ""},
		{"stick drop t", o, "", "", nil, "stick needs show TABLE, or clear TABLE [KEY]"},
		{"dc failover dc2", o, "POST", "/api/v1/dc/failover", map[string]any{"datacenter": "dc2", "reason": "", "force": false, "author": "ann@gw"}, ""},
		{"log level warn", o, "PUT", "/api/v1/log", map[string]string{"level": "warn"}, ""},
		{"server", o, "", "", nil, "missing action"},
		{"log level", o, "", "", nil, "log needs level debug|info|warn|error"},
		{"frontend stop web", o, "", "", nil, "frontend needs enable|disable FRONTEND"},
		{"reboot now", o, "", "", nil, `unknown action "reboot now"`},
	} {
		a := strings.Fields(tc.args)
		if tc.args == "stick clear t a/b c" {
			a = []string{"stick", "clear", "t", "a/b c"}
		}
		m, p, b, err := ctlRequest(a, tc.o)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || m != tc.method || p != tc.path || !reflect.DeepEqual(b, tc.body) {
			t.Errorf("%s: %s %s %#v %v; want %s %s %#v", tc.args, m, p, b, err, tc.method, tc.path, tc.body)
		}
	}
}

// ctl runs `vipgate ctl` in-process against n and returns the exit status
// and what it printed.
func (n *node) ctl(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	args = append(args, "--admin", n.url())
	if n.caFile != "" {
		args = append(args, "--cacert", n.caFile)
	}
	if n.token != "" {
		args = append(args, "--token", n.token)
	}
	code := runCtl(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// talkName speaks first: the Lua stick key is computed once the client's
// first bytes are in.
func talkName(addr string) (string, error) { return dialSay(addr, "hello\n") }

// TestCtlNodeActions: the CLI against a real node: stick tables filled by a
// Lua key function (on: lua, through the proxy's hook resolver), shown and
// cleared; node-local drain; shutdown-sessions; refusals of --cluster on a
// standalone node, of a bad token, and an unreachable API.
func TestCtlNodeActions(t *testing.T) {
	a := startGreeter(t, "a", "127.0.0.1:0")
	b := startGreeter(t, "b", "127.0.0.1:0")
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	n := startNodeWith(t, fmt.Sprintf(`
frontends: [{name: fe, bind: %q, default_backend: be, inspect_delay: 5s}]
stick_tables: [{name: tenants, type: string, len: 32, size: 1000}]
backends:
  - name: be
    stick: {table: tenants, on: lua, lua: keys.tenant}
    servers:
      - {name: a, address: %q}
      - {name: b, address: %q}
lua:
  plugins:
    - name: keys
      source: |
        function tenant(txn)
          txn:set_var("stick_key", "tenant/" .. txn:client_ip())
        end
`, fe, a.addr, b.addr), "tokens: ["+writeTok+"]")

	// Every connection sticks to the server the first one got.
	first, err := talkName(fe)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if name, err := talkName(fe); err != nil || name != first {
			t.Fatalf("connection %d: %q %v, want %q (stuck)", i, name, err, first)
		}
	}
	code, out, errs := n.ctl("stick", "show", "tenants")
	if code != 0 || !strings.Contains(out, "tenant/127.0.0.1") || !strings.Contains(out, first) || !strings.Contains(out, "1 entries shown") {
		t.Fatalf("stick show: %d\n%s%s", code, out, errs)
	}
	code, out, errs = n.ctl("stick", "clear", "tenants", "tenant/127.0.0.1")
	if code != 0 || !strings.Contains(out, "ok (node scope): stick clear tenants tenant/127.0.0.1") {
		t.Fatalf("stick clear key: %d\n%s%s", code, out, errs)
	}
	code, _, errs = n.ctl("stick", "clear", "tenants", "tenant/127.0.0.1")
	if code != 1 || !strings.Contains(errs, `has no entry tenant/127.0.0.1 (HTTP 404)`) {
		t.Fatalf("clearing a missing key: %d %s", code, errs)
	}
	if code, _, errs = n.ctl("stick", "clear", "nosuch"); code != 1 || !strings.Contains(errs, `no stick table "nosuch" (HTTP 404)`) {
		t.Fatalf("clearing an unknown table: %d %s", code, errs)
	}
	talkName(fe)
	if code, out, _ = n.ctl("stick", "clear", "tenants"); code != 0 || !strings.Contains(out, "(1 entries removed)") {
		t.Fatalf("stick clear table: %d %s", code, out)
	}

	// Node-local drain: a persistent client keeps its server (HAProxy's
	// drain), a new key is balanced away from it.
	other := map[string]string{"a": "b", "b": "a"}[first]
	talkName(fe) // re-learn the entry
	if code, out, errs = n.ctl("server", "drain", "be/"+first); code != 0 || !strings.Contains(out, "ok (node scope)") {
		t.Fatalf("drain: %d %s %s", code, out, errs)
	}
	if name, _ := talkName(fe); name != first {
		t.Fatalf("persistent client after drain went to %q, want %q", name, first)
	}
	n.ctl("stick", "clear", "tenants")
	if name, _ := talkName(fe); name != other {
		t.Fatalf("new client after drain went to %q, want %q", name, other)
	}
	n.ctl("server", "ready", "be/"+first)

	// shutdown-sessions ends established connections.
	c, err := net.Dial("tcp", fe)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x\n"))
	r := bufio.NewReader(c)
	name, _ := r.ReadString('\n')
	name = strings.TrimSpace(name)
	// At least this session: the earlier clients' sessions may not have
	// ended on the proxy yet (their close is asynchronous); that this one
	// ends is checked below.
	if code, out, errs = n.ctl("server", "shutdown-sessions", "be/"+name); code != 0 || !regexp.MustCompile(`\([1-9]\d* sessions ended\)`).MatchString(out) {
		t.Fatalf("shutdown-sessions: %d %s %s", code, out, errs)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("session still open after shutdown-sessions")
	}

	// Refusals are clear.
	if code, _, errs = n.ctl("server", "drain", "be/a", "--cluster"); code != 1 || !strings.Contains(errs, "runs standalone") || !strings.Contains(errs, "HTTP 409") {
		t.Fatalf("--cluster on a standalone node: %d %s", code, errs)
	}
	var o, e bytes.Buffer
	if code := runCtl(context.Background(), []string{"server", "drain", "be/a", "--admin", n.admin, "--token", "not-the-token-0123"}, &o, &e); code != 1 || !strings.Contains(e.String(), "the token was refused") {
		t.Fatalf("bad token: %d %s", code, e.String())
	}
	e.Reset()
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if code := runCtl(context.Background(), []string{"server", "drain", "be/a", "--admin", dead}, &o, &e); code != 1 || !strings.Contains(e.String(), "cannot reach the admin API at "+dead) {
		t.Fatalf("unreachable API: %d %s", code, e.String())
	}
	e.Reset()
	if code := runCtl(context.Background(), []string{"server", "nap", "be/a"}, &o, &e); code != 2 || !strings.Contains(e.String(), `unknown action "server nap be/a"`) {
		t.Fatalf("unknown action: %d %s", code, e.String())
	}
	// --json prints the API's answer, scope included.
	o.Reset()
	if code := runCtl(context.Background(), []string{"--json", "server", "weight", "be/a", "3", "--admin", n.admin, "--token", writeTok}, &o, &e); code != 0 {
		t.Fatalf("--json: %d %s", code, e.String())
	}
	var ans map[string]any
	if err := json.Unmarshal(o.Bytes(), &ans); err != nil || ans["scope"] != "node" || ans["weight"] != float64(3) {
		t.Fatalf("--json answer %q: %v", o.String(), err)
	}
	// The weight change is an event, as the state changes are (issue 23:
	// it published none, so no alert rule could see it).
	var evs []events.Event
	if err := n.get("/api/v1/events?n=1000", &evs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		if ev.Kind == events.ServerAdmin && ev.Attr("server") == "a" && ev.Attr("weight") == "3" {
			found = true
			if ev.Attr("backend") != "be" || ev.Attr("previous_weight") != "1" || ev.Level != events.Notice {
				t.Errorf("weight event: %+v", ev)
			}
		}
	}
	if !found {
		t.Fatalf("no server.admin event for the weight change among %d events", len(evs))
	}
}

// TestCtlClusterDrain: `ctl server drain --cluster` commits the override
// through raft (a one-node cluster here; the multi-node propagation is in
// cluster/raft/e2e), the proxy applies it, and ready lifts it.
func TestCtlClusterDrain(t *testing.T) {
	a := startGreeter(t, "a", "127.0.0.1:0")
	n := startRaftNode(t, fmt.Sprintf(`
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: a, address: %q}]}]
`, a.addr), "tokens: ["+writeTok+"]")

	var code int
	var out, errs string
	testenv.Eventually(t, 20*time.Second, "cluster drain committed (once there is a leader)", func() bool {
		code, out, errs = n.ctl("server", "drain", "be/a", "--cluster")
		return code == 0
	})
	if !strings.Contains(out, "ok (cluster scope): server drain be/a") || !strings.Contains(out, "committed at raft index") {
		t.Fatalf("cluster drain: %s %s", out, errs)
	}
	testenv.Eventually(t, 10*time.Second, "server DRAIN on the node", func() bool { return n.serverStatus("be", "a") == "DRAIN" })
	if code, _, errs = n.ctl("server", "drain", "be/zz", "--cluster"); code != 1 || !strings.Contains(errs, `backend "be" has no server "zz" (HTTP 422)`) {
		t.Fatalf("unknown server: %d %s", code, errs)
	}
	if code, out, errs = n.ctl("server", "ready", "be/a", "--cluster"); code != 0 {
		t.Fatalf("cluster ready: %d %s %s", code, out, errs)
	}
	testenv.Eventually(t, 10*time.Second, "server UP again", func() bool { return n.serverStatus("be", "a") == "UP" })
}

// TestAdminTLS: the admin API over TLS (admin.tls in the node file); the
// CLI trusts it with --cacert and says what is wrong without it.
func TestAdminTLS(t *testing.T) {
	ca, err := rafttest.NewCA(t.TempDir(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	tf, err := ca.Issue("gw")
	if err != nil {
		t.Fatal(err)
	}
	n := startNodeTLS(t, `
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be}]
backends: [{name: be, servers: [{name: a, address: "127.0.0.1:1"}]}]
`, fmt.Sprintf("tokens: [%s], tls: {cert: %q, key: %q}", writeTok, tf.Cert, tf.Key), "", tf.CA)
	if code, out, errs := n.ctl("server", "drain", "be/a"); code != 0 || !strings.Contains(out, "ok (node scope)") {
		t.Fatalf("ctl over TLS: %d %s %s", code, out, errs)
	}
	if code, body := n.do(t, call{method: "GET", path: "/api/v1/status/node", token: n.token}); code != 200 || !strings.Contains(body, `"name"`) {
		t.Fatalf("status over TLS: %d %s", code, body)
	}
	var o, e bytes.Buffer
	if code := runCtl(context.Background(), []string{"server", "ready", "be/a", "--admin", n.url(), "--token", writeTok}, &o, &e); code != 1 || !strings.Contains(e.String(), "give its CA with --cacert") {
		t.Fatalf("without --cacert: %d %s", code, e.String())
	}
	e.Reset()
	if code := runCtl(context.Background(), []string{"server", "ready", "be/a", "--admin", n.url(), "--cacert", "/nonexistent.pem"}, &o, &e); code != 1 || !strings.Contains(e.String(), "--cacert:") {
		t.Fatalf("bad --cacert: %d %s", code, e.String())
	}
	// Plain HTTP to the TLS port is refused by the server.
	if code := runCtl(context.Background(), []string{"server", "ready", "be/a", "--admin", n.admin, "--token", writeTok}, &o, &e); code != 1 {
		t.Fatalf("plain http to the TLS API: exit %d", code)
	}
}

// TestClientForeignAnswer: an --admin address where something other than
// vipgate answers gives a one-line error that says so, not the other
// program's HTML page; a plain-http call to a TLS admin API says to use https.
func TestClientForeignAnswer(t *testing.T) {
	page := "<!DOCTYPE HTML>\n<html>\n<head><title>Error response</title></head>\n<body>\n<h1>Error response</h1>\n<p>Error code: 404</p>\n</body>\n</html>\n"
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/status" {
			io.WriteString(w, page) // 200, but not JSON
			return
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, page)
	}))
	defer foreign.Close()
	tlsAPI := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsAPI.Close()
	tlsAddr := strings.TrimPrefix(tlsAPI.URL, "https://")
	fAddr := strings.TrimPrefix(foreign.URL, "http://")
	for _, tc := range []struct {
		addr, method, path string
		want               string
	}{
		{fAddr, "POST", "/api/v1/servers/be/a/state", fAddr + ` did not answer as a vipgate admin API (is --admin the right address?): "Error response" (HTTP 404)`},
		{fAddr, "GET", "/api/v1/status", fAddr + ` did not answer as a vipgate admin API (is --admin the right address?): "Error response"`},
		{tlsAddr, "GET", "/api/v1/status", "the admin API at " + tlsAddr + " speaks TLS: use --admin https://" + tlsAddr},
	} {
		c := &adminClient{addr: tc.addr, http: &http.Client{Timeout: 5 * time.Second}}
		var out map[string]any
		err := c.do(context.Background(), tc.method, tc.path, nil, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "<") {
			t.Errorf("%s %s: %v\nwant %s", tc.method, tc.path, err, tc.want)
		}
	}
}

// TestAPIErrorText: a 404 from the API (an unknown config version) is
// printed as the API says, not as "this node runs standalone".
func TestAPIErrorText(t *testing.T) {
	got := apiErrorText("config rollback", "", &apiError{Status: 404, Msg: "no version 99 in the history"})
	if !strings.Contains(got, "no version 99 in the history") || strings.Contains(got, "standalone") {
		t.Errorf("got %q", got)
	}
	got = apiErrorText("apply", "mine.yaml", &apiError{Status: 422, Msg: "cluster.yaml:3:5: frontends.0.bnid: unknown key"})
	if !strings.Contains(got, "mine.yaml:3:5: frontends.0.bnid") || !strings.Contains(got, "nothing was changed") {
		t.Errorf("got %q", got)
	}
}
