package scripting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

// shared26 is the red-team table: 27 tables, each holding the previous one
// twice, so a walk that does not notice the sharing meets 2^26 leaves.
const shared26 = "local t = {1} for i = 1, 26 do t = {t, t} end\n"

// TestSharedTablesBoundedInJSONAndLog: json.encode of the shared table in
// a route hook (one request used to take the process down) fails the hook
// at the byte limit; log.info of it writes one line of at most 16 KiB that
// says it was truncated. Both allocate a bounded amount.
func TestSharedTablesBoundedInJSONAndLog(t *testing.T) {
	t.Run("json.encode", func(t *testing.T) {
		r := newRig(t, "function f(txn)\n"+shared26+"local s = json.encode(t)\nend")
		h, err := r.rt.Hook("p.f")
		if err != nil {
			t.Fatal(err)
		}
		testenv.AllocCeiling(t, "the hook", 128<<20, func() {
			_, err = h.Route(context.Background(), httpTxn("GET", "/", "", nil))
		})
		if err == nil || !strings.Contains(err.Error(), "json.encode result over the 1048576-byte limit") || !strings.Contains(err.Error(), "p:3:") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("log.info", func(t *testing.T) {
		r := newRig(t, "function f(txn)\n"+shared26+"log.info('big', 't', t)\nend")
		h, _ := r.rt.Hook("p.f")
		var err error
		testenv.AllocCeiling(t, "the hook", 128<<20, func() {
			_, err = h.Route(context.Background(), httpTxn("GET", "/", "", nil))
		})
		if err != nil {
			t.Fatal(err)
		}
		var line string
		for _, l := range strings.Split(r.log.String(), "\n") {
			if strings.Contains(l, "lua: big") {
				line = l
			}
		}
		if line == "" || len(line) > 3*maxLogLine || !strings.Contains(line, "truncated=true") {
			t.Fatalf("log line of %d bytes (ceiling %d), want truncated=true: %.300s", len(line), 3*maxLogLine, line)
		}
	})
	t.Run("print", func(t *testing.T) {
		r := newRig(t, "function f(txn)\nprint(string.rep('x', 500000))\nend")
		h, _ := r.rt.Hook("p.f")
		if _, err := h.Route(context.Background(), httpTxn("GET", "/", "", nil)); err != nil {
			t.Fatal(err)
		}
		if n := len(r.log.String()); n > 3*maxLogLine {
			t.Fatalf("print wrote %d bytes", n)
		}
	})
}

// TestJSONEncodeStopsAtDeadline: with a byte limit far above what the
// deadline lets the walk reach, it is the deadline that stops json.encode
// (the walk looks at the call's context as it goes).
func TestJSONEncodeStopsAtDeadline(t *testing.T) {
	r := newRig(t, "function f()\n"+strings.Replace(shared26, "26", "40", 1)+"local s = json.encode(t)\nreturn true\nend", func(c *config.Lua) {
		c.Defaults.MaxString = 1 << 30
		c.Defaults.Timeout = config.Duration(200 * time.Millisecond)
	})
	res := r.rt.Check(context.Background(), "p.f", CheckTarget{})
	if res.OK || !strings.Contains(res.Reason, "json.encode stopped: context deadline exceeded") {
		t.Fatalf("%+v", res)
	}
}

// TestFormatQuotedCapped: %q writes a NUL as four bytes; 300,000 of them
// made a 1.2 MB string past the 1 MB cap.
func TestFormatQuotedCapped(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`local s = string.format("%q", string.rep("\0", 300000))`, "string.format result over the 1048576-byte limit"},
		{`local s = string.format("% x", string.rep("a", 400000))`, "string.format result over the 1048576-byte limit"},
		{`local s = string.format("%*d", 5, 1)`, "invalid conversion %*"},
		{`local s = string.format("%[2]d", 5, 1)`, "invalid conversion %["},
	} {
		r := newRig(t, "function f()\n"+tc.body+"\nreturn true\nend")
		if res := run(t, r); res.OK || !strings.Contains(res.Reason, tc.want) {
			t.Errorf("%s: %+v, want %q", tc.body, res, tc.want)
		}
	}
	r := newRig(t, "function f()\nlocal s = string.format('%q %x %s', string.rep('\\0', 1000), 'ab', 'c')\nreturn #s == 4000 + 2 + 1 + 4 + 1 + 1, #s\nend")
	if res := run(t, r); !res.OK {
		t.Errorf("an ordinary %%q: %+v", res)
	}
}

// TestLuaLoggingLimited: 100,000 log lines from one request become 100,
// the rest are counted (Stats) and reported by one warning; the runtime-wide
// rate holds across calls.
func TestLuaLoggingLimited(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := newRig(t, "function f(txn)\nfor i = 1, 100000 do log.info('line', 'i', i) end\nend")
	r.rt.now = func() time.Time { return now }
	h, _ := r.rt.Hook("p.f")
	if _, err := h.Route(context.Background(), httpTxn("GET", "/", "", nil)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(r.log.String(), "lua: line"); n != maxLogLinesPerCall {
		t.Fatalf("%d lines logged, want %d", n, maxLogLinesPerCall)
	}
	if d := r.rt.Stats().LogDropped; d != 100000-maxLogLinesPerCall {
		t.Fatalf("dropped %d", d)
	}
	// Many calls within one second: the runtime's rate.
	for i := 0; i < 20; i++ {
		h.Route(context.Background(), httpTxn("GET", "/", "", nil))
	}
	if n := strings.Count(r.log.String(), "lua: line"); n != maxLogLinesPerSecond {
		t.Fatalf("%d lines logged within a second, want %d", n, maxLogLinesPerSecond)
	}
	// The next second reports what was dropped, once.
	now = now.Add(time.Second)
	h.Route(context.Background(), httpTxn("GET", "/", "", nil))
	if n := strings.Count(r.log.String(), "lua: log lines dropped"); n != 1 {
		t.Fatalf("%d drop reports, want 1:\n%.2000s", n, r.log.String())
	}
}

// TestHookReturningNonValueFails: a route hook, a check or a DNS hook that
// returns a table or a function (most likely the wrong variable) fails
// instead of counting as "no opinion" (or, for a check, as success).
func TestHookReturningNonValueFails(t *testing.T) {
	for _, ret := range []string{"{}", "function() end"} {
		r := newRig(t, "function f(txn) return "+ret+" end\nfunction c() return "+ret+" end\nfunction d(q) return "+ret+" end")
		h, _ := r.rt.Hook("p.f")
		if _, err := h.Route(context.Background(), httpTxn("GET", "/", "", nil)); err == nil || !strings.Contains(err.Error(), "the route hook returned a") {
			t.Errorf("route hook returning %s: %v", ret, err)
		}
		if r.rt.Errors("p.f") != 1 {
			t.Errorf("route hook returning %s: not counted as a failure", ret)
		}
		if ret != "{}" { // a table is a check's long form
			if res := r.rt.Check(context.Background(), "p.c", CheckTarget{}); res.OK || !strings.Contains(res.Reason, "lua check returned a function") {
				t.Errorf("check returning %s: %+v", ret, res)
			}
		}
		if ret != "{}" { // a table is a DNS hook's list of addresses
			if _, err := r.rt.DNSAnswer(context.Background(), "p.d", DNSQuestion{}); err == nil || !strings.Contains(err.Error(), "the dns hook returned a function") {
				t.Errorf("dns hook returning %s: %v", ret, err)
			}
		}
	}
}

// TestTableCopiesBounded: tables copied out of Lua by Go (here ALPN names)
// are bounded by entries.
func TestTableCopiesBounded(t *testing.T) {
	r := newRig(t, "function f()\nlocal a = {} for i = 1, 20000 do a[i] = 'h2' end\nlocal ok, err = net.tls('127.0.0.1:1', {alpn = a})\nreturn true\nend")
	if res := run(t, r); res.OK || !strings.Contains(res.Reason, "net.tls alpn: more than 10000 entries") {
		t.Fatalf("%+v", res)
	}
}

// TestJSONEncodeStoppedByMemoryGuard: with the byte limit and the deadline
// out of the way, the memory guard's cancellation stops the walk (its
// allocations count against max_alloc like the script's own).
func TestJSONEncodeStoppedByMemoryGuard(t *testing.T) {
	r := newRig(t, "function f()\n"+strings.Replace(shared26, "26", "40", 1)+"local s = json.encode(t)\nreturn true\nend", func(c *config.Lua) {
		c.Defaults.MaxString = 1 << 30
		c.Defaults.Timeout = config.Duration(60 * time.Second)
		c.Defaults.MaxAlloc = 16 << 20
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.rt.Run(ctx)
	var res CheckResult
	testenv.AllocCeiling(t, "json.encode until the guard stops it", 1<<30, func() {
		res = r.rt.Check(context.Background(), "p.f", CheckTarget{})
	})
	if res.OK || !strings.Contains(res.Reason, "json.encode stopped: context canceled") || !strings.Contains(res.Reason, "lua.defaults.max_alloc") {
		t.Fatalf("%+v", res)
	}
}

// TestJSONDecodeInputCapped: json.decode refuses text over max_string.
func TestJSONDecodeInputCapped(t *testing.T) {
	r := newRig(t, "function f()\nlocal s = string.rep('1,', 400000) s = s .. s\nlocal v = json.decode('[' .. s .. '1]')\nreturn true\nend")
	if res := run(t, r); res.OK || !strings.Contains(res.Reason, "json.decode input over the 1048576-byte limit") {
		t.Fatalf("%+v", res)
	}
}
