package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testsyslog"
)

// grokHAProxyHTTP is logstash's HAPROXYHTTP pattern (logstash-patterns-core,
// patterns/legacy/haproxy and grok-patterns) with its sub-patterns written
// out as Go regular expressions: SYSLOGTIMESTAMP, IPORHOST, SYSLOGPROG,
// IP, INT, HAPROXYDATE, NOTSPACE, DATA, WORD, URIPATHPARAM, NUMBER.
var grokHAProxyHTTP = regexp.MustCompile(
	`^(?P<syslog_timestamp>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d) (?P<syslog_server>\S+) (?P<program>[\w._/%-]+)(?:\[(?P<pid>[\w._/%-]+)\])?: ` +
		`(?P<client_ip>[0-9a-fA-F.:]+):(?P<client_port>[+-]?\d+) \[(?P<accept_date>\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.[+-]?\d+)\] ` +
		`(?P<frontend_name>\S+) (?P<backend_name>\S+)/(?P<server_name>\S+) ` +
		`(?P<time_request>[+-]?\d+)/(?P<time_queue>[+-]?\d+)/(?P<time_backend_connect>[+-]?\d+)/(?P<time_backend_response>[+-]?\d+)/(?P<time_duration>\S+) ` +
		`(?P<http_status_code>[+-]?\d+) (?P<bytes_read>\S+) (?P<captured_request_cookie>.*?) (?P<captured_response_cookie>.*?) (?P<termination_state>\S+) ` +
		`(?P<actconn>[+-]?\d+)/(?P<feconn>[+-]?\d+)/(?P<beconn>[+-]?\d+)/(?P<srvconn>[+-]?\d+)/(?P<retries>\S+) (?P<srv_queue>[+-]?\d+)/(?P<backend_queue>[+-]?\d+) ` +
		`(\{(?P<captured_request_headers>.*?)\})?( )?(\{(?P<captured_response_headers>.*?)\})?( )?` +
		`"(<BADREQ>|((?P<http_verb>\w+) (?P<http_request>/[^\s"]*)?( HTTP/(?P<http_version>[+-]?\d+(?:\.\d+)?))?))?"`)

// TestAccessLogToSyslogReadByHalog: a node sends its access log to a
// syslog receiver (RFC 3164 over UDP, as HAProxy's `log 127.0.0.1:514
// local0`); the lines, written as rsyslog writes its files, are what
// Debian's halog reads: -st, -tc, -cc and -srv count the traffic the test
// sent, and logstash's HAPROXYHTTP pattern matches each line.
func TestAccessLogToSyslogReadByHalog(t *testing.T) {
	halog := testenv.RequireTool(t, "halog")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	}))
	t.Cleanup(web.Close)
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) // nothing listens
	fe := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	rcv := testsyslog.Listen(t, "udp")
	n := startNodeFile(t, fmt.Sprintf(`
datacenters: [{name: dc1, role: primary}]
defaults: {mode: http, timeouts: {connect: 2s, client: 5s, server: 5s}}
frontends:
  - name: fe
    bind: %q
    default_backend: web
    http: {log: true}
    rules:
      - {deny: 403, path_prefix: [/private]}
      - {backend: dead, path_prefix: [/dead]}
backends:
  - name: web
    cookie: {name: SRV}
    servers: [{name: s1, address: %q, cookie: a}]
  - name: dead
    retries: 1
    servers: [{name: d1, address: %q}]
`, fe, strings.TrimPrefix(web.URL, "http://"), dead), "", fmt.Sprintf(`log:
  level: info
  access:
    - {address: %q, facility: local0, format: rfc3164, tag: haproxy}
`, rcv.Addr))
	_ = n
	c := &http.Client{Timeout: 5 * time.Second}
	want := map[string]int{"/": 10, "/missing": 3, "/private": 2, "/dead": 2}
	total := 0
	for path, count := range want {
		for range count {
			resp, err := c.Get("http://" + fe + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			total++
		}
	}
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%d access lines at the receiver", total), func() bool { return len(rcv.Msgs()) >= total })
	if errs := rcv.Errs(); len(errs) > 0 {
		t.Fatalf("unparsable syslog messages: %v", errs)
	}
	var file bytes.Buffer
	for _, m := range rcv.Msgs() {
		if m.Facility != 16 || m.Severity != 6 || m.App != "haproxy" {
			t.Errorf("syslog header: facility %d severity %d tag %q", m.Facility, m.Severity, m.App)
		}
		line := m.FileLine()
		file.WriteString(line + "\n")
		g := grokHAProxyHTTP.FindStringSubmatch(line)
		if g == nil {
			t.Errorf("HAPROXYHTTP does not match %q", line)
			continue
		}
		get := func(name string) string { return g[grokHAProxyHTTP.SubexpIndex(name)] }
		if get("frontend_name") != "fe" || get("program") != "haproxy" || len(get("termination_state")) != 4 {
			t.Errorf("grok fields of %q: frontend %q program %q termination %q", line, get("frontend_name"), get("program"), get("termination_state"))
		}
	}
	logFile := filepath.Join(t.TempDir(), "haproxy.log")
	if err := os.WriteFile(logFile, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(arg string) []string {
		f, _ := os.Open(logFile)
		defer f.Close()
		cmd := exec.Command(halog, arg)
		cmd.Stdin = f
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("halog %s: %v: %s", arg, err, stderr.String())
		}
		if want := fmt.Sprintf("%d lines in", total); !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), " 0 parsing errors") {
			t.Errorf("halog %s: %q, want %q and no parsing errors", arg, strings.TrimSpace(stderr.String()), want)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		sort.Strings(lines)
		return lines
	}
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{"-st", []string{"200 10", "403 2", "404 3", "503 2"}},
		// Letters 1-2: PR denied, SC connection refused (after the retry).
		{"-tc", []string{"-- 13", "PR 2", "SC 2"}},
		// Letters 3-4: web has an insert cookie and the client sent none
		// (NI); the others have no cookie persistence (--).
		{"-cc", []string{"-- 4", "NI 13"}},
	} {
		if got := run(tc.arg); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("halog %s:\n%s\nwant:\n%s", tc.arg, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	// -srv: per server, requests by status class (1xx..5xx, other, total, ok).
	srv := map[string]string{}
	for _, l := range run("-srv") {
		if f := strings.Fields(l); len(f) > 8 && !strings.HasPrefix(l, "#") {
			srv[f[0]] = strings.Join(f[1:8], " ")
		}
	}
	for name, counts := range map[string]string{
		"web/s1":     "0 10 0 3 0 0 13",
		"dead/d1":    "0 0 0 0 2 0 2",
		"fe/<NOSRV>": "0 0 0 2 0 0 2",
	} {
		if srv[name] != counts {
			t.Errorf("halog -srv %s: %q, want %q (all: %v)", name, srv[name], counts, srv)
		}
	}
}

// TestFrontendLogTargets: a frontend with log_targets sends its access
// lines there (RFC 5424 over a unix datagram socket here); the other
// frontend's go to the node's log.access.
func TestFrontendLogTargets(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") }))
	t.Cleanup(web.Close)
	own, node := testsyslog.Listen(t, "unixgram"), testsyslog.Listen(t, "udp")
	fe1 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	fe2 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startNodeFile(t, fmt.Sprintf(`
datacenters: [{name: dc1, role: primary}]
defaults: {mode: http, timeouts: {connect: 2s, client: 5s, server: 5s}}
frontends:
  - {name: fe1, bind: %q, default_backend: web, http: {log: true}, log_targets: [{address: %q, facility: local2, format: rfc5424, encoding: json}]}
  - {name: fe2, bind: %q, default_backend: web, http: {log: true}}
backends:
  - {name: web, servers: [{name: s1, address: %q}]}
`, fe1, own.Addr, fe2, strings.TrimPrefix(web.URL, "http://")), "", fmt.Sprintf("log:\n  level: info\n  access: [{address: %q, facility: local0}]\n", node.Addr))
	c := &http.Client{Timeout: 5 * time.Second}
	for _, fe := range []string{fe1, fe1, fe2} {
		resp, err := c.Get("http://" + fe + "/x")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	testenv.Eventually(t, 10*time.Second, "2 lines at fe1's target, 1 at the node's", func() bool {
		return len(own.Msgs()) >= 2 && len(node.Msgs()) >= 1
	})
	for _, m := range own.Msgs() {
		if !m.RFC5424 || m.Facility != 18 || m.MsgID != "access" || !strings.Contains(m.Text, `"frontend":"fe1"`) {
			t.Errorf("fe1's target got %+v", m)
		}
	}
	for _, m := range node.Msgs() {
		if m.RFC5424 || m.Facility != 16 || !strings.Contains(m.Text, " fe2 web/s1 ") {
			t.Errorf("the node's access target got %+v", m)
		}
	}
	if len(own.Msgs()) != 2 || len(node.Msgs()) != 1 {
		t.Errorf("%d and %d lines, want 2 and 1", len(own.Msgs()), len(node.Msgs()))
	}
}

// grokHAProxyTCP is logstash's HAPROXYTCP pattern, written out as
// grokHAProxyHTTP is.
var grokHAProxyTCP = regexp.MustCompile(
	`^(?P<syslog_timestamp>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d) (?P<syslog_server>\S+) (?P<program>[\w._/%-]+)(?:\[(?P<pid>[\w._/%-]+)\])?: ` +
		`(?P<client_ip>[0-9a-fA-F.:]+):(?P<client_port>[+-]?\d+) \[(?P<accept_date>\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.[+-]?\d+)\] ` +
		`(?P<frontend_name>\S+) (?P<backend_name>\S+)/(?P<server_name>\S+) ` +
		`(?P<time_queue>[+-]?\d+)/(?P<time_backend_connect>[+-]?\d+)/(?P<time_duration>\S+) (?P<bytes_read>\S+) (?P<termination_state>\S+) ` +
		`(?P<actconn>[+-]?\d+)/(?P<feconn>[+-]?\d+)/(?P<beconn>[+-]?\d+)/(?P<srvconn>[+-]?\d+)/(?P<retries>\S+) (?P<srv_queue>[+-]?\d+)/(?P<backend_queue>[+-]?\d+)$`)

// TestTCPAccessLogGrok: tcp-mode lines received over syslog (RFC 3164 over
// TCP, newline framing) match logstash's HAPROXYTCP pattern, with the bytes
// and the termination state of each session.
func TestTCPAccessLogGrok(t *testing.T) {
	srv := testenv.Serve(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "hello\n")
		_ = c.Close()
	})
	dead := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	fe, fe2 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	rcv := testsyslog.Listen(t, "tcp")
	startNodeFile(t, fmt.Sprintf(`
datacenters: [{name: dc1, role: primary}]
defaults: {mode: tcp, log: true, timeouts: {connect: 2s, client: 5s, server: 5s}}
frontends:
  - {name: greet, bind: %q, default_backend: be}
  - {name: nowhere, bind: %q, default_backend: gone}
backends:
  - {name: be, servers: [{name: s1, address: %q}]}
  - {name: gone, retries: 0, servers: [{name: d1, address: %q}]}
`, fe, fe2, srv, dead), "", fmt.Sprintf("log:\n  level: info\n  access: [{address: %q, framing: newline}]\n", rcv.Addr))
	for _, a := range []string{fe, fe, fe2} {
		c, err := net.DialTimeout("tcp", a, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(c)
		_ = c.Close()
	}
	testenv.Eventually(t, 10*time.Second, "3 tcp access lines", func() bool { return len(rcv.Msgs()) >= 3 })
	got := map[string]int{}
	for _, m := range rcv.Msgs() {
		line := m.FileLine()
		g := grokHAProxyTCP.FindStringSubmatch(line)
		if g == nil {
			t.Errorf("HAPROXYTCP does not match %q", line)
			continue
		}
		get := func(name string) string { return g[grokHAProxyTCP.SubexpIndex(name)] }
		got[get("frontend_name")+" "+get("backend_name")+"/"+get("server_name")+" "+get("bytes_read")+" "+get("termination_state")]++
	}
	want := map[string]int{"greet be/s1 6 --": 2, "nowhere gone/d1 0 SC": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sessions %v, want %v", got, want)
	}
}
