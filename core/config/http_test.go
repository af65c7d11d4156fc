package config

import (
	"strings"
	"testing"
	"time"
)

const httpGood = `
defaults:
  mode: http
  timeouts: {client: 20s}
  http: {forwardfor: {except: [10.0.0.0/8]}, via: gw1, error_files: {503: /etc/vipgate/503.http}}
frontends:
  - name: web
    bind: ":443"
    default_backend: app
    http: {max_headers: 50, error_files: {502: /etc/vipgate/502.html}}
    tls: {certificates: [{cert: /etc/ssl/a.pem}]}
    rules:
      - {deny: 403, path_prefix: [/admin], src: [192.0.2.0/24]}
      - {redirect: {scheme: https}, host: [old.example]}
      - {backend: api, host: ["*.api.example"], path_regex: "^/v[0-9]+/", method: [GET, POST], header: [{name: X-Key, regex: "^k"}]}
      - {set_header: {X-A: "1"}, del_response_header: [Server]}
backends:
  - name: app
    cookie: {name: SRV, indirect: true, nocache: true, maxidle: 30m}
    servers: [{name: a, address: "127.0.0.1:1", cookie: ca}, {name: b, address: "127.0.0.1:2"}]
  - name: api
    ssl: {verify: none, sni: api.internal}
    http: {reuse: always}
    servers: [{name: a, address: "127.0.0.1:3"}]
`

func TestHTTPConfigDefaults(t *testing.T) {
	c, err := Parse("good.yaml", []byte(httpGood))
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	f := c.Frontend("web")
	if f.HTTP.MaxHeaders != 50 || f.HTTP.MaxRequestLine != DefaultMaxRequestLine || f.HTTP.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Errorf("limits: %+v", f.HTTP)
	}
	if f.HTTP.H2MaxConcurrentStreams != DefaultH2MaxConcurrentStreams {
		t.Errorf("h2_max_concurrent_streams %d, want the default %d", f.HTTP.H2MaxConcurrentStreams, DefaultH2MaxConcurrentStreams)
	}
	if ff := f.HTTP.ForwardFor; ff == nil || ff.Mode != "append" || ff.Header != "X-Forwarded-For" || len(ff.ExceptNets()) != 1 {
		t.Errorf("forwardfor inherited and defaulted: %+v", ff)
	}
	if f.HTTP.Via != "gw1" || len(f.HTTP.ErrorFiles) != 2 {
		t.Errorf("via/error_files merge: %+v", f.HTTP)
	}
	if f.Timeouts.HTTPRequest.D() != 20*time.Second || f.Timeouts.HTTPKeepAlive.D() != 20*time.Second {
		t.Errorf("http timeouts default to timeout client: %+v", f.Timeouts)
	}
	if f.TLS.MinVersion != "1.2" || f.TLS.MaxVersion != "1.3" || len(f.TLS.ALPN) != 2 {
		t.Errorf("tls defaults: %+v", f.TLS)
	}
	if f.Rules[2].PathRe() == nil || f.Rules[2].Header[0].Re() == nil || f.Rules[1].Redirect.Code != 302 {
		t.Errorf("rule compilation/defaults: %+v", f.Rules)
	}
	app, api := c.Backend("app"), c.Backend("api")
	if app.Cookie.Mode != "insert" || app.HTTP.Reuse != "safe" || api.HTTP.Reuse != "always" || api.SSL.Verify != "none" {
		t.Errorf("backend defaults: cookie %+v reuse %s/%s", app.Cookie, app.HTTP.Reuse, api.HTTP.Reuse)
	}
}

func TestHTTPConfigProblems(t *testing.T) {
	base := `
defaults: {mode: http}
frontends:
  - name: web
    bind: ":80"
    default_backend: app
%s
backends:
  - name: app
%s
    servers: [{name: a, address: "127.0.0.1:1"}, {name: b, address: "127.0.0.1:2"%s}]
`
	tests := []struct {
		name, fe, be, srv, want string
	}{
		{"bad regex", "    rules: [{backend: app, path_regex: \"(\"}]", "", "", "rules.0.path_regex"},
		{"bad method", "    rules: [{backend: app, method: [\"GE T\"]}]", "", "", "not a valid token"},
		{"path prefix", "    rules: [{backend: app, path_prefix: [api]}]", "", "", "must start with /"},
		{"deny range", "    rules: [{deny: 99}]", "", "", "deny status 99"},
		{"redirect two", "    rules: [{redirect: {location: /a, prefix: /b}}]", "", "", "exactly one of"},
		{"redirect code", "    rules: [{redirect: {location: /a, code: 200}}]", "", "", "redirect code 200"},
		{"header crlf", "    rules: [{set_header: {X-A: \"a\\r\\nb\"}}]", "", "", "must not contain CR"},
		{"header fetch unknown", "    rules: [{set_header: {X-A: \"%[req.hdr(host)]\"}}]", "", "", "unknown %[req.hdr(host)]"},
		{"header lone percent", "    rules: [{set_header: {X-A: \"50%\"}}]", "", "", "lone %"},
		{"framing header", "    rules: [{set_header: {Content-Length: \"5\"}}]", "", "", "managed by the proxy"},
		{"hop header", "    rules: [{del_response_header: [Transfer-Encoding]}]", "", "", "managed by the proxy"},
		{"add host", "    rules: [{add_header: {Host: x}}]", "", "", "Host can only be replaced"},
		{"header name", "    rules: [{set_header: {\"X A\": b}}]", "", "", "not a valid token"},
		{"forwardfor mode", "    http: {forwardfor: {mode: sometimes}}", "", "", "forwardfor mode"},
		{"forwardfor except", "    http: {forwardfor: {except: [nonsense]}}", "", "", "forwardfor.except.0"},
		{"limits", "    http: {max_request_line: 10}", "", "", "max_request_line 10"},
		{"h2 streams negative", "    http: {h2_max_concurrent_streams: -1}", "", "", "t.yaml:7:39: frontends.0.http.h2_max_concurrent_streams: h2_max_concurrent_streams -1 out of range 1-4096"},
		{"h2 streams too many", "    http: {h2_max_concurrent_streams: 5000}", "", "", "h2_max_concurrent_streams 5000 out of range"},
		{"reuse", "", "    http: {reuse: sometimes}", "", "reuse \"sometimes\""},
		{"tls no cert", "    tls: {certificates: []}", "", "", "at least one certificate"},
		{"tls version", "    tls: {certificates: [{cert: a}], min_version: \"1.1\"}", "", "", "min_version"},
		{"tls alpn", "    tls: {certificates: [{cert: a}], alpn: [spdy]}", "", "", "alpn"},
		{"client auth without ca", "    tls: {certificates: [{cert: a}], client_auth: optional}", "", "", "client_auth needs client_ca"},
		{"cookie mode", "", "    cookie: {name: S, mode: eat}", "", "cookie mode"},
		{"cookie indirect rewrite", "", "    cookie: {name: S, mode: rewrite, indirect: true}", "", "apply to mode insert"},
		{"cookie duplicate value", "", "    cookie: {name: S}", ", cookie: a", "same cookie value"},
		{"ssl verify", "", "    ssl: {verify: maybe}", "", "verify \"maybe\""},
		{"monitor uri", "    monitor: {uri: health}", "", "", "frontends.0.monitor.uri: uri \"health\" must start with /"},
		{"monitor backend", "    monitor: {uri: /health, backends: [nope]}", "", "", "frontends.0.monitor.backends.0: unknown backend \"nope\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(strings.ReplaceAll(strings.ReplaceAll(
				strings.Replace(base, "%s", tt.fe, 1), "%s\n    servers", tt.be+"\n    servers"), "%s}]", tt.srv+"}]")))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error containing %q, got:\n%v", tt.want, err)
			}
		})
	}
	// http options in a tcp frontend are refused.
	_, err := Parse("t.yaml", []byte(`
frontends: [{name: f, bind: ":1", default_backend: b, mode: tcp, tls: {certificates: [{cert: a}]}, rules: [{backend: b, host: [x]}]}]
backends: [{name: b, mode: tcp, cookie: {name: S}, servers: [{name: a, address: "127.0.0.1:1"}]}]
`))
	for _, want := range []string{"tls termination needs mode http", "http conditions and actions need mode http", "cookie persistence needs mode http"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in:\n%v", want, err)
		}
	}
}
