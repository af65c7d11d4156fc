package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const goodDoc = `
defaults:
  mode: tcp
  timeouts: {connect: 3s, client: 1m}
  check: {inter: 1s}
frontends:
  - name: web
    bind: ["127.0.0.1:8080", "[::1]:8080"]
    default_backend: app
    rules:
      - {backend: admin, src: [10.0.0.0/8, 192.0.2.7]}
backends:
  - name: app
    balance: {algorithm: source, hash_type: consistent}
    check: {kind: tcp}
    servers:
      - {name: a, address: "127.0.0.1:9001", weight: 3}
      - {name: b, address: "localhost:9002", backup: true}
  - name: admin
    servers:
      - {name: x, address: "[::1]:9003"}
`

func TestParseGoodAndDefaults(t *testing.T) {
	c, err := Parse("good.yaml", []byte(goodDoc))
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	f := c.Frontend("web")
	if f.Timeouts.Connect.D() != 3*time.Second || f.Timeouts.Client.D() != time.Minute {
		t.Errorf("frontend timeouts not inherited: %+v", f.Timeouts)
	}
	if f.Timeouts.Server.D() != DefaultServer {
		t.Errorf("server timeout default: %s", f.Timeouts.Server.D())
	}
	if f.MaxConn != DefaultFEMaxConn {
		t.Errorf("maxconn default %d", f.MaxConn)
	}
	b := c.Backend("app")
	if b.Check.Inter.D() != time.Second || b.Check.Rise != 2 || b.Check.Fall != 3 {
		t.Errorf("check defaults: %+v", b.Check)
	}
	if b.Check.FastInter != b.Check.Inter || b.Check.DownInter != b.Check.Inter {
		t.Errorf("fastinter/downinter default to inter: %+v", b.Check)
	}
	if *b.Retries != DefaultRetries {
		t.Errorf("retries default %d", *b.Retries)
	}
	if b.Timeouts.Queue != b.Timeouts.Connect {
		t.Errorf("timeout queue defaults to timeout connect: %s vs %s", b.Timeouts.Queue.D(), b.Timeouts.Connect.D())
	}
	if got := c.Backend("admin").Balance.Algorithm; got != "roundrobin" {
		t.Errorf("balance default %q", got)
	}
	if n := f.Rules[0].SrcNets(); len(n) != 2 || n[1].String() != "192.0.2.7/32" {
		t.Errorf("src nets %v", n)
	}
}

// TestProblemsArePositioned: every class of mistake names file:line:column
// and what is wrong.
func TestProblemsArePositioned(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"unknown key", "frontends:\n  - name: a\n    bnid: [':80']\n", `bad.yaml:3:5: frontends.0.bnid: unknown key "bnid" (did you mean "bind"?)`},
		{"unknown top key", "backend:\n  - name: a\n", `bad.yaml:1:1: backend: unknown key "backend" (did you mean "backends"?)`},
		{"bad address", "backends:\n  - name: b\n    servers:\n      - {name: s, address: '10.0.0.1'}\n",
			`bad.yaml:4:28: backends.0.servers.0.address: address "10.0.0.1": want host:port`},
		{"bad port", "backends:\n  - name: b\n    servers:\n      - {name: s, address: '10.0.0.1:99999'}\n",
			`backends.0.servers.0.address: address "10.0.0.1:99999": port "99999" out of range 1-65535`},
		{"duplicate backend", "backends:\n  - name: b\n    servers: [{name: s, address: 'h:1'}]\n  - name: b\n    servers: [{name: s, address: 'h:1'}]\n",
			`bad.yaml:4:11: backends.1.name: duplicate backend name "b"`},
		{"duplicate server", "backends:\n  - name: b\n    servers:\n      - {name: s, address: 'h:1'}\n      - {name: s, address: 'h:2'}\n",
			`bad.yaml:5:16: backends.0.servers.1.name: duplicate server name "s"`},
		{"missing backend", "frontends:\n  - name: f\n    bind: ':80'\n    default_backend: ap\nbackends:\n  - name: app\n    servers: [{name: s, address: 'h:1'}]\n",
			`bad.yaml:4:22: frontends.0.default_backend: backend "ap" is not defined (did you mean "app"?)`},
		{"weight out of range", "backends:\n  - name: b\n    servers:\n      - {name: s, address: 'h:1', weight: 300}\n",
			`bad.yaml:4:43: backends.0.servers.0.weight: weight 300 out of range 0-256`},
		{"bad duration", "defaults:\n  timeouts:\n    connect: 5 seconds\n", `bad.yaml:3:14: invalid duration "5 seconds"`},
		{"wrong type", "defaults:\n  maxconn: lots\n", "bad.yaml:2: cannot unmarshal !!str `lots` into int"},
		{"bad algorithm", "backends:\n  - name: b\n    balance: {algorithm: fastest}\n    servers: [{name: s, address: 'h:1'}]\n",
			`backends.0.balance.algorithm: unknown balance algorithm "fastest"`},
		{"http algorithm in tcp", "backends:\n  - name: b\n    balance: {algorithm: uri}\n    servers: [{name: s, address: 'h:1'}]\n",
			`balance uri needs mode http`},
		{"duplicate bind", "frontends:\n  - {name: a, bind: ':80', default_backend: b}\n  - {name: c, bind: ':80', default_backend: b}\nbackends:\n  - {name: b, servers: [{name: s, address: 'h:1'}]}\n",
			`frontends.1.bind.0: bind ":80" is already used by frontend "a"`},
		{"bad cidr", "frontends:\n  - name: a\n    bind: ':80'\n    rules: [{backend: b, src: ['10.0.0.0/33']}]\nbackends:\n  - {name: b, servers: [{name: s, address: 'h:1'}]}\n",
			`frontends.0.rules.0.src.0: network "10.0.0.0/33"`},
		{"syntax error", "frontends: [\n", `bad.yaml:1: did not find expected node content`},
		{"duplicate key", "defaults:\n  mode: tcp\n  mode: http\n", `bad.yaml:3: mapping key "mode" already defined`},
		{"no servers", "backends:\n  - name: b\n", `backends.0: backend "b" has no servers`},
		{"check rise 0", "backends:\n  - name: b\n    check: {rise: -1}\n    servers: [{name: s, address: 'h:1'}]\n", `rise -1 must be at least 1`},
		{"check send_proxy", "backends:\n  - name: b\n    check: {send_proxy: v3}\n    servers: [{name: s, address: 'h:1'}]\n", `backends.0.check.send_proxy: send_proxy "v3": want v1, v2 or none`},
		{"observe unknown", "backends:\n  - name: b\n    check: {observe: layer3}\n    servers: [{name: s, address: 'h:1'}]\n", `bad.yaml:3:22: backends.0.check.observe: observe "layer3": want layer4 or layer7`},
		{"observe layer7 in tcp", "backends:\n  - name: b\n    check: {observe: layer7}\n    servers: [{name: s, address: 'h:1'}]\n", `backends.0.check.observe: observe layer7 needs mode http`},
		{"on_error unknown", "backends:\n  - name: b\n    check: {observe: layer4, on_error: panic}\n    servers: [{name: s, address: 'h:1'}]\n", `backends.0.check.on_error: on_error "panic": want fastinter`},
		{"error_limit without observe", "backends:\n  - name: b\n    check: {error_limit: 5}\n    servers: [{name: s, address: 'h:1'}]\n", `backends.0.check.error_limit: error_limit needs observe`},
		{"error_limit negative", "backends:\n  - name: b\n    check: {observe: layer4, error_limit: -1}\n    servers: [{name: s, address: 'h:1'}]\n", `error_limit -1 out of range`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKnown("bad.yaml", []byte(c.doc), testKnown)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not contain %q:\n%v", c.want, err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, want *config.Error", err)
			}
		})
	}
}

// TestAllProblemsReported: one run reports every problem, not just the first.
func TestAllProblemsReported(t *testing.T) {
	doc := "frontends:\n  - name: f\n    bind: 'nope'\n    default_backend: x\nbackends:\n  - name: b\n    servers:\n      - {name: s, address: 'h:1', weight: -1}\n"
	_, err := Parse("bad.yaml", []byte(doc))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *Error, got %v", err)
	}
	if len(ce.Problems) != 3 {
		t.Fatalf("want 3 problems, got %d:\n%v", len(ce.Problems), err)
	}
	for i := 1; i < len(ce.Problems); i++ {
		if ce.Problems[i].Pos.Line < ce.Problems[i-1].Pos.Line {
			t.Fatalf("problems not in file order:\n%v", err)
		}
	}
}

func TestDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5s", 5 * time.Second, true}, {"100ms", 100 * time.Millisecond, true}, {"1500", 1500 * time.Millisecond, true},
		{"2d", 48 * time.Hour, true}, {"1m30s", 90 * time.Second, true}, {"-1s", 0, false}, {"x", 0, false}, {"", 0, false},
	}
	for _, c := range cases {
		d, err := ParseDuration(c.in)
		if (err == nil) != c.ok || (c.ok && d.D() != c.want) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", c.in, d.D(), err, c.want, c.ok)
		}
	}
}

func TestNodeFile(t *testing.T) {
	n, err := ParseNode("node.yaml", []byte("name: gw1\ndatacenter: dc1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n.Admin.Listen != DefaultAdminListen || n.Role != RoleGateway {
		t.Errorf("defaults: %+v", n)
	}
	_, err = ParseNode("node.yaml", []byte("name: gw1\nadmin: {listen: 'x', tokens: [short]}\nlog: {level: loud}\n"))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"node.yaml:1:1: datacenter: a gateway node needs a datacenter", "admin.listen", "token is too short", "log.level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestNodeAdminWithoutTokens: vipgate check reports what vipgate run
// refuses: an admin API without tokens off loopback; read tokens are held
// to the same length as write tokens.
func TestNodeAdminWithoutTokens(t *testing.T) {
	for _, tc := range []struct {
		admin, want string
	}{
		{"{listen: '0.0.0.0:9900'}", `node.yaml:3:17: admin.listen: listen "0.0.0.0:9900" without admin.tokens: an admin API without tokens may only listen on loopback`},
		{"{listen: ':9900'}", `admin.listen: listen ":9900" without admin.tokens`},
		{"{listen: '[::]:9900'}", `admin.listen: listen "[::]:9900" without admin.tokens`},
		{"{listen: '127.0.0.1:9900', read_tokens: [short]}", `admin.read_tokens.0: token is too short`},
		{"{listen: '127.0.0.2:9900'}", ""},
		{"{listen: '[::1]:9900'}", ""},
		{"{listen: 'localhost:9900'}", ""},
		{"{listen: '0.0.0.0:9900', read_tokens: [read-token-0123456789]}", ""},
	} {
		_, err := ParseNode("node.yaml", []byte("name: gw1\ndatacenter: dc1\nadmin: "+tc.admin+"\n"))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.admin, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v\nwant %s", tc.admin, err, tc.want)
		}
	}
}

// TestRecursiveAliasTerminates: a self-referencing alias is an error, not a hang.
func TestRecursiveAliasTerminates(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		_, err := Parse("x.yaml", []byte("backends: &x [*x]\n"))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("recursive alias accepted")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Parse did not return")
	}
}

// TestDefaultsInheritedKeyByKey: a backend inherits defaults.check and
// defaults.balance as HAProxy backends inherit the defaults section — the
// probe (kind, http, ssl...) included, not only the intervals.
func TestDefaultsInheritedKeyByKey(t *testing.T) {
	const head = `
defaults:
  balance: {algorithm: source, hash_type: consistent, draws: 3}
  timeouts: {connect: 4s}
  check:
    kind: http
    inter: 3s
    timeout: 700ms
    port: 8443
    ssl: true
    verify: none
    http: {path: /ews/healthcheck.htm, host: exch.example.com, expect_status: [200]}
frontends: [{name: f, bind: "127.0.0.1:8080", default_backend: a}]
backends:
`
	cases := []struct {
		name, backend string
		want          func(b *Backend) string
	}{
		{"empty block takes the whole probe", "{name: a, check: {}, servers: [{name: s, address: '127.0.0.1:1'}]}",
			func(b *Backend) string {
				ch := b.Check
				if ch.Kind != "http" || ch.HTTP == nil || ch.HTTP.Path != "/ews/healthcheck.htm" || ch.HTTP.Host != "exch.example.com" ||
					len(ch.HTTP.ExpectStatus) != 1 || !ch.SSL || ch.Verify != "none" || ch.Port != 8443 ||
					ch.Inter.D() != 3*time.Second || ch.Timeout.D() != 700*time.Millisecond || ch.Rise != 2 || ch.Fall != 3 {
					return "probe not inherited"
				}
				return ""
			}},
		{"own kind kept, timing and transport inherited", "{name: a, check: {kind: tcp, rise: 5}, servers: [{name: s, address: '127.0.0.1:1'}]}",
			func(b *Backend) string {
				ch := b.Check
				if ch.Kind != "tcp" || ch.HTTP != nil {
					return "the backend's own kind was mixed with the default http request"
				}
				if !ch.SSL || ch.Verify != "none" {
					return "ssl/verify (HAProxy's default-server check-ssl verify none) not inherited"
				}
				if ch.Inter.D() != 3*time.Second || ch.Rise != 5 || ch.Fall != 3 || ch.Port != 8443 {
					return "timing keys not inherited one by one"
				}
				return ""
			}},
		{"own http request kept whole", "{name: a, check: {http: {path: /ping}}, servers: [{name: s, address: '127.0.0.1:1'}]}",
			func(b *Backend) string {
				ch := b.Check
				if ch.Kind != "http" || ch.HTTP.Path != "/ping" || ch.HTTP.Host != "" || len(ch.HTTP.ExpectStatus) != 0 || !ch.SSL {
					return "http block"
				}
				return ""
			}},
		{"backend timeouts.check beats defaults.check.timeout", "{name: a, timeouts: {check: 1s}, check: {}, servers: [{name: s, address: '127.0.0.1:1'}]}",
			func(b *Backend) string {
				if b.Check.Timeout.D() != time.Second {
					return "timeout " + b.Check.Timeout.D().String()
				}
				return ""
			}},
		{"no block, no checks", "{name: a, servers: [{name: s, address: '127.0.0.1:1'}]}",
			func(b *Backend) string {
				if b.Check != nil {
					return "a backend without a check block is checked"
				}
				return ""
			}},
		{"hash_type alone keeps the default algorithm", "{name: a, balance: {hash_type: map-based}, servers: [{name: s, address: '127.0.0.1:1'}]}",
			func(b *Backend) string {
				if b.Balance.Algorithm != "source" || b.Balance.HashType != "map-based" || b.Balance.Draws != 3 {
					return "balance"
				}
				return ""
			}},
		{"algorithm alone takes the default hash_type", "{name: a, balance: {algorithm: roundrobin}, servers: [{name: s, address: '127.0.0.1:1'}]}",
			func(b *Backend) string {
				if b.Balance.Algorithm != "roundrobin" || b.Balance.HashType != "consistent" {
					return "balance"
				}
				return ""
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("d.yaml", []byte(head+"  - "+tc.backend+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			b := c.Backend("a")
			if msg := tc.want(b); msg != "" {
				t.Errorf("%s: check %+v balance %+v", msg, b.Check, b.Balance)
			}
		})
	}
	// The copy is deep: one backend's block does not alias another's.
	c, err := Parse("d.yaml", []byte(head+"  - {name: a, check: {}, servers: [{name: s, address: '127.0.0.1:1'}]}\n"+
		"  - {name: b, check: {}, servers: [{name: s, address: '127.0.0.1:1'}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.Backend("a").Check.HTTP.ExpectStatus[0] = 500
	if c.Backend("b").Check.HTTP.ExpectStatus[0] != 200 || c.Defaults.Check.HTTP.ExpectStatus[0] != 200 {
		t.Error("backends share the defaults' http check block")
	}
}

// TestDefaultsCheckValidated: a bad defaults.check is reported where it is written.
func TestDefaultsCheckValidated(t *testing.T) {
	doc := "defaults:\n  check:\n    kind: htp\n    rise: -1\n" +
		"frontends: [{name: f, bind: '127.0.0.1:8080', default_backend: a}]\n" +
		"backends: [{name: a, servers: [{name: s, address: '127.0.0.1:1'}]}]\n"
	_, err := ParseKnown("d.yaml", []byte(doc), testKnown)
	if err == nil {
		t.Fatal("a bad defaults.check was accepted")
	}
	for _, want := range []string{`d.yaml:3:11: defaults.check.kind: unknown check kind "htp"`, `d.yaml:4:11: defaults.check.rise: rise -1 must be at least 1`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestSyntaxErrorLine: a YAML syntax error names the line that breaks the
// document, not the line where the enclosing block starts.
func TestSyntaxErrorLine(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"mis-indented key deep in a list",
			"defaults: {mode: tcp}\nfrontends:\n  - name: f\n    bind: ':80'\n  - name: g\n   bind: ':81'\n",
			"bad.yaml:6: did not find expected '-' indicator (in the block that starts at line 2)"},
		{"dedented key", "a:\n  b: 1\n c: 2\n", "bad.yaml:3: did not find expected key (in the block that starts at line 2)"},
		{"unclosed flow sequence", "a: 1\nb: [1, 2\nc: 3\n", "bad.yaml:2: did not find expected ',' or ']' (in the block that starts at line 1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			if got := strings.SplitN(err.Error(), "\n", 2)[0]; got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestMisplacedTimeouts: a server-side timeout on a frontend (or a
// client-side one on a backend) would be ignored; it is an error instead.
func TestMisplacedTimeouts(t *testing.T) {
	doc := "frontends:\n  - name: f\n    bind: '127.0.0.1:8080'\n    default_backend: b\n    timeouts: {client: 1h, tunnel: 1h}\n" +
		"backends:\n  - name: b\n    timeouts: {server: 1h, http_request: 5s, http_keep_alive: 2s}\n    servers: [{name: s, address: '127.0.0.1:1'}]\n"
	_, err := Parse("t.yaml", []byte(doc))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		"t.yaml:5:36: frontends.0.timeouts.tunnel: timeout tunnel has no effect here: a frontend's timeouts are the client side's",
		"t.yaml:8:42: backends.0.timeouts.http_request: timeout http_request has no effect here: a backend's timeouts are the server side's",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
	if n := strings.Count(err.Error(), "has no effect here"); n != 2 {
		t.Errorf("%d problems, want 2 (client on a frontend, server and http_keep_alive on a backend are fine):\n%v", n, err)
	}
}

// TestObserveDefaults: observe gets HAProxy's error-limit 10 and on-error
// fail-check, and the three keys are inherited from defaults.check.
func TestObserveDefaults(t *testing.T) {
	c, err := Parse("o.yaml", []byte(`
defaults: {mode: http, check: {observe: layer7, on_error: mark-down}}
backends:
  - {name: a, check: {}, servers: [{name: s, address: 'h:1'}]}
  - {name: b, check: {observe: layer4, error_limit: 3}, servers: [{name: s, address: 'h:1'}]}
  - {name: c, servers: [{name: s, address: 'h:1'}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		backend, observe, onError string
		limit                     int
	}{
		{"a", "layer7", "mark-down", DefaultErrorLimit},
		{"b", "layer4", "mark-down", 3},
	} {
		ch := c.Backend(tt.backend).Check
		if ch.Observe != tt.observe || ch.OnError != tt.onError || ch.ErrorLimit != tt.limit {
			t.Errorf("backend %s: observe %q on_error %q error_limit %d, want %q %q %d", tt.backend, ch.Observe, ch.OnError, ch.ErrorLimit, tt.observe, tt.onError, tt.limit)
		}
	}
	if c.Backend("c").Check != nil {
		t.Error("a backend without a check block got one from defaults.check.observe")
	}
	c, err = Parse("o.yaml", []byte("backends:\n  - {name: a, check: {observe: layer4}, servers: [{name: s, address: 'h:1'}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ch := c.Backend("a").Check; ch.ErrorLimit != 10 || ch.OnError != "fail-check" {
		t.Errorf("defaults: error_limit %d on_error %q, want HAProxy's 10 and fail-check", ch.ErrorLimit, ch.OnError)
	}
}

// TestCheckSendProxyDefault: checks speak the PROXY protocol when the
// backend's traffic does and the check goes to the same port (HAProxy).
func TestCheckSendProxyDefault(t *testing.T) {
	c, err := Parse("s.yaml", []byte(`
backends:
  - {name: same, send_proxy: v2, check: {}, servers: [{name: s, address: 'h:1'}]}
  - {name: other_port, send_proxy: v2, check: {port: 8080}, servers: [{name: s, address: 'h:1'}]}
  - {name: forced, check: {send_proxy: v1}, servers: [{name: s, address: 'h:1'}]}
  - {name: off, send_proxy: v1, check: {send_proxy: none}, servers: [{name: s, address: 'h:1'}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for b, want := range map[string]string{"same": "v2", "other_port": "", "forced": "v1", "off": "none"} {
		if got := c.Backend(b).Check.SendProxy; got != want {
			t.Errorf("%s: check send_proxy %q, want %q", b, got, want)
		}
	}
}

func TestServerStartState(t *testing.T) {
	tests := []struct {
		init  string
		added bool
		want  string
	}{
		{"", false, "up"},
		{"", true, "down"},
		{"up", true, "up"},
		{"fully-up", true, "fully-up"},
		{"down", false, "down"},
		{"fully-down", false, "fully-down"},
	}
	for _, tt := range tests {
		s := Server{InitState: tt.init}
		if got := s.StartState(tt.added); got != tt.want {
			t.Errorf("init_state %q, added %v: %q, want %q", tt.init, tt.added, got, tt.want)
		}
	}
}

// testKnown is what a build with the built-in plugins knows.
var testKnown = Known{
	CheckKinds: []string{"exec", "http", "lua", "tcp", "tls"},
	Algorithms: []string{"first", "hdr", "leastconn", "maglev", "random", "roundrobin", "source", "static-rr", "uri", "url_param"},
}

// TestValidationAsksTheRegistries: a check kind or algorithm is valid when
// the build registered it, and named in the error when it did not.
func TestValidationAsksTheRegistries(t *testing.T) {
	doc := []byte("backends:\n  - name: b\n    balance: {algorithm: fancy}\n    check: {kind: snmp}\n    servers: [{name: s, address: 'h:1'}]\n")
	known := Known{CheckKinds: []string{"snmp", "tcp"}, Algorithms: []string{"fancy", "roundrobin"}}
	if _, err := ParseKnown("k.yaml", doc, known); err != nil {
		t.Fatalf("registered names refused: %v", err)
	}
	_, err := ParseKnown("k.yaml", doc, Known{CheckKinds: []string{"tcp"}, Algorithms: []string{"roundrobin"}})
	for _, want := range []string{`k.yaml:3:26: backends.0.balance.algorithm: unknown balance algorithm "fancy" (want roundrobin)`,
		`k.yaml:4:19: backends.0.check.kind: unknown check kind "snmp" (want tcp)`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
