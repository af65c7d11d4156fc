package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/stats"
	"github.com/vipgate/vipgate/internal/testenv"
)

// greeter is a TCP backend that says its name; it can be killed and revived
// on the same port.
type greeter struct {
	name, addr string
	mu         sync.Mutex
	ln         net.Listener
	conns      []net.Conn
}

func startGreeter(t *testing.T, name, addr string) *greeter {
	t.Helper()
	g := &greeter{name: name, addr: addr}
	g.revive(t)
	t.Cleanup(g.kill)
	return g
}

func (g *greeter) revive(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	testenv.Eventually(t, 5*time.Second, "rebinding "+g.addr, func() bool {
		ln, err = net.Listen("tcp", g.addr)
		return err == nil
	})
	g.mu.Lock()
	g.ln = ln
	g.addr = ln.Addr().String()
	g.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.conns = append(g.conns, c)
			g.mu.Unlock()
			fmt.Fprintf(c, "%s\n", g.name)
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
}

func (g *greeter) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		g.ln.Close()
	}
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

type node struct {
	t     *testing.T
	admin string
	token string // a write token, when the node has tokens
	stop  func()
	// With admin TLS: the https client and the CA file for the CLI.
	hc     *http.Client
	caFile string
	// raftCA is the raft CA file (startRaftNode): a PEM CA for tests.
	raftCA string
	// logs is what the node logged.
	logs *testenv.LogBuffer
	// clusterFile is the cluster document the node reads (and re-reads on
	// SIGHUP when it runs standalone).
	clusterFile string
	// cancel ends the node's context (as SIGTERM does) without waiting;
	// exited is closed once runNode has returned.
	cancel func()
	exited chan struct{}
}

// url is the admin API's base URL.
func (n *node) url() string {
	if n.hc != nil {
		return "https://" + n.admin
	}
	return "http://" + n.admin
}

func (n *node) client() *http.Client {
	if n.hc != nil {
		return n.hc
	}
	return http.DefaultClient
}

// adminToken extracts the first token from `tokens: [X, ...]`.
func adminToken(extra string) string {
	i := strings.Index(extra, "tokens: [")
	if i < 0 || strings.Contains(extra[:i], "read_") {
		return ""
	}
	rest := extra[i+len("tokens: ["):]
	return strings.Trim(strings.SplitN(strings.SplitN(rest, "]", 2)[0], ",", 2)[0], ` "'`)
}

// startNode runs a whole node in-process from files, as `vipgate run` does.
func startNode(t *testing.T, cluster string) *node {
	t.Helper()
	return startNodeWith(t, cluster, "")
}

// startNodeWith adds adminExtra (YAML flow-map entries) to the node's admin
// section, e.g. `tokens: [...]`.
func startNodeWith(t *testing.T, cluster, adminExtra string) *node {
	t.Helper()
	return startNodeFile(t, cluster, adminExtra, "")
}

// startNodeFile adds nodeExtra (YAML lines, e.g. a raft section) to the
// node file; the cluster document is its config (the seed, with raft).
// The node is t1 in dc1 unless nodeExtra begins with its own "name:" (and
// then gives its datacenter too).
func startNodeFile(t *testing.T, cluster, adminExtra, nodeExtra string) *node {
	t.Helper()
	return startNodeTLS(t, cluster, adminExtra, nodeExtra, "")
}

// startNodeTLS serves the admin API over TLS when caFile is set (adminExtra
// then holds the tls: entry); the test's clients trust caFile.
func startNodeTLS(t *testing.T, cluster, adminExtra, nodeExtra, caFile string) *node {
	t.Helper()
	dir := t.TempDir()
	admin := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if adminExtra != "" {
		adminExtra = ", " + adminExtra
	}
	logSection := "log: {level: info}\n"
	if strings.HasPrefix(nodeExtra, "log:") || strings.Contains(nodeExtra, "\nlog:") {
		logSection = ""
	}
	ident := "name: t1\ndatacenter: dc1\n"
	if strings.HasPrefix(nodeExtra, "name:") {
		ident = ""
	}
	nodeYAML := fmt.Sprintf("%sdata_dir: %s\nadmin: {listen: %q%s}\n%s%s", ident, filepath.Join(dir, "data"), admin, adminExtra, logSection, nodeExtra)
	if err := os.WriteFile(filepath.Join(dir, "node.yaml"), []byte(nodeYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(cluster), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := config.LoadNodeFile(filepath.Join(dir, "node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n.Config = filepath.Join(dir, "cluster.yaml")
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	exited := make(chan struct{})
	logs := &testenv.LogBuffer{}
	set, level := newLogs(n.Log, logs)
	go func() {
		runErr = runNodeLogs(ctx, n, set, level)
		close(exited)
	}()
	nd := &node{t: t, admin: admin, token: adminToken(adminExtra), caFile: caFile, logs: logs, clusterFile: n.Config, cancel: cancel, exited: exited}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		nd.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	var once sync.Once
	nd.stop = func() {
		once.Do(func() {
			cancel()
			<-exited
			if runErr != nil {
				t.Errorf("node: %v", runErr)
			}
		})
	}
	t.Cleanup(nd.stop)
	// The admin API answers before the first snapshot is applied: wait
	// for the proxy to hold the document's frontends too.
	want := 0
	if c, err := config.Parse("cluster.yaml", []byte(cluster)); err == nil {
		want = len(c.Frontends)
	}
	if strings.Contains(nodeExtra, "role: witness") {
		// A witness runs no proxy: it is up once it has a raft section.
		testenv.Eventually(t, 10*time.Second, "admin API and raft", func() bool {
			var st map[string]any
			return nd.get("/api/v1/status", &st) == nil && st["raft"] != nil
		})
		return nd
	}
	testenv.Eventually(t, 10*time.Second, "admin API and the first config applied", func() bool {
		var s stats.Snapshot
		return nd.get("/api/v1/stats", &s) == nil && len(s.Frontends) >= want
	})
	return nd
}

func (n *node) get(path string, out any) error {
	req, _ := http.NewRequest("GET", n.url()+path, nil)
	if n.token != "" {
		req.Header.Set("Authorization", "Bearer "+n.token)
	}
	resp, err := n.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (n *node) serverStatus(backend, server string) string {
	st, _ := n.serverRow(backend, server)
	return st
}

// serverRow returns the status and whether the last check passed.
func (n *node) serverRow(backend, server string) (string, bool) {
	var s stats.Snapshot
	if err := n.get("/api/v1/stats", &s); err != nil {
		return "error: " + err.Error(), false
	}
	for _, b := range s.Backends {
		for _, sv := range b.Servers {
			if b.Name == backend && sv.Name == server {
				return sv.Status, sv.CheckOK != nil && *sv.CheckOK
			}
		}
	}
	return "missing", false
}

// waitUpAndChecked waits until every named server of backend is UP and
// has passed a check.
func (n *node) waitUpAndChecked(backend string, servers ...string) {
	n.t.Helper()
	testenv.Eventually(n.t, 10*time.Second, fmt.Sprintf("%s UP and checked", servers), func() bool {
		for _, name := range servers {
			if st, ok := n.serverRow(backend, name); st != "UP" || !ok {
				return false
			}
		}
		return true
	})
}

func dialName(addr string) (string, error) { return dialSay(addr, "") }

// dialSay connects, sends first (when not empty: persistence that needs
// the client's first bytes waits for them) and returns the greeter's name.
func dialSay(addr, first string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if first != "" {
		if _, err := c.Write([]byte(first)); err != nil {
			return "", err
		}
	}
	l, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(l), err
}

// TestNodeHealthLifecycle: a backend killed mid-test is marked down after
// `fall` checks, no connection goes to it once marked, it comes back after
// `rise`, and each transition is one event with its reason.
func TestNodeHealthLifecycle(t *testing.T) {
	a := startGreeter(t, "a", "127.0.0.1:0")
	b := startGreeter(t, "b", "127.0.0.1:0")
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	n := startNode(t, fmt.Sprintf(`
frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    retries: 0
    check: {kind: tcp, inter: 50ms, rise: 3, fall: 2}
    servers:
      - {name: a, address: %q}
      - {name: b, address: %q}
`, fe, a.addr, b.addr))

	// Servers start UP (init_state up); wait until each has passed a check,
	// so that b then needs `fall` failures to go down.
	n.waitUpAndChecked("be", "a", "b")
	b.kill()
	testenv.Eventually(t, 10*time.Second, "b marked DOWN", func() bool { return n.serverStatus("be", "b") == "DOWN" })
	for i := 0; i < 100; i++ {
		name, err := dialName(fe)
		if err != nil || name != "a" {
			t.Fatalf("connection %d after b was marked down: %q, %v", i, name, err)
		}
	}
	var checks []struct {
		Server   string `json:"server"`
		Failures uint64 `json:"failures"`
	}
	if err := n.get("/api/v1/checks", &checks); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Server == "b" && c.Failures < 2 {
			t.Fatalf("b marked down after %d failed checks, want fall=2", c.Failures)
		}
	}
	b.revive(t)
	testenv.Eventually(t, 10*time.Second, "b back UP", func() bool { return n.serverStatus("be", "b") == "UP" })
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		name, err := dialName(fe)
		if err != nil {
			t.Fatal(err)
		}
		seen[name] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("after recovery, connections went to %v", seen)
	}

	var evs []events.Event
	if err := n.get("/api/v1/events", &evs); err != nil {
		t.Fatal(err)
	}
	var downs, ups int
	for _, e := range evs {
		if e.Attr("server") != "b" {
			continue
		}
		switch e.Kind {
		case events.ServerDown:
			downs++
			if e.Attr("reason") != "connection refused" {
				t.Errorf("down reason %q, want connection refused", e.Attr("reason"))
			}
		case events.ServerUp:
			ups++
		}
	}
	if downs != 1 || ups != 1 {
		t.Fatalf("events for b: %d down, %d up; want 1 and 1", downs, ups)
	}
}

// TestNodePassiveHealth: observe layer4 takes out a server whose checks
// pass but whose traffic port refuses connections (here the check goes to
// another port), after error_limit failed connections, and the clients
// never see one: the failed attempts are redispatched.
func TestNodePassiveHealth(t *testing.T) {
	a := startGreeter(t, "a", "127.0.0.1:0")
	_, aPort, _ := net.SplitHostPort(a.addr)
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	// inter and fastinter of an hour: after the first round of checks
	// only the traffic can change a server's state during the test.
	n := startNode(t, fmt.Sprintf(`
frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    retries: 1
    redispatch: true
    check: {kind: tcp, port: %s, inter: 1h, fastinter: 1h, rise: 3, fall: 3, observe: layer4, error_limit: 3, on_error: mark-down}
    servers:
      - {name: a, address: %q}
      - {name: b, address: %q}
`, fe, aPort, a.addr, dead))
	n.waitUpAndChecked("be", "a", "b")
	for i := 0; n.serverStatus("be", "b") != "DOWN"; i++ {
		if i == 100 {
			t.Fatal("b still UP after 100 connections, 3 consecutive refusals should take it down")
		}
		if name, err := dialName(fe); err != nil || name != "a" {
			t.Fatalf("connection %d: %q, %v; want a (b's refusals redispatched)", i, name, err)
		}
	}
	for i := 0; i < 30; i++ {
		if name, err := dialName(fe); err != nil || name != "a" {
			t.Fatalf("connection %d after b was marked down: %q, %v", i, name, err)
		}
	}
	var checks []struct {
		Server          string `json:"server"`
		Failures        uint64 `json:"failures"`
		TrafficFailures uint64 `json:"traffic_failures"`
	}
	if err := n.get("/api/v1/checks", &checks); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Server == "b" && (c.TrafficFailures != 1 || c.Failures != 0) {
			t.Errorf("b: %d traffic failures and %d failed checks, want 1 and 0", c.TrafficFailures, c.Failures)
		}
	}
	var evs []events.Event
	if err := n.get("/api/v1/events", &evs); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Kind == events.ServerDown && e.Attr("server") == "b" {
			if r := e.Attr("reason"); !strings.Contains(r, "3 consecutive errors in traffic") || !strings.Contains(r, "connection refused") {
				t.Errorf("down reason %q, want the traffic errors", r)
			}
			return
		}
	}
	t.Fatalf("no server.down event for b in %+v", evs)
}

// TestNodePassiveHealthLayer7: observe layer7 takes out a server whose
// health check passes but whose traffic gets 503s, after error_limit of
// them; 501 does not count (the request was wrong, not the server).
func TestNodePassiveHealthLayer7(t *testing.T) {
	serve := func(name string, status *atomic.Int32) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" {
				return
			}
			w.WriteHeader(int(status.Load()))
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	var okStatus, badStatus atomic.Int32
	okStatus.Store(200)
	badStatus.Store(501)
	a, b := serve("a", &okStatus), serve("b", &badStatus)
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	n := startNode(t, fmt.Sprintf(`
defaults: {mode: http}
frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    check: {kind: http, http: {path: /health}, inter: 1h, fastinter: 1h, rise: 3, fall: 3, observe: layer7, error_limit: 3, on_error: mark-down}
    servers:
      - {name: a, address: %q}
      - {name: b, address: %q}
`, fe, a, b))
	n.waitUpAndChecked("be", "a", "b")
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	get := func() (int, string) {
		resp, err := c.Get("http://" + fe + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	b501 := 0
	for range 20 {
		if st, name := get(); name == "b" && st == 501 {
			b501++
		}
	}
	if b501 < 3 || n.serverStatus("be", "b") != "UP" {
		t.Fatalf("after %d answers 501 from b, b is %s: want it UP (501 is not a server error)", b501, n.serverStatus("be", "b"))
	}
	badStatus.Store(503)
	for i := 0; n.serverStatus("be", "b") != "DOWN"; i++ {
		if i == 100 {
			t.Fatal("b still UP after 100 requests, 3 consecutive 503s should take it down")
		}
		get()
	}
	for i := 0; i < 20; i++ {
		if st, name := get(); st != 200 || name != "a" {
			t.Fatalf("request %d after b was marked down: %d from %q", i, st, name)
		}
	}
	// The event is published after the state changes: poll for it.
	var evs []events.Event
	var down *events.Event
	testenv.Eventually(t, 10*time.Second, "server.down event for b", func() bool {
		evs = nil
		if err := n.get("/api/v1/events", &evs); err != nil {
			return false
		}
		for i := range evs {
			if evs[i].Kind == events.ServerDown && evs[i].Attr("server") == "b" {
				down = &evs[i]
				return true
			}
		}
		return false
	})
	if r := down.Attr("reason"); r != "3 consecutive errors in traffic (last: HTTP 503)" {
		t.Errorf("down reason %q", r)
	}
}

// TestNodeChecksSendProxy: a backend whose servers speak the PROXY
// protocol (send_proxy) is checked with a PROXY header too, as HAProxy does
// when the check goes to the traffic port; the server here answers nothing
// to a connection that does not start with one.
func TestNodeChecksSendProxy(t *testing.T) {
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			addr := testenv.Serve(t, func(c net.Conn) {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				head := make([]byte, 12)
				if _, err := io.ReadFull(c, head); err != nil {
					return
				}
				if string(head[:6]) != "PROXY " && string(head) != "\r\n\r\n\x00\r\nQUIT\n" {
					return // no PROXY header: hang up
				}
				io.WriteString(c, "pp\n")
				io.Copy(io.Discard, c)
			})
			fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			n := startNode(t, fmt.Sprintf(`
frontends: [{name: fe, bind: %q, default_backend: be}]
backends:
  - name: be
    send_proxy: %s
    check: {kind: tcp, expect: "pp", inter: 100ms, rise: 1, fall: 1}
    servers: [{name: pp, address: %q}]
`, fe, version, addr))
			n.waitUpAndChecked("be", "pp")
			if name, err := dialName(fe); err != nil || name != "pp" {
				t.Fatalf("through the proxy: %q, %v", name, err)
			}
		})
	}
}

// TestNodeHTTPStickOnSrc: an http-mode backend sticks on the client
// address (HAProxy's `stick on src`, which the Exchange guides use for
// ActiveSync and RPC): every request of a client, over new connections
// too, goes to the server it was first given, where roundrobin alone
// would alternate; another client network is balanced on its own.
func TestNodeHTTPStickOnSrc(t *testing.T) {
	serve := func(name string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	a, b := serve("a"), serve("b")
	port := testenv.FreePort(t)
	startNode(t, fmt.Sprintf(`
defaults: {mode: http}
stick_tables: [{name: clients, type: ip, size: 1000, expire: 30m}]
frontends: [{name: fe, bind: ["127.0.0.1:%d", "127.0.0.2:%d"], default_backend: be}]
backends:
  - name: be
    balance: {algorithm: roundrobin}
    stick: {table: clients, on: src}
    servers:
      - {name: a, address: %q}
      - {name: b, address: %q}
`, port, port, a, b))
	from := func(src string) string {
		// A new connection per request, from the given client address.
		tr := &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}
		c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
		resp, err := c.Get(fmt.Sprintf("http://%s:%d/", src, port))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	first := from("127.0.0.1")
	for i := range 10 {
		if got := from("127.0.0.1"); got != first {
			t.Fatalf("request %d from 127.0.0.1 went to %s, want %s (stuck)", i, got, first)
		}
	}
	// The other client is balanced (roundrobin's next server) and then
	// sticks as well.
	second := from("127.0.0.2")
	if second == first {
		t.Fatalf("the second client also went to %s: want roundrobin's next server", second)
	}
	for i := range 5 {
		if got := from("127.0.0.2"); got != second {
			t.Fatalf("request %d from 127.0.0.2 went to %s, want %s", i, got, second)
		}
	}
}

// TestNodeReloadBadConfigKeepsRunning: a bad file on SIGHUP is refused and
// the node keeps serving the old configuration.
func TestNodeFileSourceRefusesBadReload(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	good := "frontends: [{name: fe, bind: '127.0.0.1:0', default_backend: be}]\nbackends: [{name: be, servers: [{name: s, address: 'h:1'}]}]\n"
	os.WriteFile(f, []byte(good), 0o600)
	var logs testenv.LogBuffer
	src := newFileSource(f, &config.Node{Name: "t1", Datacenter: "dc1"}, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx)
	select {
	case <-src.Updates():
	case <-time.After(5 * time.Second):
		t.Fatal("no first snapshot")
	}
	os.WriteFile(f, []byte("frontends: [{name: fe, bnid: x}]\n"), 0o600)
	src.Reload()
	testenv.Eventually(t, 5*time.Second, "bad reload refused", func() bool { return src.rejected.Load() == 1 })
	os.WriteFile(f, nil, 0o600)
	src.Reload()
	testenv.Eventually(t, 5*time.Second, "empty file refused", func() bool { return src.rejected.Load() == 2 })
	os.WriteFile(f, []byte(strings.Replace(good, "h:1", "h:2", 1)), 0o600)
	src.Reload()
	select {
	case c := <-src.Updates():
		if c.Backends[0].Servers[0].Address != "h:2" {
			t.Fatalf("got %s", c.Backends[0].Servers[0].Address)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("good reload after a bad one not delivered")
	}
	// One line per document run, with its version: the refused ones do
	// not count.
	for _, want := range []string{`msg="configuration loaded" file=` + f + ` version=1`, `msg="configuration reloaded" file=` + f + ` version=2`} {
		if n := strings.Count(logs.String(), want+"\n"); n != 1 {
			t.Errorf("%d lines %q in:\n%s", n, want, logs.String())
		}
	}
}
