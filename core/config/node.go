package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Node is the node-local bootstrap file: who this node is and where it
// listens. Everything else comes from the replicated cluster document.
type Node struct {
	Name       string `yaml:"name"`
	Datacenter string `yaml:"datacenter"`
	// Role: gateway (default) runs everything; witness runs only raft.
	Role    string `yaml:"role,omitempty"`
	DataDir string `yaml:"data_dir"`
	// Config is a cluster document to load at start. Without raft it is the
	// configuration (reloaded on SIGHUP); with raft it seeds a new cluster.
	Config string    `yaml:"config,omitempty"`
	Admin  NodeAdmin `yaml:"admin,omitempty"`
	Log    NodeLog   `yaml:"log,omitempty"`
	Raft   NodeRaft  `yaml:"raft,omitempty"`
	DNS    NodeDNS   `yaml:"dns,omitempty"`
	Peers  NodePeers `yaml:"peers,omitempty"`
	// HardStopAfter bounds a graceful stop (SIGTERM, SIGUSR1, POST
	// /api/v1/stop): connections still open after it are closed
	// (HAProxy's hard-stop-after). Default DefaultHardStopAfter.
	HardStopAfter Duration `yaml:"hard_stop_after,omitempty"`
	// Metrics is how /metrics names the proxy's metrics.
	Metrics NodeMetrics `yaml:"metrics,omitempty"`
	// DR configures the direct-routing datapath (mode dr frontends).
	DR NodeDR `yaml:"dr,omitempty"`
	// Proxy tunes how this node's proxy runs.
	Proxy NodeProxy `yaml:"proxy,omitempty"`
}

// NodeProxy tunes the proxy of one node.
type NodeProxy struct {
	// EventLoop (default true) serves the tcp sessions that need neither
	// inspection, hooks nor PROXY protocol on epoll event loops, one per
	// CPU, rather than a goroutine per connection; false keeps them all
	// on goroutines (HAProxy's `noepoll` spirit: a switch to rule the
	// loop out when chasing a problem).
	EventLoop *bool `yaml:"event_loop,omitempty"`
}

// Datapaths of mode dr (NodeDR.Datapath).
const (
	DatapathAuto     = "auto"
	DatapathXDP      = "xdp"
	DatapathAFPacket = "af_packet"
)

// NodeDR configures how this node forwards mode dr frontends.
type NodeDR struct {
	// Datapath: auto (default) loads the XDP fast path where the kernel
	// allows it and forwards with AF_PACKET alone where not; xdp is the
	// same but logs a failure to load it as an error; af_packet never
	// loads XDP.
	Datapath string `yaml:"datapath,omitempty"`
}

// NodeMetrics configures the node's Prometheus metrics.
type NodeMetrics struct {
	// Labels: vipgate (default: vipgate_* with frontend/backend/server
	// labels) or haproxy (haproxy_* with proxy/server labels, as HAProxy
	// 2.x's built-in exporter names them).
	Labels string `yaml:"labels,omitempty"`
}

// NodeAdmin is the admin API listener.
type NodeAdmin struct {
	// Listen defaults to 127.0.0.1:9900.
	Listen string `yaml:"listen,omitempty"`
	// Tokens are bearer tokens accepted by the API. Empty: no auth, and then
	// the API only listens on loopback.
	Tokens []string `yaml:"tokens,omitempty"`
	// ReadTokens may only read.
	ReadTokens []string  `yaml:"read_tokens,omitempty"`
	TLS        *TLSFiles `yaml:"tls,omitempty"`
}

// NodeLog configures logging.
type NodeLog struct {
	Level  string `yaml:"level,omitempty"`  // debug, info (default), warn, error
	Format string `yaml:"format,omitempty"` // text (default) or json
	// Targets are where the node's log goes (default: stderr alone).
	Targets []LogTarget `yaml:"targets,omitempty"`
	// Access, when set, is where the access-log lines go instead of
	// Targets (HAProxy's per-proxy `log` lines; list stderr to keep them
	// there too).
	Access []LogTarget `yaml:"access,omitempty"`
}

// TLSFiles names PEM files.
type TLSFiles struct {
	CA   string `yaml:"ca,omitempty"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Roles of a node.
const (
	RoleGateway = "gateway"
	RoleWitness = "witness"
)

// DefaultAdminListen is where the admin API listens unless told otherwise.
const DefaultAdminListen = "127.0.0.1:9900"

// LoadNodeFile reads a node bootstrap file.
func LoadNodeFile(name string) (*Node, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return ParseNode(name, data)
}

// LoadNodeFileAs reads a node bootstrap file as ParseNodeAs does.
func LoadNodeFileAs(name, role string) (*Node, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return ParseNodeAs(name, data, role)
}

// ParseNode decodes and validates a node bootstrap file.
func ParseNode(name string, data []byte) (*Node, error) {
	return ParseNodeAs(name, data, "")
}

// ParseNodeAs decodes a node bootstrap file, sets its role to role (unless
// role is empty) and only then validates it. The override must come before
// validation: `vipgate run --witness` with a file that says nothing about
// a datacenter is a valid witness, not an invalid gateway.
func ParseNodeAs(name string, data []byte, role string) (*Node, error) {
	n := &Node{}
	p, err := decodeStrict(name, data, n)
	if err != nil {
		return nil, err
	}
	if role != "" {
		n.Role = role
	}
	n.applyDefaults()
	n.validate(p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	return n, nil
}

// DefaultHardStopAfter is how long a graceful stop lets connections finish
// when the node file does not say: under the unit's TimeoutStopSec (30s)
// with the subsystems' own stop (up to 10s) after it.
const DefaultHardStopAfter = 10 * time.Second

func (n *Node) applyDefaults() {
	if n.Role == "" {
		n.Role = RoleGateway
	}
	if n.Admin.Listen == "" {
		n.Admin.Listen = DefaultAdminListen
	}
	if n.Log.Level == "" {
		n.Log.Level = "info"
	}
	if n.Log.Format == "" {
		n.Log.Format = "text"
	}
	for _, ts := range [][]LogTarget{n.Log.Targets, n.Log.Access} {
		for i := range ts {
			ts[i].applyDefaults(&n.Log)
		}
	}
	if n.DataDir == "" {
		n.DataDir = "/var/lib/vipgate"
	}
	if n.HardStopAfter == 0 {
		n.HardStopAfter = Duration(DefaultHardStopAfter)
	}
	n.applyRaftDefaults()
	n.applyDNSDefaults()
	n.applyPeersDefaults()
}

func (n *Node) validate(p *Problems) {
	if n.Name == "" {
		p.Addf("name", "node has no name")
	} else if !ValidName(n.Name) {
		p.Addf("name", "node name %q: use letters, digits, '_', '.', '-'", n.Name)
	}
	if n.Role != RoleGateway && n.Role != RoleWitness {
		p.Addf("role", "role %q: want gateway or witness", n.Role)
	}
	if n.Datacenter == "" && n.Role == RoleGateway {
		p.Addf("datacenter", "a gateway node needs a datacenter")
	}
	if n.Role == RoleWitness && !n.Raft.Enabled() {
		p.Addf("raft", "a witness runs only raft: set raft.listen, raft.join (or bootstrap) and raft.tls")
	}
	if err := checkHostPort(n.Admin.Listen, true); err != nil {
		p.Addf("admin.listen", "listen %q: %v", n.Admin.Listen, err)
	}
	switch n.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.Addf("log.level", "level %q: want debug, info, warn or error", n.Log.Level)
	}
	if n.HardStopAfter < 0 {
		p.Addf("hard_stop_after", "hard_stop_after %s is negative", n.HardStopAfter.D())
	}
	if l := n.Metrics.Labels; l != "" && l != "vipgate" && l != "haproxy" {
		p.Addf("metrics.labels", "labels %q: want vipgate or haproxy", l)
	}
	switch n.DR.Datapath {
	case "", DatapathAuto, DatapathXDP, DatapathAFPacket:
	default:
		p.Addf("dr.datapath", "datapath %q: want auto, xdp or af_packet", n.DR.Datapath)
	}
	if f := n.Log.Format; f != "text" && f != "json" {
		p.Addf("log.format", "format %q: want text or json", f)
	}
	validateLogTargets(p, "targets", n.Log.Targets)
	validateLogTargets(p, "access", n.Log.Access)
	if t := n.Admin.TLS; t != nil && (t.Cert == "" || t.Key == "") {
		p.Addf("admin.tls", "admin tls needs cert and key")
	}
	for key, toks := range [][]string{n.Admin.Tokens, n.Admin.ReadTokens} {
		for i, t := range toks {
			if len(t) < 16 {
				p.Addf(Path("admin", []string{"tokens", "read_tokens"}[key], i), "token is too short (%d characters; use at least 16)", len(t))
			}
		}
	}
	// vipgate run refuses this at start; check says so first. (A host name
	// other than localhost is judged by run, on the address it binds.)
	if host, _, err := net.SplitHostPort(n.Admin.Listen); err == nil && len(n.Admin.Tokens)+len(n.Admin.ReadTokens) == 0 {
		a, perr := netip.ParseAddr(strings.Trim(host, "[]"))
		if host == "" || (perr == nil && !a.IsLoopback()) {
			p.Addf("admin.listen", "listen %q without admin.tokens: an admin API without tokens may only listen on loopback (127.0.0.1, [::1])", n.Admin.Listen)
		}
	}
	n.validateRaft(p)
	n.validateDNS(p)
	n.validatePeers(p)
}

// String is for logs.
func (n *Node) String() string { return fmt.Sprintf("%s (%s, %s)", n.Name, n.Datacenter, n.Role) }
