package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"

	"github.com/vipgate/vipgate/core/config"
)

// runCheck is `vipgate check ARGS...` (the tests call it so).
func runCheck(args []string, stdout, stderr io.Writer) int {
	return runSub(context.Background(), "check", args, stdout, stderr)
}

// newCheckCmd validates files without starting anything: a cluster document
// (default) or a node bootstrap file (--node). Every problem is printed with
// its position; the exit status is 1 if there was any.
func newCheckCmd() *cobra.Command {
	var node, witness, quiet bool
	cmd := &cobra.Command{
		Use:   "check [--node [--witness]] FILE...",
		Short: "validate cluster or node files and print every problem",
		Long: `Validate cluster documents (or node bootstrap files with --node) without
starting anything. Every problem is printed with its file:line:column; the
exit status is 1 if there was any. A cluster document's files (certificates,
Lua scripts, CA files) are loaded as vipgate run would load them here.`,
		Args: rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return checkFiles(files, node, witness, quiet, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&node, "node", false, "the files are node bootstrap files")
	f.BoolVar(&witness, "witness", false, "with --node: check them as a witness's, as vipgate run --witness does")
	f.BoolVarP(&quiet, "quiet", "q", false, "print nothing when the files are valid")
	return cmd
}

func checkFiles(files []string, node, witness, quiet bool, stdout, stderr io.Writer) error {
	status := 0
	for _, f := range files {
		var err error
		var c *config.Cluster
		if node {
			role := ""
			if witness {
				role = config.RoleWitness
			}
			_, err = config.LoadNodeFileAs(f, role)
		} else {
			// The files it names too, as vipgate run will load them here.
			c, err = config.LoadAndCheckFiles(f, knownNames())
		}
		if err != nil {
			if ce, ok := err.(*config.Error); ok {
				for _, p := range ce.Problems {
					fmt.Fprintln(stderr, p.String())
				}
				fmt.Fprintf(stderr, "%s: %d problem(s)\n", f, len(ce.Problems))
			} else {
				fmt.Fprintf(stderr, "%s: %v\n", f, err)
			}
			status = 1
			continue
		}
		if c != nil && c.ServesNothing(nil) {
			// Valid, but a reload or `vipgate apply` refuses it.
			fmt.Fprintf(stderr, "%s: warning: the document has no frontend, no VRRP instance and no DNS zone: a node running it serves nothing; a reload refuses it, and vipgate apply needs --allow-empty\n", f)
		}
		if !quiet {
			fmt.Fprintf(stdout, "%s: ok\n", f)
			if c != nil {
				transparentNotes(stdout, f, c)
				directRoutingNotes(stdout, f, c)
			}
		}
	}
	if status != 0 {
		return exitCode(status)
	}
	return nil
}

// transparentNotes says what the servers of a usesrc clientip backend need:
// a check cannot see their routes, and without the route the connections
// time out with no error on the node.
func transparentNotes(w io.Writer, file string, c *config.Cluster) {
	names, routing := c.ClientSourceBackends()
	for i, name := range names {
		fmt.Fprintf(w, "%s: note: backend %q connects to its servers from the clients' addresses (usesrc clientip): "+
			"the servers' route to the clients, normally their default route, must go through the vipgate node running it "+
			"(the VIP of its VRRP pair), as under LVS-NAT, or their replies bypass vipgate and the connections hang; ", file, name)
		if routing[i] {
			fmt.Fprintf(w, "vipgate installs the routing that delivers those replies to itself (setup_routing; needs CAP_NET_ADMIN). See docs/forwarding.md\n")
		} else {
			fmt.Fprintf(w, "without setup_routing: true the node needs the policy routing that delivers those replies to its sockets (docs/forwarding.md)\n")
		}
	}
}

// directRoutingNotes says what the servers of a mode dr frontend need: the
// director cannot check it, and without it their kernel drops the packets
// (no VIP) or answers ARP for the VIP itself (no sysctls).
func directRoutingNotes(w io.Writer, file string, c *config.Cluster) {
	for i := range c.Frontends {
		f := &c.Frontends[i]
		if f.Mode != config.ModeDR || len(f.Bind) != 1 {
			continue
		}
		host, _, _ := net.SplitHostPort(f.Bind[0])
		fmt.Fprintf(w, "%s: note: frontend %q forwards %s in direct routing (mode dr): each server of backend %q needs the VIP on its loopback "+
			"(ip addr add %s/32 dev lo) with net.ipv4.conf.all.arp_ignore=1 and arp_announce=2 (and the same on its interface), "+
			"the service listening on the VIP's port, and must be on the director's link; see docs/forwarding.md\n", file, f.Name, f.Bind[0], f.DefaultBackend, host)
	}
}
