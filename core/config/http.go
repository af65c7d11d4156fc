package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// HTTP-mode options (core/proxy http mode). See docs/http.md.

// ForwardFor configures X-Forwarded-For (HAProxy `option forwardfor`).
type ForwardFor struct {
	// Mode: "append" (default: add the client to an existing list),
	// "replace" (drop what the client sent) or "off".
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Except lists trusted sources (CIDR or address) for which the header is
	// passed on untouched (HAProxy `except`).
	Except StringList `yaml:"except,omitempty" json:"except,omitempty"`
	// Header is the header name (default X-Forwarded-For).
	Header string `yaml:"header,omitempty" json:"header,omitempty"`

	exceptNets []netip.Prefix
}

// ExceptNets is Except parsed.
func (f *ForwardFor) ExceptNets() []netip.Prefix { return f.exceptNets }

// HTTPOptions are http-mode settings. defaults.http gives every frontend and
// backend its values; a frontend's or backend's own `http:` overrides them
// field by field (zero = inherit).
type HTTPOptions struct {
	ForwardFor *ForwardFor `yaml:"forwardfor,omitempty" json:"forwardfor,omitempty"`
	// XForwardedProto/Port add X-Forwarded-Proto and X-Forwarded-Port.
	XForwardedProto *bool `yaml:"x_forwarded_proto,omitempty" json:"x_forwarded_proto,omitempty"`
	XForwardedPort  *bool `yaml:"x_forwarded_port,omitempty" json:"x_forwarded_port,omitempty"`
	// Forwarded adds an RFC 7239 Forwarded element (for=;proto=;host=).
	Forwarded *bool `yaml:"forwarded,omitempty" json:"forwarded,omitempty"`
	// Via adds "Via: 1.1 <name>" to requests and responses when set.
	Via string `yaml:"via,omitempty" json:"via,omitempty"`
	// Limits on the request head: 414 beyond MaxRequestLine, 431 beyond
	// MaxHeaderBytes (whole head) or MaxHeaders (count).
	MaxRequestLine int `yaml:"max_request_line,omitempty" json:"max_request_line,omitempty"`
	MaxHeaderBytes int `yaml:"max_header_bytes,omitempty" json:"max_header_bytes,omitempty"`
	MaxHeaders     int `yaml:"max_headers,omitempty" json:"max_headers,omitempty"`
	// H2MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS an
	// HTTP/2 client is offered (HAProxy tune.h2.fe.max-concurrent-streams):
	// the streams one client connection may have in flight.
	H2MaxConcurrentStreams int `yaml:"h2_max_concurrent_streams,omitempty" json:"h2_max_concurrent_streams,omitempty"`
	// Reuse of idle server connections (HAProxy http-reuse): never, safe
	// (default: a request that is not the first of its client connection may
	// use an idle connection) or always.
	Reuse string `yaml:"reuse,omitempty" json:"reuse,omitempty"`
	// MaxIdle bounds the idle connections kept per server (default 64).
	MaxIdle int `yaml:"max_idle,omitempty" json:"max_idle,omitempty"`
	// ErrorFiles maps a status (400, 403, 404, 408, 413, 414, 431, 500,
	// 501, 502, 503, 504) to a file: a complete HTTP response when it starts
	// with "HTTP/" (HAProxy errorfile), else the body of a text/html page.
	ErrorFiles map[int]string `yaml:"error_files,omitempty" json:"error_files,omitempty"`
	// Log writes one access-log line per request (docs/http.md: format).
	Log *bool `yaml:"log,omitempty" json:"log,omitempty"`
	// RetryNonIdempotent also retries POST & co. when the connection to the
	// server failed before anything was sent (default: idempotent only).
	RetryNonIdempotent *bool `yaml:"retry_non_idempotent,omitempty" json:"retry_non_idempotent,omitempty"`
}

func (o *HTTPOptions) inherit(d *HTTPOptions) {
	if o.ForwardFor == nil && d.ForwardFor != nil {
		ff := *d.ForwardFor
		o.ForwardFor = &ff
	}
	if o.XForwardedProto == nil {
		o.XForwardedProto = d.XForwardedProto
	}
	if o.XForwardedPort == nil {
		o.XForwardedPort = d.XForwardedPort
	}
	if o.Forwarded == nil {
		o.Forwarded = d.Forwarded
	}
	if o.Via == "" {
		o.Via = d.Via
	}
	if o.MaxRequestLine == 0 {
		o.MaxRequestLine = d.MaxRequestLine
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if o.MaxHeaders == 0 {
		o.MaxHeaders = d.MaxHeaders
	}
	if o.H2MaxConcurrentStreams == 0 {
		o.H2MaxConcurrentStreams = d.H2MaxConcurrentStreams
	}
	if o.Reuse == "" {
		o.Reuse = d.Reuse
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = d.MaxIdle
	}
	if len(d.ErrorFiles) > 0 {
		m := map[int]string{}
		for k, v := range d.ErrorFiles {
			m[k] = v
		}
		for k, v := range o.ErrorFiles {
			m[k] = v
		}
		o.ErrorFiles = m
	}
	if o.Log == nil {
		o.Log = d.Log
	}
	if o.RetryNonIdempotent == nil {
		o.RetryNonIdempotent = d.RetryNonIdempotent
	}
}

// Flag reads an optional boolean.
func Flag(b *bool) bool { return b != nil && *b }

// Default http limits (HAProxy: tune.bufsize 16k holds the whole head,
// tune.http.maxhdr 101).
const (
	DefaultMaxRequestLine = 8192
	DefaultMaxHeaderBytes = 16384
	DefaultMaxHeaders     = 101
	DefaultMaxIdle        = 64
	// HAProxy's tune.h2.max-concurrent-streams default.
	DefaultH2MaxConcurrentStreams = 100
)

// FrontendTLS terminates TLS on a frontend (HAProxy `bind ... ssl crt`).
type FrontendTLS struct {
	// Certificates: PEM files. The first is the default; the others are
	// chosen by SNI against their names (SAN DNS names, wildcards).
	Certificates []CertFiles `yaml:"certificates" json:"certificates"`
	// MinVersion/MaxVersion: "1.2" or "1.3" (default 1.2 .. 1.3).
	MinVersion string `yaml:"min_version,omitempty" json:"min_version,omitempty"`
	MaxVersion string `yaml:"max_version,omitempty" json:"max_version,omitempty"`
	// Ciphers restricts TLS 1.2 cipher suites (Go names); empty = Go's secure defaults.
	Ciphers StringList `yaml:"ciphers,omitempty" json:"ciphers,omitempty"`
	// ALPN protocols offered, in preference order (default h2, http/1.1).
	ALPN StringList `yaml:"alpn,omitempty" json:"alpn,omitempty"`
	// ClientCA enables client certificate verification against this PEM
	// bundle; ClientAuth: "required" (default when ClientCA is set) or "optional".
	ClientCA   string `yaml:"client_ca,omitempty" json:"client_ca,omitempty"`
	ClientAuth string `yaml:"client_auth,omitempty" json:"client_auth,omitempty"`
	// ReloadInterval is how often certificate files are checked for change
	// (default 5s); a changed file is loaded without restart.
	ReloadInterval Duration `yaml:"reload_interval,omitempty" json:"reload_interval,omitempty"`
}

// CertFiles is one certificate: chain and key PEM files (Key may be empty
// when Cert holds both).
type CertFiles struct {
	Cert string `yaml:"cert" json:"cert"`
	Key  string `yaml:"key,omitempty" json:"key,omitempty"`
}

// HTTPFrontend holds a frontend's http-mode options (inlined into Frontend).
type HTTPFrontend struct {
	HTTP HTTPOptions  `yaml:"http,omitempty" json:"http,omitempty"`
	TLS  *FrontendTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Monitor answers probes of the gateway itself (HAProxy monitor-uri).
	Monitor *Monitor `yaml:"monitor,omitempty" json:"monitor,omitempty"`
}

// Monitor is HAProxy's `monitor-uri` (+ `monitor fail if { nbsrv(B) lt 1 }`):
// a request for URI is answered by the proxy itself, 200 while every
// backend in Backends has a usable server, else 503, so that an upstream
// load balancer or monitoring system can probe the gateway.
type Monitor struct {
	URI      string     `yaml:"uri" json:"uri"`
	Backends StringList `yaml:"backends,omitempty" json:"backends,omitempty"`
}

// HeaderMatch is a header condition: the header is present, and when Value
// or Regex is set, one of its values equals Value (case-insensitive) or
// matches Regex.
type HeaderMatch struct {
	Name  string `yaml:"name" json:"name"`
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`

	re *regexp.Regexp
}

// Re is Regex compiled (nil when unset).
func (h *HeaderMatch) Re() *regexp.Regexp { return h.re }

// Redirect is HAProxy's `http-request redirect location|prefix|scheme`.
type Redirect struct {
	Location string `yaml:"location,omitempty" json:"location,omitempty"`
	Prefix   string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	Scheme   string `yaml:"scheme,omitempty" json:"scheme,omitempty"`
	Code     int    `yaml:"code,omitempty" json:"code,omitempty"` // 301, 302 (default), 303, 307, 308
}

// HTTPRule holds a rule's http-mode conditions and actions (inlined into Rule).
type HTTPRule struct {
	// Conditions (all set ones must hold; within a list, any).
	Host       StringList    `yaml:"host,omitempty" json:"host,omitempty"` // exact or "*.domain", port ignored
	PathPrefix StringList    `yaml:"path_prefix,omitempty" json:"path_prefix,omitempty"`
	PathRegex  string        `yaml:"path_regex,omitempty" json:"path_regex,omitempty"`
	Method     StringList    `yaml:"method,omitempty" json:"method,omitempty"`
	Header     []HeaderMatch `yaml:"header,omitempty" json:"header,omitempty"`

	// Actions, applied in rule order before backend selection (HAProxy
	// http-request); deny and redirect end the request.
	Deny              int               `yaml:"deny,omitempty" json:"deny,omitempty"`
	Redirect          *Redirect         `yaml:"redirect,omitempty" json:"redirect,omitempty"`
	SetHeader         map[string]string `yaml:"set_header,omitempty" json:"set_header,omitempty"`
	AddHeader         map[string]string `yaml:"add_header,omitempty" json:"add_header,omitempty"`
	DelHeader         StringList        `yaml:"del_header,omitempty" json:"del_header,omitempty"`
	SetResponseHeader map[string]string `yaml:"set_response_header,omitempty" json:"set_response_header,omitempty"`
	AddResponseHeader map[string]string `yaml:"add_response_header,omitempty" json:"add_response_header,omitempty"`
	DelResponseHeader StringList        `yaml:"del_response_header,omitempty" json:"del_response_header,omitempty"`

	pathRe *regexp.Regexp
}

// PathRe is PathRegex compiled.
func (r *HTTPRule) PathRe() *regexp.Regexp { return r.pathRe }

// HasHTTPConditions reports whether any http condition is set.
func (r *HTTPRule) HasHTTPConditions() bool {
	return len(r.Host) > 0 || len(r.PathPrefix) > 0 || r.PathRegex != "" || len(r.Method) > 0 || len(r.Header) > 0
}

// HasHTTPAction reports whether the rule does something besides choosing a backend.
func (r *HTTPRule) HasHTTPAction() bool { return r.hasHTTPAction() }

func (r *HTTPRule) hasHTTPAction() bool {
	return r.Deny != 0 || r.Redirect != nil || len(r.SetHeader) > 0 || len(r.AddHeader) > 0 || len(r.DelHeader) > 0 ||
		len(r.SetResponseHeader) > 0 || len(r.AddResponseHeader) > 0 || len(r.DelResponseHeader) > 0
}

// Cookie is HAProxy's `cookie NAME insert|rewrite|prefix ...`.
type Cookie struct {
	Name string `yaml:"name" json:"name"`
	// Mode: insert (default), rewrite or prefix.
	Mode     string   `yaml:"mode,omitempty" json:"mode,omitempty"`
	Indirect bool     `yaml:"indirect,omitempty" json:"indirect,omitempty"`
	NoCache  bool     `yaml:"nocache,omitempty" json:"nocache,omitempty"`
	HTTPOnly bool     `yaml:"httponly,omitempty" json:"httponly,omitempty"`
	Secure   bool     `yaml:"secure,omitempty" json:"secure,omitempty"`
	Domain   string   `yaml:"domain,omitempty" json:"domain,omitempty"`
	MaxIdle  Duration `yaml:"maxidle,omitempty" json:"maxidle,omitempty"`
	MaxLife  Duration `yaml:"maxlife,omitempty" json:"maxlife,omitempty"`
}

// ServerTLS is TLS toward servers (HAProxy `server ... ssl verify none|required sni`).
type ServerTLS struct {
	// Verify: required (default) or none.
	Verify string `yaml:"verify,omitempty" json:"verify,omitempty"`
	// SNI sent to servers (default: the server address's host when it is a name).
	SNI string `yaml:"sni,omitempty" json:"sni,omitempty"`
	// CAFile verifies servers against this bundle (default: system roots).
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
}

// HTTPBackend holds a backend's http-mode options (inlined into Backend).
type HTTPBackend struct {
	HTTP   HTTPOptions `yaml:"http,omitempty" json:"http,omitempty"`
	Cookie *Cookie     `yaml:"cookie,omitempty" json:"cookie,omitempty"`
	// SSL enables TLS toward every server of the backend.
	SSL *ServerTLS `yaml:"ssl,omitempty" json:"ssl,omitempty"`
}

// HTTPServer holds a server's http-mode options (inlined into Server).
type HTTPServer struct {
	// Cookie is the server's persistence cookie value (default: its name).
	Cookie string `yaml:"cookie,omitempty" json:"cookie,omitempty"`
}

func (c *Cluster) applyHTTPDefaults() {
	d := &c.Defaults.HTTP
	if d.MaxRequestLine == 0 {
		d.MaxRequestLine = DefaultMaxRequestLine
	}
	if d.MaxHeaderBytes == 0 {
		d.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if d.MaxHeaders == 0 {
		d.MaxHeaders = DefaultMaxHeaders
	}
	if d.H2MaxConcurrentStreams == 0 {
		d.H2MaxConcurrentStreams = DefaultH2MaxConcurrentStreams
	}
	if d.Reuse == "" {
		d.Reuse = "safe"
	}
	if d.MaxIdle == 0 {
		d.MaxIdle = DefaultMaxIdle
	}
}

func (o *HTTPOptions) applyForwardForDefaults() {
	if ff := o.ForwardFor; ff != nil {
		if ff.Mode == "" {
			ff.Mode = "append"
		}
		if ff.Header == "" {
			ff.Header = "X-Forwarded-For"
		}
	}
}

func (c *Cluster) applyHTTPFrontendDefaults(f *Frontend) {
	f.HTTP.inherit(&c.Defaults.HTTP)
	f.HTTP.applyForwardForDefaults()
	// HAProxy: timeout http-request and http-keep-alive default to timeout client.
	if f.Timeouts.HTTPRequest == 0 {
		f.Timeouts.HTTPRequest = f.Timeouts.Client
	}
	if f.Timeouts.HTTPKeepAlive == 0 {
		f.Timeouts.HTTPKeepAlive = f.Timeouts.HTTPRequest
	}
	if t := f.TLS; t != nil {
		if t.MinVersion == "" {
			t.MinVersion = "1.2"
		}
		if t.MaxVersion == "" {
			t.MaxVersion = "1.3"
		}
		if len(t.ALPN) == 0 {
			t.ALPN = StringList{"h2", "http/1.1"}
		}
		if t.ClientCA != "" && t.ClientAuth == "" {
			t.ClientAuth = "required"
		}
		if t.ReloadInterval == 0 {
			t.ReloadInterval = Duration(5e9)
		}
	}
}

func (c *Cluster) applyHTTPBackendDefaults(b *Backend) {
	b.HTTP.inherit(&c.Defaults.HTTP)
	b.HTTP.applyForwardForDefaults()
	if ck := b.Cookie; ck != nil && ck.Mode == "" {
		ck.Mode = "insert"
	}
	if s := b.SSL; s != nil && s.Verify == "" {
		s.Verify = "required"
	}
}

var tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// ValidHeaderName reports whether s is an RFC 9110 token.
func ValidHeaderName(s string) bool { return tokenRE.MatchString(s) }

func validHeaderValue(s string) bool { return !strings.ContainsAny(s, "\r\n\x00") }

func (c *Cluster) validateHTTPRule(p *Problems, path string, f *Frontend, r *Rule) {
	if f.Mode != ModeHTTP {
		if r.HasHTTPConditions() || r.hasHTTPAction() {
			p.Addf(path, "http conditions and actions need mode http")
		}
		return
	}
	for i, m := range r.Method {
		if !tokenRE.MatchString(m) {
			p.Addf(Path(path, "method", i), "method %q is not a valid token", m)
		}
	}
	for i, pp := range r.PathPrefix {
		if !strings.HasPrefix(pp, "/") {
			p.Addf(Path(path, "path_prefix", i), "path prefix %q must start with /", pp)
		}
	}
	r.pathRe = nil
	if r.PathRegex != "" {
		re, err := regexp.Compile(r.PathRegex)
		if err != nil {
			p.Addf(Path(path, "path_regex"), "bad regular expression: %v", err)
		} else {
			r.pathRe = re
		}
	}
	for i := range r.Header {
		h := &r.Header[i]
		if !tokenRE.MatchString(h.Name) {
			p.Addf(Path(path, "header", i, "name"), "header name %q is not a valid token", h.Name)
		}
		if h.Regex != "" {
			re, err := regexp.Compile(h.Regex)
			if err != nil {
				p.Addf(Path(path, "header", i, "regex"), "bad regular expression: %v", err)
			} else {
				h.re = re
			}
		}
	}
	if r.Deny != 0 && (r.Deny < 200 || r.Deny > 599) {
		p.Addf(Path(path, "deny"), "deny status %d out of range 200-599", r.Deny)
	}
	if rd := r.Redirect; rd != nil {
		n := 0
		for _, s := range []string{rd.Location, rd.Prefix, rd.Scheme} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			p.Addf(Path(path, "redirect"), "redirect needs exactly one of location, prefix or scheme")
		}
		if rd.Code == 0 {
			rd.Code = 302
		}
		switch rd.Code {
		case 301, 302, 303, 307, 308:
		default:
			p.Addf(Path(path, "redirect", "code"), "redirect code %d: want 301, 302, 303, 307 or 308", rd.Code)
		}
		if !validHeaderValue(rd.Location + rd.Prefix + rd.Scheme) {
			p.Addf(Path(path, "redirect"), "redirect must not contain CR, LF or NUL")
		}
	}
	checkHdrs := func(key string, m map[string]string) {
		for k, v := range m {
			if !tokenRE.MatchString(k) {
				p.Addf(Path(path, key), "header name %q is not a valid token", k)
			}
			if !validHeaderValue(v) {
				p.Addf(Path(path, key), "header %q: value must not contain CR, LF or NUL", k)
			}
			if err := checkHeaderTemplate(v); err != nil {
				p.Addf(Path(path, key), "header %q: %v", k, err)
			}
		}
	}
	checkHdrs("set_header", r.SetHeader)
	checkHdrs("add_header", r.AddHeader)
	checkHdrs("set_response_header", r.SetResponseHeader)
	checkHdrs("add_response_header", r.AddResponseHeader)
	// Framing and hop-by-hop fields are the proxy's own business: letting
	// a rule write them would let it desynchronise the connection.
	framing := func(key, name string, hostOK bool) {
		switch strings.ToLower(name) {
		case "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection":
			p.Addf(Path(path, key), "header %q is managed by the proxy and cannot be edited", name)
		case "host":
			if !hostOK {
				p.Addf(Path(path, key), "Host can only be replaced (set_header), not added or deleted")
			}
		}
	}
	for k := range r.SetHeader {
		framing("set_header", k, true)
	}
	for k := range r.AddHeader {
		framing("add_header", k, false)
	}
	for _, k := range r.DelHeader {
		framing("del_header", k, false)
	}
	for k := range r.SetResponseHeader {
		framing("set_response_header", k, true)
	}
	for k := range r.AddResponseHeader {
		framing("add_response_header", k, true)
	}
	for _, k := range r.DelResponseHeader {
		framing("del_response_header", k, true)
	}
	for i, k := range r.DelHeader {
		if !tokenRE.MatchString(k) {
			p.Addf(Path(path, "del_header", i), "header name %q is not a valid token", k)
		}
	}
	for i, k := range r.DelResponseHeader {
		if !tokenRE.MatchString(k) {
			p.Addf(Path(path, "del_response_header", i), "header name %q is not a valid token", k)
		}
	}
}

// KnownHeaderFetch reports whether name is a %[name] token a header value
// may contain (a small subset of HAProxy's sample fetches, replaced per
// request; docs/http.md lists them).
func KnownHeaderFetch(name string) bool {
	switch name {
	case "src", "src_port", "dst", "dst_port", "fe_name", "ssl_fc", "ssl_fc_sni", "ssl_fc_protocol",
		"ssl_c_s_dn", "ssl_c_i_dn", "ssl_c_serial", "ssl_c_used":
		return true
	}
	return false
}

// checkHeaderTemplate validates the %[name] tokens of a header value; "%%"
// is a literal percent sign.
func checkHeaderTemplate(v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			i++
			continue
		}
		if i+1 >= len(v) || v[i+1] != '[' {
			return fmt.Errorf("lone %%: write %%%% for a percent sign or %%[name] for a value")
		}
		end := strings.IndexByte(v[i:], ']')
		if end < 0 {
			return fmt.Errorf("unterminated %%[ in %q", v)
		}
		name := v[i+2 : i+end]
		if !KnownHeaderFetch(name) {
			return fmt.Errorf("unknown %%[%s] (known: src, src_port, dst, dst_port, fe_name, ssl_fc, ssl_fc_sni, ssl_fc_protocol, ssl_c_s_dn, ssl_c_i_dn, ssl_c_serial, ssl_c_used)", name)
		}
		i += end
	}
	return nil
}

func (c *Cluster) validateHTTPOptions(p *Problems, path string, o *HTTPOptions) {
	if ff := o.ForwardFor; ff != nil {
		switch ff.Mode {
		case "append", "replace", "off":
		default:
			p.Addf(Path(path, "forwardfor", "mode"), "forwardfor mode %q: want append, replace or off", ff.Mode)
		}
		if !tokenRE.MatchString(ff.Header) {
			p.Addf(Path(path, "forwardfor", "header"), "header name %q is not a valid token", ff.Header)
		}
		ff.exceptNets = nil
		for i, s := range ff.Except {
			pfx, err := ParsePrefix(s)
			if err != nil {
				p.Addf(Path(path, "forwardfor", "except", i), "%v", err)
				continue
			}
			ff.exceptNets = append(ff.exceptNets, pfx)
		}
	}
	if !validHeaderValue(o.Via) {
		p.Addf(Path(path, "via"), "via must not contain CR, LF or NUL")
	}
	if o.MaxRequestLine < 64 || o.MaxRequestLine > 1<<20 {
		p.Addf(Path(path, "max_request_line"), "max_request_line %d out of range 64-1048576", o.MaxRequestLine)
	}
	if o.MaxHeaderBytes < 256 || o.MaxHeaderBytes > 1<<20 {
		p.Addf(Path(path, "max_header_bytes"), "max_header_bytes %d out of range 256-1048576", o.MaxHeaderBytes)
	}
	if o.MaxHeaders < 1 || o.MaxHeaders > 10000 {
		p.Addf(Path(path, "max_headers"), "max_headers %d out of range 1-10000", o.MaxHeaders)
	}
	// Each stream in flight may hold a server connection: more than a few
	// thousand per client connection is a resource-exhaustion door, not a
	// tuning.
	if o.H2MaxConcurrentStreams < 1 || o.H2MaxConcurrentStreams > 4096 {
		p.Addf(Path(path, "h2_max_concurrent_streams"), "h2_max_concurrent_streams %d out of range 1-4096", o.H2MaxConcurrentStreams)
	}
	switch o.Reuse {
	case "never", "safe", "always":
	default:
		p.Addf(Path(path, "reuse"), "reuse %q: want never, safe or always", o.Reuse)
	}
	if o.MaxIdle < 0 {
		p.Addf(Path(path, "max_idle"), "max_idle %d must not be negative", o.MaxIdle)
	}
	for st, file := range o.ErrorFiles {
		if st < 200 || st > 599 {
			p.Addf(Path(path, "error_files"), "status %d out of range 200-599", st)
		}
		if file == "" {
			p.Addf(Path(path, "error_files"), "status %d: empty file name", st)
		}
	}
}

var tlsVersions = map[string]bool{"1.2": true, "1.3": true}

func (c *Cluster) validateHTTPFrontend(p *Problems, path string, f *Frontend) {
	if f.Mode != ModeHTTP {
		if f.TLS != nil {
			p.Addf(Path(path, "tls"), "tls termination needs mode http (use a tcp frontend with sni rules to pass TLS through)")
		}
		if f.Monitor != nil {
			p.Addf(Path(path, "monitor"), "monitor needs mode http (it answers an HTTP request)")
		}
		return
	}
	if m := f.Monitor; m != nil {
		if !strings.HasPrefix(m.URI, "/") {
			p.Addf(Path(path, "monitor", "uri"), "uri %q must start with /", m.URI)
		}
		for i, b := range m.Backends {
			if c.Backend(b) == nil {
				p.Addf(Path(path, "monitor", "backends", i), "unknown backend %q", b)
			}
		}
	}
	c.validateHTTPOptions(p, Path(path, "http"), &f.HTTP)
	if f.Timeouts.HTTPRequest < 0 || f.Timeouts.HTTPKeepAlive < 0 {
		p.Addf(Path(path, "timeouts"), "http timeouts must not be negative")
	}
	if t := f.TLS; t != nil {
		tp := Path(path, "tls")
		if len(t.Certificates) == 0 {
			p.Addf(tp, "tls needs at least one certificate")
		}
		for i, cf := range t.Certificates {
			if cf.Cert == "" {
				p.Addf(Path(tp, "certificates", i, "cert"), "certificate file missing")
			}
		}
		if !tlsVersions[t.MinVersion] {
			p.Addf(Path(tp, "min_version"), "min_version %q: want 1.2 or 1.3", t.MinVersion)
		}
		if !tlsVersions[t.MaxVersion] {
			p.Addf(Path(tp, "max_version"), "max_version %q: want 1.2 or 1.3", t.MaxVersion)
		}
		if t.MinVersion > t.MaxVersion && tlsVersions[t.MinVersion] && tlsVersions[t.MaxVersion] {
			p.Addf(Path(tp, "min_version"), "min_version %s is above max_version %s", t.MinVersion, t.MaxVersion)
		}
		for i, a := range t.ALPN {
			if a != "h2" && a != "http/1.1" {
				p.Addf(Path(tp, "alpn", i), "alpn %q: want h2 or http/1.1", a)
			}
		}
		if t.ClientAuth != "" && t.ClientAuth != "required" && t.ClientAuth != "optional" {
			p.Addf(Path(tp, "client_auth"), "client_auth %q: want required or optional", t.ClientAuth)
		}
		if t.ClientAuth != "" && t.ClientCA == "" {
			p.Addf(Path(tp, "client_ca"), "client_auth needs client_ca")
		}
		if t.ReloadInterval < Duration(1e8) {
			p.Addf(Path(tp, "reload_interval"), "reload_interval below 100ms")
		}
	}
}

func (c *Cluster) validateHTTPServer(p *Problems, path string, b *Backend, s *Server) {
	if s.Cookie != "" {
		if b.Mode != ModeHTTP {
			p.Addf(Path(path, "cookie"), "a server cookie needs mode http")
		}
		if !tokenRE.MatchString(s.Cookie) {
			p.Addf(Path(path, "cookie"), "cookie value %q: use letters, digits and -._~", s.Cookie)
		}
	}
}

func (c *Cluster) validateHTTPBackend(p *Problems, path string, b *Backend) {
	if b.Mode != ModeHTTP {
		if b.Cookie != nil {
			p.Addf(Path(path, "cookie"), "cookie persistence needs mode http")
		}
		if b.SSL != nil {
			p.Addf(Path(path, "ssl"), "ssl toward servers is for mode http (tcp mode passes TLS through)")
		}
		return
	}
	c.validateHTTPOptions(p, Path(path, "http"), &b.HTTP)
	if ck := b.Cookie; ck != nil {
		if !tokenRE.MatchString(ck.Name) {
			p.Addf(Path(path, "cookie", "name"), "cookie name %q is not a valid token", ck.Name)
		}
		switch ck.Mode {
		case "insert", "rewrite", "prefix":
		default:
			p.Addf(Path(path, "cookie", "mode"), "cookie mode %q: want insert, rewrite or prefix", ck.Mode)
		}
		if ck.Mode != "insert" && (ck.Indirect || ck.NoCache || ck.MaxIdle > 0 || ck.MaxLife > 0) {
			p.Addf(Path(path, "cookie"), "indirect, nocache, maxidle and maxlife apply to mode insert")
		}
		if strings.ContainsAny(ck.Domain, "; \r\n\x00") {
			p.Addf(Path(path, "cookie", "domain"), "bad cookie domain %q", ck.Domain)
		}
		seen := map[string]string{}
		for _, s := range b.Servers {
			v := s.Cookie
			if v == "" {
				v = s.Name
			}
			if o, dup := seen[v]; dup {
				p.Addf(Path(path, "servers"), "servers %q and %q have the same cookie value %q", o, s.Name, v)
			}
			seen[v] = s.Name
		}
	}
	if s := b.SSL; s != nil {
		if s.Verify != "none" && s.Verify != "required" {
			p.Addf(Path(path, "ssl", "verify"), "verify %q: want none or required", s.Verify)
		}
	}
}
