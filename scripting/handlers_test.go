package scripting

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testenv"
)

func TestHandlerSelection(t *testing.T) {
	src := `
local seen = {}
function any(ev) seen[#seen+1] = "any:" .. ev.kind end
function down(ev) seen[#seen+1] = "down:" .. ev.attrs.server end
function severe(ev) seen[#seen+1] = "severe:" .. ev.kind end
function report() return true, table.concat(seen, ",") end`
	r := newRig(t, src, func(c *config.Lua) {
		c.Defaults.PoolSize = 1
		c.Plugins[0].Handlers = []config.LuaHandler{
			{Events: config.StringList{"*"}, Function: "any"},
			{Events: config.StringList{"server.down"}, Function: "down"},
			{Events: config.StringList{"*"}, Function: "severe", MinLevel: "err"},
		}
	})
	ctx := context.Background()
	for _, tc := range []struct {
		e         events.Event
		ran, fail int
	}{
		{events.Event{Kind: events.ServerDown, Level: events.Err, Attrs: map[string]string{"server": "s1"}}, 3, 0},
		{events.Event{Kind: events.ServerUp, Level: events.Notice}, 1, 0},
		{events.Event{Kind: events.DCFailover, Level: events.Crit}, 2, 0},
	} {
		ran, failed := r.rt.Dispatch(ctx, tc.e)
		if ran != tc.ran || failed != tc.fail {
			t.Errorf("%s: ran %d failed %d, want %d/%d", tc.e.Kind, ran, failed, tc.ran, tc.fail)
		}
	}
	res := r.rt.Check(ctx, "p.report", CheckTarget{})
	want := "any:server.down,down:s1,severe:server.down,any:server.up,any:dc.failover,severe:dc.failover"
	if res.Reason != want {
		t.Errorf("handlers saw %q, want %q", res.Reason, want)
	}
}

// TestHandlersSeeClusterEventsOnLeaderOnly: like alert mails, a
// cluster-wide event reaches the handlers of the raft leader only.
func TestHandlersSeeClusterEventsOnLeaderOnly(t *testing.T) {
	r := newRig(t, `function h(ev) end`, func(c *config.Lua) {
		c.Plugins[0].Handlers = []config.LuaHandler{{Events: config.StringList{"*"}, Function: "h"}}
	})
	var leader bool
	r.rt.isLeader = func() bool { return leader }
	for _, tc := range []struct {
		e      events.Event
		leader bool
		ran    int
	}{
		{events.Event{Kind: events.DCFailover}, false, 0},
		{events.Event{Kind: events.ConfigApplied}, false, 0},
		{events.Event{Kind: events.ServerDown, Scope: events.Cluster}, false, 0},
		{events.Event{Kind: events.ServerDown}, false, 1},
		{events.Event{Kind: events.DCFailover}, true, 1},
	} {
		leader = tc.leader
		if ran, _ := r.rt.Dispatch(context.Background(), tc.e); ran != tc.ran {
			t.Errorf("%s (scope %s) on a leader=%v: %d handler(s) ran, want %d", tc.e.Kind, tc.e.EffectiveScope(), tc.leader, ran, tc.ran)
		}
	}
}

func TestHandlerEventFields(t *testing.T) {
	r := newRig(t, `
function h(ev)
  assert(ev.kind == "vrrp.transition" and ev.level == "warning" and ev.scope == "local")
  assert(ev.node == "n1" and ev.datacenter == "dc1" and ev.subject == "vi1" and ev.message == "became master")
  assert(ev.attrs.to == "MASTER" and ev.seq > 0 and ev.time > 0 and ev.time_text:find("T"))
end
function boom(ev) error("handler broke") end`, func(c *config.Lua) {
		c.Plugins[0].Handlers = []config.LuaHandler{{Events: config.StringList{"vrrp.transition"}, Function: "h"}, {Events: config.StringList{"config.applied"}, Function: "boom"}}
	})
	e := events.Event{Kind: events.VRRPTransition, Level: events.Warning, Node: "n1", DC: "dc1", Subject: "vi1", Message: "became master",
		Time: time.Now(), Seq: 3, Attrs: map[string]string{"to": "MASTER"}}
	if ran, failed := r.rt.Dispatch(context.Background(), e); ran != 1 || failed != 0 {
		t.Fatalf("ran %d failed %d (errors: %v)", ran, failed, r.rt.Stats().Functions)
	}
	if _, failed := r.rt.Dispatch(context.Background(), events.Event{Kind: events.ConfigApplied}); failed != 1 || r.rt.Errors("p.boom") != 1 {
		t.Fatalf("failing handler not counted")
	}
}

// TestHandlerWebhook runs the bus → handler → HTTP webhook path end to end.
func TestHandlerWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("Content-Type")+" "+string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	r := newRig(t, `
function notify(ev)
  local body = json.encode({text = ev.message, server = ev.attrs.server})
  local r, err = net.http{url = config.url, method = "POST", body = body, headers = {["Content-Type"] = "application/json"}}
  if not r then error("webhook: " .. err) end
end`, func(c *config.Lua) {
		c.Plugins[0].Config = map[string]any{"url": srv.URL + "/hook"}
		c.Plugins[0].Handlers = []config.LuaHandler{{Events: config.StringList{"server.down"}, Function: "notify"}}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.rt.Run(ctx) }()
	// Publish until the subscription exists and the event arrives.
	testenv.Eventually(t, 10*time.Second, "webhook called", func() bool {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 0 {
			r.bus.Publish(events.Event{Kind: events.ServerDown, Message: "ex1 is DOWN", Attrs: map[string]string{"server": "ex1"}})
		}
		return n > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(got[0], "application/json ") || !strings.Contains(got[0], `"server":"ex1"`) || !strings.Contains(got[0], `"text":"ex1 is DOWN"`) {
		t.Errorf("webhook got %q", got[0])
	}
}

func TestDNSAnswer(t *testing.T) {
	r := newRig(t, `
function answer(q)
  if q.client == "198.18.5.5" then return {"198.18.0.10", "198.18.0.11"}, 30 end
  if q.subnet == "198.18.9.0/24" then return "dc2" end
  if q.name == "bad.example.com." then return {"not-an-ip"} end
  return nil
end
function echo(q) return {q.default[1]} end`)
	q := DNSQuestion{Name: "mail.example.com.", Type: "A", Client: netip.MustParseAddr("198.18.5.5"), Datacenter: "dc1",
		Default: []netip.Addr{netip.MustParseAddr("198.18.0.1")}}
	ctx := context.Background()
	a, err := r.rt.DNSAnswer(ctx, "p.answer", q)
	if err != nil || !a.Handled || a.TTL != 30 || len(a.Addrs) != 2 || a.Addrs[1].String() != "198.18.0.11" {
		t.Errorf("addresses: %+v %v", a, err)
	}
	q.Client = netip.MustParseAddr("198.18.6.6")
	q.Subnet = netip.MustParsePrefix("198.18.9.0/24")
	if a, err := r.rt.DNSAnswer(ctx, "p.answer", q); err != nil || !a.Handled || a.Datacenter != "dc2" {
		t.Errorf("datacenter: %+v %v", a, err)
	}
	q.Subnet = netip.Prefix{}
	if a, err := r.rt.DNSAnswer(ctx, "p.answer", q); err != nil || a.Handled {
		t.Errorf("no opinion: %+v %v", a, err)
	}
	if a, err := r.rt.DNSAnswer(ctx, "p.echo", q); err != nil || a.Addrs[0] != q.Default[0] {
		t.Errorf("default: %+v %v", a, err)
	}
	q.Name = "bad.example.com."
	if _, err := r.rt.DNSAnswer(ctx, "p.answer", q); err == nil || !strings.Contains(err.Error(), "not an IP address") {
		t.Errorf("bad address: %v", err)
	}
}
