package importer

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// cond is one way an ACL can match: the conditions of a vipgate rule that
// must all hold. An ACL is a list of conds, any of which may match
// (HAProxy ORs the patterns of one ACL line, and the lines of one name).
type cond struct {
	r config.Rule
	// tls marks conditions that are about the TLS hello (clienthello,
	// serverhello): vipgate waits for the hello on its own when a rule or
	// persistence needs it, so they hold by construction.
	tls string
}

// aclDef is a named ACL.
type aclDef struct {
	alts []cond
	// bad says why the ACL cannot be translated ("" when it can).
	bad  string
	line hline
}

// predefined are HAProxy's built-in ACLs that have a vipgate meaning.
func predefined(name string, httpMode bool) (*aclDef, bool) {
	one := func(r config.Rule) *aclDef { return &aclDef{alts: []cond{{r: r}}} }
	meth := func(m ...string) *aclDef {
		return one(config.Rule{HTTPRule: config.HTTPRule{Method: config.StringList(m)}})
	}
	switch name {
	case "TRUE":
		return one(config.Rule{}), true
	case "FALSE":
		return &aclDef{}, true
	case "HTTP":
		if httpMode {
			return one(config.Rule{}), true
		}
	case "LOCALHOST":
		return one(config.Rule{Src: config.StringList{"127.0.0.0/8", "::1"}}), true
	case "METH_CONNECT":
		return meth("CONNECT"), true
	case "METH_DELETE":
		return meth("DELETE"), true
	case "METH_GET":
		return meth("GET", "HEAD"), true
	case "METH_HEAD":
		return meth("HEAD"), true
	case "METH_OPTIONS":
		return meth("OPTIONS"), true
	case "METH_POST":
		return meth("POST"), true
	case "METH_PUT":
		return meth("PUT"), true
	case "METH_TRACE":
		return meth("TRACE"), true
	case "HTTP_URL_SLASH":
		return one(config.Rule{HTTPRule: config.HTTPRule{PathPrefix: config.StringList{"/"}}}), true
	}
	return nil, false
}

// parseACL translates the words after `acl NAME` (a fetch, flags and
// patterns). It returns the alternatives or why they cannot be translated.
func parseACL(words []string) ([]cond, string) {
	if len(words) == 0 {
		return nil, "missing fetch"
	}
	fetch := words[0]
	icase := false
	match := ""
	var pats []string
	i := 1
flags:
	for ; i < len(words); i++ {
		switch w := words[i]; w {
		case "-i":
			icase = true
		case "-n", "-M":
		case "-m":
			if i+1 >= len(words) {
				return nil, "-m needs a match method"
			}
			i++
			match = words[i]
		case "-u":
			i++
		case "-f":
			return nil, "patterns read from a file (-f) are not supported; list them in the rule"
		case "--":
			i++
			break flags
		default:
			if !strings.HasPrefix(w, "-") || len(w) == 1 {
				break flags
			}
			return nil, fmt.Sprintf("flag %s is not supported", w)
		}
	}
	pats = words[i:]

	// Split "hdr_beg(host)" into the sample ("hdr", "host") and an implied
	// match method.
	base, arg := fetch, ""
	if j := strings.IndexByte(fetch, '('); j >= 0 && strings.HasSuffix(fetch, ")") {
		base, arg = fetch[:j], strings.TrimSpace(fetch[j+1:len(fetch)-1])
		if k := strings.IndexByte(arg, ','); k >= 0 {
			return nil, fmt.Sprintf("%s: header occurrence arguments are not supported", fetch)
		}
	}
	base = strings.TrimPrefix(base, "req.")
	implied := map[string][2]string{
		"hdr": {"hdr", "str"}, "hdr_beg": {"hdr", "beg"}, "hdr_end": {"hdr", "end"}, "hdr_sub": {"hdr", "sub"},
		"hdr_reg": {"hdr", "reg"}, "hdr_dom": {"hdr", "dom"}, "hdr_dir": {"hdr", "dir"}, "hdr_cnt": {"", ""},
		"path": {"path", "str"}, "path_beg": {"path", "beg"}, "path_end": {"path", "end"}, "path_sub": {"path", "sub"},
		"path_reg": {"path", "reg"}, "path_dir": {"path", "dir"}, "path_dom": {"path", "dom"},
		"url_beg": {"path", "beg"}, "src": {"src", "ip"}, "dst_port": {"dst_port", "int"},
		"ssl_sni": {"sni", "str"}, "req_ssl_sni": {"sni", "str"}, "ssl_fc_sni": {"sni", "str"},
		"ssl_sni_end": {"sni", "end"}, "ssl_fc_sni_end": {"sni", "end"}, "ssl_sni_reg": {"sni", "reg"},
		"method": {"method", "str"}, "ssl_hello_type": {"hello", "int"}, "req_ssl_hello_type": {"hello", "int"},
		"rep_ssl_hello_type": {"shello", "int"}, "res.ssl_hello_type": {"shello", "int"},
		"ssl_fc": {"ssl_fc", "bool"},
	}
	k, ok := implied[base]
	if base == "rep_ssl_hello_type" || fetch == "res.ssl_hello_type" {
		k, ok = implied["rep_ssl_hello_type"], true
	}
	if !ok || k[0] == "" {
		return nil, fmt.Sprintf("fetch %s has no vipgate equivalent (supported: src, dst_port, req.ssl_sni, ssl_fc_sni, hdr(host), hdr_dom, hdr_beg, path, path_beg, path_reg, method)", fetch)
	}
	sample, m := k[0], k[1]
	if match != "" {
		m = match
	}
	if sample == "hdr" && arg == "" {
		return nil, fmt.Sprintf("%s without a header name is not supported", fetch)
	}
	if len(pats) == 0 && m != "found" && sample != "ssl_fc" {
		return nil, "no patterns (an ACL without patterns never matches)"
	}
	one := func(r config.Rule) []cond { return []cond{{r: r}} }
	switch sample {
	case "ssl_fc":
		return []cond{{tls: "ssl_fc"}}, ""
	case "hello":
		if len(pats) == 1 && pats[0] == "1" {
			return []cond{{tls: "clienthello"}}, ""
		}
		return nil, "only req.ssl_hello_type 1 (a TLS ClientHello) is supported"
	case "shello":
		if len(pats) == 1 && pats[0] == "2" {
			return []cond{{tls: "serverhello"}}, ""
		}
		return nil, "only rep_ssl_hello_type 2 (a TLS ServerHello) is supported"
	case "src":
		if m != "ip" {
			return nil, fmt.Sprintf("src -m %s is not supported (addresses and networks only)", m)
		}
		for _, p := range pats {
			if _, err := config.ParsePrefix(p); err != nil {
				return nil, err.Error()
			}
		}
		return one(config.Rule{Src: config.StringList(pats)}), ""
	case "dst_port":
		if m != "int" {
			return nil, fmt.Sprintf("dst_port -m %s is not supported", m)
		}
		var ports []int
		for _, p := range pats {
			lo, hi, ok := strings.Cut(p, ":")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
				return nil, fmt.Sprintf("dst_port pattern %q: want a port or a range lo:hi", p)
			}
			if b-a > 256 {
				return nil, fmt.Sprintf("dst_port range %q is too wide to list (at most 256 ports)", p)
			}
			for q := a; q <= b; q++ {
				ports = append(ports, q)
			}
		}
		return one(config.Rule{DstPort: ports}), ""
	case "sni":
		var names []string
		for _, p := range pats {
			p = strings.ToLower(p)
			switch m {
			case "str":
				names = append(names, p)
			case "end":
				if !strings.HasPrefix(p, ".") {
					return nil, fmt.Sprintf("sni -m end %q: only suffixes starting with a dot translate (to *%s)", p, p)
				}
				names = append(names, "*"+p)
			default:
				return nil, fmt.Sprintf("sni -m %s is not supported (exact names and .suffix only)", m)
			}
		}
		return one(config.Rule{SNI: config.StringList(names)}), ""
	case "method":
		if m != "str" {
			return nil, fmt.Sprintf("method -m %s is not supported", m)
		}
		ms := make([]string, len(pats))
		for i, p := range pats {
			ms[i] = strings.ToUpper(p)
		}
		return one(config.Rule{HTTPRule: config.HTTPRule{Method: config.StringList(ms)}}), ""
	case "path":
		if m == "beg" && !icase {
			for _, p := range pats {
				if !strings.HasPrefix(p, "/") {
					return nil, fmt.Sprintf("path prefix %q does not start with /", p)
				}
			}
			return one(config.Rule{HTTPRule: config.HTTPRule{PathPrefix: config.StringList(pats)}}), ""
		}
		re, why := patternRegex(m, pats, icase)
		if why != "" {
			return nil, "path: " + why
		}
		return one(config.Rule{HTTPRule: config.HTTPRule{PathRegex: re}}), ""
	case "hdr":
		name := arg
		if strings.EqualFold(name, "host") && m == "str" {
			hosts := make([]string, len(pats))
			for i, p := range pats {
				hosts[i] = strings.ToLower(p)
			}
			return one(config.Rule{HTTPRule: config.HTTPRule{Host: config.StringList(hosts)}}), ""
		}
		if strings.EqualFold(name, "host") {
			name = "Host"
		}
		if m == "found" {
			return one(config.Rule{HTTPRule: config.HTTPRule{Header: []config.HeaderMatch{{Name: name}}}}), ""
		}
		var hs []config.HeaderMatch
		for _, p := range pats {
			if m == "str" {
				hs = append(hs, config.HeaderMatch{Name: name, Value: p})
				continue
			}
			re, why := patternRegex(m, []string{p}, icase)
			if why != "" {
				return nil, fmt.Sprintf("hdr(%s): %s", arg, why)
			}
			hs = append(hs, config.HeaderMatch{Name: name, Regex: re})
		}
		return one(config.Rule{HTTPRule: config.HTTPRule{Header: hs}}), ""
	}
	return nil, fmt.Sprintf("fetch %s is not supported", fetch)
}

// patternRegex turns HAProxy string matching into one Go regular expression
// with the same meaning.
func patternRegex(m string, pats []string, icase bool) (string, string) {
	var alts []string
	for _, p := range pats {
		q := regexp.QuoteMeta(p)
		switch m {
		case "str":
			alts = append(alts, "^"+q+"$")
		case "beg":
			alts = append(alts, "^"+q)
		case "end":
			alts = append(alts, q+"$")
		case "sub":
			alts = append(alts, q)
		case "dir":
			alts = append(alts, "(?:^|/)"+q+"(?:/|$)")
		case "dom":
			alts = append(alts, `(?:^|[/?.:])`+q+`(?:[/?.:]|$)`)
		case "reg":
			if _, err := regexp.Compile(p); err != nil {
				return "", fmt.Sprintf("regular expression %q is not valid in Go's RE2 syntax: %v", p, err)
			}
			alts = append(alts, p)
		default:
			return "", fmt.Sprintf("match method -m %s is not supported", m)
		}
	}
	re := alts[0]
	if len(alts) > 1 {
		re = "(?:" + strings.Join(alts, ")|(?:") + ")"
	}
	if icase {
		re = "(?i)" + re
	}
	return re, ""
}

// mergeAnd combines two ANDed conditions into one rule. It fails when both
// test the same thing: vipgate ORs the values of one field.
func mergeAnd(a, b cond) (cond, string) {
	out := a
	if b.tls != "" {
		out.tls = b.tls
	}
	clash := func(what string) (cond, string) {
		return cond{}, fmt.Sprintf("two ANDed conditions both test %s; vipgate ORs the values of one field", what)
	}
	r, s := &out.r, b.r
	if len(s.Src) > 0 {
		if len(r.Src) > 0 {
			return clash("src")
		}
		r.Src = s.Src
	}
	if len(s.DstPort) > 0 {
		if len(r.DstPort) > 0 {
			return clash("dst_port")
		}
		r.DstPort = s.DstPort
	}
	if len(s.SNI) > 0 {
		if len(r.SNI) > 0 {
			return clash("sni")
		}
		r.SNI = s.SNI
	}
	if len(s.Host) > 0 {
		if len(r.Host) > 0 {
			return clash("host")
		}
		r.Host = s.Host
	}
	if len(s.PathPrefix) > 0 || s.PathRegex != "" {
		if len(r.PathPrefix) > 0 || r.PathRegex != "" {
			return clash("the path")
		}
		r.PathPrefix, r.PathRegex = s.PathPrefix, s.PathRegex
	}
	if len(s.Method) > 0 {
		if len(r.Method) > 0 {
			return clash("the method")
		}
		r.Method = s.Method
	}
	if len(s.Header) > 0 {
		if len(r.Header) > 0 {
			return clash("headers")
		}
		r.Header = s.Header
	}
	return out, ""
}

// condCtx is what a condition is evaluated against.
type condCtx struct {
	acls     map[string]*aclDef
	httpMode bool
	// tlsFrontend: the frontend terminates TLS, so ssl_fc is true; else false.
	tlsFrontend bool
}

const maxRuleFanout = 32

// parseCond translates `if|unless COND` into alternative conditions (OR).
// words start after the rule's action (at "if" or "unless"). An empty
// words means "always".
func parseCond(words []string, ctx *condCtx) ([]cond, string) {
	if len(words) == 0 {
		return []cond{{}}, ""
	}
	neg := false
	switch words[0] {
	case "if":
	case "unless":
		neg = true
	default:
		return nil, fmt.Sprintf("expected if or unless, got %q", words[0])
	}
	words = words[1:]
	if len(words) == 0 {
		return nil, "empty condition"
	}
	// Operands: [!]name or [!]{ fetch ... }; terms are separated by || or "or".
	type operand struct {
		neg  bool
		name string
		anon []string
	}
	var terms [][]operand
	var term []operand
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "||" || w == "or" {
			if len(term) == 0 {
				return nil, "|| without a condition before it"
			}
			terms = append(terms, term)
			term = nil
			continue
		}
		op := operand{}
		if w == "!" {
			op.neg = true
			i++
			if i >= len(words) {
				return nil, "! at the end of the condition"
			}
			w = words[i]
		} else if strings.HasPrefix(w, "!") {
			op.neg = true
			w = w[1:]
		}
		if w == "{" {
			j := i + 1
			for j < len(words) && words[j] != "}" {
				j++
			}
			if j >= len(words) {
				return nil, "anonymous ACL { ... } is not closed"
			}
			op.anon = words[i+1 : j]
			i = j
		} else if w == "and" {
			continue
		} else {
			op.name = w
		}
		term = append(term, op)
	}
	if len(term) == 0 {
		return nil, "condition ends with ||"
	}
	terms = append(terms, term)

	resolve := func(op operand) (*aclDef, string) {
		if op.anon != nil {
			alts, bad := parseACL(op.anon)
			if bad != "" {
				return nil, bad
			}
			return &aclDef{alts: alts}, ""
		}
		if a, ok := ctx.acls[op.name]; ok {
			if a.bad != "" {
				return nil, fmt.Sprintf("ACL %q (line %d) could not be translated: %s", op.name, a.line.num, a.bad)
			}
			return a, ""
		}
		if a, ok := predefined(op.name, ctx.httpMode); ok {
			return a, ""
		}
		return nil, fmt.Sprintf("ACL %q is not defined", op.name)
	}
	// isConst reports whether an operand is a constant here, and its value.
	isConst := func(a *aclDef) (bool, bool) {
		if len(a.alts) == 0 {
			return true, false
		}
		if len(a.alts) == 1 && a.alts[0].tls == "ssl_fc" {
			return true, ctx.tlsFrontend
		}
		if len(a.alts) == 1 && a.alts[0].tls == "" && isEmptyCond(a.alts[0].r) {
			return true, true
		}
		return false, false
	}

	if neg {
		// unless A B || C == if !(A B || C): translatable only when it is
		// a constant.
		if len(terms) == 1 && len(terms[0]) == 1 {
			a, bad := resolve(terms[0][0])
			if bad != "" {
				return nil, bad
			}
			if c, v := isConst(a); c {
				if v != terms[0][0].neg {
					return nil, "" // never
				}
				return []cond{{}}, ""
			}
		}
		return nil, "`unless` (a negated condition) has no vipgate equivalent; rewrite it as positive conditions"
	}
	var out []cond
	for _, t := range terms {
		alts := []cond{{}}
		for _, op := range t {
			a, bad := resolve(op)
			if bad != "" {
				return nil, bad
			}
			if c, v := isConst(a); c {
				if v == op.neg {
					alts = nil // this term never matches
					break
				}
				continue
			}
			if op.neg {
				return nil, "negated conditions (!) have no vipgate equivalent; rewrite them as positive conditions"
			}
			var next []cond
			for _, x := range alts {
				for _, y := range a.alts {
					m, bad := mergeAnd(x, y)
					if bad != "" {
						return nil, bad
					}
					next = append(next, m)
				}
			}
			if len(next) > maxRuleFanout {
				return nil, fmt.Sprintf("the condition expands to more than %d rules", maxRuleFanout)
			}
			alts = next
		}
		out = append(out, alts...)
	}
	return out, ""
}

func isEmptyCond(r config.Rule) bool {
	return len(r.Src) == 0 && len(r.DstPort) == 0 && len(r.SNI) == 0 && !r.HasHTTPConditions()
}

// validAddr reports whether s is an IP literal.
func validAddr(s string) bool { _, err := netip.ParseAddr(s); return err == nil }
