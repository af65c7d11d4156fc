package main

import (
	"flag"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vipgate/vipgate/core/config/importer"
)

// newImportCmd translates haproxy.cfg and/or keepalived.conf into a cluster
// document (docs/migration.md). The command itself lives in the importer
// package so its tests can drive it end to end; its flags join the tree.
func newImportCmd() *cobra.Command {
	var c *importer.CLI
	cmd := &cobra.Command{
		Use:   "import [--haproxy [NODE=]haproxy.cfg ...] [--keepalived [NODE=]keepalived.conf ...] [--datacenter NODE=DC ...] [-o cluster.yaml] [--strict]",
		Short: "translate haproxy.cfg / keepalived.conf into a cluster config",
		Long: `Translate haproxy.cfg and/or keepalived.conf into one cluster document
(docs/migration.md). What cannot be translated is a warning on stderr
(file:line: directive: why). The exit status is 0 when translated (even with
warnings), 1 when an input cannot be read or parsed, or with --strict when
there was any warning, 2 on bad usage.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := c.Run(args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	// The importer writes its own messages; the tree only parses.
	c = importer.NewCLI(os.Stderr)
	// Go's flag package has no long form for -o; pflag would print it as
	// "--o", so it gets the long name every other tool uses.
	c.Flags.VisitAll(func(gf *flag.Flag) {
		pf := pflag.PFlagFromGoFlag(gf)
		if pf.Name == "o" {
			pf.Name = "output"
		}
		cmd.Flags().AddFlag(pf)
	})
	for _, f := range []string{"haproxy", "keepalived", "output"} {
		_ = cmd.MarkFlagFilename(f)
	}
	return cmd
}
