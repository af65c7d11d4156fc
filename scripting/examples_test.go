package scripting

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/proxy"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// The shipped examples (examples/lua) are loaded through the config loader
// exactly as an operator's document is, then exercised.

type exampleLive struct {
	fakeLive
	healthy bool
	reason  string
}

func (e *exampleLive) LocalHealthy(names []string) (bool, string) {
	return e.healthy, e.reason + strings.Join(names, ",")
}

func loadExamples(t *testing.T, live LiveState, mod func(*config.Lua)) (*Runtime, *events.Bus) {
	t.Helper()
	c, err := config.LoadFile("../examples/lua/cluster.yaml")
	if err != nil {
		t.Fatalf("examples/lua/cluster.yaml: %v", err)
	}
	c.Lua.Defaults.Timeout = config.Duration(10 * time.Second) // see newRig
	if mod != nil {
		mod(&c.Lua)
	}
	bus := events.New("n1", "dc1")
	rt := New(Options{Bus: bus, Live: live})
	if err := rt.Apply(&c.Lua); err != nil {
		t.Fatal(err)
	}
	return rt, bus
}

func TestExampleCanary(t *testing.T) {
	canary := upstream.NewServer("app-canary", "canary1", "127.0.0.1:9011", 1)
	live := &exampleLive{fakeLive: fakeLive{"app-canary": {canary}}}
	rt, _ := loadExamples(t, live, nil)
	h, err := rt.Hook("canary.route")
	if err != nil {
		t.Fatal(err)
	}
	do := func(hdr http.Header, client string) (string, *httptest.ResponseRecorder) {
		txn := httpTxn("GET", "/", "", hdr)
		if client != "" {
			txn.Client = netip.MustParseAddrPort(client)
		}
		d, err := h.Route(context.Background(), txn)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		for k, v := range txn.HTTP.ResponseHeader {
			rec.Header()[k] = v
		}
		return d.Backend, rec
	}
	if b, rec := do(http.Header{"X-Canary": {"1"}}, ""); b != "app-canary" || rec.Header().Get("X-Canary") != "1" {
		t.Errorf("header: backend %q", b)
	}
	if b, _ := do(http.Header{"Cookie": {"canary=1"}}, ""); b != "app-canary" {
		t.Errorf("cookie: backend %q", b)
	}
	if b, _ := do(http.Header{"X-Canary": {"0"}}, "198.18.200.1:1000"); b != "" {
		// 198.18.200.1 is outside the 5% bucket with this hash.
		t.Errorf("no canary wanted: backend %q", b)
	}
	// About 5% of clients by address.
	n := 0
	for i := 0; i < 1000; i++ {
		if b, _ := do(nil, fmt.Sprintf("198.18.%d.%d:1000", i/250, i%250+1)); b == "app-canary" {
			n++
		}
	}
	if n < 20 || n > 90 {
		t.Errorf("%d of 1000 clients on the canary, want about 50", n)
	}
	canary.SetHealth(upstream.Down, "test")
	if b, _ := do(http.Header{"X-Canary": {"1"}}, ""); b != "" {
		t.Errorf("canary down: backend %q, want the default", b)
	}
}

func TestExampleStickyUser(t *testing.T) {
	ex1 := upstream.NewServer("exchange", "ex1", "127.0.0.1:9021", 1)
	ex2 := upstream.NewServer("exchange", "ex2", "127.0.0.1:9022", 1)
	ex3 := upstream.NewServer("exchange", "ex3", "127.0.0.1:9023", 1)
	live := &exampleLive{fakeLive: fakeLive{"exchange": {ex1, ex2, ex3}}}
	rt, _ := loadExamples(t, live, nil)
	h, _ := rt.Hook("sticky.route")
	server := func(user string) string {
		txn := httpTxn("GET", "/owa/", "", http.Header{"X-User": {user}})
		d, err := h.Route(context.Background(), txn)
		if err != nil {
			t.Fatal(err)
		}
		return d.Server
	}
	first := map[string]string{}
	count := map[string]int{}
	for i := 0; i < 300; i++ {
		u := fmt.Sprintf("user%d@example.com", i)
		first[u] = server(u)
		count[first[u]]++
	}
	for u, s := range first {
		if server(u) != s {
			t.Fatalf("user %s moved without a reason: %s then %s (stats %+v)", u, s, server(u), rt.Stats())
		}
	}
	for _, s := range []string{"ex1", "ex2", "ex3"} {
		if count[s] < 50 {
			t.Errorf("server %s has only %d of 300 users: %v", s, count[s], count)
		}
	}
	// ex2 goes down: only its users move; they come back when it returns.
	ex2.SetHealth(upstream.Down, "test")
	for u, s := range first {
		now := server(u)
		if s != "ex2" && now != s {
			t.Errorf("user %s moved from %s to %s though %s is up", u, s, now, s)
		}
		if now == "ex2" {
			t.Errorf("user %s sent to the down server", u)
		}
	}
	ex2.SetHealth(upstream.Up, "test")
	for u, s := range first {
		if server(u) != s {
			t.Errorf("user %s did not return to %s (now %q)", u, s, server(u))
		}
	}
	// From the cookie or the query parameter too; no user: no opinion.
	txn := httpTxn("GET", "/owa/", "user=user1@example.com", nil)
	if d, _ := h.Route(context.Background(), txn); d.Server != first["user1@example.com"] {
		t.Errorf("query parameter: %+v", d)
	}
	if d, _ := h.Route(context.Background(), httpTxn("GET", "/", "", nil)); d != (proxy.Decision{}) {
		t.Errorf("no user: %+v", d)
	}
}

func TestExampleSMTPCheck(t *testing.T) {
	rt, _ := loadExamples(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	good := smtpServer(t, "220 mx1.example.com ESMTP ready")
	if res := rt.Check(ctx, "smtp.check", CheckTarget{Addr: good, Params: map[string]string{"helo": "gw"}}); !res.OK || !strings.Contains(res.Reason, "220 mx1") {
		t.Errorf("good: %+v", res)
	}
	bad := smtpServer(t, "421 too busy")
	if res := rt.Check(ctx, "smtp.check", CheckTarget{Addr: bad}); res.OK || res.Reason != "banner: 421 too busy" {
		t.Errorf("busy: %+v", res)
	}
}

func TestExampleExchangeCheck(t *testing.T) {
	var mu sync.Mutex
	state := 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st := state
		mu.Unlock()
		if r.URL.Path != "/ews/healthcheck.htm" || r.Host != "mail.example.com" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(st)
		if st == 200 {
			io.WriteString(w, "<HTML><BODY><H1>200 OK</H1><BR/>EX1.example.com</BODY></HTML>")
		}
	}))
	defer srv.Close()
	rt, _ := loadExamples(t, nil, nil)
	params := map[string]string{"vdir": "ews", "host": "mail.example.com", "scheme": "http", "fqdn": "ex1.example.com"}
	check := func() CheckResult {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return rt.Check(ctx, "exchange.check", CheckTarget{Addr: srv.Listener.Addr().String(), Params: params})
	}
	if res := check(); !res.OK || res.Reason != "ews OK" {
		t.Errorf("healthy: %+v", res)
	}
	mu.Lock()
	state = 503
	mu.Unlock()
	if res := check(); res.OK || res.Reason != "ews: HTTP 503" {
		t.Errorf("out of service: %+v", res)
	}
	mu.Lock()
	state = 200
	mu.Unlock()
	params["fqdn"] = "ex2.example.com"
	if res := check(); res.OK || !strings.Contains(res.Reason, "another server") {
		t.Errorf("wrong server: %+v", res)
	}
}

func TestExampleTrackProxy(t *testing.T) {
	var mu sync.Mutex
	status := 200
	vip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	}))
	defer vip.Close()
	a := upstream.NewServer("app", "a", "127.0.0.1:1", 1)
	b := upstream.NewServer("app", "b", "127.0.0.1:2", 1)
	live := &exampleLive{fakeLive: fakeLive{"app": {a, b}}, healthy: true}
	rt, _ := loadExamples(t, live, nil)
	params := map[string]string{"url": vip.URL + "/healthz", "frontends": "web, owa", "backend": "app", "degraded_delta": "-10"}
	track := func() CheckResult {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return rt.Check(ctx, "track.proxy", CheckTarget{Params: params})
	}
	if res := track(); !res.OK || res.HasDelta || res.Reason != "serving" {
		t.Errorf("healthy: %+v", res)
	}
	b.SetHealth(upstream.Down, "test")
	if res := track(); !res.OK || !res.HasDelta || res.Delta != -10 || res.Reason != "1/2 servers up" {
		t.Errorf("degraded: %+v", res)
	}
	mu.Lock()
	status = 502
	mu.Unlock()
	if res := track(); res.OK || res.Reason != "via VIP: HTTP 502" {
		t.Errorf("VIP failing: %+v", res)
	}
	live.healthy, live.reason = false, "frontend not listening: "
	if res := track(); res.OK || res.Reason != "local proxy: frontend not listening: web,owa" {
		t.Errorf("local proxy down: %+v", res)
	}
}

func TestExampleNotifyHandler(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	rt, bus := loadExamples(t, nil, func(l *config.Lua) {
		l.Plugin("notify").Config["webhook"] = hook.URL + "/hook"
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rt.Run(ctx)
	testenv.Eventually(t, 10*time.Second, "webhook receives the event", func() bool {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n == 0 {
			bus.Publish(events.Event{Kind: events.ServerDown, Level: events.Err, Subject: "exchange/ex1", Message: "ex1 is DOWN"})
		}
		return n > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(bodies[0], `"text":"[err] n1 server.down: ex1 is DOWN"`) || !strings.Contains(bodies[0], `"subject":"exchange/ex1"`) {
		t.Errorf("webhook body %s", bodies[0])
	}
}

// TestExampleSMTPCheckAgainstExim runs the shipped SMTP check against a
// real Exim speaking SMTP on a loopback socket (socat hands each
// connection to `exim4 -bs`).
func TestExampleSMTPCheckAgainstExim(t *testing.T) {
	testenv.RequireTool(t, "exim4")
	testenv.RequireTool(t, "socat")
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "socat", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", port), "EXEC:exim4 -bs")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	testenv.Eventually(t, 10*time.Second, "socat listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	rt, _ := loadExamples(t, nil, nil)
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	res := rt.Check(cctx, "smtp.check", CheckTarget{Backend: "smtp", Server: "mx1", Addr: addr, Params: map[string]string{"helo": "gw.example.com"}})
	if !res.OK || !strings.Contains(res.Reason, "ESMTP Exim") {
		t.Fatalf("exim: %+v", res)
	}
}
