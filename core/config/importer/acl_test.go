package importer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vipgate/vipgate/core/config"
)

// ruleString renders a rule's backend and conditions compactly.
func ruleString(r config.Rule) string {
	var p []string
	add := func(k string, v any, set bool) {
		if set {
			p = append(p, fmt.Sprintf("%s=%v", k, v))
		}
	}
	add("src", []string(r.Src), len(r.Src) > 0)
	add("dst_port", r.DstPort, len(r.DstPort) > 0)
	add("sni", []string(r.SNI), len(r.SNI) > 0)
	add("host", []string(r.Host), len(r.Host) > 0)
	add("path_prefix", []string(r.PathPrefix), len(r.PathPrefix) > 0)
	add("path_regex", r.PathRegex, r.PathRegex != "")
	add("method", []string(r.Method), len(r.Method) > 0)
	for _, h := range r.Header {
		add("header", h.Name+"|"+h.Value+"|"+h.Regex, true)
	}
	return r.Backend + ":" + strings.Join(p, " ")
}

func TestACLTranslation(t *testing.T) {
	const backends = "backend a\n  mode http\n  server s 198.18.1.1:80\nbackend b\n  mode http\n  server s 198.18.1.2:80\n"
	tests := []struct {
		name  string
		mode  string
		lines string
		want  []string // rules, in order
		warn  string   // a warning substring (positioned) when the rule cannot translate
	}{
		{"src", "tcp", "acl in src 198.18.10.0/24 198.18.11.7\nuse_backend a if in", []string{"a:src=[198.18.10.0/24 198.18.11.7]"}, ""},
		{"dst_port and range", "tcp", "acl p dst_port 443 8000:8002\nuse_backend a if p", []string{"a:dst_port=[443 8000 8001 8002]"}, ""},
		{"req.ssl_sni", "tcp", "tcp-request inspect-delay 5s\nacl s req.ssl_sni -i Mail.Example.com\nuse_backend a if s", []string{"a:sni=[mail.example.com]"}, ""},
		{"req_ssl_sni suffix", "tcp", "tcp-request inspect-delay 5s\nacl s req_ssl_sni -m end .example.com\nuse_backend a if s", []string{"a:sni=[*.example.com]"}, ""},
		{"sni without inspect-delay", "tcp", "acl s req.ssl_sni x.com\nuse_backend a if s", []string{"a:sni=[x.com]"}, "line 4: use_backend a: matching SNI in tcp mode needs tcp-request inspect-delay"},
		{"ssl_fc_sni", "http", "acl s ssl_fc_sni x.com\nuse_backend a if s", []string{"a:sni=[x.com]"}, ""},
		{"hdr(host)", "http", "acl h hdr(host) -i www.example.com example.com\nuse_backend a if h", []string{"a:host=[www.example.com example.com]"}, ""},
		{"hdr_dom(host)", "http", "acl h hdr_dom(host) -i example.com\nuse_backend a if h", []string{`a:header=Host||(?i)(?:^|[/?.:])example\.com(?:[/?.:]|$)`}, ""},
		{"hdr_beg(host)", "http", "acl h hdr_beg(host) -i owa.\nuse_backend a if h", []string{`a:header=Host||(?i)^owa\.`}, ""},
		{"hdr(other)", "http", "acl h hdr(X-Env) staging\nuse_backend a if h", []string{`a:header=X-Env|staging|`}, ""},
		{"hdr found", "http", "acl h req.hdr(X-Env) -m found\nuse_backend a if h", []string{`a:header=X-Env||`}, ""},
		{"path_beg", "http", "acl p path_beg /owa /ecp\nuse_backend a if p", []string{"a:path_prefix=[/owa /ecp]"}, ""},
		{"path_beg -i", "http", "acl p path_beg -i /OWA\nuse_backend a if p", []string{`a:path_regex=(?i)^/OWA`}, ""},
		{"path exact", "http", "acl p path /a.htm /b\nuse_backend a if p", []string{`a:path_regex=(?:^/a\.htm$)|(?:^/b$)`}, ""},
		{"path_reg", "http", "acl p path_reg ^/api/v[0-9]+/\nuse_backend a if p", []string{`a:path_regex=^/api/v[0-9]+/`}, ""},
		{"path_end", "http", "acl p path_end .php\nuse_backend a if p", []string{`a:path_regex=\.php$`}, ""},
		{"method", "http", "acl m method post PUT\nuse_backend a if m", []string{"a:method=[POST PUT]"}, ""},
		{"predefined METH_GET", "http", "use_backend a if METH_GET", []string{"a:method=[GET HEAD]"}, ""},
		{"anonymous acl", "http", "use_backend a if { path_beg /api }", []string{"a:path_prefix=[/api]"}, ""},
		{"and", "http", "acl h hdr(host) x.com\nacl p path_beg /api\nuse_backend a if h p", []string{"a:host=[x.com] path_prefix=[/api]"}, ""},
		{"or", "http", "acl h hdr(host) x.com\nacl p path_beg /api\nuse_backend a if h || p\nuse_backend b if METH_POST", []string{"a:host=[x.com]", "a:path_prefix=[/api]", "b:method=[POST]"}, ""},
		{"acl defined twice ORs", "http", "acl x path_beg /a\nacl x hdr(host) y.com\nuse_backend a if x", []string{"a:path_prefix=[/a]", "a:host=[y.com]"}, ""},
		{"and with or-acl distributes", "http", "acl x path_beg /a\nacl x path_beg /b\nacl m method GET\nuse_backend a if x m", []string{"a:path_prefix=[/a] method=[GET]", "a:path_prefix=[/b] method=[GET]"}, ""},
		{"negation", "http", "acl p path_beg /a\nuse_backend a if !p", nil, "line 4: use_backend a: negated conditions"},
		{"unless", "http", "acl p path_beg /a\nuse_backend a unless p", nil, "line 4: use_backend a: `unless`"},
		{"same field twice", "http", "acl p path_beg /a\nacl q path_reg x\nuse_backend a if p q", nil, "line 5: use_backend a: two ANDed conditions both test the path"},
		{"unsupported fetch", "http", "acl c req.cook(x) y\nuse_backend a if c", nil, "line 3: acl c: fetch req.cook(x) has no vipgate equivalent"},
		{"use of untranslated acl", "http", "acl c url_param(x) y\nuse_backend a if c", nil, `line 4: use_backend a: ACL "c" (line 3) could not be translated`},
		{"undefined acl", "http", "use_backend a if nope", nil, `line 3: use_backend a: ACL "nope" is not defined`},
		{"patterns from file", "tcp", "acl f src -f /etc/haproxy/allow.lst\nuse_backend a if f", nil, "line 3: acl f: patterns read from a file (-f)"},
		{"bad network", "tcp", "acl f src 10.0.0.300\nuse_backend a if f", nil, "line 3: acl f: network"},
		{"bad regex", "http", "acl r path_reg (?<=x)\nuse_backend a if r", nil, "line 3: acl r: path: regular expression"},
		{"FALSE never matches", "http", "use_backend a if FALSE\nuse_backend b if TRUE", []string{"b:"}, ""},
		{"redirect unless ssl_fc on plain http", "http", "http-request redirect scheme https unless { ssl_fc }", []string{":"}, ""},
		{"clienthello holds where vipgate inspects", "tcp", "tcp-request inspect-delay 5s\nacl clienthello req.ssl_hello_type 1\nuse_backend a if clienthello", []string{"a:"}, ""},
		{"dynamic backend", "http", "use_backend %[req.hdr(host),lower,map(/etc/haproxy/hosts.map)]", nil, "line 3: use_backend %[req.hdr(host),lower,map(/etc/haproxy/hosts.map)]: dynamic backend names"},
		{"http condition in tcp mode", "tcp", "use_backend a if { path_beg /x }", nil, "line 3: use_backend a: dropped: http conditions and actions need mode http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode := tt.mode
			be := backends
			if mode == "tcp" {
				be = strings.ReplaceAll(backends, "mode http", "mode tcp")
			}
			cfg := "frontend f\n  mode " + mode + "\n"
			for _, l := range strings.Split(tt.lines, "\n") {
				cfg += "  " + l + "\n"
			}
			cfg += "  bind :80\n  default_backend b\n" + be
			// Keep line numbers stable for the expectations: the rules
			// start at line 3.
			r := importHA(t, cfg)
			var got []string
			if f := r.Cluster.Frontend("f"); f != nil {
				for _, rule := range f.Rules {
					got = append(got, ruleString(rule))
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("rules:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if tt.warn != "" {
				wantWarnings(t, r, []string{"h.cfg:" + strings.TrimPrefix(tt.warn, "line ")}, false)
			} else {
				wantWarnings(t, r, nil, true)
			}
		})
	}
}
