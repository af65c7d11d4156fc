package config

import (
	"strings"
)

// LogTarget is one destination of the node's log lines, as an HAProxy
// `log` line: `log 127.0.0.1:514 local0 info` is
// {address: "udp://127.0.0.1:514", facility: local0, level: info}.
type LogTarget struct {
	// Address: stderr, stdout, a unix socket path (/dev/log; datagram,
	// else stream), udp://host:port (or host:port), tcp://host:port.
	Address string `yaml:"address" json:"address,omitempty"`
	// Facility is the syslog facility (default daemon; access logs
	// imported from HAProxy keep theirs, often local0).
	Facility string `yaml:"facility,omitempty" json:"facility,omitempty"`
	// Level is the least severe level sent (default: the node's
	// log.level, as changed at run time).
	Level string `yaml:"level,omitempty" json:"level,omitempty"`
	// Format is the syslog header: rfc3164 (default, what /dev/log and
	// HAProxy's default expect) or rfc5424. Not for stderr/stdout.
	Format string `yaml:"format,omitempty" json:"format,omitempty"`
	// Encoding of the message: text or json (default: the node's
	// log.format; "" in a frontend's targets, resolved on each node). A
	// text access line is HAProxy's line alone.
	Encoding string `yaml:"encoding,omitempty" json:"encoding,omitempty"`
	// Tag is the syslog APP-NAME / tag (default vipgate).
	Tag string `yaml:"tag,omitempty" json:"tag,omitempty"`
	// Framing of tcp: octet-counting (default, RFC 6587) or newline.
	Framing string `yaml:"framing,omitempty" json:"framing,omitempty"`
	// Buffer is how many lines may wait for a slow or absent receiver
	// (default 10000); beyond it lines are dropped and counted, never
	// waited for.
	Buffer int `yaml:"buffer,omitempty" json:"buffer,omitempty"`
	// MaxLength truncates a message (default 8192 bytes; HAProxy's len).
	MaxLength int `yaml:"max_length,omitempty" json:"max_length,omitempty"`
}

// Syslog facilities by name (RFC 5424 numbering), as HAProxy spells them.
var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "auth2": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "cron2": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// SyslogFacility is the number of a facility name (ok false if unknown).
func SyslogFacility(name string) (int, bool) {
	n, ok := syslogFacilities[name]
	return n, ok
}

// LogTargetNetwork splits a target address into the network to dial (""
// for stderr/stdout, unix, unixgram is tried first for a path) and the
// address.
func LogTargetNetwork(a string) (network, addr string) {
	switch {
	case a == "stderr" || a == "stdout":
		return "", a
	case strings.HasPrefix(a, "/"):
		return "unix", a
	case strings.HasPrefix(a, "unix://"):
		return "unix", strings.TrimPrefix(a, "unix://")
	case strings.HasPrefix(a, "udp://"):
		return "udp", strings.TrimPrefix(a, "udp://")
	case strings.HasPrefix(a, "tcp://"):
		return "tcp", strings.TrimPrefix(a, "tcp://")
	}
	return "udp", a
}

func (t *LogTarget) applyDefaults(n *NodeLog) {
	if t.Facility == "" {
		t.Facility = "daemon"
	}
	if t.Format == "" {
		t.Format = "rfc3164"
	}
	if t.Encoding == "" {
		t.Encoding = n.Format
	}
	if t.Tag == "" {
		t.Tag = "vipgate"
	}
	if t.Framing == "" {
		t.Framing = "octet-counting"
	}
	if t.Buffer == 0 {
		t.Buffer = 10000
	}
	if t.MaxLength == 0 {
		t.MaxLength = 8192
	}
}

func (t *LogTarget) validate(p *Problems, path string) {
	network, addr := LogTargetNetwork(t.Address)
	switch {
	case t.Address == "":
		p.Addf(path+".address", "a log target needs an address (stderr, stdout, /dev/log, udp://host:port, tcp://host:port)")
	case network == "udp" || network == "tcp":
		if err := checkHostPort(addr, false); err != nil {
			p.Addf(path+".address", "address %q: %v", t.Address, err)
		}
	}
	if _, ok := SyslogFacility(t.Facility); !ok {
		p.Addf(path+".facility", "facility %q: want kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, auth2, ftp, ntp, audit, alert, cron2 or local0-local7", t.Facility)
	}
	switch t.Level {
	case "", "debug", "info", "warn", "error":
	default:
		p.Addf(path+".level", "level %q: want debug, info, warn or error", t.Level)
	}
	if t.Format != "rfc3164" && t.Format != "rfc5424" {
		p.Addf(path+".format", "format %q: want rfc3164 or rfc5424", t.Format)
	}
	if t.Encoding != "" && t.Encoding != "text" && t.Encoding != "json" {
		p.Addf(path+".encoding", "encoding %q: want text or json", t.Encoding)
	}
	if t.Framing != "octet-counting" && t.Framing != "newline" {
		p.Addf(path+".framing", "framing %q: want octet-counting or newline", t.Framing)
	}
	if strings.ContainsAny(t.Tag, " :[]") || len(t.Tag) > 48 {
		p.Addf(path+".tag", "tag %q: at most 48 characters, without spaces, ':' or brackets", t.Tag)
	}
	if t.Buffer < 0 {
		p.Addf(path+".buffer", "buffer %d: want a positive number of lines", t.Buffer)
	}
	if t.MaxLength < 0 || (t.MaxLength > 0 && t.MaxLength < 80) {
		p.Addf(path+".max_length", "max_length %d: want at least 80 bytes", t.MaxLength)
	}
}

func validateLogTargets(p *Problems, key string, ts []LogTarget) {
	seen := map[string]bool{}
	for i := range ts {
		path := Path("log", key, i)
		ts[i].validate(p, path)
		k := ts[i].Address + " " + ts[i].Facility
		if seen[k] {
			p.Addf(path+".address", "address %q with facility %s is listed twice in log.%s", ts[i].Address, ts[i].Facility, key)
		}
		seen[k] = true
	}
}

// applyLogTargetDefaults fills a frontend's log targets; the encoding stays
// unset: each node uses its own log.format.
func (c *Cluster) applyLogTargetDefaults() {
	for i := range c.Frontends {
		for j := range c.Frontends[i].LogTargets {
			c.Frontends[i].LogTargets[j].applyDefaults(&NodeLog{})
		}
	}
}

func (c *Cluster) validateLogTargets(p *Problems) {
	for i := range c.Frontends {
		seen := map[string]bool{}
		for j := range c.Frontends[i].LogTargets {
			t := &c.Frontends[i].LogTargets[j]
			path := Path("frontends", i, "log_targets", j)
			t.validate(p, path)
			if t.Address == "stderr" || t.Address == "stdout" {
				p.Addf(path+".address", "a frontend's log target is a syslog receiver; stderr and stdout are the node's (log.access)")
			}
			k := t.Address + " " + t.Facility
			if seen[k] {
				p.Addf(path+".address", "address %q with facility %s is listed twice", t.Address, t.Facility)
			}
			seen[k] = true
		}
	}
}
