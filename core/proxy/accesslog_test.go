package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/internal/testenv"
)

func TestAccessRecText(t *testing.T) {
	at := time.Date(2009, 2, 6, 12, 14, 14, 655e6, time.UTC)
	tests := []struct {
		name string
		rec  accessRec
		want string
	}{
		{"httplog (HAProxy's doc example)", accessRec{
			http: true, client: netip.MustParseAddrPort("10.0.1.2:33317"), accept: at, frontend: "http-in",
			backend: "static", server: "srv1", tq: 10, tw: 0, tc: 30, tr: 69, ta: 109, status: 200, bytes: 2750,
			term: "----", actconn: 1, feconn: 1, beconn: 1, srvconn: 1, request: []byte("GET /index.html HTTP/1.1"),
		}, `10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 "GET /index.html HTTP/1.1"`},
		{"http refused, TLS, escaped request, hook variables", accessRec{
			http: true, client: netip.MustParseAddrPort("[2001:db8::1]:443"), accept: at, frontend: "fe", tls: true,
			backend: "fe", tq: 3, tw: -1, tc: -1, tr: -1, ta: 3, status: 400, bytes: 187, term: "PR--",
			actconn: 7, feconn: 2, retries: 0, request: []byte("GET /a\"b#c\x01 HTTP/1.1"), vars: map[string]string{"z": "1", "a": "x y"},
		}, `[2001:db8::1]:443 [06/Feb/2009:12:14:14.655] fe~ fe/<NOSRV> 3/-1/-1/-1/3 400 187 - - PR-- 7/2/0/0/0 0/0 "GET /a#22b#23c#01 HTTP/1.1" {a="x y" z="1"}`},
		{"http bad request", accessRec{http: true, client: netip.MustParseAddrPort("1.2.3.4:5"), accept: at, frontend: "fe", backend: "fe",
			tq: -1, tw: -1, tc: -1, tr: -1, ta: 0, status: 400, term: "PR--"},
			`1.2.3.4:5 [06/Feb/2009:12:14:14.655] fe fe/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 0/0/0/0/0 0/0 "<BADREQ>"`},
		{"tcplog (HAProxy's doc example)", accessRec{
			client: netip.MustParseAddrPort("10.0.1.2:33313"), accept: at, frontend: "fnt", backend: "bck", server: "srv1",
			tw: 0, tc: 0, ta: 5007, bytes: 212, term: "--", retries: 3, beQueue: 2, srvQueue: 0,
		}, `10.0.1.2:33313 [06/Feb/2009:12:14:14.655] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/2`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.rec.appendText(nil)); got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// startJSONProxy runs doc with the access log as JSON lines into out.
func startJSONProxy(t *testing.T, doc string) (*harness, *testenv.LogBuffer) {
	t.Helper()
	c, err := config.Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out := &testenv.LogBuffer{}
	h := startProxyOpts(t, c, Options{Log: slog.New(slog.DiscardHandler), AccessLog: slog.New(slog.NewJSONHandler(out, nil))}, nil)
	return h, out
}

// jsonRecords decodes the access log's lines.
func jsonRecords(t *testing.T, out *testenv.LogBuffer) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace([]byte(out.String())), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// TestAccessLogJSONAndCookieLetters: over real connections, a JSON access
// log has every field of the line under its own key, and the termination
// state's 3rd and 4th letters follow the persistence cookie: none sent and
// one inserted (NI), then a valid one (VN), then one for an unknown server
// (II).
func TestAccessLogJSONAndCookieLetters(t *testing.T) {
	s1 := newGoBackend(t, "one")
	h, out := startJSONProxy(t, fmt.Sprintf(`
defaults: {mode: http, timeouts: {connect: 2s, client: 5s, server: 5s}}
frontends: [{name: fe, bind: "127.0.0.1:0", default_backend: be, http: {log: true}}]
backends:
  - name: be
    cookie: {name: SRV, indirect: true}
    servers:
      - {name: s1, address: %q, cookie: c1}
`, s1.addr()))
	url := "http://" + h.addr("fe") + "/x?y=1"
	c := &http.Client{Timeout: 5 * time.Second}
	get(t, c, url)
	get(t, c, url, "Cookie", "SRV=c1")
	get(t, c, url, "Cookie", "SRV=nope")
	var recs []map[string]any
	testenv.Eventually(t, 5*time.Second, "three access records", func() bool {
		recs = jsonRecords(t, out)
		return len(recs) == 3
	})
	for i, term := range []string{"--NI", "--VN", "--II"} {
		r := recs[i]
		if r["termination_state"] != term {
			t.Errorf("request %d: termination_state %v, want %s", i, r["termination_state"], term)
		}
		msg, _ := r["msg"].(string)
		if !strings.Contains(msg, " "+term+" ") {
			t.Errorf("request %d: line %q lacks %s", i, msg, term)
		}
	}
	r := recs[1]
	for k, v := range map[string]any{
		"mode": "http", "client_ip": "127.0.0.1", "frontend": "fe", "backend": "be", "server": "s1",
		"status": 200.0, "request": "GET /x?y=1 HTTP/1.1", "retries": 0.0, "srv_queue": 0.0, "backend_queue": 0.0, "tls": false,
	} {
		if r[k] != v {
			t.Errorf("%s = %v, want %v", k, r[k], v)
		}
	}
	for _, k := range []string{"client_port", "accept_date", "Tq", "Tw", "Tc", "Tr", "Ta", "bytes", "actconn", "feconn", "beconn", "srv_conn"} {
		if _, ok := r[k].(float64); !ok && k != "accept_date" {
			t.Errorf("%s = %v (%T), want a number", k, r[k], r[k])
		}
		if _, ok := r[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	// One client, one request at a time: each counter is the logged
	// session itself (HAProxy counts it while it logs it).
	for _, k := range []string{"actconn", "feconn", "beconn", "srv_conn"} {
		if r[k] != 1.0 {
			t.Errorf("%s = %v, want 1", k, r[k])
		}
	}
	// The message is still the whole text line.
	if !regexp.MustCompile(`^127\.0\.0\.1:\d+ \[[^]]+\] fe be/s1 \d+/\d+/\d+/\d+/\d+ 200 \d+ - - --VN \d+/\d+/\d+/\d+/0 0/0 "GET /x\?y=1 HTTP/1\.1"$`).MatchString(r["msg"].(string)) {
		t.Errorf("msg %q", r["msg"])
	}
}
