package importer

import (
	"encoding/hex"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vipgate/vipgate/core/config"
)

// serverOpts are the keywords of a `server` or `default-server` line.
type serverOpts struct {
	check        bool
	inter        config.Duration
	fastinter    config.Duration
	downinter    config.Duration
	rise, fall   int
	port         int
	checkSSL     bool
	ssl          bool
	verify       string
	sni          string
	caFile       string
	weight       *int
	maxconn      int
	backup       bool
	disabled     bool
	slowstart    config.Duration
	cookie       string
	initState    string
	onMarkedDown string
	sendProxy    string
	source       *config.Source
	noCheck      bool
	// Passive health and PROXY on checks (check-send-proxy).
	observe, onError string
	errorLimit       int
	checkSendProxy   bool
}

// checkSpec is what `option httpchk`, `http-check`, `tcp-check` and
// `option ssl-hello-chk` say about a proxy's checks.
type checkSpec struct {
	kind   string // "", "tcp", "http", "tls"
	http   *config.HTTPCheck
	send   string
	expect string
	expRe  string
	port   int
	ssl    bool
	set    bool
}

// proxy is one frontend, backend or listen section being translated.
type proxy struct {
	kind string
	name string
	head hline
	fe   *config.Frontend
	be   *config.Backend
	// log is what the section's log lines said (node-local targets).
	log proxyLog

	acls          map[string]*aclDef
	actionRules   []config.Rule
	actionLines   []hline
	bindLines     []hline
	serverLines   []hline
	backendRules  []pendingRule
	defaultServer []string
	check         checkSpec
	servers       []pendingServer
	tlsFrontend   bool
	comments      []string
	stick         []hline
	table         *config.StickTable
	tableLine     hline
	beInspect     config.Duration
	emailAlert    []hline
}

type pendingRule struct {
	backend string
	line    hline
	conds   []cond
}

type pendingServer struct {
	line hline
	name string
	addr string
	opts serverOpts
}

// haproxyDefaults is the state a `defaults` section leaves for the proxies
// that follow it.
type haproxyDefaults struct {
	check         checkSpec
	defaultServer []string
	lines         []hline
}

func (t *translator) translateHAProxy(file string, data []byte) error {
	secs, err := parseHAProxy(file, data)
	if err != nil {
		return err
	}
	var defs *haproxyDefaults
	ndefaults := 0
	for _, s := range secs {
		if s.head.env {
			t.warn(s.head, s.kind, "environment variables in section names are kept as written")
		}
		switch s.kind {
		case "global":
			t.global(s)
		case "defaults":
			ndefaults++
			if ndefaults > 1 {
				// Later defaults sections apply to the proxies after them:
				// their lines are replayed into each of those proxies.
				t.warn(s.head, "defaults", "several defaults sections: the first becomes `defaults:`, the values of this one are written into each frontend/backend that follows it")
				defs = &haproxyDefaults{lines: s.body}
				continue
			}
			defs = &haproxyDefaults{}
			t.defaultsHead = s.head
			t.defaultsSection(s, defs)
		case "frontend", "backend", "listen":
			if tlsPart, plain := t.splitTLSBinds(s); plain != nil {
				t.proxySection(tlsPart, defs)
				nw, ns := len(t.warnings), len(t.skipped)
				t.proxySection(plain, defs)
				// The plain half reads the same lines again: report each once.
				t.warnings = append(t.warnings[:nw], uniqueAfter(t.warnings[:nw], t.warnings[nw:])...)
				t.skipped = append(t.skipped[:ns], uniqueAfter(t.skipped[:ns], t.skipped[ns:])...)
				t.note("frontend:"+plain.name, fmt.Sprintf("the binds without ssl of frontend %s (%s:%d): vipgate terminates TLS per frontend", s.name, s.head.file, s.head.num))
				continue
			}
			t.proxySection(s, defs)
		case "mailers":
			t.mailers(s)
		case "peers":
			t.warn(s.head, "peers "+s.name, "stick-table peers are node-local in vipgate: list them under `peers:` in each node's bootstrap file; the peers section is not part of the cluster document")
			t.peersHint(s)
		default:
			t.warn(s.head, s.kind, fmt.Sprintf("section %s has no vipgate equivalent; skipped", s.kind))
		}
	}
	t.logFrontends()
	t.finishProxies()
	t.logHint()
	return nil
}

// noMeaning are process-management keywords vipgate does not need.
var noMeaning = map[string]string{
	"daemon": "vipgate runs under systemd", "master-worker": "one vipgate process", "nbproc": "Go schedules threads",
	"nbthread": "Go schedules threads", "cpu-map": "Go schedules threads", "user": "set User= in the systemd unit",
	"group": "set Group= in the systemd unit", "chroot": "use systemd sandboxing", "pidfile": "systemd tracks the process",
	"uid": "set User= in the systemd unit", "gid": "set Group= in the systemd unit", "ulimit-n": "set LimitNOFILE= in the systemd unit",
	"log-send-hostname": "", "ca-base": "", "crt-base": "", "stats": "the built-in stats page and API are on the admin listener (node file)",
	"tune.ssl.default-dh-param": "Go's TLS stack has no DH parameters", "ssl-default-bind-ciphers": "set tls.ciphers per frontend",
	"ssl-default-server-ciphers": "", "ssl-default-server-options": "",
	"ssl-default-bind-ciphersuites": "", "ssl-default-server-ciphersuites": "", "hard-stop-after": "", "spread-checks": "vipgate spreads checks itself",
	"description": "", "node": "", "setenv": "", "presetenv": "", "resetenv": "", "unsetenv": "",
	"server-state-file": "", "server-state-base": "", "localpeer": "set the node name in the node file",
	"maxconnrate": "", "maxsessrate": "", "maxsslconn": "", "maxsslrate": "", "maxpipes": "",
}

func (t *translator) global(s *hsection) {
	for _, l := range s.body {
		k := l.keyword()
		switch {
		case k == "maxconn":
			if n, ok := t.intArg(l, 1); ok {
				t.globalMaxConn, t.globalMaxConnLine = n, l
				t.note("defaults", fmt.Sprintf("maxconn %d from global maxconn (%s:%d): vipgate applies it per frontend", n, l.file, l.num))
			}
		case k == "tune.h2.max-concurrent-streams" || k == "tune.h2.fe.max-concurrent-streams":
			if n, ok := t.intArg(l, 1); ok {
				t.c.Defaults.HTTP.H2MaxConcurrentStreams = n
			}
		case k == "log":
			if e, ok := t.logTarget(l); ok {
				t.logs.global = append(t.logs.global, e)
			}
		case k == "log-tag":
			if len(l.args) == 2 {
				t.logs.tag = l.args[1]
			}
		case k == "ssl-server-verify":
			if len(l.args) != 2 || (l.args[1] != "none" && l.args[1] != "required") {
				t.warn(l, k, "want none or required")
				continue
			}
			t.serverVerify = l.args[1]
		case k == "ssl-default-bind-options":
			t.bindOptions(l)
		case k == "tune.http.maxhdr":
			if n, ok := t.intArg(l, 1); ok {
				t.c.Defaults.HTTP.MaxHeaders = n
			}
		case strings.HasPrefix(k, "tune."):
			t.skip(l, "tuning knob without a vipgate equivalent")
		default:
			if why, ok := noMeaning[k]; ok {
				t.skip(l, why)
				continue
			}
			t.warn(l, k, "global setting has no vipgate equivalent")
		}
	}
}

func (t *translator) defaultsSection(s *hsection, defs *haproxyDefaults) {
	d := &t.c.Defaults
	for _, l := range s.body {
		t.lineEnv(l)
		k := l.keyword()
		switch k {
		case "mode":
			if m, ok := t.mode(l); ok {
				d.Mode = m
			}
		case "maxconn":
			if n, ok := t.intArg(l, 1); ok {
				d.MaxConn = n
			}
		case "retries":
			if n, ok := t.intArg(l, 1); ok {
				d.Retries = &n
			}
		case "timeout", "contimeout", "clitimeout", "srvtimeout":
			t.timeout(l, &d.Timeouts, "")
		case "balance":
			if b, ok := t.balance(l); ok {
				d.Balance.Algorithm, d.Balance.Param, d.Balance.Draws = b.Algorithm, b.Param, b.Draws
			}
		case "hash-type":
			t.hashType(l, &d.Balance)
		case "default-server":
			defs.defaultServer = append(defs.defaultServer, l.args[1:]...)
			var o serverOpts
			t.serverOpts(l, l.args[1:], &o)
			d.Check.Inter, d.Check.FastInter, d.Check.DownInter = o.inter, o.fastinter, o.downinter
			d.Check.Rise, d.Check.Fall = o.rise, o.fall
			if o.observe != "" {
				d.Check.Observe, d.Check.ErrorLimit, d.Check.OnError = o.observe, o.errorLimit, o.onError
			}
		case "option", "no":
			if !t.option(l, nil, d, &defs.check) {
				t.warn(l, optName(l), "option has no vipgate equivalent")
			}
		case "log":
			t.logLine(&t.logs.defaults, l)
		case "backlog":
			t.warn(l, k, backlogWhy)
		case "http-check", "tcp-check":
			t.checkDirective(l, &defs.check)
		default:
			if why, ok := noMeaning[k]; ok {
				t.skip(l, why)
				continue
			}
			// Anything proxy-specific in defaults (cookie, http-request, ...)
			// is replayed into each proxy, where what does not apply to a
			// proxy's kind is ignored: a keyword no proxy knows is warned
			// about here, once.
			if !t.proxyKeyword(l) {
				t.warn(l, k, "unknown or unsupported defaults keyword")
				continue
			}
			defs.lines = append(defs.lines, l)
		}
	}
}

func optName(l hline) string {
	if l.keyword() == "no" && len(l.args) > 2 {
		return "no option " + l.args[2]
	}
	if len(l.args) > 1 {
		return "option " + l.args[1]
	}
	return l.keyword()
}

// option handles `option X` and `no option X` in defaults (p == nil) or a
// proxy. It reports whether it knew the option.
func (t *translator) option(l hline, p *proxy, d *config.Defaults, ck *checkSpec) bool {
	args := l.args
	neg := false
	if args[0] == "no" {
		if len(args) < 3 || args[1] != "option" {
			t.warn(l, "no", "expected `no option NAME`")
			return true
		}
		neg = true
		args = args[1:]
	}
	if len(args) < 2 {
		t.warn(l, "option", "missing option name")
		return true
	}
	name := args[1]
	on := !neg
	var be *config.Backend
	var fe *config.Frontend
	if p != nil {
		be, fe = p.be, p.fe
	}
	httpOpts := func() []*config.HTTPOptions {
		if p == nil {
			return []*config.HTTPOptions{&d.HTTP}
		}
		var out []*config.HTTPOptions
		if fe != nil {
			out = append(out, &fe.HTTP)
		}
		if be != nil {
			out = append(out, &be.HTTP)
		}
		return out
	}
	switch name {
	case "redispatch":
		if p == nil {
			d.Redispatch = &on
		} else if be != nil {
			be.Redispatch = &on
		}
	case "allbackups":
		if be != nil {
			be.AllBackups = on
		} else if p == nil {
			t.warn(l, "option allbackups", "set allbackups on each backend (not a defaults key in vipgate)")
		}
	case "httpchk":
		ck.set = true
		ck.kind = "http"
		ck.http = &config.HTTPCheck{}
		t.httpchk(l, args[2:], ck)
	case "ssl-hello-chk":
		ck.set, ck.kind = true, "tls"
	case "tcp-check":
		ck.set = true
		if ck.kind == "" {
			ck.kind = "tcp"
		}
	case "smtpchk":
		ck.set, ck.kind, ck.expRe = true, "tcp", "^2[0-9][0-9]"
		t.warn(l, "option smtpchk", "translated to a tcp check expecting a 2xx banner (vipgate does not send HELO)")
	case "redis-check":
		ck.set, ck.kind, ck.send, ck.expect = true, "tcp", "PING\r\n", "+PONG"
	case "httplog", "tcplog", "httpslog":
		if name != "tcplog" {
			for _, o := range httpOpts() {
				o.Log = &on
			}
		} else {
			// vipgate's tcp access log: one line per connection, as
			// HAProxy's tcplog (docs/config.md).
			v := !neg
			switch {
			case p != nil && p.fe != nil:
				p.fe.Log = &v
			case p == nil && d != nil:
				d.Log = &v
			default:
				t.warn(l, "option tcplog", "a backend has no access log: set it on the frontends")
			}
		}
	case "forwardfor":
		ff := &config.ForwardFor{}
		for i := 2; i < len(args); i++ {
			switch args[i] {
			case "except":
				if i+1 < len(args) {
					ff.Except = append(ff.Except, args[i+1])
					i++
				}
			case "header":
				if i+1 < len(args) {
					ff.Header = args[i+1]
					i++
				}
			case "if-none":
				t.warn(l, "option forwardfor if-none", "if-none is not supported: the header is always appended")
			}
		}
		if neg {
			ff = &config.ForwardFor{Mode: "off"}
		}
		for _, o := range httpOpts() {
			c := *ff
			o.ForwardFor = &c
		}
	case "dontlognull", "log-health-checks", "log-separate-errors", "dontlog-normal", "logasap":
		t.skip(l, "logging detail without a vipgate equivalent")
	case "http-server-close", "http-keep-alive", "httpclose", "http-pretend-keepalive", "forceclose", "http-no-delay":
		t.skip(l, "vipgate keeps client connections alive and pools server connections (http.reuse)")
	case "tcpka", "clitcpka", "srvtcpka":
		v := on
		switch {
		case p == nil && name == "tcpka":
			d.TCPKeepAlive = &v
		case p == nil:
			t.warn(l, "option "+name, "defaults.tcp_keepalive covers both sides: set tcp_keepalive on the frontends or backends instead")
		default:
			if fe != nil && name != "srvtcpka" {
				fe.TCPKeepAlive = &v
			}
			if be != nil && name != "clitcpka" {
				be.TCPKeepAlive = &v
			}
		}
	case "persist":
		t.warn(l, "option persist", "not supported: vipgate never sends a persistent client to a server marked down")
	case "abortonclose", "splice-auto", "splice-request", "splice-response", "tcp-smart-accept", "tcp-smart-connect", "contstats", "socket-stats":
		t.skip(l, "no vipgate equivalent needed")
	case "prefer-last-server":
		mode := t.c.Defaults.Mode
		if p != nil {
			mode = p.mode(t)
		}
		if mode != config.ModeHTTP {
			t.skip(l, "tcp mode: one server per connection anyway")
			break
		}
		t.warn(l, "option prefer-last-server", "vipgate prefers the last server only once it asked for NTLM/Negotiate sign-in (automatically, as HAProxy; Outlook Anywhere, EWS and MAPI work); other requests of a connection are balanced anew: persist with a cookie or balance source if the servers need more")
	case "http-use-htx", "http-buffer-request", "accept-invalid-http-request", "accept-invalid-http-response":
		t.skip(l, "vipgate's HTTP parser is always strict")
	default:
		return false
	}
	return true
}

// httpchk parses `option httpchk [METH] [URI] [VER]`, including the old
// "HTTP/1.1\r\nHost:\ name" trick for sending a Host header.
func (t *translator) httpchk(l hline, args []string, ck *checkSpec) {
	h := ck.http
	switch len(args) {
	case 0:
	case 1:
		h.Path = args[0]
	default:
		h.Method, h.Path = args[0], args[1]
		if len(args) > 2 {
			ver := strings.Join(args[2:], " ")
			lines := strings.Split(strings.ReplaceAll(ver, "\r\n", "\n"), "\n")
			for _, hl := range lines[1:] {
				name, val, ok := strings.Cut(hl, ":")
				if !ok {
					continue
				}
				name, val = strings.TrimSpace(name), strings.TrimSpace(val)
				if strings.EqualFold(name, "host") {
					h.Host = val
				} else if name != "" {
					if h.Headers == nil {
						h.Headers = map[string]string{}
					}
					h.Headers[name] = val
				}
			}
		}
	}
}

// checkDirective handles http-check and tcp-check lines.
func (t *translator) checkDirective(l hline, ck *checkSpec) {
	if len(l.args) < 2 {
		t.warn(l, l.keyword(), "missing action")
		return
	}
	dir := l.keyword() + " " + l.args[1]
	args := l.args[2:]
	if l.keyword() == "http-check" {
		ck.set = true
		if ck.http == nil {
			ck.http = &config.HTTPCheck{}
		}
		ck.kind = "http"
		h := ck.http
		switch l.args[1] {
		case "send":
			for i := 0; i+1 < len(args); i += 2 {
				switch args[i] {
				case "meth":
					h.Method = args[i+1]
				case "uri":
					h.Path = args[i+1]
				case "ver":
				case "hdr":
					if i+2 >= len(args) {
						t.warn(l, dir, "hdr needs a name and a value")
						return
					}
					name, val := args[i+1], args[i+2]
					i++
					if strings.EqualFold(name, "host") {
						h.Host = val
					} else {
						if h.Headers == nil {
							h.Headers = map[string]string{}
						}
						h.Headers[name] = val
					}
				default:
					t.warn(l, dir, fmt.Sprintf("%s is not supported (meth, uri, ver and hdr are)", args[i]))
				}
			}
		case "expect":
			t.httpExpect(l, args, h)
		case "connect":
			t.checkConnect(l, args, ck)
		case "disable-on-404", "send-state", "comment":
			t.skip(l, "no vipgate equivalent")
		default:
			t.warn(l, dir, "not supported")
		}
		return
	}
	ck.set = true
	if ck.kind == "" {
		ck.kind = "tcp"
	}
	switch l.args[1] {
	case "connect":
		t.checkConnect(l, args, ck)
	case "send", "send-lf":
		if len(args) < 1 {
			t.warn(l, dir, "missing data")
			return
		}
		if ck.send != "" {
			t.warn(l, dir, "vipgate checks send once; only the first send is kept")
			return
		}
		ck.send = args[0]
	case "send-binary":
		b, err := hex.DecodeString(strings.Join(args, ""))
		if err != nil || !utf8.Valid(b) {
			t.warn(l, dir, "binary data that is not text cannot be written in the cluster document")
			return
		}
		ck.send = string(b)
	case "expect":
		if ck.expect != "" || ck.expRe != "" {
			t.warn(l, dir, "vipgate checks expect once; only the first expect is kept")
			return
		}
		if len(args) >= 1 && args[0] == "!" {
			t.warn(l, dir, "negated expectations are not supported")
			return
		}
		if len(args) < 2 {
			t.warn(l, dir, "want expect string|rstring|binary PATTERN")
			return
		}
		switch args[0] {
		case "string":
			ck.expect = args[1]
		case "rstring":
			if _, err := regexp.Compile(args[1]); err != nil {
				t.warn(l, dir, fmt.Sprintf("regular expression not valid in Go's RE2 syntax: %v", err))
				return
			}
			ck.expRe = args[1]
		case "binary":
			b, err := hex.DecodeString(args[1])
			if err != nil || !utf8.Valid(b) {
				t.warn(l, dir, "binary data that is not text cannot be written in the cluster document")
				return
			}
			ck.expect = string(b)
		default:
			t.warn(l, dir, fmt.Sprintf("expect %s is not supported (string, rstring, binary are)", args[0]))
		}
	case "comment":
	default:
		t.warn(l, dir, "not supported (connect, send, send-binary, expect are)")
	}
}

func (t *translator) checkConnect(l hline, args []string, ck *checkSpec) {
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "port":
			if i+1 < len(args) {
				if n, err := strconv.Atoi(args[i+1]); err == nil && n > 0 && n < 65536 {
					ck.port = n
				} else {
					t.warn(l, l.keyword()+" connect", fmt.Sprintf("port %q is not a port number", args[i+1]))
				}
				i++
			}
		case "ssl":
			ck.ssl = true
		default:
			t.warn(l, l.keyword()+" connect", fmt.Sprintf("%s is not supported (port and ssl are)", args[i]))
		}
	}
}

func (t *translator) httpExpect(l hline, args []string, h *config.HTTPCheck) {
	dir := "http-check expect"
	if len(args) >= 1 && args[0] == "!" {
		t.warn(l, dir, "negated expectations are not supported")
		return
	}
	if len(args) < 2 {
		t.warn(l, dir, "want expect status|rstatus|string|rstring PATTERN")
		return
	}
	switch args[0] {
	case "status":
		codes, ok := parseStatusList(args[1])
		if !ok {
			t.warn(l, dir, fmt.Sprintf("status %q: want codes or ranges like 200,300-399", args[1]))
			return
		}
		h.ExpectStatus = codes
	case "rstatus":
		re, err := regexp.Compile(args[1])
		if err != nil {
			t.warn(l, dir, fmt.Sprintf("regular expression not valid in Go's RE2 syntax: %v", err))
			return
		}
		// A status is one of 500 values: list those the expression matches.
		var codes []int
		for c := 100; c <= 599; c++ {
			if re.MatchString(strconv.Itoa(c)) {
				codes = append(codes, c)
			}
		}
		if len(codes) == 0 {
			t.warn(l, dir, "the expression matches no status 100-599")
			return
		}
		h.ExpectStatus = codes
	case "string":
		h.ExpectBody = regexp.QuoteMeta(args[1])
	case "rstring":
		if _, err := regexp.Compile(args[1]); err != nil {
			t.warn(l, dir, fmt.Sprintf("regular expression not valid in Go's RE2 syntax: %v", err))
			return
		}
		h.ExpectBody = args[1]
	default:
		t.warn(l, dir, fmt.Sprintf("expect %s is not supported (status, rstatus, string, rstring are)", args[0]))
	}
}

func parseStatusList(s string) ([]int, bool) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, false
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, len(out) > 0
}

func (t *translator) mode(l hline) (string, bool) {
	if len(l.args) < 2 {
		t.warn(l, "mode", "missing tcp or http")
		return "", false
	}
	switch l.args[1] {
	case "tcp", "http":
		return l.args[1], true
	}
	t.warn(l, "mode", fmt.Sprintf("mode %q has no vipgate equivalent (tcp and http are)", l.args[1]))
	return "", false
}

// timeout handles `timeout NAME VALUE` for a proxy side: "" (defaults:
// all), "fe" or "be".
func (t *translator) timeout(l hline, to *config.Timeouts, side string) {
	name, val := "", ""
	switch l.keyword() {
	case "contimeout":
		name = "connect"
	case "clitimeout":
		name = "client"
	case "srvtimeout":
		name = "server"
	default:
		if len(l.args) < 3 {
			t.warn(l, "timeout", "want timeout NAME VALUE")
			return
		}
		name = l.args[1]
	}
	val = l.args[len(l.args)-1]
	d, err := config.ParseDuration(val)
	if err != nil {
		t.warn(l, "timeout "+name, err.Error())
		return
	}
	fields := map[string]struct {
		f    *config.Duration
		side string
	}{
		"connect": {&to.Connect, "be"}, "server": {&to.Server, "be"}, "queue": {&to.Queue, "be"},
		"check": {&to.Check, "be"}, "tunnel": {&to.Tunnel, "be"}, "server-fin": {&to.ServerFin, "be"},
		"client": {&to.Client, "fe"}, "http-request": {&to.HTTPRequest, "fe"},
		"http-keep-alive": {&to.HTTPKeepAlive, "fe"}, "client-fin": {&to.ClientFin, "fe"},
	}
	f, ok := fields[name]
	if !ok {
		t.warn(l, "timeout "+name, "no vipgate equivalent")
		return
	}
	if side != "" && f.side != side {
		return // the other half of a listen section takes it
	}
	*f.f = d
}

func (t *translator) balance(l hline) (config.Balance, bool) {
	var b config.Balance
	if len(l.args) < 2 {
		t.warn(l, "balance", "missing algorithm")
		return b, false
	}
	alg := l.args[1]
	switch {
	case alg == "roundrobin" || alg == "static-rr" || alg == "leastconn" || alg == "first" || alg == "source" || alg == "uri":
		b.Algorithm = alg
		if len(l.args) > 2 && alg == "uri" {
			t.warn(l, "balance uri", "uri options (whole, len, depth, path-only) are not supported; the path is hashed")
		}
	case alg == "random" || strings.HasPrefix(alg, "random("):
		b.Algorithm = "random"
		if strings.HasPrefix(alg, "random(") && strings.HasSuffix(alg, ")") {
			n, err := strconv.Atoi(alg[7 : len(alg)-1])
			if err != nil || n < 1 || n > 100 {
				t.warn(l, "balance "+alg, "draws must be 1-100")
			} else {
				b.Draws = n
			}
		}
	case alg == "url_param":
		if len(l.args) < 3 {
			t.warn(l, "balance url_param", "missing parameter name")
			return b, false
		}
		b.Algorithm, b.Param = "url_param", l.args[2]
		if len(l.args) > 3 {
			t.warn(l, "balance url_param", "check_post and max_wait are not supported")
		}
	case strings.HasPrefix(alg, "hdr(") && strings.HasSuffix(alg, ")"):
		b.Algorithm, b.Param = "hdr", alg[4:len(alg)-1]
		if b.Param == "" {
			t.warn(l, "balance hdr()", "missing header name")
			return b, false
		}
	default:
		t.warn(l, "balance "+alg, "no vipgate equivalent (roundrobin, static-rr, leastconn, first, source, random, uri, url_param, hdr() are)")
		return b, false
	}
	return b, true
}

func (t *translator) hashType(l hline, b *config.Balance) {
	if len(l.args) < 2 {
		t.warn(l, "hash-type", "missing map-based or consistent")
		return
	}
	switch l.args[1] {
	case "map-based", "consistent":
		b.HashType = l.args[1]
	default:
		t.warn(l, "hash-type", fmt.Sprintf("%q: want map-based or consistent", l.args[1]))
	}
	if len(l.args) > 2 {
		t.skip(l, "hash functions are chosen by vipgate")
	}
}

// serverOpts parses server keywords into o. Unknown ones are warnings.
func (t *translator) serverOpts(l hline, args []string, o *serverOpts) {
	dur := func(i int, kw string, dst *config.Duration) int {
		if i+1 >= len(args) {
			t.warn(l, kw, "missing value")
			return i
		}
		d, err := config.ParseDuration(args[i+1])
		if err != nil {
			t.warn(l, kw, err.Error())
		} else {
			*dst = d
		}
		return i + 1
	}
	num := func(i int, kw string, dst *int) int {
		if i+1 >= len(args) {
			t.warn(l, kw, "missing value")
			return i
		}
		n, err := strconv.Atoi(args[i+1])
		if err != nil || n < 0 {
			t.warn(l, kw, fmt.Sprintf("%q is not a number", args[i+1]))
		} else {
			*dst = n
		}
		return i + 1
	}
	str := func(i int, kw string, dst *string) int {
		if i+1 >= len(args) {
			t.warn(l, kw, "missing value")
			return i
		}
		*dst = args[i+1]
		return i + 1
	}
	// oneOf reads a value that must be one of allowed (else a warning).
	oneOf := func(i int, kw string, dst *string, allowed ...string) int {
		i = str(i, kw, dst)
		if !slices.Contains(allowed, *dst) {
			t.warn(l, kw, fmt.Sprintf("%q: want %s", *dst, orList(allowed)))
			*dst = ""
		}
		return i
	}
	for i := 0; i < len(args); i++ {
		kw := args[i]
		switch kw {
		case "check":
			o.check, o.noCheck = true, false
		case "no-check":
			o.check, o.noCheck = false, true
		case "inter":
			i = dur(i, kw, &o.inter)
		case "fastinter":
			i = dur(i, kw, &o.fastinter)
		case "downinter":
			i = dur(i, kw, &o.downinter)
		case "slowstart":
			i = dur(i, kw, &o.slowstart)
		case "rise":
			i = num(i, kw, &o.rise)
		case "fall":
			i = num(i, kw, &o.fall)
		case "port":
			i = num(i, kw, &o.port)
		case "maxconn":
			i = num(i, kw, &o.maxconn)
		case "weight":
			var w int
			i = num(i, kw, &w)
			o.weight = &w
		case "check-ssl":
			o.checkSSL = true
		case "no-check-ssl":
			o.checkSSL = false
		case "ssl":
			o.ssl = true
		case "no-ssl":
			o.ssl = false
		case "verify":
			i = str(i, kw, &o.verify)
			if o.verify != "none" && o.verify != "required" {
				t.warn(l, "verify", fmt.Sprintf("%q: want none or required", o.verify))
				o.verify = ""
			}
		case "sni", "check-sni":
			i = str(i, kw, &o.sni)
			if strings.HasPrefix(o.sni, "str(") && strings.HasSuffix(o.sni, ")") {
				o.sni = o.sni[4 : len(o.sni)-1]
			} else if kw == "sni" {
				t.warn(l, "sni", fmt.Sprintf("%s is an expression; only str(NAME) translates", o.sni))
				o.sni = ""
			}
		case "ca-file":
			i = str(i, kw, &o.caFile)
		case "backup":
			o.backup = true
		case "disabled":
			o.disabled = true
		case "enabled":
			o.disabled = false
		case "cookie":
			i = str(i, kw, &o.cookie)
		case "init-state":
			i = oneOf(i, kw, &o.initState, "up", "down", "fully-up", "fully-down")
		case "on-marked-down":
			var v string
			i = str(i, kw, &v)
			if v == "shutdown-sessions" {
				o.onMarkedDown = v
			} else if v != "" {
				t.warn(l, "on-marked-down "+v, "only shutdown-sessions is supported")
			}
		case "observe":
			i = oneOf(i, kw, &o.observe, "layer4", "layer7")
		case "error-limit":
			i = num(i, kw, &o.errorLimit)
		case "on-error":
			i = oneOf(i, kw, &o.onError, "fastinter", "fail-check", "sudden-death", "mark-down")
		case "check-send-proxy":
			o.checkSendProxy = true
		case "on-marked-up":
			i++
			t.warn(l, kw, "not supported (shutdown-backup-sessions)")
		case "source":
			o.source, i = t.haSource(l, args, i+1)
		case "send-proxy":
			o.sendProxy = "v1"
		case "send-proxy-v2":
			o.sendProxy = "v2"
		case "no-send-proxy", "no-send-proxy-v2":
			o.sendProxy = ""
		case "resolvers", "resolve-prefer", "resolve-opts", "id", "agent-port", "agent-inter", "agent-addr",
			"agent-send", "alpn", "check-alpn", "crt", "ciphers", "pool-max-conn", "pool-purge-delay", "max-reuse",
			"namespace", "proto", "tfo", "track", "redir", "minconn", "maxqueue", "usesrc", "addr",
			"ws", "check-proto", "proxy-v2-options", "ssl-min-ver", "ssl-max-ver", "pool-low-conn",
			"shard", "log-proto", "set-proxy-v2-tlv-fmt":
			if i+1 < len(args) {
				i++
			}
			t.warn(l, kw, "server keyword not supported")
		case "agent-check", "no-agent-check", "no-verifyhost", "no-tls-tickets", "force-tlsv12", "force-tlsv13",
			"no-sslv3", "no-tlsv10", "no-tlsv11", "allow-0rtt", "non-stick", "no-backup", "stick":
			t.warn(l, kw, "server keyword not supported")
		case "verifyhost":
			i++
			t.warn(l, kw, "vipgate verifies against sni (or the address's name)")
		default:
			t.warn(l, kw, "unknown server keyword")
		}
	}
}

// parseServerAddr returns host:port in vipgate's form, or why it cannot.
func parseServerAddr(a string) (string, bool, string) {
	for _, pfx := range []string{"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"} {
		a = strings.TrimPrefix(a, pfx)
	}
	if strings.Contains(a, "@") || strings.HasPrefix(a, "/") {
		return "", false, "unix sockets and other address families are not supported"
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		// No port: a bare IPv4, IPv6 or name.
		if strings.Count(a, ":") >= 2 {
			// HAProxy reads the last colon of a bare IPv6 address as the
			// port separator; accept "2001:db8::1:443" like it does.
			i := strings.LastIndexByte(a, ':')
			h, p := a[:i], a[i+1:]
			if validAddr(h) {
				if _, err := strconv.Atoi(p); err == nil {
					return net.JoinHostPort(h, p), true, ""
				}
			}
			return "", false, "IPv6 server address without a port; write [addr]:port"
		}
		if !validHost(a) {
			return "", false, fmt.Sprintf("%q is neither an IP address nor a host name", a)
		}
		return a, false, ""
	}
	if strings.HasPrefix(port, "+") || strings.HasPrefix(port, "-") {
		return "", false, "relative ports (+N/-N) are not supported"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", false, fmt.Sprintf("port %q out of range 1-65535", port)
	}
	if !validHost(host) {
		return "", false, fmt.Sprintf("%q is neither an IP address nor a host name", host)
	}
	return net.JoinHostPort(host, port), true, ""
}

// parseBind returns listen addresses for one `bind` address word.
func parseBind(w string) ([]string, string) {
	var out []string
	for _, a := range strings.Split(w, ",") {
		fam := ""
		for _, pfx := range []string{"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"} {
			if strings.HasPrefix(a, pfx) {
				fam = pfx
				a = strings.TrimPrefix(a, pfx)
			}
		}
		if strings.Contains(a, "@") || strings.HasPrefix(a, "/") {
			return nil, fmt.Sprintf("%s: unix sockets and other address families are not supported", a)
		}
		i := strings.LastIndexByte(a, ':')
		if i < 0 {
			return nil, fmt.Sprintf("%s: missing :port", a)
		}
		host, ports := a[:i], a[i+1:]
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		switch host {
		case "", "*":
			// HAProxy's ":443" and "*:443" listen on IPv4 only (unless ipv6@).
			host = "0.0.0.0"
			if fam == "ipv6@" || fam == "tcp6@" {
				host = "::"
			}
		}
		lo, hi, isRange := strings.Cut(ports, "-")
		if !isRange {
			hi = lo
		}
		p1, err1 := strconv.Atoi(lo)
		p2, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || p1 < 1 || p2 > 65535 || p1 > p2 {
			return nil, fmt.Sprintf("%s: bad port %q", a, ports)
		}
		if p2-p1 > 64 {
			return nil, fmt.Sprintf("%s: port range wider than 64 ports", a)
		}
		if !validHost(host) {
			return nil, fmt.Sprintf("%s: %q is neither an IP address nor a host name", a, host)
		}
		for p := p1; p <= p2; p++ {
			out = append(out, net.JoinHostPort(host, strconv.Itoa(p)))
		}
	}
	return out, ""
}

func (t *translator) intArg(l hline, i int) (int, bool) {
	if i >= len(l.args) {
		t.warn(l, l.keyword(), "missing value")
		return 0, false
	}
	n, err := strconv.Atoi(l.args[i])
	if err != nil || n < 0 {
		t.warn(l, l.keyword(), fmt.Sprintf("%q is not a number", l.args[i]))
		return 0, false
	}
	return n, true
}

func (t *translator) lineEnv(l hline) {
	if l.env {
		t.warn(l, l.keyword(), "environment variables (\"${VAR}\") are kept as written: vipgate does not expand them; replace them with values")
	}
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// validHost mirrors the cluster schema's rule for addresses: an IP literal
// or a DNS name.
func validHost(h string) bool { return validAddr(h) || hostRE.MatchString(h) }

// peersHint shows, as a comment, the node-file `peers:` block that
// replaces a haproxy peers section (for its first peer; each node lists
// the others).
func (t *translator) peersHint(s *hsection) {
	type peer struct{ name, addr string }
	var ps []peer
	for _, l := range s.body {
		if l.keyword() == "peer" && len(l.args) >= 3 {
			ps = append(ps, peer{l.args[1], l.args[2]})
		} else if l.keyword() != "peer" {
			t.skip(l, "stick-table sync settings live in the node files")
		}
	}
	f := &t.footer
	*f = append(*f, fmt.Sprintf("peers %s (%s:%d) becomes `peers:` in each node's bootstrap file.", s.name, s.head.file, s.head.num))
	if len(ps) == 0 {
		return
	}
	*f = append(*f, fmt.Sprintf("For %s (each node lists the others):", ps[0].name),
		"  peers:",
		"    listen: "+ps[0].addr,
		"    secret: CHANGE-ME-16+-chars-same-on-every-node",
		"    nodes:")
	for _, p := range ps[1:] {
		*f = append(*f, fmt.Sprintf("      - {name: %s, address: %s}", p.name, p.addr))
	}
}

// splitTLSBinds splits a frontend that has binds with and without ssl into
// the TLS one (same name) and a plain one (NAME-plain): vipgate terminates
// TLS on every address of a frontend, and ssl_fc must be false for the
// plain binds (`redirect scheme https unless { ssl_fc }`). plain is nil when
// the section is left whole; a listen is, with a warning, as splitting it
// would duplicate its backend.
func (t *translator) splitTLSBinds(s *hsection) (tlsPart, plain *hsection) {
	var withSSL, without []hline
	for _, l := range s.body {
		if l.keyword() != "bind" {
			continue
		}
		if slices.Contains(l.args[1:], "ssl") {
			withSSL = append(withSSL, l)
		} else {
			without = append(without, l)
		}
	}
	if s.kind == "backend" || len(withSSL) == 0 || len(without) == 0 {
		return nil, nil
	}
	if s.kind == "listen" {
		t.warn(without[0], "bind", "vipgate terminates TLS on every address of a frontend: this one would serve TLS too; move the binds without ssl to a frontend of their own")
		return nil, nil
	}
	keep := func(drop []hline) *hsection {
		c := *s
		c.body = nil
		for _, l := range s.body {
			if !slices.ContainsFunc(drop, func(d hline) bool { return d.num == l.num && d.file == l.file }) {
				c.body = append(c.body, l)
			}
		}
		return &c
	}
	tlsPart, plain = keep(without), keep(withSSL)
	plain.name = s.name + "-plain"
	return tlsPart, plain
}

// uniqueAfter returns the elements of next that are not in prev.
func uniqueAfter[T comparable](prev, next []T) []T {
	var out []T
	for _, x := range next {
		if !slices.Contains(prev, x) {
			out = append(out, x)
		}
	}
	return out
}

// bindOptions reads global ssl-default-bind-options: the TLS versions
// become each TLS frontend's unless its binds set their own; the options
// below TLS 1.2 are what vipgate does anyway.
func (t *translator) bindOptions(l hline) {
	vers := map[string]string{"TLSv1.2": "1.2", "TLSv1.3": "1.3"}
	var rest []string
	for i := 1; i < len(l.args); i++ {
		switch o := l.args[i]; o {
		case "ssl-min-ver", "ssl-max-ver":
			if i+1 >= len(l.args) {
				t.warn(l, "ssl-default-bind-options "+o, "missing value")
				continue
			}
			i++
			v := vers[l.args[i]]
			if v == "" {
				t.warn(l, "ssl-default-bind-options "+o+" "+l.args[i], "vipgate supports TLS 1.2 and 1.3 only")
				continue
			}
			if o == "ssl-min-ver" {
				t.bindMinVer = v
			} else {
				t.bindMaxVer = v
			}
		case "no-tlsv12", "force-tlsv13":
			t.bindMinVer = "1.3"
		case "no-tlsv13", "force-tlsv12":
			t.bindMaxVer = "1.2"
		case "no-sslv3", "no-tlsv10", "no-tlsv11":
			// vipgate never offers below TLS 1.2.
		default:
			rest = append(rest, o)
		}
	}
	if len(rest) > 0 {
		t.skip(hline{file: l.file, num: l.num, args: append([]string{l.keyword()}, rest...)}, "TLS details vipgate does not set; versions are applied to each frontend")
	}
}

// orList spells out choices: "a", "a or b", "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

const backlogWhy = "no vipgate equivalent: the listen queue is the kernel's (net.core.somaxconn, net.ipv4.tcp_max_syn_backlog)"

// proxyKeyword reports whether a frontend/backend knows l's keyword: l is
// translated into a scratch listen section and must not come back as
// unknown.
func (t *translator) proxyKeyword(l hline) bool {
	scratch := &translator{comments: map[string][]string{}, mailerSets: map[string]*mailerSet{}, fs: t.fs}
	scratch.c.Defaults = t.c.Defaults
	p := &proxy{kind: "listen", name: "scratch", head: l, acls: map[string]*aclDef{},
		fe: &config.Frontend{Name: "scratch"}, be: &config.Backend{Name: "scratch"}}
	scratch.proxyLine(p, l, false)
	for _, w := range scratch.warnings {
		if w.Why == "unknown or unsupported keyword" {
			return false
		}
	}
	return true
}
