package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Modes of a frontend or backend, as HAProxy's `mode`.
const (
	ModeTCP  = "tcp"
	ModeHTTP = "http"
	// ModeDR is direct routing (frontends only; see dr.go): the node
	// forwards the VIP's packets to a server by its MAC address.
	ModeDR = "dr"
)

// httpOnlyAlgorithms (HAProxy `balance`) need request data, so mode http.
var httpOnlyAlgorithms = map[string]bool{"uri": true, "url_param": true, "hdr": true}

// Timeouts are HAProxy's `timeout` family. Zero means "inherit".
type Timeouts struct {
	Connect       Duration `yaml:"connect,omitempty" json:"connect,omitempty"`
	Client        Duration `yaml:"client,omitempty" json:"client,omitempty"`
	Server        Duration `yaml:"server,omitempty" json:"server,omitempty"`
	Tunnel        Duration `yaml:"tunnel,omitempty" json:"tunnel,omitempty"`
	Queue         Duration `yaml:"queue,omitempty" json:"queue,omitempty"`
	Check         Duration `yaml:"check,omitempty" json:"check,omitempty"`
	HTTPRequest   Duration `yaml:"http_request,omitempty" json:"http_request,omitempty"`
	HTTPKeepAlive Duration `yaml:"http_keep_alive,omitempty" json:"http_keep_alive,omitempty"`
	ClientFin     Duration `yaml:"client_fin,omitempty" json:"client_fin,omitempty"`
	ServerFin     Duration `yaml:"server_fin,omitempty" json:"server_fin,omitempty"`
}

// inherit fills zero fields from d.
func (t *Timeouts) inherit(d Timeouts) {
	set := func(v *Duration, dv Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	set(&t.Connect, d.Connect)
	set(&t.Client, d.Client)
	set(&t.Server, d.Server)
	set(&t.Tunnel, d.Tunnel)
	set(&t.Queue, d.Queue)
	set(&t.Check, d.Check)
	set(&t.HTTPRequest, d.HTTPRequest)
	set(&t.HTTPKeepAlive, d.HTTPKeepAlive)
	set(&t.ClientFin, d.ClientFin)
	set(&t.ServerFin, d.ServerFin)
}

// Balance selects the algorithm and its options.
type Balance struct {
	// Algorithm: roundrobin (default), static-rr, leastconn, first, source,
	// random, uri, url_param, hdr.
	Algorithm string `yaml:"algorithm,omitempty" json:"algorithm,omitempty"`
	// HashType: map-based (default) or consistent, for the hashing algorithms.
	HashType string `yaml:"hash_type,omitempty" json:"hash_type,omitempty"`
	// Param is the URL parameter (url_param) or header name (hdr).
	Param string `yaml:"param,omitempty" json:"param,omitempty"`
	// Draws is the number of candidates random compares (power of two choices).
	Draws int `yaml:"draws,omitempty" json:"draws,omitempty"`
}

// Check configures health checking of a backend's servers.
type Check struct {
	// Kind: tcp (connect, optionally send/expect), http, tls, lua, exec.
	Kind      string   `yaml:"kind,omitempty" json:"kind,omitempty"`
	Inter     Duration `yaml:"inter,omitempty" json:"inter,omitempty"`
	FastInter Duration `yaml:"fastinter,omitempty" json:"fastinter,omitempty"`
	DownInter Duration `yaml:"downinter,omitempty" json:"downinter,omitempty"`
	Rise      int      `yaml:"rise,omitempty" json:"rise,omitempty"`
	Fall      int      `yaml:"fall,omitempty" json:"fall,omitempty"`
	// Timeout is HAProxy's `timeout check`: with it, the connect is bounded by
	// ConnectTimeout and the rest of the check by Timeout; without it (0),
	// the whole check, connect included, is bounded by Inter.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// ConnectTimeout is derived, not a key: min(timeouts.connect, inter),
	// the connect bound of a check when Timeout is set.
	ConnectTimeout Duration `yaml:"-" json:"connect_timeout,omitempty"`
	// Port overrides the server's port for checks (HAProxy `port`).
	Port int `yaml:"port,omitempty" json:"port,omitempty"`

	// tcp send/expect (HAProxy tcp-check send / expect string|rstring).
	Send        string            `yaml:"send,omitempty" json:"send,omitempty"`
	Expect      string            `yaml:"expect,omitempty" json:"expect,omitempty"`
	ExpectRegex string            `yaml:"expect_regex,omitempty" json:"expect_regex,omitempty"`
	HTTP        *HTTPCheck        `yaml:"http,omitempty" json:"http,omitempty"`
	SSL         bool              `yaml:"ssl,omitempty" json:"ssl,omitempty"`       // check-ssl
	Verify      string            `yaml:"verify,omitempty" json:"verify,omitempty"` // none|required
	SNI         string            `yaml:"sni,omitempty" json:"sni,omitempty"`
	CA          string            `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	Script      string            `yaml:"script,omitempty" json:"script,omitempty"`   // lua: plugin.function
	Command     []string          `yaml:"command,omitempty" json:"command,omitempty"` // exec
	Params      map[string]string `yaml:"params,omitempty" json:"params,omitempty"`   // passed to lua/exec checks

	// SendProxy starts each check's connection with a PROXY protocol
	// header: v1 ("PROXY UNKNOWN") or v2 (LOCAL), as HAProxy's checks do.
	// Default: the backend's send_proxy when the check goes to the
	// traffic port (no port of its own), as HAProxy; none turns it off.
	SendProxy string `yaml:"send_proxy,omitempty" json:"send_proxy,omitempty"`

	// Observe adds passive health from live traffic (HAProxy `observe`):
	// layer4 counts failed connections to the server, layer7 (http mode)
	// also 5xx answers but 501 and 505 and broken responses. ErrorLimit
	// consecutive errors (default 10) trigger OnError: fastinter (check
	// again soon), fail-check (count one failed check; the default),
	// sudden-death (a failed check that leaves the server one more from
	// DOWN, or takes it DOWN if it was that close) or mark-down.
	Observe    string `yaml:"observe,omitempty" json:"observe,omitempty"`
	ErrorLimit int    `yaml:"error_limit,omitempty" json:"error_limit,omitempty"`
	OnError    string `yaml:"on_error,omitempty" json:"on_error,omitempty"`
}

// Default passive-health settings (HAProxy's error-limit and on-error).
const (
	DefaultErrorLimit = 10
	DefaultOnError    = "fail-check"
)

// HTTPCheck is HAProxy's `option httpchk` + `http-check expect`.
type HTTPCheck struct {
	Method       string            `yaml:"method,omitempty" json:"method,omitempty"`
	Path         string            `yaml:"path,omitempty" json:"path,omitempty"`
	Host         string            `yaml:"host,omitempty" json:"host,omitempty"`
	Headers      map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	ExpectStatus []int             `yaml:"expect_status,omitempty" json:"expect_status,omitempty"`
	ExpectBody   string            `yaml:"expect_body_regex,omitempty" json:"expect_body_regex,omitempty"`
}

// Defaults is HAProxy's `defaults` section: values frontends and backends
// inherit when they do not set their own.
type Defaults struct {
	Mode       string      `yaml:"mode,omitempty" json:"mode,omitempty"`
	Balance    Balance     `yaml:"balance,omitempty" json:"balance,omitempty"`
	MaxConn    int         `yaml:"maxconn,omitempty" json:"maxconn,omitempty"`
	Retries    *int        `yaml:"retries,omitempty" json:"retries,omitempty"`
	Redispatch *bool       `yaml:"redispatch,omitempty" json:"redispatch,omitempty"`
	Timeouts   Timeouts    `yaml:"timeouts,omitempty" json:"timeouts,omitempty"`
	Check      Check       `yaml:"check,omitempty" json:"check,omitempty"`
	HTTP       HTTPOptions `yaml:"http,omitempty" json:"http,omitempty"`
	// Log turns on the tcp-mode access log of frontends (option tcplog).
	Log *bool `yaml:"log,omitempty" json:"log,omitempty"`
	// TCPKeepAlive turns on TCP keepalive toward clients and servers
	// (HAProxy option tcpka); frontends and backends may say otherwise.
	TCPKeepAlive *bool `yaml:"tcp_keepalive,omitempty" json:"tcp_keepalive,omitempty"`
}

// Frontend accepts client connections and hands them to a backend.
type Frontend struct {
	Name string `yaml:"name" json:"name"`
	// Datacenter, Nodes: the frontend is served only on these nodes, or
	// on the gateway nodes of this datacenter (see placement.go).
	Datacenter string     `yaml:"datacenter,omitempty" json:"datacenter,omitempty"`
	Nodes      StringList `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	// Bind lists listen addresses, "host:port", "[v6]:port" or ":port".
	Bind           StringList `yaml:"bind" json:"bind"`
	Mode           string     `yaml:"mode,omitempty" json:"mode,omitempty"`
	MaxConn        int        `yaml:"maxconn,omitempty" json:"maxconn,omitempty"`
	DefaultBackend string     `yaml:"default_backend,omitempty" json:"default_backend,omitempty"`
	// Rules pick a backend by condition, first match wins (HAProxy use_backend).
	Rules    []Rule   `yaml:"rules,omitempty" json:"rules,omitempty"`
	Timeouts Timeouts `yaml:"timeouts,omitempty" json:"timeouts,omitempty"`
	Disabled bool     `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// AcceptProxy expects a PROXY protocol v1/v2 header from clients.
	AcceptProxy bool `yaml:"accept_proxy,omitempty" json:"accept_proxy,omitempty"`
	// InspectDelay bounds how long to wait for the first client bytes when a
	// rule or persistence needs them (tcp-request inspect-delay).
	InspectDelay Duration `yaml:"inspect_delay,omitempty" json:"inspect_delay,omitempty"`
	// Route names a Lua routing hook ("plugin.function" or "function").
	Route string `yaml:"route,omitempty" json:"route,omitempty"`
	// Log writes one access-log line per tcp connection (HAProxy option
	// tcplog); http mode has http.log, one line per request.
	Log *bool `yaml:"log,omitempty" json:"log,omitempty"`
	// LogTargets, when set, receive this frontend's access lines instead
	// of the node's log.access (HAProxy's per-proxy `log` lines; without
	// them, `log global`). Each node sends from itself: 127.0.0.1 or
	// /dev/log is each node's own.
	LogTargets []LogTarget `yaml:"log_targets,omitempty" json:"log_targets,omitempty"`
	// TCPKeepAlive sends TCP keepalive probes on client connections, with
	// the kernel's timings (HAProxy option clitcpka): idle long-lived
	// sessions (IMAP IDLE, RPC) survive firewalls that forget silent flows.
	TCPKeepAlive *bool `yaml:"tcp_keepalive,omitempty" json:"tcp_keepalive,omitempty"`
	// Protocol is what a mode dr frontend forwards: tcp (default) or udp
	// (keepalived's virtual_server `protocol`).
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"`

	// HTTP mode options (headers, TLS, rules) live in HTTPFrontend.
	HTTPFrontend `yaml:",inline"`
}

// Rule is one `use_backend NAME if COND`. All set conditions must hold.
type Rule struct {
	Backend string `yaml:"backend" json:"backend"`
	// Src matches the client address against networks (CIDR or address).
	Src StringList `yaml:"src,omitempty" json:"src,omitempty"`
	// DstPort matches the local port the client connected to.
	DstPort []int `yaml:"dst_port,omitempty" json:"dst_port,omitempty"`
	// SNI matches the TLS server name (needs inspect_delay in tcp mode);
	// "*.example.com" matches one label.
	SNI StringList `yaml:"sni,omitempty" json:"sni,omitempty"`

	HTTPRule `yaml:",inline"`

	srcNets []netip.Prefix
}

// SrcNets is Src parsed.
func (r *Rule) SrcNets() []netip.Prefix { return r.srcNets }

// Backend is a pool of servers and how to use them.
type Backend struct {
	Name string `yaml:"name" json:"name"`
	// Datacenter, Nodes: the backend exists only on these nodes, or on
	// the gateway nodes of this datacenter (see placement.go).
	Datacenter string     `yaml:"datacenter,omitempty" json:"datacenter,omitempty"`
	Nodes      StringList `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	Mode       string     `yaml:"mode,omitempty" json:"mode,omitempty"`
	Balance    Balance    `yaml:"balance,omitempty" json:"balance,omitempty"`
	MaxConn    int        `yaml:"maxconn,omitempty" json:"maxconn,omitempty"` // backend-wide concurrent sessions
	// MaxQueue bounds how many connections may wait for a free slot (0 = no
	// bound beyond the frontends' maxconn). Beyond it, new ones are refused.
	MaxQueue   int      `yaml:"max_queue,omitempty" json:"max_queue,omitempty"`
	Retries    *int     `yaml:"retries,omitempty" json:"retries,omitempty"`
	Redispatch *bool    `yaml:"redispatch,omitempty" json:"redispatch,omitempty"`
	Timeouts   Timeouts `yaml:"timeouts,omitempty" json:"timeouts,omitempty"`
	// TCPKeepAlive sends TCP keepalive probes on server connections
	// (HAProxy option srvtcpka).
	TCPKeepAlive *bool `yaml:"tcp_keepalive,omitempty" json:"tcp_keepalive,omitempty"`
	// Check enables health checks for every server (unless a server says
	// check: false). Unset means no checks: servers are assumed up.
	Check *Check `yaml:"check,omitempty" json:"check,omitempty"`
	// AllBackups uses every backup server at once, not just the first.
	AllBackups bool `yaml:"allbackups,omitempty" json:"allbackups,omitempty"`
	// Stick names a persistence rule (stick.go).
	Stick *StickRule `yaml:"stick,omitempty" json:"stick,omitempty"`
	// SendProxy sends a PROXY protocol header to servers: "v1" or "v2".
	SendProxy string `yaml:"send_proxy,omitempty" json:"send_proxy,omitempty"`
	// Source is the source address of connections to the servers
	// (HAProxy `source`; source.go); a server may have its own.
	Source  *Source  `yaml:"source,omitempty" json:"source,omitempty"`
	Servers []Server `yaml:"servers" json:"servers"`

	HTTPBackend `yaml:",inline"`
}

// Server is one real server of a backend.
type Server struct {
	Name    string `yaml:"name" json:"name"`
	Address string `yaml:"address" json:"address"` // host:port
	// Weight 0..256 (HAProxy); 0 takes the server out of balancing. Default 1.
	Weight   *int `yaml:"weight,omitempty" json:"weight,omitempty"`
	MaxConn  int  `yaml:"maxconn,omitempty" json:"maxconn,omitempty"`
	Backup   bool `yaml:"backup,omitempty" json:"backup,omitempty"`
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Check false turns off the backend's checks for this server.
	Check *bool `yaml:"check,omitempty" json:"check,omitempty"`
	// InitState is HAProxy's init-state: "up" (in service at once; the
	// first failed check takes it out), "fully-up" (in service until `fall`
	// failed checks), "down" (out until the first good check) or
	// "fully-down" (out until `rise` good checks). Unset, see StartState.
	InitState string `yaml:"init_state,omitempty" json:"init_state,omitempty"`
	// SlowStart ramps the weight up over this time after the server comes up.
	SlowStart Duration `yaml:"slowstart,omitempty" json:"slowstart,omitempty"`
	// OnMarkedDown: "" or "shutdown-sessions" (close its sessions when it goes down).
	OnMarkedDown string `yaml:"on_marked_down,omitempty" json:"on_marked_down,omitempty"`
	// Datacenter of the server; local-datacenter servers are preferred.
	Datacenter string `yaml:"datacenter,omitempty" json:"datacenter,omitempty"`
	// LocalOnly turns the datacenter from a preference into a limit: only
	// the nodes of that datacenter send traffic to the server (each
	// datacenter with its own servers, as with one haproxy.cfg per site).
	LocalOnly bool `yaml:"local_only,omitempty" json:"local_only,omitempty"`
	// Nodes: only these nodes send traffic to the server (each node of a
	// pair with its own servers).
	Nodes StringList `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	// Source replaces the backend's source for this server (HAProxy's
	// server `source`).
	Source *Source `yaml:"source,omitempty" json:"source,omitempty"`

	HTTPServer `yaml:",inline"`
}

// EffectiveWeight returns the configured weight (default 1).
func (s *Server) EffectiveWeight() int {
	if s.Weight == nil {
		return 1
	}
	return *s.Weight
}

// Built-in defaults, HAProxy's where it has them.
const (
	DefaultInter       = 2 * time.Second
	DefaultRise        = 2
	DefaultFall        = 3
	DefaultRetries     = 3
	DefaultConnect     = 5 * time.Second
	DefaultClient      = 30 * time.Second
	DefaultServer      = 30 * time.Second
	DefaultFEMaxConn   = 2000 // HAProxy's default maxconn per frontend without global tuning.
	MaxWeight          = 256
	DefaultRandomDraws = 2
)

func (c *Cluster) applyProxyDefaults() {
	c.applyDRDefaults()
	d := &c.Defaults
	if d.Mode == "" {
		d.Mode = ModeTCP
	}
	if d.Balance.Algorithm == "" {
		d.Balance.Algorithm = "roundrobin"
	}
	if d.MaxConn == 0 {
		d.MaxConn = DefaultFEMaxConn
	}
	if d.Retries == nil {
		r := DefaultRetries
		d.Retries = &r
	}
	if d.Redispatch == nil {
		f := false
		d.Redispatch = &f
	}
	d.Timeouts.inherit(Timeouts{
		Connect: Duration(DefaultConnect), Client: Duration(DefaultClient), Server: Duration(DefaultServer),
	})
	// HAProxy: timeout queue defaults to timeout connect. An unset tunnel
	// timeout leaves tunnels to the client and server timeouts.
	if d.Timeouts.Queue == 0 {
		d.Timeouts.Queue = d.Timeouts.Connect
	}
	if d.Timeouts.ClientFin == 0 {
		d.Timeouts.ClientFin = d.Timeouts.Client
	}
	if d.Timeouts.ServerFin == 0 {
		d.Timeouts.ServerFin = d.Timeouts.Server
	}
	if d.Check.Inter == 0 {
		d.Check.Inter = Duration(DefaultInter)
	}
	if d.Check.Rise == 0 {
		d.Check.Rise = DefaultRise
	}
	if d.Check.Fall == 0 {
		d.Check.Fall = DefaultFall
	}
	c.applyHTTPDefaults()

	for i := range c.Frontends {
		f := &c.Frontends[i]
		if f.Mode == "" {
			f.Mode = d.Mode
		}
		if f.MaxConn == 0 {
			f.MaxConn = d.MaxConn
		}
		f.Timeouts.inherit(d.Timeouts)
		if f.TCPKeepAlive == nil {
			f.TCPKeepAlive = d.TCPKeepAlive
		}
		if f.Log == nil {
			f.Log = d.Log
		}
		c.applyHTTPFrontendDefaults(f)
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		if b.Mode == "" {
			b.Mode = d.Mode
		}
		// Key by key, as HAProxy's balance and hash-type directives: a
		// backend that only sets hash_type keeps the default algorithm.
		if b.Balance.Algorithm == "" {
			b.Balance.Algorithm = d.Balance.Algorithm
			if b.Balance.Param == "" {
				b.Balance.Param = d.Balance.Param
			}
		}
		if b.Balance.HashType == "" {
			b.Balance.HashType = d.Balance.HashType
		}
		if b.Balance.HashType == "" {
			b.Balance.HashType = "map-based"
		}
		if b.Balance.Draws == 0 {
			b.Balance.Draws = d.Balance.Draws
		}
		if b.Balance.Draws == 0 {
			b.Balance.Draws = DefaultRandomDraws
		}
		if b.Retries == nil {
			b.Retries = d.Retries
		}
		if b.Redispatch == nil {
			b.Redispatch = d.Redispatch
		}
		if b.TCPKeepAlive == nil {
			b.TCPKeepAlive = d.TCPKeepAlive
		}
		b.Timeouts.inherit(d.Timeouts)
		if b.Check != nil {
			ch := b.Check
			ch.inherit(&d.Check)
			if ch.Kind == "" {
				ch.Kind = "tcp"
				if ch.HTTP != nil {
					ch.Kind = "http"
				}
			}
			// HAProxy: fastinter and downinter default to inter.
			if ch.FastInter == 0 {
				ch.FastInter = ch.Inter
			}
			if ch.DownInter == 0 {
				ch.DownInter = ch.Inter
			}
			// HAProxy: with `timeout check`, a check's connect is bounded by
			// min(timeout connect, inter) and the rest by timeout check;
			// without it, the whole check (connect + read) is bounded by inter.
			if ch.Timeout == 0 {
				ch.Timeout = b.Timeouts.Check
			}
			if ch.Timeout == 0 {
				ch.Timeout = d.Check.Timeout
			}
			ch.ConnectTimeout = ch.Inter
			if c := b.Timeouts.Connect; c > 0 && c < ch.Inter {
				ch.ConnectTimeout = c
			}
			if ch.HTTP != nil {
				if ch.HTTP.Method == "" {
					ch.HTTP.Method = "GET"
				}
				if ch.HTTP.Path == "" {
					ch.HTTP.Path = "/"
				}
			}
			if ch.Verify == "" {
				ch.Verify = "required"
			}
			if ch.SendProxy == "" && ch.Port == 0 {
				ch.SendProxy = b.SendProxy
			}
			if ch.Observe != "" {
				orDefault(&ch.ErrorLimit, DefaultErrorLimit)
				orDefault(&ch.OnError, DefaultOnError)
			}
		}
		c.applyHTTPBackendDefaults(b)
	}
}

// StartState is the init_state a checked server starts in: the one
// configured, else "up" for a server present when the process starts (as
// HAProxy), and "down" for one added to a running backend by an apply or a
// reload: a server nobody has checked yet, maybe not listening yet, would
// otherwise fail the connections balanced to it until its first check
// (HAProxy puts a server added at runtime in maintenance until an operator
// enables it).
func (s *Server) StartState(added bool) string {
	switch {
	case s.InitState != "":
		return s.InitState
	case added:
		return "down"
	}
	return "up"
}

// ServerCheck is the check that runs for server s of b: b's, unless s
// turns checks off (check: false); nil when s is not checked.
func (b *Backend) ServerCheck(s *Server) *Check {
	if b.Check != nil && (s.Check == nil || *s.Check) {
		return b.Check
	}
	return nil
}

// hasKindKeys reports whether the block sets keys of a particular kind of
// check (the http request, tcp send/expect, the lua script, the command).
func (ch *Check) hasKindKeys() bool {
	return ch.HTTP != nil || ch.Send != "" || ch.Expect != "" || ch.ExpectRegex != "" || ch.Script != "" ||
		len(ch.Command) > 0 || len(ch.Params) > 0
}

// inherit completes a backend's check block from defaults.check, as a
// backend inherits HAProxy's defaults section (option httpchk, and
// default-server's inter, rise, fall, port, check-ssl, verify, check-sni,
// ca-file): the timing and transport keys one by one; the kind and its own
// keys (http, send, expect, expect_regex, script, command, params) as a
// whole, when the backend's block names no other kind and sets none of
// those keys itself.
func (ch *Check) inherit(d *Check) {
	orDefault(&ch.Inter, d.Inter)
	orDefault(&ch.FastInter, d.FastInter)
	orDefault(&ch.DownInter, d.DownInter)
	orDefault(&ch.Rise, d.Rise)
	orDefault(&ch.Fall, d.Fall)
	orDefault(&ch.Port, d.Port)
	orDefault(&ch.SSL, d.SSL)
	orDefault(&ch.Verify, d.Verify)
	orDefault(&ch.SNI, d.SNI)
	orDefault(&ch.CA, d.CA)
	orDefault(&ch.SendProxy, d.SendProxy)
	orDefault(&ch.Observe, d.Observe)
	orDefault(&ch.ErrorLimit, d.ErrorLimit)
	orDefault(&ch.OnError, d.OnError)
	dKind := d.Kind
	if dKind == "" && d.HTTP != nil {
		dKind = "http"
	}
	if ch.hasKindKeys() || dKind == "" || (ch.Kind != "" && ch.Kind != dKind) {
		return
	}
	ch.Kind = dKind
	ch.Send, ch.Expect, ch.ExpectRegex, ch.Script = d.Send, d.Expect, d.ExpectRegex, d.Script
	if d.HTTP != nil {
		h := *d.HTTP
		h.Headers = maps.Clone(d.HTTP.Headers)
		h.ExpectStatus = slices.Clone(d.HTTP.ExpectStatus)
		ch.HTTP = &h
	}
	ch.Command = slices.Clone(d.Command)
	ch.Params = maps.Clone(d.Params)
}

// orDefault sets *v to d when *v is the zero value.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ValidName reports whether s is usable as a frontend/backend/server name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

func (c *Cluster) validateProxy(p *Problems) {
	checkMode := func(path, m string) {
		if m != ModeTCP && m != ModeHTTP {
			p.Addf(path, "mode %q: want tcp or http", m)
		}
	}
	checkMode("defaults.mode", c.Defaults.Mode)
	if c.Defaults.MaxConn < 0 {
		p.Addf("defaults.maxconn", "maxconn %d must not be negative", c.Defaults.MaxConn)
	}
	if c.Defaults.Retries != nil && *c.Defaults.Retries < 0 {
		p.Addf("defaults.retries", "retries %d must not be negative", *c.Defaults.Retries)
	}
	// defaults.check is checked where it is written (backends that inherit
	// a bad value report it too, at their own block).
	dch := c.Defaults.Check
	if dch.Kind == "" {
		dch.Kind = "tcp"
		if dch.HTTP != nil {
			dch.Kind = "http"
		}
	}
	if dch.Verify == "" {
		dch.Verify = "required"
	}
	if dch.HTTP != nil {
		h := *dch.HTTP
		if h.Path == "" {
			h.Path = "/"
		}
		dch.HTTP = &h
	}
	c.validateCheck(p, "defaults.check", &dch)
	backends := map[string]int{}
	for i := range c.Backends {
		b := &c.Backends[i]
		path := Path("backends", i)
		switch {
		case b.Name == "":
			p.Addf(path, "backend has no name")
		case !ValidName(b.Name):
			p.Addf(Path(path, "name"), "backend name %q: use letters, digits, '_', '.', '-'", b.Name)
		default:
			if j, dup := backends[b.Name]; dup {
				p.Addf(Path(path, "name"), "duplicate backend name %q (first defined at backends.%d)", b.Name, j)
			} else {
				backends[b.Name] = i
			}
		}
		c.validateBackend(p, path, b)
	}
	frontends := map[string]int{}
	binds := map[string][]int{}
	for i := range c.Frontends {
		f := &c.Frontends[i]
		path := Path("frontends", i)
		switch {
		case f.Name == "":
			p.Addf(path, "frontend has no name")
		case !ValidName(f.Name):
			p.Addf(Path(path, "name"), "frontend name %q: use letters, digits, '_', '.', '-'", f.Name)
		default:
			if j, dup := frontends[f.Name]; dup {
				p.Addf(Path(path, "name"), "duplicate frontend name %q (first defined at frontends.%d)", f.Name, j)
			} else {
				frontends[f.Name] = i
			}
		}
		if m := f.Mode; m != ModeTCP && m != ModeHTTP && m != ModeDR {
			p.Addf(Path(path, "mode"), "mode %q: want tcp, http or dr", m)
		}
		if len(f.Bind) == 0 {
			p.Addf(path, "frontend %q has no bind address", f.Name)
		}
		for j, a := range f.Bind {
			bp := Path(path, "bind", j)
			if err := checkHostPort(a, true); err != nil {
				p.Addf(bp, "bind %q: %v", a, err)
				continue
			}
			// The same address on frontends of different nodes is two
			// listeners (each node its own).
			for _, oi := range binds[a] {
				o := &c.Frontends[oi]
				if overlap(f.Datacenter, f.Nodes, o.Datacenter, o.Nodes) {
					p.Addf(bp, "bind %q is already used by frontend %q", a, o.Name)
					break
				}
			}
			binds[a] = append(binds[a], i)
		}
		if f.MaxConn < 0 {
			p.Addf(Path(path, "maxconn"), "maxconn %d must not be negative", f.MaxConn)
		}
		c.misplacedTimeouts(p, path, &f.Timeouts, serverSideTimeouts, "a frontend's timeouts are the client side's (client, client_fin, http_request, http_keep_alive): set it on the backend or in defaults")
		useBackend := func(bpath, name string) {
			if name == "" {
				return
			}
			bi, ok := backends[name]
			if !ok {
				p.Addf(bpath, "backend %q is not defined%s", name, suggestName(name, backends))
				return
			}
			if f.Mode == ModeHTTP && c.Backends[bi].Mode == ModeTCP {
				p.Addf(bpath, "http frontend %q cannot use tcp backend %q", f.Name, name)
			}
		}
		useBackend(Path(path, "default_backend"), f.DefaultBackend)
		if f.DefaultBackend == "" && len(f.Rules) == 0 && f.Route == "" {
			p.Addf(path, "frontend %q has neither default_backend nor rules", f.Name)
		}
		for j := range f.Rules {
			r := &f.Rules[j]
			rp := Path(path, "rules", j)
			if r.Backend == "" && !r.hasHTTPAction() {
				p.Addf(rp, "rule has no backend")
			}
			useBackend(Path(rp, "backend"), r.Backend)
			r.srcNets = r.srcNets[:0]
			for k, s := range r.Src {
				pfx, err := ParsePrefix(s)
				if err != nil {
					p.Addf(Path(rp, "src", k), "%v", err)
					continue
				}
				r.srcNets = append(r.srcNets, pfx)
			}
			for k, port := range r.DstPort {
				if port < 1 || port > 65535 {
					p.Addf(Path(rp, "dst_port", k), "port %d out of range 1-65535", port)
				}
			}
			if len(r.SNI) > 0 && f.Mode == ModeTCP && f.InspectDelay == 0 {
				p.Addf(Path(rp, "sni"), "matching on sni in tcp mode needs inspect_delay on the frontend")
			}
			c.validateHTTPRule(p, rp, f, r)
		}
		c.validateHTTPFrontend(p, path, f)
	}
}

func (c *Cluster) validateBackend(p *Problems, path string, b *Backend) {
	if b.Mode != ModeTCP && b.Mode != ModeHTTP {
		p.Addf(Path(path, "mode"), "mode %q: want tcp or http", b.Mode)
	}
	alg := b.Balance.Algorithm
	if k := p.known; k != nil && !k.has(k.Algorithms, alg) {
		p.Addf(Path(path, "balance", "algorithm"), "unknown balance algorithm %q (want %s)", alg, orList(k.Algorithms))
	} else if httpOnlyAlgorithms[alg] && b.Mode != ModeHTTP {
		p.Addf(Path(path, "balance", "algorithm"), "balance %s needs mode http", alg)
	}
	if (alg == "url_param" || alg == "hdr") && b.Balance.Param == "" {
		p.Addf(Path(path, "balance"), "balance %s needs param (the %s name)", alg, map[string]string{"url_param": "parameter", "hdr": "header"}[alg])
	}
	if ht := b.Balance.HashType; ht != "map-based" && ht != "consistent" {
		p.Addf(Path(path, "balance", "hash_type"), "hash_type %q: want map-based or consistent", ht)
	}
	if b.Balance.Draws < 1 || b.Balance.Draws > 100 {
		p.Addf(Path(path, "balance", "draws"), "draws %d out of range 1-100", b.Balance.Draws)
	}
	if b.MaxConn < 0 {
		p.Addf(Path(path, "maxconn"), "maxconn %d must not be negative", b.MaxConn)
	}
	c.misplacedTimeouts(p, path, &b.Timeouts, clientSideTimeouts, "a backend's timeouts are the server side's (connect, server, server_fin, tunnel, queue, check, http_keep_alive): set it on the frontend or in defaults")
	if b.MaxQueue < 0 {
		p.Addf(Path(path, "max_queue"), "max_queue %d must not be negative", b.MaxQueue)
	}
	if b.Retries != nil && *b.Retries < 0 {
		p.Addf(Path(path, "retries"), "retries %d must not be negative", *b.Retries)
	}
	if sp := b.SendProxy; sp != "" && sp != "v1" && sp != "v2" {
		p.Addf(Path(path, "send_proxy"), "send_proxy %q: want v1 or v2", sp)
	}
	if ch := b.Check; ch != nil {
		c.validateCheck(p, Path(path, "check"), ch)
		if ch.Observe == "layer7" && b.Mode != ModeHTTP {
			p.Addf(Path(path, "check", "observe"), "observe layer7 needs mode http (a tcp backend sees no answers): use layer4")
		}
	}
	if len(b.Servers) == 0 {
		p.Addf(path, "backend %q has no servers", b.Name)
	}
	names := map[string]int{}
	for i := range b.Servers {
		s := &b.Servers[i]
		sp := Path(path, "servers", i)
		switch {
		case s.Name == "":
			p.Addf(sp, "server has no name")
		case !ValidName(s.Name):
			p.Addf(Path(sp, "name"), "server name %q: use letters, digits, '_', '.', '-'", s.Name)
		default:
			if j, dup := names[s.Name]; dup {
				p.Addf(Path(sp, "name"), "duplicate server name %q in backend %q (first at servers.%d)", s.Name, b.Name, j)
			} else {
				names[s.Name] = i
			}
		}
		if s.Address == "" {
			p.Addf(sp, "server %q has no address", s.Name)
		} else if err := checkHostPort(s.Address, false); err != nil {
			p.Addf(Path(sp, "address"), "address %q: %v", s.Address, err)
		}
		if w := s.EffectiveWeight(); w < 0 || w > MaxWeight {
			p.Addf(Path(sp, "weight"), "weight %d out of range 0-%d", w, MaxWeight)
		}
		if s.MaxConn < 0 {
			p.Addf(Path(sp, "maxconn"), "maxconn %d must not be negative", s.MaxConn)
		}
		switch s.InitState {
		case "", "up", "down", "fully-up", "fully-down":
		default:
			p.Addf(Path(sp, "init_state"), "init_state %q: want up, down, fully-up or fully-down", s.InitState)
		}
		if m := s.OnMarkedDown; m != "" && m != "shutdown-sessions" {
			p.Addf(Path(sp, "on_marked_down"), "on_marked_down %q: want shutdown-sessions", m)
		}
		if s.Source != nil {
			validateSource(p, Path(sp, "source"), s.Source, []Server{*s})
		}
		c.validateHTTPServer(p, sp, b, s)
	}
	if b.Source != nil {
		validateSource(p, Path(path, "source"), b.Source, b.Servers)
	}
	c.validateHTTPBackend(p, path, b)
}

// The timeouts each side uses (HAProxy's sections: `timeout server` in a
// frontend is ignored with a warning there; here it is an error rather than
// a value silently without effect). A value equal to the defaults' is
// accepted: it changes nothing, and a resolved document (marshalled with
// every inherited value, as raft replicates it) must load again.
var (
	// A backend's http_keep_alive does count: it bounds its idle pooled
	// connections (docs/http.md).
	clientSideTimeouts = []string{"client", "client_fin", "http_request"}
	serverSideTimeouts = []string{"connect", "server", "server_fin", "tunnel", "queue", "check"}
)

func (t *Timeouts) byKey(k string) Duration {
	return map[string]Duration{
		"connect": t.Connect, "client": t.Client, "server": t.Server, "tunnel": t.Tunnel, "queue": t.Queue,
		"check": t.Check, "http_request": t.HTTPRequest, "http_keep_alive": t.HTTPKeepAlive,
		"client_fin": t.ClientFin, "server_fin": t.ServerFin,
	}[k]
}

func (c *Cluster) misplacedTimeouts(p *Problems, path string, t *Timeouts, keys []string, why string) {
	for _, k := range keys {
		if kp := Path(path, "timeouts", k); p.written(kp) && t.byKey(k) != c.Defaults.Timeouts.byKey(k) {
			p.Addf(kp, "timeout %s has no effect here: %s", k, why)
		}
	}
}

func (c *Cluster) validateCheck(p *Problems, path string, ch *Check) {
	if k := p.known; k != nil && !k.has(k.CheckKinds, ch.Kind) {
		p.Addf(Path(path, "kind"), "unknown check kind %q (want %s)", ch.Kind, orList(k.CheckKinds))
	}
	if ch.Rise < 1 {
		p.Addf(Path(path, "rise"), "rise %d must be at least 1", ch.Rise)
	}
	if ch.Fall < 1 {
		p.Addf(Path(path, "fall"), "fall %d must be at least 1", ch.Fall)
	}
	if ch.Inter < Duration(10*time.Millisecond) {
		p.Addf(Path(path, "inter"), "inter %s is below 10ms", ch.Inter.D())
	}
	if ch.Port < 0 || ch.Port > 65535 {
		p.Addf(Path(path, "port"), "port %d out of range 1-65535", ch.Port)
	}
	if ch.Verify != "none" && ch.Verify != "required" {
		p.Addf(Path(path, "verify"), "verify %q: want none or required", ch.Verify)
	}
	if ch.ExpectRegex != "" {
		if _, err := regexp.Compile(ch.ExpectRegex); err != nil {
			p.Addf(Path(path, "expect_regex"), "bad regular expression: %v", err)
		}
	}
	if (ch.Expect != "" || ch.ExpectRegex != "") && ch.Kind == "tcp" && ch.Send == "" {
		// Fine: some protocols speak first (SMTP banner). Nothing to check.
		_ = ch
	}
	switch ch.SendProxy {
	case "", "v1", "v2", "none":
	default:
		p.Addf(Path(path, "send_proxy"), "send_proxy %q: want v1, v2 or none", ch.SendProxy)
	}
	switch ch.Observe {
	case "", "layer4", "layer7":
	default:
		p.Addf(Path(path, "observe"), "observe %q: want layer4 or layer7", ch.Observe)
	}
	switch {
	case ch.Observe == "" && ch.ErrorLimit != 0:
		p.Addf(Path(path, "error_limit"), "error_limit needs observe: layer4 or layer7")
	case ch.Observe == "" && ch.OnError != "":
		p.Addf(Path(path, "on_error"), "on_error needs observe: layer4 or layer7")
	}
	if ch.ErrorLimit < 0 || ch.ErrorLimit > 100000 {
		p.Addf(Path(path, "error_limit"), "error_limit %d out of range 1-100000", ch.ErrorLimit)
	}
	switch ch.OnError {
	case "", "fastinter", "fail-check", "sudden-death", "mark-down":
	default:
		p.Addf(Path(path, "on_error"), "on_error %q: want fastinter, fail-check, sudden-death or mark-down", ch.OnError)
	}
	switch ch.Kind {
	case "http":
		if ch.HTTP == nil {
			ch.HTTP = &HTTPCheck{Method: "GET", Path: "/"}
		}
		for i, st := range ch.HTTP.ExpectStatus {
			if st < 100 || st > 599 {
				p.Addf(Path(path, "http", "expect_status", i), "status %d out of range 100-599", st)
			}
		}
		if ch.HTTP.ExpectBody != "" {
			if _, err := regexp.Compile(ch.HTTP.ExpectBody); err != nil {
				p.Addf(Path(path, "http", "expect_body_regex"), "bad regular expression: %v", err)
			}
		}
		if !strings.HasPrefix(ch.HTTP.Path, "/") {
			p.Addf(Path(path, "http", "path"), "path %q must start with /", ch.HTTP.Path)
		}
	case "lua":
		if ch.Script == "" {
			p.Addf(path, "a lua check needs script (the function to call)")
		}
	case "exec":
		if len(ch.Command) == 0 {
			p.Addf(path, "an exec check needs command")
		}
	}
}

// checkHostPort validates "host:port". Listeners may leave the host empty
// (":80" = all addresses); servers need a host. Hosts must be IP literals or
// DNS names; names are resolved at start.
func checkHostPort(a string, listen bool) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("want host:port (IPv6 as [addr]:port)")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !listen) {
		return fmt.Errorf("port %q out of range 1-65535", port)
	}
	if host == "" {
		if !listen {
			return fmt.Errorf("missing host")
		}
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if strings.ContainsAny(host, ":/ ") || !hostRE.MatchString(host) {
		return fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	return nil
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// ParsePrefix accepts "10.0.0.0/8", "2001:db8::/32" or a single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("network %q: want CIDR like 10.0.0.0/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network %q: want an address or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func suggestName(name string, known map[string]int) string {
	best, bestD := "", 3
	for k := range known {
		if d := editDistance(name, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// orList is "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
