package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vipgate/vipgate/cluster/raft"
)

// newClusterCmd manages raft membership.
func newClusterCmd() *cobra.Command {
	cmd, client := newGroup("cluster", "raft membership: members, join, leave, remove, recover")

	members := &cobra.Command{
		Use:   "members",
		Short: "list the raft members, their suffrage, datacenter and role; * marks the leader",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Members []raft.MemberInfo `json:"members"`
			}
			if err := client().do(cmd.Context(), "GET", "/api/v1/cluster/members", nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tLEADER\tDATACENTER\tROLE\tADMIN")
			for _, m := range out.Members {
				l := ""
				if m.Leader {
					l = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Address, m.Suffrage, l, m.Datacenter, m.Role, m.Admin)
			}
			return tw.Flush()
		},
	}

	var nonvoter bool
	join := &cobra.Command{
		Use:   "join ID RAFT_ADDRESS [--nonvoter]",
		Short: "add a member (through any node)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := client().do(cmd.Context(), "POST", "/api/v1/cluster/members", map[string]any{"id": pos[0], "address": pos[1], "nonvoter": nonvoter}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s added\n", pos[0])
			return nil
		},
	}
	join.Flags().BoolVar(&nonvoter, "nonvoter", false, "add as a non-voting member")

	leave := &cobra.Command{
		Use:   "leave",
		Short: "this node leaves the cluster",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := client().do(cmd.Context(), "POST", "/api/v1/cluster/leave", map[string]any{}, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "left the cluster; stop this node now (its data dir keeps the old state: wipe it before it joins again)")
			return nil
		},
	}

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "remove a dead member",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := client().do(cmd.Context(), "DELETE", "/api/v1/cluster/members/"+pos[0], nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s removed\n", pos[0])
			return nil
		},
	}

	var nodeFile, peers string
	var sure bool
	recoverCmd := &cobra.Command{
		Use:   "recover --node node.yaml --peers ID=ADDR[,ID=ADDR...] --i-understand-this-may-lose-data",
		Short: "force a new membership on a stopped node (offline; after losing quorum for good)",
		Long: `Rewrite a STOPPED node's raft membership. It is the way out when a quorum is
lost for good (a whole datacenter and the witness gone): run it on every
survivor with the same --peers, then start them.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clusterRecover(cmd.ErrOrStderr(), nodeFile, peers, sure)
		},
	}
	rf := recoverCmd.Flags()
	rf.StringVar(&nodeFile, "node", "", "the stopped node's bootstrap file")
	rf.StringVar(&peers, "peers", "", "the surviving members, ID=RAFT_ADDRESS,... (all become voters)")
	rf.BoolVar(&sure, "i-understand-this-may-lose-data", false, "confirm forcing a new membership")
	_ = recoverCmd.MarkFlagFilename("node", "yaml", "yml")

	cmd.AddCommand(members, join, leave, remove, recoverCmd)
	return cmd
}

// clusterRecover rewrites a stopped node's raft membership. It is the way
// out when a quorum is lost for good (a whole datacenter and the witness
// gone): run it on every survivor with the same --peers, then start them.
func clusterRecover(stderr io.Writer, nodeFile, peers string, sure bool) error {
	if nodeFile == "" || peers == "" {
		fmt.Fprintln(stderr, "vipgate cluster recover: --node and --peers are required")
		return exitCode(exitUsage)
	}
	if !sure {
		fmt.Fprintln(stderr, `vipgate cluster recover: REFUSED without --i-understand-this-may-lose-data.
This forces a new raft membership on a STOPPED node. Changes committed by the
lost members but not yet replicated here are lost, and if the lost members come
back they must be wiped first, or the cluster splits in two. Use it only when a
quorum is gone for good.`)
		return exitCode(exitUsage)
	}
	node, err := loadNode(nodeFile)
	if err != nil {
		fmt.Fprintf(stderr, "vipgate cluster recover: %v\n", err)
		return exitCode(exitFailed)
	}
	servers := map[string]string{}
	for _, p := range strings.Split(peers, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || id == "" || addr == "" {
			fmt.Fprintf(stderr, "vipgate cluster recover: peer %q: want ID=RAFT_ADDRESS\n", p)
			return exitCode(exitUsage)
		}
		servers[id] = addr
	}
	if _, ok := servers[node.Name]; !ok {
		fmt.Fprintf(stderr, "vipgate cluster recover: --peers must include this node (%s)\n", node.Name)
		return exitCode(exitUsage)
	}
	log, _ := newLogger(node.Log)
	err = raft.Recover(raft.Options{ID: node.Name, DataDir: node.DataDir, Raft: node.Raft, Log: log.With("cmd", "recover")}, servers)
	if err != nil {
		fmt.Fprintf(stderr, "vipgate cluster recover: %v\n", err)
		return exitCode(exitFailed)
	}
	fmt.Fprintf(stderr, "WARNING: raft membership of %s forced to %s. Start the survivors now; wipe the data dir of any lost member before it rejoins.\n", node.Name, peers)
	return nil
}
