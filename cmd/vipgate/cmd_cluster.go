package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/vipgate/vipgate/cluster/raft"
)

// cmdCluster manages raft membership.
func cmdCluster(ctx context.Context, args []string) int {
	usage := func() {
		fmt.Fprintf(os.Stderr, `usage: vipgate cluster members
       vipgate cluster join ID RAFT_ADDRESS [--nonvoter]   (add a member through any node)
       vipgate cluster leave                              (this node leaves)
       vipgate cluster remove ID                          (remove a dead member)
       vipgate cluster recover --node node.yaml --peers ID=ADDR[,ID=ADDR...] --i-understand-this-may-lose-data
                                                          (offline; after losing quorum for good)
common: --admin ADDR --token TOKEN
`)
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("cluster "+args[0], flag.ContinueOnError)
	client := adminFlags(fs)
	nonvoter := fs.Bool("nonvoter", false, "join: add as a non-voting member")
	nodeFile := fs.String("node", "", "recover: the stopped node's bootstrap file")
	peers := fs.String("peers", "", "recover: the surviving members, ID=RAFT_ADDRESS,... (all become voters)")
	sure := fs.Bool("i-understand-this-may-lose-data", false, "recover: confirm forcing a new membership")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	c := client()
	switch args[0] {
	case "members":
		var out struct {
			Members []raft.MemberInfo `json:"members"`
		}
		if err := c.do(ctx, "GET", "/api/v1/cluster/members", nil, &out); err != nil {
			fmt.Fprintf(os.Stderr, "vipgate cluster members: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tSUFFRAGE\tLEADER\tDATACENTER\tROLE\tADMIN")
		for _, m := range out.Members {
			l := ""
			if m.Leader {
				l = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Address, m.Suffrage, l, m.Datacenter, m.Role, m.Admin)
		}
		tw.Flush()
		return 0
	case "join":
		if len(pos) != 2 {
			usage()
			return 2
		}
		if err := c.do(ctx, "POST", "/api/v1/cluster/members", map[string]any{"id": pos[0], "address": pos[1], "nonvoter": *nonvoter}, nil); err != nil {
			fmt.Fprintf(os.Stderr, "vipgate cluster join: %v\n", err)
			return 1
		}
		fmt.Printf("%s added\n", pos[0])
		return 0
	case "leave":
		if err := c.do(ctx, "POST", "/api/v1/cluster/leave", map[string]any{}, nil); err != nil {
			fmt.Fprintf(os.Stderr, "vipgate cluster leave: %v\n", err)
			return 1
		}
		fmt.Println("left the cluster; stop this node now (its data dir keeps the old state: wipe it before it joins again)")
		return 0
	case "remove":
		if len(pos) != 1 {
			usage()
			return 2
		}
		if err := c.do(ctx, "DELETE", "/api/v1/cluster/members/"+pos[0], nil, nil); err != nil {
			fmt.Fprintf(os.Stderr, "vipgate cluster remove: %v\n", err)
			return 1
		}
		fmt.Printf("%s removed\n", pos[0])
		return 0
	case "recover":
		return clusterRecover(*nodeFile, *peers, *sure)
	}
	usage()
	return 2
}

// clusterRecover rewrites a stopped node's raft membership. It is the way
// out when a quorum is lost for good (a whole datacenter and the witness
// gone): run it on every survivor with the same --peers, then start them.
func clusterRecover(nodeFile, peers string, sure bool) int {
	if nodeFile == "" || peers == "" {
		fmt.Fprintln(os.Stderr, "vipgate cluster recover: --node and --peers are required")
		return 2
	}
	if !sure {
		fmt.Fprintln(os.Stderr, `vipgate cluster recover: REFUSED without --i-understand-this-may-lose-data.
This forces a new raft membership on a STOPPED node. Changes committed by the
lost members but not yet replicated here are lost, and if the lost members come
back they must be wiped first, or the cluster splits in two. Use it only when a
quorum is gone for good.`)
		return 2
	}
	node, err := loadNode(nodeFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vipgate cluster recover: %v\n", err)
		return 1
	}
	servers := map[string]string{}
	for _, p := range strings.Split(peers, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || id == "" || addr == "" {
			fmt.Fprintf(os.Stderr, "vipgate cluster recover: peer %q: want ID=RAFT_ADDRESS\n", p)
			return 2
		}
		servers[id] = addr
	}
	if _, ok := servers[node.Name]; !ok {
		fmt.Fprintf(os.Stderr, "vipgate cluster recover: --peers must include this node (%s)\n", node.Name)
		return 2
	}
	log, _ := newLogger(node.Log)
	err = raft.Recover(raft.Options{ID: node.Name, DataDir: node.DataDir, Raft: node.Raft, Log: log.With("cmd", "recover")}, servers)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vipgate cluster recover: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "WARNING: raft membership of %s forced to %s. Start the survivors now; wipe the data dir of any lost member before it rejoins.\n", node.Name, peers)
	return 0
}
