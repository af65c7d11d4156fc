package importer

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

var badNameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// cleanName makes a HAProxy proxy or server name a valid vipgate name.
func (t *translator) cleanName(l hline, what, name string) string {
	if config.ValidName(name) {
		return name
	}
	n := strings.TrimLeft(badNameChars.ReplaceAllString(name, "-"), "-_.")
	if n == "" {
		n = "unnamed"
	}
	t.warn(l, what+" "+name, fmt.Sprintf("renamed to %q (names use letters, digits, '_', '.', '-')", n))
	return n
}

func (t *translator) proxySection(s *hsection, defs *haproxyDefaults) {
	if s.name == "" {
		t.warn(s.head, s.kind, "section without a name; skipped")
		return
	}
	p := &proxy{kind: s.kind, name: t.cleanName(s.head, s.kind, s.name), head: s.head, acls: map[string]*aclDef{}}
	if len(s.head.args) > 2 {
		t.warn(s.head, s.kind+" "+s.name, "`from` (named defaults) is not supported; the last unnamed defaults applies")
	}
	if s.kind != "backend" {
		p.fe = &config.Frontend{Name: p.name}
	}
	if s.kind != "frontend" {
		p.be = &config.Backend{Name: p.name}
	}
	if s.kind == "listen" {
		p.fe.DefaultBackend = p.name
	}
	if statsOnly(s) {
		t.skip(s.head, "a stats page only: vipgate serves its own on the admin listener (node file admin.listen)")
		for _, l := range s.body {
			t.skip(l, "the stats page is served by vipgate's admin listener (node file admin.listen)")
		}
		return
	}
	var body []hline
	if defs != nil {
		p.check = defs.check
		if defs.check.http != nil {
			h := *defs.check.http
			p.check.http = &h
		}
		p.defaultServer = append(p.defaultServer, defs.defaultServer...)
		// Mode first: other directives depend on it.
		body = append(body, defs.lines...)
	}
	// mode is known before rules are read: find it first.
	for _, l := range append(body, s.body...) {
		if l.keyword() == "mode" {
			if m, ok := t.mode(hline{file: l.file, num: l.num, args: l.args}); ok {
				if p.fe != nil {
					p.fe.Mode = m
				}
				if p.be != nil {
					p.be.Mode = m
				}
			}
		}
	}
	for _, l := range body {
		t.proxyLine(p, l, true)
	}
	for _, l := range s.body {
		t.proxyLine(p, l, false)
	}
	t.proxies = append(t.proxies, p)
}

func (p *proxy) mode(t *translator) string {
	m := ""
	if p.fe != nil {
		m = p.fe.Mode
	} else if p.be != nil {
		m = p.be.Mode
	}
	if m == "" {
		m = t.c.Defaults.Mode
	}
	if m == "" {
		m = config.ModeTCP
	}
	return m
}

// proxyLine translates one directive of a proxy. fromDefaults is set for
// lines replayed from a later defaults section: those that do not apply to
// this kind of proxy are dropped silently, as HAProxy does.
func (t *translator) proxyLine(p *proxy, l hline, fromDefaults bool) {
	t.lineEnv(l)
	k := l.keyword()
	fe, be := p.fe, p.be
	feOnly := func() bool {
		if fe == nil {
			if !fromDefaults {
				t.warn(l, k, "only allowed in a frontend or listen section; ignored")
			}
			return false
		}
		return true
	}
	beOnly := func() bool {
		if be == nil {
			if !fromDefaults {
				t.warn(l, k, "only allowed in a backend or listen section; ignored")
			}
			return false
		}
		return true
	}
	switch k {
	case "mode":
		// read up front
	case "bind":
		if feOnly() {
			t.bind(p, l)
		}
	case "maxconn":
		if feOnly() {
			if n, ok := t.intArg(l, 1); ok {
				fe.MaxConn = n
			}
		}
	case "fullconn":
		t.skip(l, "vipgate has no dynamic maxconn")
	case "default_backend":
		if feOnly() && len(l.args) > 1 {
			fe.DefaultBackend = l.args[1]
		}
	case "use_backend":
		if feOnly() {
			if len(l.args) < 2 {
				t.warn(l, k, "missing backend name")
				return
			}
			if strings.Contains(l.args[1], "%[") {
				t.warn(l, "use_backend "+l.args[1], "dynamic backend names (log-format, maps) are not supported: write one rule per backend, or route with a Lua hook (route:)")
				return
			}
			conds, bad := parseCond(l.args[2:], t.condCtx(p))
			if bad != "" {
				t.warn(l, "use_backend "+l.args[1], bad)
				return
			}
			p.backendRules = append(p.backendRules, pendingRule{backend: l.args[1], line: l, conds: conds})
		}
	case "acl":
		if len(l.args) < 3 {
			t.warn(l, k, "want acl NAME FETCH [flags] PATTERNS")
			return
		}
		name := l.args[1]
		alts, bad := parseACL(l.args[2:])
		a := p.acls[name]
		if a == nil {
			a = &aclDef{line: l}
			p.acls[name] = a
		}
		if bad != "" {
			if a.bad == "" {
				a.bad = bad
			}
			t.warn(l, "acl "+name, bad)
			return
		}
		a.alts = append(a.alts, alts...)
	case "timeout", "contimeout", "clitimeout", "srvtimeout":
		n := len(t.warnings)
		var to config.Timeouts
		t.timeout(l, &to, "")
		if len(t.warnings) > n {
			return
		}
		used := false
		if fe != nil {
			used = mergeTimeouts(&fe.Timeouts, to, "fe") || used
		}
		if be != nil {
			used = mergeTimeouts(&be.Timeouts, to, "be") || used
		}
		if !used && !fromDefaults {
			t.warn(l, "timeout "+l.arg(1), fmt.Sprintf("does not apply to a %s; ignored", p.kind))
		}
	case "retries":
		if beOnly() {
			if n, ok := t.intArg(l, 1); ok {
				be.Retries = &n
			}
		}
	case "option", "no":
		if !t.option(l, p, nil, &p.check) && !fromDefaults {
			t.warn(l, optName(l), "option has no vipgate equivalent")
		}
	case "balance":
		if beOnly() {
			if b, ok := t.balance(l); ok {
				be.Balance.Algorithm, be.Balance.Param, be.Balance.Draws = b.Algorithm, b.Param, b.Draws
			}
		}
	case "hash-type":
		if beOnly() {
			t.hashType(l, &be.Balance)
		}
	case "default-server":
		if beOnly() {
			p.defaultServer = append(p.defaultServer, l.args[1:]...)
		}
	case "server":
		if beOnly() {
			t.server(p, l)
		}
	case "http-check", "tcp-check":
		if beOnly() {
			t.checkDirective(l, &p.check)
		}
	case "cookie":
		if beOnly() {
			t.cookie(p, l)
		}
	case "stick-table":
		if beOnly() {
			t.stickTable(p, l)
		}
	case "stick":
		if beOnly() {
			p.stick = append(p.stick, l)
		}
	case "tcp-request":
		t.tcpRequest(p, l)
	case "tcp-response":
		if len(l.args) >= 3 && l.args[1] == "content" && l.args[2] == "accept" {
			t.skip(l, "vipgate's persistence reads the TLS ServerHello on its own")
		} else if !fromDefaults {
			t.warn(l, k, "not supported")
		}
	case "http-request", "http-response":
		if fe == nil {
			if !fromDefaults {
				t.warn(l, k, "rules in a backend are not supported: vipgate applies http rules in frontends; move it to the frontends that use this backend")
			}
			return
		}
		t.httpRequest(p, l, k == "http-response")
	case "redirect":
		if feOnly() {
			t.httpRequest(p, hline{file: l.file, num: l.num, env: l.env, args: append([]string{"http-request"}, l.args...)}, false)
		}
	case "errorfile":
		if len(l.args) != 3 {
			t.warn(l, k, "want errorfile STATUS FILE")
			return
		}
		st, err := strconv.Atoi(l.args[1])
		if err != nil || st < 200 || st > 599 {
			t.warn(l, k, fmt.Sprintf("status %q out of range 200-599", l.args[1]))
			return
		}
		for _, o := range p.httpOpts() {
			if o.ErrorFiles == nil {
				o.ErrorFiles = map[int]string{}
			}
			o.ErrorFiles[st] = l.args[2]
		}
	case "source":
		if beOnly() {
			src, _ := t.haSource(l, l.args, 1)
			be.Source = src
			if src.ClientIP() {
				t.note("backend:"+be.Name, usesrcNote(l))
			}
		}
	case "http-reuse":
		if beOnly() && len(l.args) > 1 {
			switch l.args[1] {
			case "never", "safe", "always":
				be.HTTP.Reuse = l.args[1]
			case "aggressive":
				be.HTTP.Reuse = "always"
				t.warn(l, "http-reuse aggressive", "translated to always")
			default:
				t.warn(l, k, fmt.Sprintf("%q: want never, safe or always", l.args[1]))
			}
		}
	case "email-alert":
		p.emailAlert = append(p.emailAlert, l)
	case "disabled":
		if fe != nil {
			fe.Disabled = true
		}
		if be != nil {
			t.warn(l, k, "a disabled backend has no vipgate equivalent; put its servers in maintenance instead")
		}
	case "enabled":
	case "backlog":
		if !fromDefaults {
			t.warn(l, k, backlogWhy)
		}
	case "description":
		p.comments = append(p.comments, strings.Join(l.args[1:], " "))
	case "monitor-uri":
		switch {
		case fe == nil:
			t.warn(l, k, "monitor-uri belongs to a frontend")
		case len(l.args) < 2 || !strings.HasPrefix(l.args[1], "/"):
			t.warn(l, k, "want monitor-uri /PATH")
		default:
			if fe.Monitor == nil {
				fe.Monitor = &config.Monitor{}
			}
			fe.Monitor.URI = l.args[1]
		}
	case "monitor":
		// monitor fail if { nbsrv(B) lt 1 } (or "eq 0"): 503 while B has
		// no usable server, which is what vipgate's monitor backends do.
		if b, ok := monitorFailBackend(l.args); ok && fe != nil {
			if fe.Monitor == nil {
				fe.Monitor = &config.Monitor{}
			}
			fe.Monitor.Backends = append(fe.Monitor.Backends, b)
		} else if !fromDefaults {
			t.warn(l, k, "only `monitor fail if { nbsrv(BACKEND) lt 1 }` translates (monitor.backends)")
		}
	case "log":
		t.logLine(&p.log, l)
	case "capture", "log-format", "log-tag", "unique-id-format", "unique-id-header", "compression", "stats", "id", "declare", "errorloc", "errorloc302", "errorloc303", "log-format-sd", "error-log-format":
		if !fromDefaults {
			t.warn(l, k, "not supported")
		}
	default:
		if !fromDefaults {
			t.warn(l, k, "unknown or unsupported keyword")
		}
	}
}

func (p *proxy) httpOpts() []*config.HTTPOptions {
	var out []*config.HTTPOptions
	if p.fe != nil {
		out = append(out, &p.fe.HTTP)
	}
	if p.be != nil {
		out = append(out, &p.be.HTTP)
	}
	return out
}

func (t *translator) condCtx(p *proxy) *condCtx {
	return &condCtx{acls: p.acls, httpMode: p.mode(t) == config.ModeHTTP, tlsFrontend: p.tlsFrontend}
}

func (t *translator) bind(p *proxy, l hline) {
	if len(l.args) < 2 {
		t.warn(l, "bind", "missing address")
		return
	}
	addrs, bad := parseBind(l.args[1])
	if bad != "" {
		t.warn(l, "bind", bad)
		return
	}
	fe := p.fe
	fe.Bind = append(fe.Bind, addrs...)
	for range addrs {
		p.bindLines = append(p.bindLines, l)
	}
	var tls *config.FrontendTLS
	opts := l.args[2:]
	for i := 0; i < len(opts); i++ {
		o := opts[i]
		val := func() string {
			if i+1 < len(opts) {
				i++
				return opts[i]
			}
			t.warn(l, "bind "+o, "missing value")
			return ""
		}
		switch o {
		case "ssl":
			if tls == nil {
				tls = &config.FrontendTLS{}
			}
		case "crt":
			if tls == nil {
				tls = &config.FrontendTLS{}
			}
			if v := val(); v != "" {
				if certs, dir := t.certDir(l, v); dir {
					tls.Certificates = append(tls.Certificates, certs...)
					continue
				}
				tls.Certificates = append(tls.Certificates, config.CertFiles{Cert: v})
				if _, err := t.fs.ReadFile(v); err != nil {
					// Translated all the same: the file is on the node.
					t.warn(l, "bind crt "+v, "not readable where `vipgate import` runs: `vipgate check` reports it until the file is there, and each node serving this frontend needs it at this path")
				}
			}
		case "alpn":
			if tls == nil {
				tls = &config.FrontendTLS{}
			}
			for _, a := range strings.Split(val(), ",") {
				if a == "h2" || a == "http/1.1" {
					tls.ALPN = append(tls.ALPN, a)
				} else if a != "" {
					t.warn(l, "bind alpn "+a, "only h2 and http/1.1 are offered")
				}
			}
		case "ssl-min-ver", "ssl-max-ver":
			v := val()
			ver := map[string]string{"TLSv1.2": "1.2", "TLSv1.3": "1.3"}[v]
			if ver == "" {
				t.warn(l, "bind "+o+" "+v, "vipgate supports TLS 1.2 and 1.3 only")
				continue
			}
			if tls == nil {
				tls = &config.FrontendTLS{}
			}
			if o == "ssl-min-ver" {
				tls.MinVersion = ver
			} else {
				tls.MaxVersion = ver
			}
		case "ca-file":
			if tls == nil {
				tls = &config.FrontendTLS{}
			}
			tls.ClientCA = val()
		case "verify":
			v := val()
			if tls == nil {
				tls = &config.FrontendTLS{}
			}
			switch v {
			case "required", "optional":
				tls.ClientAuth = v
			case "none":
			default:
				t.warn(l, "bind verify "+v, "want none, optional or required")
			}
		case "accept-proxy":
			fe.AcceptProxy = true
		case "v4v6", "v6only", "transparent", "defer-accept", "tfo", "process", "thread", "nice", "maxconn", "backlog",
			"interface", "namespace", "mss", "name", "id", "tcp-ut", "crt-list", "ciphers", "ciphersuites", "curves",
			"ecdhe", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tls-tickets", "strict-sni", "prefer-client-ciphers",
			"npn", "allow-0rtt", "generate-certificates", "ssl_fc", "level", "mode", "user", "group", "uid", "gid", "force-tlsv12", "force-tlsv13", "crl-file", "ca-ignore-err", "crt-ignore-err", "quic-cc-algo", "proto", "expose-fd":
			switch o {
			case "interface", "namespace", "mss", "name", "id", "tcp-ut", "crt-list", "ciphers", "ciphersuites", "curves", "ecdhe",
				"process", "thread", "nice", "maxconn", "backlog", "npn", "level", "mode", "user", "group", "uid", "gid", "crl-file",
				"ca-ignore-err", "crt-ignore-err", "quic-cc-algo", "proto", "expose-fd":
				val()
			}
			switch o {
			case "no-sslv3", "no-tlsv10", "no-tlsv11", "force-tlsv12":
				// vipgate never offers below TLS 1.2.
			case "v4v6":
				// Go's dual-stack "[::]:port" does this already.
			case "name", "id", "process", "thread":
				// Labels for stats and logs, and thread pinning: no effect
				// on what is served.
			default:
				t.warn(l, "bind "+o, "bind option not supported")
			}
		default:
			t.warn(l, "bind "+o, "unknown bind option")
		}
	}
	if tls != nil {
		if len(tls.Certificates) == 0 {
			// Serving the address without TLS would answer HTTPS clients
			// in plain text.
			fe.Bind = fe.Bind[:len(fe.Bind)-len(addrs)]
			p.bindLines = p.bindLines[:len(p.bindLines)-len(addrs)]
			t.warn(l, "bind ssl", "no certificate to serve: the bind is dropped; list the certificate files under tls.certificates and add the address to bind")
			return
		}
		if p.mode(t) != config.ModeHTTP {
			t.warn(l, "bind ssl", "TLS termination needs mode http in vipgate; a tcp frontend passes TLS through to the servers (use sni rules)")
			return
		}
		if fe.TLS != nil {
			fe.TLS.Certificates = append(fe.TLS.Certificates, tls.Certificates...)
			return
		}
		fe.TLS = tls
		p.tlsFrontend = true
	}
}

func (t *translator) server(p *proxy, l hline) {
	if len(l.args) < 3 {
		t.warn(l, "server", "want server NAME ADDRESS[:PORT] [options]")
		return
	}
	ps := pendingServer{line: l, name: t.cleanName(l, "server", l.args[1])}
	// default-server values first, then the server's own.
	t.serverOpts(hline{file: l.file, num: l.num}, p.defaultServer, &ps.opts)
	t.serverOpts(l, l.args[3:], &ps.opts)
	addr, hasPort, bad := parseServerAddr(l.args[2])
	if bad != "" {
		t.warn(l, "server "+l.args[1], bad)
		return
	}
	ps.addr = addr
	if !hasPort {
		// HAProxy then uses the port the client connected to; vipgate needs
		// one: resolved in finish from the frontends using this backend.
		ps.addr = addr + ":"
	}
	p.servers = append(p.servers, ps)
}

func (t *translator) cookie(p *proxy, l hline) {
	if len(l.args) < 2 {
		t.warn(l, "cookie", "missing cookie name")
		return
	}
	if p.mode(t) != config.ModeHTTP {
		t.warn(l, "cookie", "cookie persistence needs mode http")
		return
	}
	ck := &config.Cookie{Name: l.args[1]}
	args := l.args[2:]
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "insert", "rewrite", "prefix":
			ck.Mode = a
		case "indirect":
			ck.Indirect = true
		case "nocache":
			ck.NoCache = true
		case "httponly":
			ck.HTTPOnly = true
		case "secure":
			ck.Secure = true
		case "domain":
			if i+1 < len(args) {
				i++
				ck.Domain = args[i]
			}
		case "maxidle", "maxlife":
			if i+1 < len(args) {
				i++
				d, err := config.ParseDuration(args[i])
				if err != nil {
					t.warn(l, "cookie "+a, err.Error())
					continue
				}
				if a == "maxidle" {
					ck.MaxIdle = d
				} else {
					ck.MaxLife = d
				}
			}
		case "preserve", "postonly", "dynamic", "attr":
			if a == "attr" {
				i++
			}
			t.warn(l, "cookie "+a, "not supported")
		default:
			t.warn(l, "cookie "+a, "unknown cookie option")
		}
	}
	if ck.Mode != "" && ck.Mode != "insert" && (ck.Indirect || ck.NoCache || ck.MaxIdle > 0 || ck.MaxLife > 0) {
		t.warn(l, "cookie", "indirect, nocache, maxidle and maxlife apply to insert mode only; dropped")
		ck.Indirect, ck.NoCache, ck.MaxIdle, ck.MaxLife = false, false, 0, 0
	}
	p.be.Cookie = ck
}

func (t *translator) tcpRequest(p *proxy, l hline) {
	if len(l.args) < 3 {
		t.warn(l, "tcp-request", "incomplete rule")
		return
	}
	dir := "tcp-request " + l.args[1]
	switch l.args[1] {
	case "inspect-delay":
		d, err := config.ParseDuration(l.args[2])
		if err != nil {
			t.warn(l, dir, err.Error())
			return
		}
		if p.fe == nil {
			// HAProxy waits in the backend; vipgate waits in the
			// frontends that lead to it (set in finishProxies).
			p.beInspect = d
			t.skip(l, "moved to the frontends that use this backend (inspect_delay)")
			return
		}
		p.fe.InspectDelay = d
	case "content":
		act := l.args[2]
		conds, bad := parseCond(l.args[3:], t.condCtx(p))
		if act == "accept" && bad == "" {
			// "accept if clienthello" ends the inspect delay once the
			// hello is in: vipgate does this whenever it inspects.
			tlsOnly := true
			for _, c := range conds {
				if c.tls == "" || !isEmptyCond(c.r) {
					tlsOnly = false
				}
			}
			if tlsOnly || len(l.args) == 3 {
				t.skip(l, "vipgate stops waiting as soon as the TLS ClientHello is complete")
				return
			}
		}
		t.warn(l, dir+" "+act, "content rules other than `accept if clienthello` are not supported")
	default:
		t.warn(l, dir, "not supported (inspect-delay and `content accept if clienthello` are)")
	}
}

// httpRequest translates http-request/http-response actions into rules.
func (t *translator) httpRequest(p *proxy, l hline, response bool) {
	if len(l.args) < 2 {
		t.warn(l, l.keyword(), "missing action")
		return
	}
	act := l.args[1]
	dir := l.keyword() + " " + act
	if p.mode(t) != config.ModeHTTP {
		t.warn(l, dir, "http rules need mode http")
		return
	}
	rest := l.args[2:]
	condAt := len(rest)
	for i, w := range rest {
		if w == "if" || w == "unless" {
			condAt = i
			break
		}
	}
	args, condWords := rest[:condAt], rest[condAt:]
	var r config.Rule
	// fmtExpr reports whether a value can be carried over. Header values
	// are HAProxy log-format strings: %[fetch] is kept when this build's
	// schema knows header templates (then "%%" means "%" there too).
	fmtExpr := func(v string, header bool) (string, bool) {
		if !strings.Contains(v, "%") {
			return v, true
		}
		if header && t.headerTemplates() && !strings.Contains(v, "%{") {
			return v, true
		}
		if strings.Contains(v, "%[") || strings.Contains(v, "%{") {
			what := "header values"
			if !header {
				what = "redirects"
			}
			t.warn(l, dir, "log-format expressions (%[...]) are not supported in "+what)
			return "", false
		}
		return strings.ReplaceAll(v, "%%", "%"), true
	}
	switch {
	case !response && act == "redirect":
		rd := &config.Redirect{}
		for i := 0; i+1 < len(args); i += 2 {
			switch args[i] {
			case "location":
				rd.Location = args[i+1]
			case "prefix":
				rd.Prefix = args[i+1]
			case "scheme":
				rd.Scheme = args[i+1]
			case "code":
				n, err := strconv.Atoi(args[i+1])
				if err != nil {
					t.warn(l, dir, fmt.Sprintf("code %q is not a number", args[i+1]))
					return
				}
				rd.Code = n
			default:
				t.warn(l, dir, fmt.Sprintf("%s is not supported", args[i]))
				i-- // flags take no value
			}
		}
		if _, ok := fmtExpr(rd.Location+rd.Prefix+rd.Scheme, false); !ok {
			return
		}
		r.Redirect = rd
	case !response && (act == "deny" || act == "reject" || act == "tarpit"):
		r.Deny = 403
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "deny_status" {
				n, err := strconv.Atoi(args[i+1])
				if err == nil {
					r.Deny = n
				}
			}
		}
		if act != "deny" {
			t.warn(l, dir, "translated to deny (403)")
		}
	case act == "set-header" || act == "add-header":
		if len(args) < 2 {
			t.warn(l, dir, "want NAME VALUE")
			return
		}
		v, ok := fmtExpr(strings.Join(args[1:], " "), true)
		if !ok {
			return
		}
		m := map[string]string{args[0]: v}
		switch {
		case act == "set-header" && !response:
			r.SetHeader = m
		case act == "add-header" && !response:
			r.AddHeader = m
		case act == "set-header":
			r.SetResponseHeader = m
		default:
			r.AddResponseHeader = m
		}
	case act == "del-header":
		if len(args) < 1 {
			t.warn(l, dir, "want NAME")
			return
		}
		if response {
			r.DelResponseHeader = config.StringList{args[0]}
		} else {
			r.DelHeader = config.StringList{args[0]}
		}
	default:
		t.warn(l, dir, "action not supported (redirect, deny, set-header, add-header, del-header are)")
		return
	}
	conds, bad := parseCond(condWords, t.condCtx(p))
	if bad != "" {
		t.warn(l, dir, bad)
		return
	}
	for _, c := range conds {
		rr := c.r
		rr.HTTPRule.Deny, rr.Redirect = r.Deny, r.Redirect
		rr.SetHeader, rr.AddHeader, rr.DelHeader = r.SetHeader, r.AddHeader, r.DelHeader
		rr.SetResponseHeader, rr.AddResponseHeader, rr.DelResponseHeader = r.SetResponseHeader, r.AddResponseHeader, r.DelResponseHeader
		p.actionRules = append(p.actionRules, rr)
		p.actionLines = append(p.actionLines, l)
	}
}

// finishProxies assembles frontends and backends once every section is
// read (use_backend may name a backend defined further down).
func (t *translator) finishProxies() {
	switch {
	case t.globalMaxConn > 0 && t.c.Defaults.MaxConn == 0:
		t.c.Defaults.MaxConn = t.globalMaxConn
	case t.globalMaxConn > 0 && t.c.Defaults.MaxConn != t.globalMaxConn:
		t.warn(t.globalMaxConnLine, "maxconn", fmt.Sprintf("the process-wide limit has no vipgate equivalent: defaults maxconn %d applies per frontend", t.c.Defaults.MaxConn))
	}
	// Ports of frontends that reach each backend, for servers without one.
	bePorts := map[string]map[string]bool{}
	for _, p := range t.proxies {
		if p.fe == nil {
			continue
		}
		targets := []string{p.fe.DefaultBackend}
		for _, r := range p.backendRules {
			targets = append(targets, r.backend)
		}
		for _, b := range targets {
			if b == "" {
				continue
			}
			if bePorts[b] == nil {
				bePorts[b] = map[string]bool{}
			}
			for _, a := range p.fe.Bind {
				if i := strings.LastIndexByte(a, ':'); i >= 0 {
					bePorts[b][a[i+1:]] = true
				}
			}
		}
	}
	backends := map[string]bool{}
	beByName := map[string]*proxy{}
	// perPort: backends with servers without a port, reached on several
	// ports. HAProxy connects to the port the client connected to; vipgate
	// needs one per server: one backend per port, chosen by dst_port.
	perPort := map[string][]string{}
	addBackend := func(p *proxy, ports map[string]bool) bool {
		name := p.be.Name
		t.finishBackend(p, ports)
		if len(p.be.Servers) == 0 {
			t.warn(p.head, p.kind+" "+p.name, "backend without servers: vipgate needs at least one; skipped (rules that use it are dropped)")
			return false
		}
		backends[name] = true
		t.stickRules(p)
		t.c.Backends = append(t.c.Backends, *p.be)
		t.src.be = append(t.src.be, beSrc{head: p.head, servers: p.serverLines})
		key := *p
		key.name = name
		t.addProxyComments("backend:"+name, &key)
		return true
	}
	for _, p := range t.proxies {
		if p.be == nil {
			continue
		}
		beByName[p.name] = p
		ports := sortedPorts(bePorts[p.name])
		if len(ports) < 2 || !slices.ContainsFunc(p.servers, func(s pendingServer) bool { return strings.HasSuffix(s.addr, ":") }) {
			addBackend(p, bePorts[p.name])
			continue
		}
		var names []string
		for _, port := range ports {
			names = append(names, p.name+"-"+port)
		}
		for _, s := range p.servers {
			if strings.HasSuffix(s.addr, ":") {
				t.warn(s.line, "server "+s.name, "no port: HAProxy connects to the port the client connected to; one backend per port: "+strings.Join(names, ", "))
			}
		}
		for i, port := range ports {
			// The clone keeps the proxy's name: its stick rules name the
			// backend's one table, shared as HAProxy shares it.
			c := *p
			be := *p.be
			be.Name = names[i]
			c.be, c.serverLines = &be, nil
			c.servers = slices.Clone(p.servers)
			for j := range c.servers {
				if strings.HasSuffix(c.servers[j].addr, ":") {
					c.servers[j].addr += port
				}
			}
			if addBackend(&c, map[string]bool{port: true}) {
				perPort[p.name] = append(perPort[p.name], port)
				beByName[p.name] = &c // for inspectForStick: the clones persist alike
			}
		}
	}
	for _, p := range t.proxies {
		if p.table != nil {
			t.c.StickTables = append(t.c.StickTables, *p.table)
			t.src.tables = append(t.src.tables, p.tableLine)
		}
	}
	for _, p := range t.proxies {
		if p.fe == nil {
			continue
		}
		fe := p.fe
		fePorts := map[string]bool{}
		for _, a := range fe.Bind {
			if i := strings.LastIndexByte(a, ':'); i >= 0 {
				fePorts[a[i+1:]] = true
			}
		}
		// byPort is the rule sending this frontend's port of a per-port
		// backend there, for each such port.
		byPort := func(rr config.Rule, backend string) []config.Rule {
			var out []config.Rule
			for _, port := range perPort[backend] {
				n, _ := strconv.Atoi(port)
				if !fePorts[port] || (len(rr.DstPort) > 0 && !slices.Contains(rr.DstPort, n)) {
					continue
				}
				r := rr
				r.Backend, r.DstPort = backend+"-"+port, []int{n}
				out = append(out, r)
			}
			return out
		}
		var defaultRules []config.Rule
		if perPort[fe.DefaultBackend] != nil {
			defaultRules = byPort(config.Rule{}, fe.DefaultBackend)
		}
		if fe.DefaultBackend != "" && !backends[fe.DefaultBackend] && defaultRules == nil {
			if p.kind != "listen" {
				t.warn(p.head, "default_backend "+fe.DefaultBackend, "backend not defined (or skipped)")
			}
			fe.DefaultBackend = ""
		}
		if fe.TLS != nil {
			if fe.TLS.MinVersion == "" {
				fe.TLS.MinVersion = t.bindMinVer
			}
			if fe.TLS.MaxVersion == "" {
				fe.TLS.MaxVersion = t.bindMaxVer
			}
		}
		t.inspectForStick(p, beByName)
		if defaultRules != nil {
			fe.DefaultBackend = ""
		}
		fe.Rules = append(fe.Rules, p.actionRules...)
		ruleLines := append([]hline(nil), p.actionLines...)
		for _, r := range p.backendRules {
			if !backends[r.backend] && perPort[r.backend] == nil {
				t.warn(r.line, "use_backend "+r.backend, "backend not defined (or skipped)")
				continue
			}
			for _, c := range r.conds {
				rr := c.r
				rr.Backend = r.backend
				if len(rr.SNI) > 0 && fe.Mode != config.ModeHTTP && fe.InspectDelay == 0 {
					fe.InspectDelay = config.Duration(5e9)
					t.warn(r.line, "use_backend "+r.backend, "matching SNI in tcp mode needs tcp-request inspect-delay; set inspect_delay: 5s")
				}
				rules := []config.Rule{rr}
				if perPort[r.backend] != nil {
					rules = byPort(rr, r.backend)
				}
				for _, rr := range rules {
					fe.Rules = append(fe.Rules, rr)
					ruleLines = append(ruleLines, r.line)
				}
			}
		}
		for _, rr := range defaultRules {
			fe.Rules = append(fe.Rules, rr)
			ruleLines = append(ruleLines, p.head)
		}
		if len(fe.Bind) == 0 {
			if p.kind == "frontend" {
				t.warn(p.head, p.kind+" "+p.name, "frontend without bind; skipped")
			}
			continue
		}
		if fe.DefaultBackend == "" && len(fe.Rules) == 0 {
			t.warn(p.head, p.kind+" "+p.name, "frontend without a usable backend or rule; skipped")
			continue
		}
		t.c.Frontends = append(t.c.Frontends, *fe)
		t.src.fe = append(t.src.fe, feSrc{head: p.head, binds: p.bindLines, rules: ruleLines})
		if p.kind == "frontend" {
			t.addProxyComments("frontend:"+p.name, p)
		}
	}
}

func (t *translator) addProxyComments(key string, p *proxy) {
	var cs []string
	cs = append(cs, fmt.Sprintf("%s %s (%s:%d)", p.kind, p.name, p.head.file, p.head.num))
	cs = append(cs, p.comments...)
	if p.be != nil && p.be.Stick != nil && key == "backend:"+p.name && p.be.Stick.On == "ssl_session_id" {
		cs = append(cs, "stick on payload_lv(43,1) / store-response: persistence on the TLS session ID, learned from the",
			"ServerHello; TLS 1.3 clients (random session IDs) fall back to plain balancing, as in HAProxy.")
	}
	t.comments[key] = append(t.comments[key], cs...)
}

func (t *translator) finishBackend(p *proxy, ports map[string]bool) {
	be := p.be
	var ch *config.Check
	var first *pendingServer
	anyCheck := false
	for i := range p.servers {
		if p.servers[i].opts.check {
			anyCheck = true
		}
	}
	for i := range p.servers {
		ps := &p.servers[i]
		o := ps.opts
		if o.verify == "" {
			o.verify = t.serverVerify
		}
		addr := ps.addr
		if strings.HasSuffix(addr, ":") {
			if len(ports) != 1 {
				t.warn(ps.line, "server "+ps.name, "no port, and the frontends using this backend listen on several ports (or none); vipgate needs a server port")
				continue
			}
			for port := range ports {
				addr += port
			}
			t.warn(ps.line, "server "+ps.name, fmt.Sprintf("no port: using the frontend's port, %s", addr))
		}
		s := config.Server{
			Name: ps.name, Address: addr, Weight: o.weight, MaxConn: o.maxconn, Backup: o.backup,
			Disabled: o.disabled, InitState: o.initState, SlowStart: o.slowstart, OnMarkedDown: o.onMarkedDown,
		}
		if o.cookie != "" {
			if be.Mode == config.ModeHTTP || (be.Mode == "" && t.c.Defaults.Mode == config.ModeHTTP) {
				s.Cookie = o.cookie
			} else {
				t.warn(ps.line, "server "+ps.name+" cookie", "cookie values need mode http")
			}
		}
		if o.source != nil {
			s.Source = o.source
			if o.source.ClientIP() {
				t.note("backend:"+be.Name, usesrcNote(ps.line))
			}
		}
		if o.sendProxy != "" {
			if be.SendProxy != "" && be.SendProxy != o.sendProxy {
				t.warn(ps.line, "server "+ps.name, "servers of one backend use different PROXY protocol versions; vipgate sets it per backend")
			}
			be.SendProxy = o.sendProxy
		}
		if o.ssl {
			// The mode may come from defaults: be.Mode alone is empty then.
			if p.mode(t) != config.ModeHTTP {
				t.warn(ps.line, "server "+ps.name+" ssl", "TLS toward servers needs mode http (tcp mode passes TLS through)")
			} else if be.SSL == nil {
				be.SSL = &config.ServerTLS{Verify: o.verify, SNI: o.sni, CAFile: o.caFile}
			}
		}
		if anyCheck && !o.check {
			f := false
			s.Check = &f
		}
		if o.check {
			c := t.serverCheck(p, o)
			if ch == nil {
				ch, first = c, ps
			} else if !sameCheck(ch, c) {
				t.warn(ps.line, "server "+ps.name, fmt.Sprintf("check settings differ from server %s's (line %d); vipgate sets them per backend: using %s's", first.name, first.line.num, first.name))
			}
		}
		be.Servers = append(be.Servers, s)
		p.serverLines = append(p.serverLines, ps.line)
	}
	if ch != nil {
		be.Check = ch
	} else if p.check.set {
		t.note("backend:"+p.name, "health check settings exist but no server has `check`: checks stay off")
	}
}

// serverCheck builds the vipgate check for a server's check options and
// the proxy's check spec.
func (t *translator) serverCheck(p *proxy, o serverOpts) *config.Check {
	c := &config.Check{
		Inter: o.inter, FastInter: o.fastinter, DownInter: o.downinter, Rise: o.rise, Fall: o.fall,
		Port: o.port, SSL: o.checkSSL || p.check.ssl,
	}
	if p.check.port != 0 {
		c.Port = p.check.port
	}
	c.Observe, c.ErrorLimit, c.OnError = o.observe, o.errorLimit, o.onError
	if c.Observe == "" && (c.ErrorLimit != 0 || c.OnError != "") {
		// HAProxy ignores them without observe; vipgate refuses them.
		c.ErrorLimit, c.OnError = 0, ""
	}
	if c.Observe == "layer7" && p.mode(t) != config.ModeHTTP {
		c.Observe = "layer4"
		t.note("backend:"+p.name, "observe layer7 on a tcp backend watches connections only (layer4), as HAProxy does")
	}
	if o.checkSendProxy {
		c.SendProxy = o.sendProxy
		if c.SendProxy == "" {
			c.SendProxy = "v1"
		}
	}
	// HAProxy checks over TLS when the server has `ssl` (and no
	// no-check-ssl): check-ssl is implied.
	if o.ssl {
		c.SSL = true
	}
	if c.SSL {
		c.Verify = o.verify
		c.SNI = o.sni
		c.CA = o.caFile
	}
	switch p.check.kind {
	case "http":
		c.Kind = "http"
		if h := p.check.http; h != nil {
			hc := *h
			c.HTTP = &hc
		}
	case "tls":
		c.Kind = "tls"
	case "tcp":
		c.Kind = "tcp"
		c.Send, c.Expect, c.ExpectRegex = p.check.send, p.check.expect, p.check.expRe
	default:
		c.Kind = "tcp"
	}
	return c
}

func sameCheck(a, b *config.Check) bool {
	return a.Inter == b.Inter && a.FastInter == b.FastInter && a.DownInter == b.DownInter && a.Rise == b.Rise &&
		a.Fall == b.Fall && a.Port == b.Port && a.SSL == b.SSL && a.Verify == b.Verify && a.SNI == b.SNI &&
		a.Observe == b.Observe && a.ErrorLimit == b.ErrorLimit && a.OnError == b.OnError && a.SendProxy == b.SendProxy
}

// mergeTimeouts copies the set timeouts of src that belong to side ("fe":
// client-facing, "be": server-facing) into dst. It reports whether any did.
func mergeTimeouts(dst *config.Timeouts, src config.Timeouts, side string) bool {
	used := false
	set := func(d *config.Duration, v config.Duration) {
		if v != 0 {
			*d = v
			used = true
		}
	}
	if side == "fe" {
		set(&dst.Client, src.Client)
		set(&dst.HTTPRequest, src.HTTPRequest)
		set(&dst.HTTPKeepAlive, src.HTTPKeepAlive)
		set(&dst.ClientFin, src.ClientFin)
	} else {
		set(&dst.Connect, src.Connect)
		set(&dst.Server, src.Server)
		set(&dst.Queue, src.Queue)
		set(&dst.Check, src.Check)
		set(&dst.Tunnel, src.Tunnel)
		set(&dst.ServerFin, src.ServerFin)
	}
	return used
}

// inspectForStick gives a tcp frontend the inspect delay that a backend it
// uses needs for persistence on the ClientHello: HAProxy has the backend
// wait, vipgate the frontend.
func (t *translator) inspectForStick(p *proxy, bes map[string]*proxy) {
	fe := p.fe
	if fe.InspectDelay > 0 || p.mode(t) == config.ModeHTTP {
		return
	}
	names := []string{fe.DefaultBackend}
	for _, r := range p.backendRules {
		names = append(names, r.backend)
	}
	for _, n := range names {
		b := bes[n]
		if b == nil || b.be.Stick == nil || b.be.Stick.On == config.StickOnSrc {
			continue
		}
		d := b.beInspect
		if d == 0 {
			d = config.Duration(5e9)
		}
		fe.InspectDelay = d
		t.note("frontend:"+p.name, fmt.Sprintf("inspect_delay %s: backend %s persists on the TLS session ID, which needs the ClientHello", d.D(), n))
		return
	}
}

// statsOnly reports whether a section only serves HAProxy's stats page
// (`stats enable` or `stats uri`, no servers, no backend to use).
func statsOnly(s *hsection) bool {
	stats := false
	for _, l := range s.body {
		switch l.keyword() {
		case "stats":
			if l.arg(1) == "enable" || l.arg(1) == "uri" {
				stats = true
			}
		case "server", "default_backend", "use_backend":
			return false
		}
	}
	return stats
}

// headerTemplates reports whether the cluster schema validates %[fetch]
// templates in header values (asked once per import: a document with an
// unknown fetch is refused only by a schema that knows templates).
func (t *translator) headerTemplates() bool {
	if t.templates == nil {
		doc := "frontends:\n- name: f\n  bind: [':1']\n  mode: http\n  rules:\n  - set_header: {X-A: '%[no-such-fetch]'}\n    backend: b\n" +
			"backends:\n- name: b\n  mode: http\n  servers: [{name: s, address: '127.0.0.1:1'}]\n"
		_, err := config.Parse("probe", []byte(doc))
		v := err != nil
		t.templates = &v
	}
	return *t.templates
}

// sortedPorts lists ports in numeric order.
func sortedPorts(ports map[string]bool) []string {
	out := slices.Collect(maps.Keys(ports))
	slices.SortFunc(out, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return out
}

// certDir lists the certificates of a `crt` directory (HAProxy loads every
// file in it, in name order, the first being the default; FILE.key holds
// FILE's key; .ocsp, .issuer and .sctl files are extras, not certificates).
// dir reports whether v is a directory, which it is when it ends in '/' or
// has files under it on this machine.
func (t *translator) certDir(l hline, v string) (certs []config.CertFiles, dir bool) {
	base := strings.TrimSuffix(v, "/")
	names, _ := t.fs.Glob(base + "/*")
	if len(names) == 0 && !strings.HasSuffix(v, "/") {
		return nil, false
	}
	slices.Sort(names)
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range names {
		switch filepath.Ext(n) {
		case ".key", ".ocsp", ".issuer", ".sctl":
			continue
		}
		if isDir(t.fs, n) {
			continue // HAProxy does not descend
		}
		c := config.CertFiles{Cert: n}
		if have[n+".key"] {
			c.Key = n + ".key"
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.warn(l, "bind crt "+v, "a directory without certificates on this machine; list the certificate files under tls.certificates")
		return nil, true
	}
	t.warn(l, "bind crt "+v, fmt.Sprintf("a directory: its %d certificates as found now are listed; vipgate does not watch the directory, add new ones to tls.certificates", len(certs)))
	return certs, true
}

func isDir(fsys FS, name string) bool {
	if d, ok := fsys.(interface{ IsDir(string) bool }); ok {
		return d.IsDir(name)
	}
	sub, _ := fsys.Glob(name + "/*")
	return len(sub) > 0
}

// monitorFailBackend recognises `monitor fail if { nbsrv(B) lt 1 }` and
// `... eq 0 }` and returns B.
func monitorFailBackend(args []string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.Join(args, " "), "monitor fail if { nbsrv(")
	if !ok {
		return "", false
	}
	for _, cmp := range []string{" lt 1 }", " eq 0 }"} {
		if b, ok := strings.CutSuffix(rest, ")"+cmp); ok && config.ValidName(b) {
			return b, true
		}
	}
	return "", false
}
