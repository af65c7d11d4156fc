package scripting

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/internal/testenv"
)

func check(t *testing.T, r *rig, fn string, target CheckTarget) CheckResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.rt.Check(ctx, "p."+fn, target)
}

func TestCheckResultForms(t *testing.T) {
	r := newRig(t, `
function up() return true end
function down() return false end
function down_reason() return false, "disk full" end
function up_delta() return true, 5 end
function down_both() return false, "slow", -10 end
function delta_first() return true, -3, "degraded" end
function tbl() return {ok = true, reason = "fine", delta = 7} end
function nothing() end
function truthy() return 1 end
function fails() error("kaput") end
function target(s, params)
  return s.backend == "mail" and s.name == "mx1" and s.host == "198.18.0.9" and s.port == 25
     and s.address == "198.18.0.9:25" and params.domain == "example.com", s.name
end
`)
	tgt := CheckTarget{Backend: "mail", Server: "mx1", Addr: "198.18.0.9:25", Params: map[string]string{"domain": "example.com"}}
	for _, tc := range []struct {
		fn   string
		want CheckResult
	}{
		{"up", CheckResult{OK: true}},
		{"down", CheckResult{Reason: "lua check failed"}},
		{"down_reason", CheckResult{Reason: "disk full"}},
		{"up_delta", CheckResult{OK: true, Delta: 5, HasDelta: true}},
		{"down_both", CheckResult{Reason: "slow", Delta: -10, HasDelta: true}},
		{"delta_first", CheckResult{OK: true, Reason: "degraded", Delta: -3, HasDelta: true}},
		{"tbl", CheckResult{OK: true, Reason: "fine", Delta: 7, HasDelta: true}},
		{"nothing", CheckResult{Reason: "lua check returned nothing"}},
		{"truthy", CheckResult{OK: true}},
		{"target", CheckResult{OK: true, Reason: "mx1"}},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			if got := check(t, r, tc.fn, tgt); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := check(t, r, "fails", tgt); got.OK || !strings.Contains(got.Reason, "p:11: kaput") {
		t.Errorf("failing script: %+v", got)
	}
}

// smtpServer answers like a mail server: banner, EHLO, QUIT.
func smtpServer(t *testing.T, banner string) string {
	t.Helper()
	return testenv.Serve(t, func(c net.Conn) {
		fmt.Fprintf(c, "%s\r\n", banner)
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(line, "EHLO"):
				fmt.Fprintf(c, "250-mx.example.com\r\n250-SIZE 1000\r\n250 HELP\r\n")
			case strings.HasPrefix(line, "QUIT"):
				fmt.Fprintf(c, "221 bye\r\n")
				return
			default:
				fmt.Fprintf(c, "500 what\r\n")
			}
		}
	})
}

const smtpCheck = `
function smtp(s)
  local c, err = net.tcp(s.address, {timeout = 2000})
  if not c then return false, "connect: " .. err end
  local banner, err = c:receive()
  if not banner then return false, "banner: " .. err end
  if banner:sub(1, 3) ~= "220" then return false, "banner " .. banner end
  c:send("EHLO vipgate\r\n")
  local line, err = c:expect("250 ")
  if not line then return false, "ehlo: " .. err end
  c:send("QUIT\r\n")
  return true, banner
end`

func TestNetTCPSMTPBanner(t *testing.T) {
	r := newRig(t, smtpCheck)
	good := smtpServer(t, "220 mx.example.com ESMTP")
	if res := check(t, r, "smtp", CheckTarget{Addr: good}); !res.OK || res.Reason != "220 mx.example.com ESMTP" {
		t.Errorf("good server: %+v", res)
	}
	bad := smtpServer(t, "554 no service")
	if res := check(t, r, "smtp", CheckTarget{Addr: bad}); res.OK || res.Reason != "banner 554 no service" {
		t.Errorf("refusing server: %+v", res)
	}
	closed := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	if res := check(t, r, "smtp", CheckTarget{Addr: closed}); res.OK || !strings.Contains(res.Reason, "connect: ") || !strings.Contains(res.Reason, "refused") {
		t.Errorf("closed port: %+v", res)
	}
}

func TestNetTCPReceiveForms(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "line one\r\nABCDEFrest of it")
			c.Close()
		}
	}()
	r := newRig(t, `
function f(s)
  local c = net.tcp(s.address)
  local l = c:receive("*l")
  local n = c:receive(6)
  local a = c:receive("*a")
  local more, err = c:receive()
  c:close()
  return true, table.concat({l, n, a, tostring(more), err}, "|")
end`)
	res := check(t, r, "f", CheckTarget{Addr: ln.Addr().String()})
	if res.Reason != "line one|ABCDEF|rest of it|nil|connection closed" {
		t.Errorf("got %+v", res)
	}
}

// tcpServer serves each connection with handle (which closes it) until
// the test ends, and returns the address.
func tcpServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	return testenv.Serve(t, handle)
}

func TestNetTimeoutAndConnCleanup(t *testing.T) {
	closed := make(chan struct{}, 4)
	addr := tcpServer(t, func(c net.Conn) {
		// Silent server: reads until the client goes away.
		io.Copy(io.Discard, c)
		c.Close()
		closed <- struct{}{}
	})
	r := newRig(t, `
kept = nil
local keep = {}
function silent(s)
  local c = net.tcp(s.address, {timeout = 100})
  local l, err = c:receive()
  return l ~= nil, err
end
function silent_forever(s)
  local c = net.tcp(s.address)
  local l, err = c:receive()
  return l ~= nil, err
end
function leak(s)
  keep.c = net.tcp(s.address)
  return true
end
function reuse(s)
  local ok, err = pcall(function() return keep.c:send("x") end)
  return false, tostring(err)
end`)
	res := check(t, r, "silent", CheckTarget{Addr: addr})
	if res.OK || res.Reason != "timeout" {
		t.Errorf("silent server, script's own timeout: %+v", res)
	}
	waitClosed := func(what string) {
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: connection not closed after the call", what)
		}
	}
	waitClosed("timed-out receive")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res = r.rt.Check(ctx, "p.silent_forever", CheckTarget{Addr: addr})
	// Either the read deadline or the Lua deadline fires first.
	if res.OK || !strings.Contains(res.Reason, "timeout") {
		t.Errorf("silent server, check timeout: %+v", res)
	}
	waitClosed("timed-out check")
	if res := check(t, r, "leak", CheckTarget{Addr: addr}); !res.OK {
		t.Fatal(res)
	}
	waitClosed("connection kept by the script")
	if res := check(t, r, "reuse", CheckTarget{}); !strings.Contains(res.Reason, "after the call that opened it ended") {
		t.Errorf("reuse of a dead connection: %+v", res)
	}
}

func TestNetHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ews/healthcheck.htm":
			w.Header().Set("X-Server", "ex1")
			io.WriteString(w, "<html><body>200 OK<br/>EX1.example.com</body></html>")
		case "/login":
			b, _ := io.ReadAll(r.Body)
			if r.Method != "POST" || string(b) != "user=u&pass=p" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
				w.WriteHeader(400)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "abc"})
			http.Redirect(w, r, "/home", http.StatusFound)
		case "/home":
			if c, err := r.Cookie("session"); err != nil || c.Value != "abc" {
				w.WriteHeader(401)
				return
			}
			io.WriteString(w, "welcome "+r.Host)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	r := newRig(t, `
function ews(s)
  local r, err = net.http{url = "http://" .. s.address .. "/ews/healthcheck.htm"}
  if not r then return false, err end
  if r.status ~= 200 or not r.body:find("200 OK", 1, true) then return false, "HTTP " .. r.status end
  return true, r.headers["x-server"]
end
function login(s)
  local base = "http://" .. s.address
  local r = net.http{url = base .. "/login", method = "POST", body = "user=u&pass=p",
    headers = {["Content-Type"] = "application/x-www-form-urlencoded"}}
  if r.status ~= 302 then return false, "login HTTP " .. r.status end
  local cookie = r.headers["set-cookie"]:match("^([^;]+)")
  local h = net.http{url = base .. r.headers["location"], headers = {Cookie = cookie}, host = "mail.example.com"}
  if h.status ~= 200 then return false, "home HTTP " .. h.status end
  return true, h.body
end
function missing(s)
  local r = net.http{url = "http://" .. s.address .. "/nope"}
  return r.status == 200, "HTTP " .. r.status
end
function refused(s)
  local r, err = net.http{url = "http://" .. s.address .. "/"}
  return r ~= nil, err
end`)
	addr := srv.Listener.Addr().String()
	for _, tc := range []struct {
		fn, addr string
		ok       bool
		reason   string
	}{
		{"ews", addr, true, "ex1"},
		{"login", addr, true, "welcome mail.example.com"},
		{"missing", addr, false, "HTTP 404"},
		{"refused", fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), false, "refused"},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			res := check(t, r, tc.fn, CheckTarget{Addr: tc.addr})
			if res.OK != tc.ok || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("got %+v, want ok=%v reason~%q", res, tc.ok, tc.reason)
			}
		})
	}
}

func TestNetTLSAndStartTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the verify=true case fails the handshake on purpose
	srv.StartTLS()
	defer srv.Close()
	cert := srv.TLS.Certificates[0]

	// A STARTTLS speaker: plain banner, then TLS on request.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				io.WriteString(c, "220 ready\r\n")
				br := bufio.NewReader(c)
				if l, _ := br.ReadString('\n'); l != "STARTTLS\r\n" {
					return
				}
				io.WriteString(c, "220 go ahead\r\n")
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
				if tc.Handshake() != nil {
					return
				}
				io.WriteString(tc, "250 secured\r\n")
			}(c)
		}
	}()

	r := newRig(t, `
function info(s)
  local i, err = net.tls(s.address, {sni = "example.com"})
  if not i then return false, err end
  return i.version:find("TLS") ~= nil and i.days_left > 0 and i.not_after > os.time(), i.subject
end
function verified(s)
  local i, err = net.tls(s.address, {verify = true})
  return i ~= nil, err
end
function https(s)
  local r, err = net.http{url = "https://" .. s.address .. "/"}
  if not r then return false, err end
  return r.body == "secure", r.body
end
function tcp_tls(s)
  local c, err = net.tcp(s.address, {tls = true})
  if not c then return false, err end
  c:send("GET / HTTP/1.0\r\n\r\n")
  return c:receive() == "HTTP/1.0 200 OK", "ok"
end
function starttls(s)
  local c = net.tcp(s.address)
  c:receive()
  c:send("STARTTLS\r\n")
  c:expect("220 ")
  local ok, err = c:starttls()
  if not ok then return false, err end
  return true, c:receive()
end`)
	https := srv.Listener.Addr().String()
	for _, tc := range []struct {
		fn, addr string
		ok       bool
		reason   string
	}{
		{"info", https, true, "O=Acme Co"},
		{"verified", https, false, "certificate"},
		{"https", https, true, "secure"},
		{"tcp_tls", https, true, "ok"},
		{"starttls", ln.Addr().String(), true, "250 secured"},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			res := check(t, r, tc.fn, CheckTarget{Addr: tc.addr})
			if res.OK != tc.ok || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("got %+v, want ok=%v reason~%q", res, tc.ok, tc.reason)
			}
		})
	}
}

func TestNetRefusedOnRequestPath(t *testing.T) {
	r := newRig(t, `function f(txn) net.tcp("127.0.0.1:1") end`)
	_, err := route(t, r, "f", httpTxn("GET", "/", "", nil))
	if err == nil || !strings.Contains(err.Error(), "net is not available in route hooks") {
		t.Fatalf("err = %v", err)
	}
}

func TestNetRefusedAtTopLevel(t *testing.T) {
	rt := New(Options{})
	err := rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "p", Source: `local c = net.tcp("127.0.0.1:1")`}}})
	if err == nil || !strings.Contains(err.Error(), "not available at the top level") {
		t.Fatalf("err = %v", err)
	}
}

func TestLuaCheckKindThroughRegistry(t *testing.T) {
	r := newRig(t, smtpCheck)
	reg := health.NewRegistry()
	reg.Register("lua", r.rt.Checker)
	ch, err := reg.New(&config.Check{Kind: "lua", Script: "p.smtp"})
	if err != nil {
		t.Fatal(err)
	}
	addr := smtpServer(t, "220 ok")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := ch.Check(ctx, health.Target{Backend: "mail", Server: "mx1", Addr: addr})
	if !res.OK || res.Reason != "220 ok" || res.Duration <= 0 {
		t.Errorf("result %+v", res)
	}
	if _, err := reg.New(&config.Check{Kind: "lua"}); err == nil {
		t.Error("lua check without script accepted")
	}
}
