// Package transparent installs the policy routing that transparent-source
// proxying (a backend's `source: {usesrc: clientip}`) needs on the node.
//
// A connection to a server bound to the client's address gets its replies
// addressed to the client. The servers route them to this node (their
// default route points here, as under LVS-NAT), and the node must deliver
// them to its own socket rather than forward them to the client: the
// client's address is not a local one, so without help the kernel would
// forward or drop them.
//
// The mechanism is HAProxy's documented TPROXY recipe, without iptables:
//
//   - an nftables rule in the prerouting hook marks a packet that belongs
//     to a transparent socket of this node (`socket transparent 1`): the
//     kernel looks the packet up in its socket table, so only replies of
//     vipgate's own transparent connections are marked, and the servers'
//     other traffic through the node (replies to clients that reach a
//     server directly) is routed as before;
//   - an `ip rule fwmark MARK lookup TABLE` sends marked packets to a
//     table whose only route is `local default dev lo`: delivered locally.
//
// A rule on addresses alone (`from SERVER sport PORT lookup TABLE`, no
// netfilter) was rejected: it would also capture replies to clients that
// talk to a server directly, which the node would then answer with a
// reset. Marking through the socket's own SO_MARK does not help either:
// it marks what the socket sends, not the replies, which carry no mark
// without conntrack rules.
package transparent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// What vipgate installs (docs/forwarding.md names them): chosen away from
// the values of HAProxy's example (mark 1, table 100) that an operator may
// already use by hand.
const (
	Mark     = 0x7667 // "vg"
	Table    = 7667
	Priority = 7667 // the ip rule's preference: before main (32766)
	NFTable  = "vipgate_tproxy"
)

// Routing installs the routing while it is wanted and removes it when not
// any more, and on Close.
type Routing struct {
	log *slog.Logger
	mu  sync.Mutex
	on  bool
}

// New returns an idle Routing.
func New(log *slog.Logger) *Routing { return &Routing{log: log} }

// Set installs (want) or removes the routing. Installing first clears
// what a previous run may have left (a crash skips the removal).
func (r *Routing) Set(want bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if want == r.on {
		return nil
	}
	if !want {
		err := remove()
		r.on = false
		if err == nil {
			r.log.Info("transparent-source routing removed")
		}
		return err
	}
	_ = remove()
	if err := install(); err != nil {
		_ = remove()
		return err
	}
	r.on = true
	r.log.Info("transparent-source routing installed", "nft_table", "inet "+NFTable, "fwmark", fmt.Sprintf("%#x", Mark), "table", Table)
	return nil
}

// Installed reports whether this Routing has the routing in place.
func (r *Routing) Installed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.on
}

// Close removes the routing if it is installed.
func (r *Routing) Close() error { return r.Set(false) }

func install() error {
	if err := installNFT(); err != nil {
		return capErr("nftables rule", err)
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		if err := netlink.RouteReplace(localRoute(fam)); err != nil {
			if fam == netlink.FAMILY_V6 && ipv6Off(err) {
				continue // no IPv6 on this node: IPv4 clients only
			}
			return capErr(fmt.Sprintf("local route in table %d", Table), err)
		}
		if err := netlink.RuleAdd(rule(fam)); err != nil {
			if fam == netlink.FAMILY_V6 && ipv6Off(err) {
				continue
			}
			return capErr(fmt.Sprintf("ip rule fwmark %#x lookup %d", Mark, Table), err)
		}
	}
	return nil
}

// remove deletes everything install adds; what is not there is no error.
func remove() error {
	var errs []error
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		// Every copy (rules may be added twice by hand or by two runs).
		for i := 0; i < 16; i++ {
			if err := netlink.RuleDel(rule(fam)); err != nil {
				if !gone(err) {
					errs = append(errs, fmt.Errorf("removing ip rule: %w", err))
				}
				break
			}
		}
		if err := netlink.RouteDel(localRoute(fam)); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("removing the local route of table %d: %w", Table, err))
		}
	}
	if err := removeNFT(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func rule(fam int) *netlink.Rule {
	ru := netlink.NewRule()
	ru.Family = fam
	ru.Mark = Mark
	ru.Mask = func() *uint32 { m := uint32(0xffffffff); return &m }()
	ru.Table = Table
	ru.Priority = Priority
	return ru
}

func localRoute(fam int) *netlink.Route {
	dst := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	if fam == netlink.FAMILY_V6 {
		dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	lo, _ := net.InterfaceByName("lo")
	idx := 1
	if lo != nil {
		idx = lo.Index
	}
	return &netlink.Route{Family: fam, Dst: dst, Type: unix.RTN_LOCAL, Table: Table, LinkIndex: idx, Scope: netlink.SCOPE_HOST}
}

var nftTable = &nftables.Table{Family: nftables.TableFamilyINet, Name: NFTable}

func installNFT() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := c.AddTable(nftTable)
	ch := c.AddChain(&nftables.Chain{
		Name: "prerouting", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle,
	})
	// meta l4proto tcp socket transparent 1 meta mark set MARK accept
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Socket{Key: expr.SocketKeyTransparent, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}},
		&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint32(Mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	return c.Flush()
}

func removeNFT() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	if _, err := c.ListTableOfFamily(NFTable, nftables.TableFamilyINet); err != nil {
		return nil // not there
	}
	c.DelTable(nftTable)
	if err := c.Flush(); err != nil && !gone(err) {
		return fmt.Errorf("removing nftables table inet %s: %w", NFTable, err)
	}
	return nil
}

func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EADDRNOTAVAIL)
}

func ipv6Off(err error) bool {
	return errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP)
}

// capErr says what a refusal means: the node lacks CAP_NET_ADMIN.
func capErr(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("transparent-source routing: installing the %s needs CAP_NET_ADMIN (run vipgate as root or grant it, e.g. AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW in the systemd unit), or set setup_routing: false and install it yourself (docs/forwarding.md): %w", what, err)
	}
	return fmt.Errorf("transparent-source routing: installing the %s: %w", what, err)
}
