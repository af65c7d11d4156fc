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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.doc))
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
