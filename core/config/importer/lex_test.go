package importer

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"strings"
	"testing"
)

func TestSplitHAProxyLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		env  bool
	}{
		{"  server s1 10.0.0.1:80 check", []string{"server", "s1", "10.0.0.1:80", "check"}, false},
		{"bind :80 # a comment", []string{"bind", ":80"}, false},
		{"# only a comment", nil, false},
		{"\t\t", nil, false},
		{`http-check send hdr Host "exch 2016"`, []string{"http-check", "send", "hdr", "Host", "exch 2016"}, false},
		{`acl a hdr(x) 'it''s'`, []string{"acl", "a", "hdr(x)", "its"}, false},
		{`acl a path_reg '^/a\d+$'`, []string{"acl", "a", "path_reg", `^/a\d+$`}, false},
		{`option httpchk GET / HTTP/1.1\r\nHost:\ www`, []string{"option", "httpchk", "GET", "/", "HTTP/1.1\r\nHost: www"}, false},
		{`x a\#b "c\"d" \x41`, []string{"x", "a#b", `c"d`, "A"}, false},
		{`x "" y`, []string{"x", "", "y"}, false},
		{`bind "${ADDR}:443"`, []string{"bind", "${ADDR}:443"}, true},
		{`bind '${ADDR}:443'`, []string{"bind", "${ADDR}:443"}, false},
		{`x a"b c"d`, []string{"x", "ab cd"}, false},
		{`x "#not a comment"`, []string{"x", "#not a comment"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, env, err := splitHAProxyLine(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("args = %q, want %q", got, tt.want)
			}
			if env != tt.env {
				t.Errorf("env = %v, want %v", env, tt.env)
			}
		})
	}
}

func TestParseHAProxyErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"unterminated double", "global\n  maxconn 1\nfrontend f\n  bind \"a\n", 4, "unterminated double quote"},
		{"unterminated single", "defaults\n  mode 'tcp\n", 2, "unterminated single quote"},
		{"outside section", "\n\nmaxconn 10\nglobal\n", 3, `"maxconn" outside of any section`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Import(Options{HAProxy: &Input{Name: "h.cfg", Data: []byte(tt.in)}})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.File != "h.cfg" || pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("got %v, want h.cfg:%d: ...%s", pe, tt.line, tt.msg)
			}
			if !strings.HasPrefix(pe.Error(), fmt.Sprintf("h.cfg:%d: ", tt.line)) {
				t.Errorf("Error() = %q, not positioned", pe.Error())
			}
		})
	}
}

// mapFS is an in-memory FS for keepalived includes.
type mapFS map[string]string

func (m mapFS) ReadFile(name string) ([]byte, error) {
	if s, ok := m[name]; ok {
		return []byte(s), nil
	}
	return nil, fs.ErrNotExist
}

func (m mapFS) Glob(pattern string) ([]string, error) {
	var out []string
	for k := range m {
		if ok, err := path.Match(pattern, k); err != nil {
			return nil, err
		} else if ok {
			out = append(out, k)
		}
	}
	return out, nil
}

// dump renders a statement tree compactly: "kw args{child;child}".
func dump(ns []*kanode) string {
	var parts []string
	for _, n := range ns {
		s := strings.Join(n.args, " ")
		if n.block {
			s += "{" + dump(n.children) + "}"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ";")
}

func TestParseKeepalived(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"nested", "global_defs {\n router_id a\n notification_email {\n  x@y\n }\n}\n", "global_defs{router_id a;notification_email{x@y}}"},
		{"brace on next line", "vrrp_instance V\n{\n state MASTER\n}\n", "vrrp_instance V{state MASTER}"},
		{"one line block", "authentication { auth_type PASS auth_pass x }", "authentication{auth_type PASS auth_pass x}"},
		{"attached braces", "vrrp_script s{\nscript x}", "vrrp_script s{script x}"},
		{"comments", "# c1\n! c2\nrouter_id a # trailing\nrouter_id b ! trailing\n", "router_id a;router_id b"},
		{"quotes", "script \"/usr/bin/killall -0 haproxy\"\nnotify \"a # b\"", "script /usr/bin/killall -0 haproxy;notify a # b"},
		{"bang inside word", "script killall!x", "script killall!x"},
		{"crlf", "a {\r\n b\r\n}\r\n", "a{b}"},
		{"include", "include conf.d/*.conf\nlast", "from a{x};from b;last"},
	}
	fsys := mapFS{"etc/conf.d/a.conf": "from a {\n x\n}\n", "etc/conf.d/b.conf": "from b\n", "etc/conf.d/c.txt": "no"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, err := parseKeepalived("etc/keepalived.conf", []byte(tt.in), fsys, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(ns); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseKeepalivedErrors(t *testing.T) {
	tests := []struct {
		name, in string
		fsys     mapFS
		file     string
		line     int
		msg      string
	}{
		{"unclosed", "a {\n b\n c {\n}\n", nil, "k.conf", 1, `block "a" is not closed`},
		{"stray close", "a\n}\n", nil, "k.conf", 2, "'}' without an open block"},
		{"lone open", "{\n", nil, "k.conf", 1, "'{' without a statement"},
		{"quote", "a \"b\n", nil, "k.conf", 1, "unterminated double quote"},
		{"include loop", "include k.conf\n", mapFS{"k.conf": "include k.conf\n"}, "k.conf", 0, "nested deeper"},
		{"error in include", "include inc.conf\n", mapFS{"inc.conf": "x\n}\n"}, "inc.conf", 2, "'}' without"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fsys FS = tt.fsys
			if tt.fsys == nil {
				fsys = mapFS{}
			}
			_, err := Import(Options{Keepalived: []*Input{{Name: "k.conf", Data: []byte(tt.in)}}, FS: fsys})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if pe.File != tt.file || pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("got %v, want %s:%d: ...%s", pe, tt.file, tt.line, tt.msg)
			}
		})
	}
}

func TestParseBind(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bad  string
	}{
		{":443", []string{"0.0.0.0:443"}, ""},
		{"*:443", []string{"0.0.0.0:443"}, ""},
		{":::443", []string{"[::]:443"}, ""},
		{"[::]:443", []string{"[::]:443"}, ""},
		{"ipv6@:443", []string{"[::]:443"}, ""},
		{"198.18.0.10:80", []string{"198.18.0.10:80"}, ""},
		{"[2001:db8::1]:80", []string{"[2001:db8::1]:80"}, ""},
		{"2001:db8::1:80", []string{"[2001:db8::1]:80"}, ""},
		{"198.18.0.1:80,198.18.0.1:81", []string{"198.18.0.1:80", "198.18.0.1:81"}, ""},
		{":8000-8002", []string{"0.0.0.0:8000", "0.0.0.0:8001", "0.0.0.0:8002"}, ""},
		{"/run/h.sock", nil, "unix sockets"},
		{"unix@/run/h.sock", nil, "unix sockets"},
		{"198.18.0.1", nil, "missing :port"},
		{":0", nil, "bad port"},
		{":1-1000", nil, "wider than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, bad := parseBind(tt.in)
			if tt.bad != "" {
				if !strings.Contains(bad, tt.bad) {
					t.Errorf("bad = %q, want %q", bad, tt.bad)
				}
				return
			}
			if bad != "" || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q (%q), want %q", got, bad, tt.want)
			}
		})
	}
}

func TestParseServerAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		hasPort bool
		bad     string
	}{
		{"198.18.1.11:443", "198.18.1.11:443", true, ""},
		{"exch1.domain.com:443", "exch1.domain.com:443", true, ""},
		{"[2001:db8::1]:443", "[2001:db8::1]:443", true, ""},
		{"ipv4@198.18.1.1:80", "198.18.1.1:80", true, ""},
		{"198.18.1.11", "198.18.1.11", false, ""},
		{"2001:db8::1:443", "[2001:db8::1]:443", true, ""},
		{"198.18.1.1:+1", "", false, "relative ports"},
		{"198.18.1.1:99999", "", false, "out of range"},
		{"/var/run/s.sock", "", false, "unix sockets"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, hasPort, bad := parseServerAddr(tt.in)
			if tt.bad != "" {
				if !strings.Contains(bad, tt.bad) {
					t.Errorf("bad = %q, want %q", bad, tt.bad)
				}
				return
			}
			if got != tt.want || hasPort != tt.hasPort || bad != "" {
				t.Errorf("got %q %v %q, want %q %v", got, hasPort, bad, tt.want, tt.hasPort)
			}
		})
	}
}
