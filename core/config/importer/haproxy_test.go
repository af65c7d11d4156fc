package importer

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// certsFS is the local file system where every certificate named in a
// test exists, as on the node the configuration comes from.
type certsFS struct{ osFS }

func (f certsFS) ReadFile(name string) ([]byte, error) {
	if strings.HasSuffix(name, ".pem") || strings.HasSuffix(name, ".crt") {
		return []byte("cert"), nil
	}
	return f.osFS.ReadFile(name)
}

func importHA(t *testing.T, cfg string) *Result {
	t.Helper()
	r, err := Import(Options{HAProxy: &Input{Name: "h.cfg", Data: []byte(cfg)}, FS: certsFS{}})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return r
}

// wantWarnings checks that each want is a substring of some warning
// ("h.cfg:LINE: directive: why") and, when exact, that there are no others.
func wantWarnings(t *testing.T, r *Result, want []string, exact bool) {
	t.Helper()
	var got []string
	for _, w := range r.Warnings {
		got = append(got, w.String())
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.Contains(g, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no warning containing %q; got:\n  %s", w, strings.Join(got, "\n  "))
		}
	}
	if exact && len(got) != len(want) {
		t.Errorf("got %d warnings, want %d:\n  %s", len(got), len(want), strings.Join(got, "\n  "))
	}
}

const srv = "backend b\n  server s1 198.18.1.1:80\n"

func d(s string) config.Duration {
	v, err := config.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return v
}

func TestHAProxyDirectives(t *testing.T) {
	tests := []struct {
		name  string
		cfg   string
		check func(t *testing.T, c *config.Cluster)
		warns []string // exact set (substrings)
	}{
		{
			name: "global maxconn and defaults",
			cfg: "global\n  maxconn 5000\n  daemon\ndefaults\n  mode http\n  retries 5\n  option redispatch\n" +
				"  timeout connect 3s\n  timeout client 1m\n  timeout server 2m\n  timeout tunnel 1h\n  timeout queue 10s\n" +
				"  timeout check 2s\n  timeout http-request 10s\n  timeout http-keep-alive 2s\n  balance leastconn\n" +
				srv,
			check: func(t *testing.T, c *config.Cluster) {
				df := c.Defaults
				if df.Mode != "http" || df.MaxConn != 5000 || *df.Retries != 5 || !*df.Redispatch || df.Balance.Algorithm != "leastconn" {
					t.Errorf("defaults = %+v", df)
				}
				want := config.Timeouts{Connect: d("3s"), Client: d("1m"), Server: d("2m"), Tunnel: d("1h"), Queue: d("10s"),
					Check: d("2s"), HTTPRequest: d("10s"), HTTPKeepAlive: d("2s"), ClientFin: d("1m"), ServerFin: d("2m")}
				if df.Timeouts != want {
					t.Errorf("timeouts = %+v, want %+v", df.Timeouts, want)
				}
			},
		},
		{
			name: "global http tuning",
			cfg:  "global\n  tune.h2.max-concurrent-streams 50\n  tune.http.maxhdr 64\n  tune.bufsize 32768\ndefaults\n  mode http\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				if h := c.Defaults.HTTP; h.H2MaxConcurrentStreams != 50 || h.MaxHeaders != 64 {
					t.Errorf("defaults.http = %+v, want h2_max_concurrent_streams 50, max_headers 64", h)
				}
			},
		},
		{
			name: "defaults maxconn wins over global",
			cfg:  "global\n  maxconn 5000\ndefaults\n  maxconn 100\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				if c.Defaults.MaxConn != 100 {
					t.Errorf("maxconn = %d", c.Defaults.MaxConn)
				}
			},
			warns: []string{"h.cfg:2: maxconn: the process-wide limit has no vipgate equivalent: defaults maxconn 100 applies per frontend"},
		},
		{
			name: "default-server and server options",
			cfg: "defaults\n  default-server inter 3s fastinter 1s downinter 5s rise 4 fall 5 weight 10 maxconn 50 slowstart 20s\n" +
				"backend b\n  option tcp-check\n" +
				"  server s1 198.18.1.1:80 check\n" +
				"  server s2 198.18.1.2:80 check weight 20 backup disabled init-state fully-down on-marked-down shutdown-sessions port 8080\n" +
				"  server s3 198.18.1.3:80 send-proxy-v2\n",
			check: func(t *testing.T, c *config.Cluster) {
				b := c.Backend("b")
				ck := b.Check
				if ck == nil || ck.Kind != "tcp" || ck.Inter != d("3s") || ck.FastInter != d("1s") || ck.DownInter != d("5s") || ck.Rise != 4 || ck.Fall != 5 {
					t.Fatalf("check = %+v", ck)
				}
				s1, s2, s3 := b.Servers[0], b.Servers[1], b.Servers[2]
				if s1.EffectiveWeight() != 10 || s1.MaxConn != 50 || s1.SlowStart != d("20s") || s1.Check != nil {
					t.Errorf("s1 = %+v", s1)
				}
				if s2.EffectiveWeight() != 20 || !s2.Backup || !s2.Disabled || s2.InitState != "fully-down" || s2.OnMarkedDown != "shutdown-sessions" {
					t.Errorf("s2 = %+v", s2)
				}
				if s3.Check == nil || *s3.Check {
					t.Errorf("s3 without check must have check: false, got %+v", s3.Check)
				}
				if b.SendProxy != "v2" {
					t.Errorf("send_proxy = %q", b.SendProxy)
				}
			},
			warns: []string{"h.cfg:6: server s2: check settings differ from server s1's (line 5)"},
		},
		{
			name: "balance variants",
			cfg: "defaults\n  mode http\n" +
				"backend a\n  balance url_param sess\n  server s 198.18.1.1:80\n" +
				"backend b\n  balance hdr(X-Tenant)\n  hash-type consistent\n  server s 198.18.1.1:80\n" +
				"backend c\n  balance random(3)\n  server s 198.18.1.1:80\n" +
				"backend e\n  balance static-rr\n  server s 198.18.1.1:80\n" +
				"backend f\n  balance rdp-cookie\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				if b := c.Backend("a").Balance; b.Algorithm != "url_param" || b.Param != "sess" {
					t.Errorf("a = %+v", b)
				}
				if b := c.Backend("b").Balance; b.Algorithm != "hdr" || b.Param != "X-Tenant" || b.HashType != "consistent" {
					t.Errorf("b = %+v", b)
				}
				if b := c.Backend("c").Balance; b.Algorithm != "random" || b.Draws != 3 {
					t.Errorf("c = %+v", b)
				}
				if b := c.Backend("e").Balance; b.Algorithm != "static-rr" {
					t.Errorf("e = %+v", b)
				}
			},
			warns: []string{"h.cfg:17: balance rdp-cookie: no vipgate equivalent"},
		},
		{
			name: "httpchk with old Host trick and expect",
			cfg: "backend b\n  option httpchk HEAD /health HTTP/1.1\\r\\nHost:\\ www.example.com\n  http-check expect status 200,301-302\n" +
				"  server s 198.18.1.1:443 check check-ssl verify none\n",
			check: func(t *testing.T, c *config.Cluster) {
				ck := c.Backend("b").Check
				if ck.Kind != "http" || !ck.SSL || ck.Verify != "none" {
					t.Errorf("check = %+v", ck)
				}
				h := ck.HTTP
				if h.Method != "HEAD" || h.Path != "/health" || h.Host != "www.example.com" || !reflect.DeepEqual(h.ExpectStatus, []int{200, 301, 302}) {
					t.Errorf("http = %+v", h)
				}
			},
		},
		{
			name: "http-check send and rstring",
			cfg: "backend b\n  option httpchk\n  http-check send meth GET uri /ews/healthcheck.htm ver HTTP/1.1 hdr Host exch2016.domain.com hdr X-A b\n" +
				"  http-check expect rstring ^OK\n  server s 198.18.1.1:80 check inter 500ms\n",
			check: func(t *testing.T, c *config.Cluster) {
				ck := c.Backend("b").Check
				h := ck.HTTP
				if h.Method != "GET" || h.Path != "/ews/healthcheck.htm" || h.Host != "exch2016.domain.com" || h.Headers["X-A"] != "b" || h.ExpectBody != "^OK" {
					t.Errorf("http = %+v", h)
				}
				if ck.Inter != d("500ms") {
					t.Errorf("inter = %v", ck.Inter)
				}
			},
		},
		{
			name: "rstatus becomes a list",
			cfg:  "backend b\n  option httpchk GET /\n  http-check expect rstatus ^(200|30[12])$\n  server s 198.18.1.1:80 check\n",
			check: func(t *testing.T, c *config.Cluster) {
				if got := c.Backend("b").Check.HTTP.ExpectStatus; !reflect.DeepEqual(got, []int{200, 301, 302}) {
					t.Errorf("expect_status = %v", got)
				}
			},
		},
		{
			name: "http-check expect string is literal",
			cfg:  "backend b\n  option httpchk\n  http-check expect string a.b\n  server s 198.18.1.1:80 check\n",
			check: func(t *testing.T, c *config.Cluster) {
				if got := c.Backend("b").Check.HTTP.ExpectBody; got != `a\.b` {
					t.Errorf("expect_body_regex = %q", got)
				}
			},
		},
		{
			name: "tcp-check send expect",
			cfg: "backend b\n  option tcp-check\n  tcp-check connect port 6379\n  tcp-check send PING\\r\\n\n  tcp-check expect string +PONG\n" +
				"  tcp-check send QUIT\\r\\n\n  server s 198.18.1.1:6379 check\n",
			check: func(t *testing.T, c *config.Cluster) {
				ck := c.Backend("b").Check
				if ck.Kind != "tcp" || ck.Send != "PING\r\n" || ck.Expect != "+PONG" || ck.Port != 6379 {
					t.Errorf("check = %+v", ck)
				}
			},
			warns: []string{"h.cfg:6: tcp-check send: vipgate checks send once"},
		},
		{
			name: "ssl-hello-chk",
			cfg:  "backend b\n  option ssl-hello-chk\n  server s 198.18.1.1:443 check\n",
			check: func(t *testing.T, c *config.Cluster) {
				if ck := c.Backend("b").Check; ck.Kind != "tls" {
					t.Errorf("kind = %q", ck.Kind)
				}
			},
		},
		{
			name: "checks without check keyword stay off",
			cfg:  "backend b\n  option httpchk GET /\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				if c.Backend("b").Check != nil {
					t.Errorf("check = %+v", c.Backend("b").Check)
				}
			},
		},
		{
			name: "listen is a frontend and a backend",
			cfg: "listen web\n  bind :80\n  bind :::80\n  mode http\n  maxconn 300\n  timeout client 5s\n  timeout server 6s\n" +
				"  cookie SRV insert indirect nocache httponly\n  server a 198.18.1.1:80 cookie A\n  server b 198.18.1.2:80 cookie B\n",
			check: func(t *testing.T, c *config.Cluster) {
				f, b := c.Frontend("web"), c.Backend("web")
				if f == nil || b == nil {
					t.Fatal("missing frontend or backend web")
				}
				if f.DefaultBackend != "web" || f.MaxConn != 300 || f.Timeouts.Client != d("5s") || b.Timeouts.Server != d("6s") {
					t.Errorf("frontend = %+v", f)
				}
				if !reflect.DeepEqual([]string(f.Bind), []string{"0.0.0.0:80", "[::]:80"}) {
					t.Errorf("bind = %q", f.Bind)
				}
				ck := b.Cookie
				if ck == nil || ck.Name != "SRV" || ck.Mode != "insert" || !ck.Indirect || !ck.NoCache || !ck.HTTPOnly {
					t.Errorf("cookie = %+v", ck)
				}
				if b.Servers[0].Cookie != "A" || b.Servers[1].Cookie != "B" {
					t.Errorf("server cookies = %q %q", b.Servers[0].Cookie, b.Servers[1].Cookie)
				}
			},
		},
		{
			name: "ssl crt in http mode and accept-proxy",
			cfg: "frontend f\n  mode http\n  bind :443 ssl crt /etc/ssl/a.pem crt /etc/ssl/b.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2 accept-proxy\n" +
				"  default_backend b\n" + "backend b\n  mode http\n  server s1 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				f := c.Frontend("f")
				if f.TLS == nil || len(f.TLS.Certificates) != 2 || f.TLS.Certificates[1].Cert != "/etc/ssl/b.pem" || f.TLS.MinVersion != "1.2" || !f.AcceptProxy {
					t.Errorf("frontend = %+v tls %+v", f, f.TLS)
				}
			},
		},
		{
			name: "ssl crt in tcp mode is a warning",
			cfg:  "frontend f\n  bind :443 ssl crt /etc/ssl/a.pem\n  default_backend b\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				if c.Frontend("f").TLS != nil {
					t.Error("tls set in tcp mode")
				}
			},
			warns: []string{"h.cfg:2: bind ssl: TLS termination needs mode http"},
		},
		{
			name: "server ssl in a backend whose mode http comes from defaults",
			cfg:  "defaults\n  mode http\nbackend b\n  server s1 198.18.1.1:443 ssl verify none\n",
			check: func(t *testing.T, c *config.Cluster) {
				if s := c.Backend("b").SSL; s == nil || s.Verify != "none" {
					t.Errorf("backend ssl = %+v, want verify none", s)
				}
			},
		},
		{
			name: "global ssl-server-verify none is the servers' default",
			cfg: "global\n  ssl-server-verify none\ndefaults\n  mode http\n" +
				"backend b\n  option httpchk GET /owa/healthcheck.htm\n  server s1 198.18.1.1:443 check ssl\n" +
				"backend v\n  server s1 198.18.1.1:443 ssl verify required ca-file /etc/ssl/ca.pem\n" +
				"backend t\n  mode tcp\n  option tcp-check\n  tcp-check connect ssl\n  server s1 198.18.1.1:993 check\n",
			check: func(t *testing.T, c *config.Cluster) {
				b := c.Backend("b")
				if b.SSL == nil || b.SSL.Verify != "none" || b.Check == nil || !b.Check.SSL || b.Check.Verify != "none" {
					t.Errorf("backend b ssl %+v check %+v, want verify none on both", b.SSL, b.Check)
				}
				if v := c.Backend("v"); v.SSL == nil || v.SSL.Verify != "required" {
					t.Errorf("backend v ssl %+v: a server's own verify wins", v.SSL)
				}
				if tc := c.Backend("t").Check; tc == nil || !tc.SSL || tc.Verify != "none" {
					t.Errorf("backend t check %+v, want ssl with verify none", tc)
				}
			},
		},
		{
			name: "a frontend with plain and ssl binds becomes two frontends",
			cfg: "defaults\n  mode http\nfrontend f\n  bind :80\n  bind :443 ssl crt /etc/ssl/a.pem\n" +
				"  http-request redirect scheme https unless { ssl_fc }\n  http-request set-header X-Forwarded-Proto https if { ssl_fc }\n" +
				"  acl ews path_beg /ews\n  use_backend b if ews\n  default_backend b\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				f, plain := c.Frontend("f"), c.Frontend("f-plain")
				if f == nil || plain == nil {
					t.Fatalf("frontends = %+v, want f and f-plain", c.Frontends)
				}
				if f.TLS == nil || !reflect.DeepEqual(f.Bind, config.StringList{"0.0.0.0:443"}) || len(f.Rules) != 2 ||
					f.Rules[0].SetHeader["X-Forwarded-Proto"] != "https" || f.Rules[1].Backend != "b" {
					t.Errorf("tls frontend = %+v rules %+v", f, f.Rules)
				}
				if plain.TLS != nil || !reflect.DeepEqual(plain.Bind, config.StringList{"0.0.0.0:80"}) || len(plain.Rules) != 2 ||
					plain.Rules[0].Redirect == nil || plain.Rules[0].Redirect.Scheme != "https" || plain.Rules[1].Backend != "b" {
					t.Errorf("plain frontend = %+v rules %+v", plain, plain.Rules)
				}
			},
		},
		{
			name: "a listen with plain and ssl binds is a warning",
			cfg:  "defaults\n  mode http\nlisten l\n  bind :80\n  bind :443 ssl crt /etc/ssl/a.pem\n  server s1 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				if f := c.Frontend("l"); f == nil || f.TLS == nil {
					t.Errorf("frontend l = %+v", f)
				}
			},
			warns: []string{"h.cfg:4: bind: vipgate terminates TLS on every address of a frontend"},
		},
		{
			name: "bind labels and thread pinning are not warnings",
			cfg:  "frontend f\n  bind :443 name https id 3 process 1 thread 1-2\n  default_backend b\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				if f := c.Frontend("f"); f == nil || !reflect.DeepEqual(f.Bind, config.StringList{"0.0.0.0:443"}) {
					t.Errorf("frontend = %+v", f)
				}
			},
		},
		{
			name: "global ssl-default-bind-options versions apply to frontends that set none",
			cfg: "global\n  ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets\ndefaults\n  mode http\n" +
				"frontend f\n  bind :443 ssl crt /etc/ssl/a.pem\n  default_backend b\n" +
				"frontend g\n  bind :8443 ssl crt /etc/ssl/a.pem ssl-min-ver TLSv1.2\n  default_backend b\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				if tls := c.Frontend("f").TLS; tls == nil || tls.MinVersion != "1.3" {
					t.Errorf("frontend f tls = %+v, want min_version 1.3", tls)
				}
				if tls := c.Frontend("g").TLS; tls == nil || tls.MinVersion != "1.2" {
					t.Errorf("frontend g tls = %+v, want its own min_version 1.2", tls)
				}
			},
		},
		{
			name: "global no-tlsv12 and versions vipgate does not offer",
			cfg: "global\n  ssl-default-bind-options no-sslv3 no-tlsv10 no-tlsv11 no-tlsv12\ndefaults\n  mode http\n" +
				"frontend f\n  bind :443 ssl crt /etc/ssl/a.pem\n  default_backend b\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				if tls := c.Frontend("f").TLS; tls == nil || tls.MinVersion != "1.3" {
					t.Errorf("frontend f tls = %+v, want min_version 1.3", tls)
				}
			},
		},
		{
			name:  "global ssl-min-ver below TLS 1.2 is a warning",
			cfg:   "global\n  ssl-default-bind-options ssl-min-ver TLSv1.0\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {},
			warns: []string{"h.cfg:2: ssl-default-bind-options ssl-min-ver TLSv1.0: vipgate supports TLS 1.2 and 1.3 only"},
		},
		{
			name: "monitor-uri",
			cfg: "frontend f\n  mode http\n  bind :80\n  monitor-uri /haproxy_health\n  monitor fail if { nbsrv(b) lt 1 }\n  default_backend b\n" +
				"frontend g\n  mode http\n  bind :81\n  monitor-uri /health\n  monitor fail if site_dead\n  default_backend b\n" +
				"backend b\n  mode http\n  server s1 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				if m := c.Frontend("f").Monitor; m == nil || m.URI != "/haproxy_health" || len(m.Backends) != 1 || m.Backends[0] != "b" {
					t.Errorf("f monitor %+v", m)
				}
				if m := c.Frontend("g").Monitor; m == nil || m.URI != "/health" || len(m.Backends) != 0 {
					t.Errorf("g monitor %+v", m)
				}
			},
			warns: []string{"h.cfg:11: monitor: only `monitor fail if { nbsrv(BACKEND) lt 1 }` translates"},
		},
		{
			name: "tcp keepalive options",
			cfg: "defaults\n  mode tcp\n  option tcpka\n" +
				"frontend f\n  bind :25\n  no option clitcpka\n  default_backend b\n" +
				"backend b\n  option srvtcpka\n  option persist\n  server s1 198.18.1.1:25\n",
			check: func(t *testing.T, c *config.Cluster) {
				if !config.Flag(c.Defaults.TCPKeepAlive) || config.Flag(c.Frontend("f").TCPKeepAlive) || !config.Flag(c.Backend("b").TCPKeepAlive) {
					t.Errorf("tcp_keepalive: defaults %v frontend %v backend %v, want true false true",
						c.Defaults.TCPKeepAlive, c.Frontend("f").TCPKeepAlive, c.Backend("b").TCPKeepAlive)
				}
			},
			warns: []string{"h.cfg:10: option persist: not supported"},
		},
		{
			name: "passive health and check-send-proxy",
			cfg: "defaults\n  mode http\n  default-server inter 3s observe layer7 error-limit 5 on-error mark-down\n" +
				"backend h\n  server s1 198.18.1.1:80 check\n  server s2 198.18.1.2:80 check\n" +
				"backend t\n  mode tcp\n  server s1 198.18.1.1:25 check send-proxy-v2 check-send-proxy port 2525\n" +
				"backend n\n  server s1 198.18.1.1:80 check error-limit 3 on-error sudden-death\n" +
				"backend b\n  server s1 198.18.1.1:80 check observe layer5 on-error explode\n",
			check: func(t *testing.T, c *config.Cluster) {
				if ch := c.Backend("h").Check; ch.Observe != "layer7" || ch.ErrorLimit != 5 || ch.OnError != "mark-down" {
					t.Errorf("h: observe %q error_limit %d on_error %q", ch.Observe, ch.ErrorLimit, ch.OnError)
				}
				// layer7 needs http: a tcp backend watches connections, as HAProxy.
				if ch := c.Backend("t").Check; ch.Observe != "layer4" || ch.SendProxy != "v2" || ch.Port != 2525 {
					t.Errorf("t: observe %q send_proxy %q port %d", ch.Observe, ch.SendProxy, ch.Port)
				}
			},
			warns: []string{
				"h.cfg:13: observe: \"layer5\": want layer4 or layer7",
				"h.cfg:13: on-error: \"explode\": want fastinter, fail-check, sudden-death or mark-down",
			},
		},
		{
			name:  "prefer-last-server in http mode is a warning",
			cfg:   "backend h\n  mode http\n  option prefer-last-server\n  server s1 198.18.1.1:80\nbackend t\n  option prefer-last-server\n  server s1 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {},
			warns: []string{"h.cfg:3: option prefer-last-server: vipgate prefers the last server only once it asked for NTLM/Negotiate sign-in"},
		},
		{
			name: "redirect frontend",
			cfg:  "frontend f\n  mode http\n  bind :80\n  http-request redirect scheme https code 301 if !{ ssl_fc }\n",
			check: func(t *testing.T, c *config.Cluster) {
				r := c.Frontend("f").Rules
				if len(r) != 1 || r[0].Redirect == nil || r[0].Redirect.Scheme != "https" || r[0].Redirect.Code != 301 || r[0].Backend != "" {
					t.Errorf("rules = %+v", r)
				}
			},
		},
		{
			name: "header actions and deny",
			cfg: "frontend f\n  mode http\n  bind :80\n  acl bad src 198.18.66.0/24\n  http-request deny deny_status 429 if bad\n" +
				"  http-request set-header X-Proto https\n  http-request del-header X-Debug\n  http-response set-header Strict-Transport-Security max-age=31536000\n" +
				"  default_backend b\nbackend b\n  mode http\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				r := c.Frontend("f").Rules
				if len(r) != 4 {
					t.Fatalf("rules = %+v", r)
				}
				if r[0].Deny != 429 || r[0].Src[0] != "198.18.66.0/24" || r[1].SetHeader["X-Proto"] != "https" ||
					r[2].DelHeader[0] != "X-Debug" || r[3].SetResponseHeader["Strict-Transport-Security"] != "max-age=31536000" {
					t.Errorf("rules = %+v", r)
				}
			},
		},
		{
			name: "forwardfor httplog errorfile reuse",
			cfg: "defaults\n  mode http\n  option httplog\n  option forwardfor except 127.0.0.0/8\nfrontend f\n  bind :80\n  errorfile 503 /etc/e/503.http\n  default_backend b\n" +
				"backend b\n  http-reuse always\n  option allbackups\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				if !config.Flag(c.Defaults.HTTP.Log) || c.Defaults.HTTP.ForwardFor == nil || c.Defaults.HTTP.ForwardFor.Except[0] != "127.0.0.0/8" {
					t.Errorf("defaults.http = %+v", c.Defaults.HTTP)
				}
				if c.Frontend("f").HTTP.ErrorFiles[503] != "/etc/e/503.http" {
					t.Errorf("error files = %v", c.Frontend("f").HTTP.ErrorFiles)
				}
				if b := c.Backend("b"); b.HTTP.Reuse != "always" || !b.AllBackups {
					t.Errorf("backend = %+v", b)
				}
			},
		},
		{
			name: "server without port takes the frontend's",
			cfg:  "frontend f\n  bind :25\n  default_backend b\nbackend b\n  server s 198.18.1.1\n",
			check: func(t *testing.T, c *config.Cluster) {
				if a := c.Backend("b").Servers[0].Address; a != "198.18.1.1:25" {
					t.Errorf("address = %q", a)
				}
			},
			warns: []string{"h.cfg:5: server s: no port: using the frontend's port, 198.18.1.1:25"},
		},
		{
			name: "server without port behind several ports: one backend per port",
			cfg: "frontend f\n  bind :80\n  bind :443\n  acl internal src 10.0.0.0/8\n  use_backend b if internal { dst_port 443 }\n  default_backend b\n" +
				"backend b\n  stick-table type ip size 1k\n  stick on src\n  server s1 198.18.1.1 check port 443\n  server s2 198.18.1.2:8443\n" +
				"listen smtp\n  bind :25\n  bind :587\n  server s1 198.18.1.3 check port 25\n",
			check: func(t *testing.T, c *config.Cluster) {
				for name, want := range map[string][]string{"b-80": {"198.18.1.1:80", "198.18.1.2:8443"}, "b-443": {"198.18.1.1:443", "198.18.1.2:8443"},
					"smtp-25": {"198.18.1.3:25"}, "smtp-587": {"198.18.1.3:587"}} {
					b := c.Backend(name)
					if b == nil {
						t.Errorf("no backend %s in %+v", name, c.Backends)
						continue
					}
					var got []string
					for _, s := range b.Servers {
						got = append(got, s.Address)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("backend %s servers %v, want %v", name, got, want)
					}
					if strings.HasPrefix(name, "b-") && (b.Stick == nil || b.Stick.Table != "b" || b.Check == nil || b.Check.Port != 443) {
						t.Errorf("backend %s stick %+v check %+v, want the shared table b and check port 443", name, b.Stick, b.Check)
					}
				}
				if c.Backend("b") != nil || len(c.StickTables) != 1 || c.StickTables[0].Name != "b" {
					t.Errorf("backends %+v tables %+v", c.Backends, c.StickTables)
				}
				f := c.Frontend("f")
				type r struct {
					backend string
					port    []int
				}
				var got []r
				for _, x := range f.Rules {
					got = append(got, r{x.Backend, x.DstPort})
				}
				if want := []r{{"b-443", []int{443}}, {"b-80", []int{80}}, {"b-443", []int{443}}}; f.DefaultBackend != "" || !reflect.DeepEqual(got, want) || len(f.Rules[0].Src) != 1 {
					t.Errorf("frontend f default %q rules %+v, want %v", f.DefaultBackend, f.Rules, want)
				}
				if sm := c.Frontend("smtp"); sm == nil || sm.DefaultBackend != "" || len(sm.Rules) != 2 || sm.Rules[0].Backend != "smtp-25" || sm.Rules[1].DstPort[0] != 587 {
					t.Errorf("frontend smtp = %+v", sm)
				}
			},
			warns: []string{"h.cfg:10: server s1: no port: HAProxy connects to the port the client connected to; one backend per port: b-80, b-443",
				"h.cfg:15: server s1: no port: HAProxy connects to the port the client connected to; one backend per port: smtp-25, smtp-587"},
		},
		{
			name:  "backend without servers is dropped with its users",
			cfg:   "frontend f\n  bind :80\n  default_backend empty\nbackend empty\n  balance roundrobin\n",
			check: func(t *testing.T, c *config.Cluster) { assertEmpty(t, c) },
			warns: []string{"h.cfg:4: backend empty: backend without servers", "h.cfg:1: default_backend empty: backend not defined", "h.cfg:1: frontend f: frontend without a usable backend"},
		},
		{
			name: "names are cleaned",
			cfg:  "backend my:backend\n  server web/1 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				if c.Backend("my-backend") == nil {
					t.Errorf("backends = %+v", c.Backends)
				}
			},
			warns: []string{`h.cfg:1: backend my:backend: renamed to "my-backend"`, `h.cfg:2: server web/1: renamed to "web-1"`},
		},
		{
			name: "environment variables are kept and warned",
			cfg:  "frontend f\n  bind \"${VIP}:80\"\n  default_backend b\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				if len(c.Frontends) != 0 {
					t.Errorf("frontend with an unparsable address kept: %+v", c.Frontends)
				}
			},
			warns: []string{"h.cfg:2: bind: environment variables", "h.cfg:2: bind: ${VIP}:80: \"${VIP}\" is neither an IP address nor a host name", "h.cfg:1: frontend f: frontend without bind"},
		},
		{
			name:  "unknown keywords and options are positioned",
			cfg:   "defaults\n  option mysql-check\n  compression algo gzip\nfrontend f\n  bind :80\n  capture request header Host len 20\n  default_backend b\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {},
			warns: []string{"h.cfg:2: option mysql-check: option has no vipgate equivalent", "h.cfg:6: capture: not supported"},
		},
		{
			name: "later defaults sections are replayed",
			cfg: "defaults\n  mode tcp\n  timeout server 10s\n" + "backend a\n  server s 198.18.1.1:80\n" +
				"defaults\n  mode http\n  timeout server 20s\n" + "backend b\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				if b := c.Backend("a"); b.Mode != "tcp" || b.Timeouts.Server != d("10s") {
					t.Errorf("a = %s %v", b.Mode, b.Timeouts.Server)
				}
				if b := c.Backend("b"); b.Mode != "http" || b.Timeouts.Server != d("20s") {
					t.Errorf("b = %s %v", b.Mode, b.Timeouts.Server)
				}
			},
			warns: []string{"h.cfg:6: defaults: several defaults sections"},
		},
		{
			name: "stats listener is dropped without warnings",
			cfg:  "listen stats\n  bind :8404\n  mode http\n  stats enable\n  stats uri /stats\n  stats refresh 10s\n" + srv,
			check: func(t *testing.T, c *config.Cluster) {
				if len(c.Frontends) != 0 || c.Backend("stats") != nil {
					t.Errorf("stats section translated: %+v", c.Frontends)
				}
			},
		},
		{
			name:  "http-request in a backend",
			cfg:   "backend b\n  mode http\n  http-request set-header X-A b\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {},
			warns: []string{"h.cfg:3: http-request: rules in a backend are not supported"},
		},
		{
			name:  "peers and incomplete email-alert",
			cfg:   "peers p\n  peer a 198.18.0.1:1024\nmailers m\n  mailer s 198.18.0.25:25\n" + "backend b\n  email-alert mailers m\n  email-alert to a@b\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {},
			warns: []string{"h.cfg:1: peers p: stick-table peers are node-local", "h.cfg:3: mailers m: no proxy uses it", "h.cfg:7: email-alert: backend b: HAProxy sends alerts only with mailers, from and to all set"},
		},
		{
			name: "mailers and email-alert",
			cfg: "mailers m\n  mailer relay1 198.18.0.25:25\n  mailer relay2 smtp.example.com:587\n  timeout mail 20s\n" +
				"defaults\n  email-alert mailers m\n  email-alert from lb@example.com\n  email-alert to ops@example.com\n" +
				"backend a\n  server s 198.18.1.1:80\n" +
				"backend b\n  email-alert level notice\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				a := c.Alerts
				if len(a.Mailers) != 2 || a.Mailers[1].Address != "smtp.example.com:587" || a.Mailers[0].SendTimeout != d("20s") || a.From != "lb@example.com" {
					t.Errorf("alerts = %+v", a)
				}
				if len(a.Rules) != 2 || a.Rules[0].MinLevel != "warning" || a.Rules[1].MinLevel != "notice" || a.Rules[0].To[0] != "ops@example.com" {
					t.Errorf("rules = %+v", a.Rules)
				}
			},
		},
		{
			name: "stick on src and the SSL session ID recipe",
			cfg: "backend a\n  stick-table type ip size 1m expire 30m\n  stick on src\n  server s 198.18.1.1:80\n" +
				"backend b\n  stick-table type binary len 32 size 30k expire 10s peers p\n  acl clienthello req_ssl_hello_type 1\n  acl serverhello rep_ssl_hello_type 2\n" +
				"  stick on payload_lv(43,1) if clienthello\n  stick store-response payload_lv(43,1) if serverhello\n  server s 198.18.1.1:443\n" +
				"backend c\n  stick on src table a\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				if st := c.StickTable("a"); st == nil || st.Type != "ip" || st.Size != 1<<20 || st.Expire != d("30m") {
					t.Errorf("table a = %+v", st)
				}
				if st := c.StickTable("b"); st == nil || st.Type != "binary" || st.Len != 32 || st.Size != 30*1024 || !st.Peers {
					t.Errorf("table b = %+v", st)
				}
				if r := c.Backend("a").Stick; r == nil || r.On != "src" || r.Table != "a" {
					t.Errorf("a stick = %+v", r)
				}
				if r := c.Backend("b").Stick; r == nil || r.On != "ssl_session_id" || r.Table != "b" {
					t.Errorf("b stick = %+v", r)
				}
				if r := c.Backend("c").Stick; r == nil || r.On != "src" || r.Table != "a" {
					t.Errorf("c stick = %+v", r)
				}
			},
		},
		{
			name: "stick problems",
			cfg: "backend a\n  mode http\n  stick-table type ip\n  stick on src\n  server s 198.18.1.1:80\n" +
				"backend b\n  stick-table type string len 64 store gpc0\n  stick on req.cook(x)\n  server s 198.18.1.1:80\n" +
				"backend c\n  stick on src table nope\n  server s 198.18.1.1:80\n",
			check: func(t *testing.T, c *config.Cluster) {
				for _, b := range c.Backends {
					// http mode sticks on src (the Exchange guides' ActiveSync and RPC backends).
					if want := b.Name == "a"; (b.Stick != nil) != want || (want && b.Stick.On != config.StickOnSrc) {
						t.Errorf("backend %s: stick %+v", b.Name, b.Stick)
					}
				}
			},
			warns: []string{"h.cfg:7: stick-table store gpc0: not supported",
				"h.cfg:8: stick on req.cook(x): vipgate persists on", `h.cfg:10: stick on: dropped: no stick table "nope"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := importHA(t, tt.cfg)
			tt.check(t, r.Cluster)
			wantWarnings(t, r, tt.warns, true)
		})
	}
}

func assertEmpty(t *testing.T, c *config.Cluster) {
	t.Helper()
	if len(c.Frontends)+len(c.Backends) != 0 {
		t.Errorf("frontends %+v backends %+v, want none", c.Frontends, c.Backends)
	}
}

func TestHAProxyDefaultTimeoutsUnset(t *testing.T) {
	// An input without timeouts gets vipgate's defaults, not zeros.
	r := importHA(t, srv)
	if r.Cluster.Defaults.Timeouts.Connect.D() != 5*time.Second {
		t.Errorf("connect = %v", r.Cluster.Defaults.Timeouts.Connect)
	}
}

// %[fetch] in header values is carried over when the schema knows header
// templates, and refused (with a warning) when it does not; a fetch vipgate
// does not know never yields a rule.
func TestHeaderTemplates(t *testing.T) {
	cfg := "frontend f\n  mode http\n  bind :80\n  http-request set-header X-Client %[src]\n  http-request set-header X-Cookie %[req.cook(x)]\n" +
		"  http-request set-header X-Pct 100%%\n  default_backend b\nbackend b\n  mode http\n  server s 198.18.1.1:80\n"
	r := importHA(t, cfg)
	rules := r.Cluster.Frontend("f").Rules
	tr := &translator{}
	if tr.headerTemplates() {
		if len(rules) != 2 || rules[0].SetHeader["X-Client"] != "%[src]" || rules[1].SetHeader["X-Pct"] != "100%%" {
			t.Errorf("rules = %+v", rules)
		}
		wantWarnings(t, r, []string{"h.cfg:5: http-request set-header: dropped: header \"X-Cookie\""}, true)
		return
	}
	if len(rules) != 1 || rules[0].SetHeader["X-Pct"] != "100%" {
		t.Errorf("rules = %+v", rules)
	}
	wantWarnings(t, r, []string{"h.cfg:4: http-request set-header: log-format expressions", "h.cfg:5: http-request set-header: log-format expressions"}, true)
}

// A certificate directory (HAProxy loads every file in it) is listed as
// found at import time; a TLS bind left without a certificate is dropped
// rather than served in plain text.
func TestHAProxyCertificateDirectory(t *testing.T) {
	cfg := "defaults\n  mode http\nfrontend f\n  bind :443 ssl crt /etc/haproxy/certs/ alpn h2,http/1.1\n  default_backend b\n" +
		"frontend g\n  bind :8443 ssl crt /etc/haproxy/empty/\n  bind :8444 ssl crt /etc/haproxy/certs\n  default_backend b\n" + srv
	fsys := mapFS{"/etc/haproxy/certs/b.pem": "c", "/etc/haproxy/certs/b.pem.key": "k", "/etc/haproxy/certs/b.pem.ocsp": "o",
		"/etc/haproxy/certs/a.pem": "ck", "/etc/haproxy/certs/old/c.pem": "ck"}
	r, err := Import(Options{HAProxy: &Input{Name: "h.cfg", Data: []byte(cfg)}, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	want := []config.CertFiles{{Cert: "/etc/haproxy/certs/a.pem"}, {Cert: "/etc/haproxy/certs/b.pem", Key: "/etc/haproxy/certs/b.pem.key"}}
	if f := r.Cluster.Frontend("f"); f == nil || f.TLS == nil || !reflect.DeepEqual(f.TLS.Certificates, want) {
		t.Errorf("frontend f = %+v, want certificates %+v", f, want)
	}
	if g := r.Cluster.Frontend("g"); g == nil || !reflect.DeepEqual(g.Bind, config.StringList{"0.0.0.0:8444"}) || g.TLS == nil || len(g.TLS.Certificates) != 2 {
		t.Errorf("frontend g = %+v", g)
	}
	wantWarnings(t, r, []string{
		"h.cfg:4: bind crt /etc/haproxy/certs/: a directory: its 2 certificates as found now are listed",
		"h.cfg:7: bind crt /etc/haproxy/empty/: a directory without certificates",
		"h.cfg:7: bind ssl: no certificate to serve: the bind is dropped",
		"h.cfg:8: bind crt /etc/haproxy/certs: a directory: its 2 certificates as found now are listed",
	}, true)
}

// A certificate the import cannot read is translated, with a warning:
// `vipgate check` reports it until it is in place.
func TestHAProxyMissingCertificate(t *testing.T) {
	cfg := "defaults\n  mode http\nfrontend f\n  bind :443 ssl crt /etc/ssl/site.pem\n  default_backend b\n" + srv
	r, err := Import(Options{HAProxy: &Input{Name: "h.cfg", Data: []byte(cfg)}, FS: mapFS{}})
	if err != nil {
		t.Fatal(err)
	}
	if tls := r.Cluster.Frontends[0].TLS; tls == nil || tls.Certificates[0].Cert != "/etc/ssl/site.pem" {
		t.Errorf("tls = %+v", tls)
	}
	wantWarnings(t, r, []string{"h.cfg:4: bind crt /etc/ssl/site.pem: not readable where `vipgate import` runs"}, true)
}
