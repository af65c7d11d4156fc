// Package testnet builds throw-away networks of Linux network namespaces
// for end-to-end tests: hosts plugged into one isolated bridge (in its own
// namespace, multicast snooping off so VRRP and other link-local multicast
// flood like on a dumb switch), addressed in 198.18.0.0/15 only. Everything
// is removed when the test ends, even when it fails.
//
//	n := testnet.New(t)                     // needs root; skips locally, fails under CI
//	a := n.AddHost("a", "198.18.0.1/24")    // namespace with eth0 = 198.18.0.1/24
//	b := n.AddHost("b", "198.18.0.2/24")
//	a.MustRun(t, "ping", "-c1", "198.18.0.2")
//	n.Cable(a, false)                       // pull a's cable: a sees NO-CARRIER
package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vipgate/vipgate/internal/testenv"
)

// Net is one isolated L2 segment.
type Net struct {
	// ID prefixes every namespace name (unique per Net).
	ID string
	// Switch is the namespace holding the bridge "br0".
	Switch string
	t      testing.TB
	mu     sync.Mutex
	hosts  []*Host
}

// Host is one namespace with an interface "eth0" on the segment.
type Host struct {
	Name string
	// NS is the namespace name (for `ip netns exec`).
	NS string
	// Iface is the host's interface on the segment.
	Iface string
	// Port is the bridge port of the host in the switch namespace.
	Port string
	net  *Net
}

// New creates the segment. It needs root and the ip tool.
func New(t testing.TB) *Net {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip")
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	n := &Net{ID: "vgt" + hex.EncodeToString(b[:]), t: t}
	n.Switch = n.ID + "-sw"
	n.addNS(n.Switch)
	for _, c := range [][]string{
		{"ip", "-n", n.Switch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0", "stp_state", "0", "forward_delay", "0"},
		{"ip", "-n", n.Switch, "link", "set", "br0", "up"},
	} {
		n.must(c...)
	}
	return n
}

func (n *Net) addNS(name string) {
	n.t.Helper()
	n.must("ip", "netns", "add", name)
	n.t.Cleanup(func() {
		// What the test did not reap (a daemon's forked child: an exim
		// delivery process was seen outliving its lab) goes with the
		// namespace, instead of living on in an anonymous one.
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				// Not the test itself: a test that moved a thread into
				// the namespace (setns) may have moved its main thread,
				// whose namespace is the one the process is listed by.
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = exec.Command("ip", "netns", "del", name).Run()
	})
	n.must("ip", "-n", name, "link", "set", "lo", "up")
	// IPv6 link-local addresses usable at once: no duplicate address
	// detection on a segment the test built itself.
	// (/proc/sys/net is the reader's namespace; no procps needed.)
	n.must("ip", "netns", "exec", name, "sh", "-c",
		"echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad")
}

func (n *Net) must(args ...string) string {
	n.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// AddHost creates a namespace plugged into the bridge, with the given
// addresses (CIDR, inside 198.18.0.0/15) on its eth0.
func (n *Net) AddHost(name string, addrs ...string) *Host {
	n.t.Helper()
	ns := n.ID + "-" + name
	n.addNS(ns)
	return n.plug(&Host{Name: name, NS: ns}, "eth0", addrs)
}

// Attach plugs a host that already exists (made by this or another Net)
// into this segment too, with a further interface: a router joining
// segments, a multi-homed server. The returned Host shares h's namespace;
// its Iface and Port are the new leg, so Cable and HasAddr act on it.
func (n *Net) Attach(h *Host, iface string, addrs ...string) *Host {
	n.t.Helper()
	return n.plug(&Host{Name: h.Name, NS: h.NS}, iface, addrs)
}

// plug gives h's namespace an interface on the bridge.
func (n *Net) plug(h *Host, iface string, addrs []string) *Host {
	n.t.Helper()
	n.mu.Lock()
	idx := len(n.hosts)
	n.mu.Unlock()
	h.Iface, h.Port, h.net = iface, fmt.Sprintf("p%d", idx), n
	tmp := fmt.Sprintf("%s%d", n.ID, idx) // unique in the root namespace for a moment
	n.must("ip", "link", "add", tmp, "netns", h.NS, "type", "veth", "peer", "name", h.Port, "netns", n.Switch)
	n.must("ip", "-n", h.NS, "link", "set", tmp, "name", iface)
	n.must("ip", "-n", n.Switch, "link", "set", h.Port, "master", "br0", "up")
	for _, a := range addrs {
		if err := CheckTestAddr(a); err != nil {
			n.t.Fatal(err)
		}
		n.must("ip", "-n", h.NS, "addr", "add", a, "dev", iface)
	}
	n.must("ip", "-n", h.NS, "link", "set", iface, "up")
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	return h
}

// CheckTestAddr refuses addresses outside 198.18.0.0/15 (RFC 2544's
// benchmarking range): tests must never talk to real networks.
func CheckTestAddr(cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		a, aerr := netip.ParseAddr(cidr)
		if aerr != nil {
			return fmt.Errorf("testnet: %q is not an address", cidr)
		}
		p = netip.PrefixFrom(a, 32)
	}
	if !netip.MustParsePrefix("198.18.0.0/15").Contains(p.Addr()) {
		return fmt.Errorf("testnet: %s is outside 198.18.0.0/15", cidr)
	}
	return nil
}

// Cable plugs (true) or pulls (false) the host's cable: the bridge port
// goes down, so the host's eth0 loses carrier, as when a switch port or
// cable fails.
func (n *Net) Cable(h *Host, up bool) {
	n.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	n.must("ip", "-n", n.Switch, "link", "set", h.Port, state)
}

// Command returns a command that runs inside the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs a command in the namespace and returns its combined output.
func (h *Host) Run(name string, args ...string) (string, error) {
	out, err := h.Command(name, args...).CombinedOutput()
	return string(out), err
}

// MustRun is Run that fails the test on error.
func (h *Host) MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := h.Run(name, args...)
	if err != nil {
		t.Fatalf("%s: %s %s: %v\n%s", h.Name, name, strings.Join(args, " "), err, out)
	}
	return out
}

// HasAddr reports whether addr (no prefix) is configured on the host's eth0.
func (h *Host) HasAddr(addr string) bool {
	out, err := exec.Command("ip", "-n", h.NS, "-o", "addr", "show", "dev", h.Iface).CombinedOutput()
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, addr+"/") {
			return true
		}
	}
	return false
}

// Hosts lists the hosts in creation order.
func (n *Net) Hosts() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.hosts...)
}

// BlockMulticast stops the bridge from flooding multicast to the host's
// port (as on networks that filter it), so only unicast reaches it.
func (n *Net) BlockMulticast(h *Host) {
	n.t.Helper()
	n.must("bridge", "-n", n.Switch, "link", "set", "dev", h.Port, "mcast_flood", "off")
}
