package importer

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vipgate/vipgate/core/config"
)

// RunCLI is `vipgate import`: it translates haproxy.cfg and/or
// keepalived.conf into one cluster document. Untranslatable directives are
// warnings on stderr (file:line: directive: why). The exit status is 0 when
// translated (even with warnings), 1 when an input cannot be read or
// parsed, or with --strict when there was any warning, 2 on bad usage.
func RunCLI(args []string, stdout, stderr io.Writer) int {
	c := NewCLI(stderr)
	if err := c.Flags.Parse(args); err != nil {
		return 2
	}
	return c.Run(c.Flags.Args(), stdout, stderr)
}

// CLI is `vipgate import` split in two, so that vipgate's command tree can
// take its flags (for help, completions and man pages) and parse them.
type CLI struct {
	// Flags are the command's flags; Run reads them once parsed.
	Flags                            *flag.FlagSet
	haproxy, keepalived, datacenters stringsFlag
	out                              *string
	strict                           *bool
}

// NewCLI defines the flags of `vipgate import`.
func NewCLI(stderr io.Writer) *CLI {
	c := &CLI{Flags: flag.NewFlagSet("import", flag.ContinueOnError)}
	fs := c.Flags
	fs.SetOutput(stderr)
	fs.Var(&c.haproxy, "haproxy", "haproxy.cfg to translate, `[NODE=]FILE`: once for every node, or NODE=FILE repeated with each node's own file")
	fs.Var(&c.keepalived, "keepalived", "keepalived.conf to translate, `[NODE=]FILE`; repeat it with each node's file (the node is NODE, else the file's router_id, else its name)")
	fs.Var(&c.datacenters, "datacenter", "`NODE=DC`, repeated: the datacenter of each node (the document lists them and tags each node's own servers)")
	c.out = fs.String("o", "", "write the cluster document to this `FILE` (default: stdout)")
	c.strict = fs.Bool("strict", false, "treat every warning as an error (exit 1, nothing written)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vipgate import [--haproxy [NODE=]haproxy.cfg ...] [--keepalived [NODE=]keepalived.conf ...] [--datacenter NODE=DC ...] [-o cluster.yaml] [--strict]\n\n")
		fs.PrintDefaults()
	}
	return c
}

// Run translates with the parsed flags; args are the positional arguments
// (there may be none).
func (c *CLI) Run(args []string, stdout, stderr io.Writer) int {
	fs := c.Flags
	fs.SetOutput(stderr)
	haproxy, keepalived, datacenters, out, strict := c.haproxy, c.keepalived, c.datacenters, c.out, c.strict
	if len(args) > 0 || (len(haproxy) == 0 && len(keepalived) == 0) {
		fs.Usage()
		return 2
	}
	var opts Options
	files := map[string]bool{}
	read := func(flag, arg string) *Input {
		node, name := splitNodeFile(arg)
		if files[flag+" "+arg] {
			fmt.Fprintf(stderr, "vipgate import: --%s %s is given twice\n", flag, arg)
			return nil
		}
		files[flag+" "+arg] = true
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "vipgate import: %v\n", err)
			return nil
		}
		return &Input{Name: name, Data: data, Node: node}
	}
	for _, h := range haproxy {
		in := read("haproxy", h)
		if in == nil {
			return 1
		}
		if len(haproxy) == 1 && in.Node == "" {
			opts.HAProxy = in
			continue
		}
		if in.Node == "" {
			in.Node = haproxyNodeName(in.Data)
		}
		if in.Node == "" {
			// Keeping one node's file over another's would lose that
			// node's servers without a word.
			fmt.Fprintf(stderr, "vipgate import: --haproxy is given %d times: say which node each file belongs to (--haproxy NODE=FILE; or `localpeer NAME` / `node NAME` in its global section)\n", len(haproxy))
			return 2
		}
		opts.HAProxyNodes = append(opts.HAProxyNodes, in)
	}
	for _, k := range keepalived {
		in := read("keepalived", k)
		if in == nil {
			return 1
		}
		opts.Keepalived = append(opts.Keepalived, in)
	}
	for _, d := range datacenters {
		node, dc, ok := strings.Cut(d, "=")
		if !ok || !config.ValidName(node) || !config.ValidName(dc) {
			fmt.Fprintf(stderr, "vipgate import: --datacenter %q: want NODE=DC (letters, digits, '_', '.', '-')\n", d)
			return 2
		}
		if opts.Datacenters == nil {
			opts.Datacenters = map[string]string{}
		}
		if prev, dup := opts.Datacenters[node]; dup && prev != dc {
			fmt.Fprintf(stderr, "vipgate import: node %s is given two datacenters (%s, %s)\n", node, prev, dc)
			return 2
		}
		opts.Datacenters[node] = dc
	}
	res, err := Import(opts)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			fmt.Fprintln(stderr, pe.Error())
		} else {
			fmt.Fprintf(stderr, "vipgate import: %v\n", err)
		}
		return 1
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, w.String())
	}
	if *strict && len(res.Warnings) > 0 {
		fmt.Fprintf(stderr, "vipgate import: %d warning(s) and --strict: nothing written\n", len(res.Warnings))
		return 1
	}
	if *out == "" {
		if _, err := stdout.Write(res.YAML); err != nil {
			fmt.Fprintf(stderr, "vipgate import: %v\n", err)
			return 1
		}
	} else if err := writeFileAtomic(*out, res.YAML); err != nil {
		fmt.Fprintf(stderr, "vipgate import: write %s: %v\n", *out, err)
		return 1
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(stderr, "vipgate import: translated with %d warning(s)\n", len(res.Warnings))
	}
	return 0
}

// writeFileAtomic writes then renames, so a failed write never leaves half
// a document where a good one was.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".import-*.yaml")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// stringsFlag collects a repeated flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// splitNodeFile reads NODE=FILE; a plain FILE (or one whose text before
// '=' is a path, not a node name) has no node.
func splitNodeFile(arg string) (node, file string) {
	n, f, ok := strings.Cut(arg, "=")
	if !ok || n == "" || strings.Contains(n, "/") {
		return "", arg
	}
	if _, err := os.Stat(arg); err == nil {
		return "", arg // a file really named so
	}
	return n, f
}

// haproxyNodeName is the node a haproxy.cfg names itself in its global
// section: `localpeer NAME` (its name among the stick-table peers, the
// host name by default), else `node NAME`.
func haproxyNodeName(data []byte) string {
	secs, err := parseHAProxy("haproxy.cfg", data)
	if err != nil {
		return "" // Import reports it with its position
	}
	name := ""
	for _, s := range secs {
		if s.kind != "global" {
			continue
		}
		for _, l := range s.body {
			switch {
			case l.keyword() == "localpeer" && len(l.args) > 1:
				return l.args[1]
			case l.keyword() == "node" && len(l.args) > 1:
				name = l.args[1]
			}
		}
	}
	return name
}
