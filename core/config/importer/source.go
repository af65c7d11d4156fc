package importer

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// haSource reads HAProxy's `source ADDR[:PORT] [usesrc {clientip | client |
// ADDR[:PORT] | hdr_ip(...)}] [interface NAME]` from args[i] (the word
// after `source`). It returns the source (nil: the kernel's choice, or
// nothing translatable) and the index of the last word it read.
func (t *translator) haSource(l hline, args []string, i int) (*config.Source, int) {
	if i >= len(args) {
		t.warn(l, "source", "missing address")
		return nil, i - 1
	}
	addr := args[i]
	var usesrc string
	for i+1 < len(args) {
		switch args[i+1] {
		case "usesrc":
			if i+2 >= len(args) {
				t.warn(l, "source usesrc", "missing value")
				return nil, i + 1
			}
			usesrc = args[i+2]
			i += 2
			continue
		case "interface":
			if i+2 < len(args) {
				t.warn(l, "source interface "+args[i+2], "not supported: the route to the server chooses the interface")
				i += 2
				continue
			}
		}
		break
	}
	switch {
	case usesrc == "clientip" || usesrc == "client":
		if usesrc == "client" {
			t.warn(l, "source usesrc client", "the client's port is not kept: usesrc clientip (the client's address, a port chosen by the kernel)")
		}
		return &config.Source{UseSrc: config.UseSrcClientIP, SetupRouting: true}, i
	case usesrc != "":
		t.warn(l, "source usesrc "+usesrc, "only clientip (and client) translate: a foreign fixed address or a header's address is not supported; the node's own address is used")
		return nil, i
	}
	host := addr
	if h, port, err := net.SplitHostPort(addr); err == nil {
		host = h
		if port != "" && port != "0" {
			t.warn(l, "source "+addr, "the source port (range) is not kept: the kernel chooses it")
		}
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	switch {
	case err != nil:
		t.warn(l, "source "+addr, "want an IP address; the node's own address is used")
		return nil, i
	case a.IsUnspecified():
		return nil, i // 0.0.0.0: the kernel's choice, as without source
	}
	return &config.Source{Address: a.String()}, i
}

// usesrcNote is what the imported document says at a backend whose
// servers are reached from the clients' addresses.
func usesrcNote(l hline) string {
	return fmt.Sprintf("source usesrc (%s:%d): the servers see the clients' addresses; their default route must point to this node "+
		"(or the VIP of its pair); vipgate installs the routing that delivers their replies to itself (setup_routing), "+
		"so the iptables TPROXY rules (-m socket, ip rule fwmark) are no longer needed; see docs/forwarding.md", l.file, l.num)
}
