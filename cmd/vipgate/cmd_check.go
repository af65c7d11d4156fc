package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vipgate/vipgate/core/config"
)

// cmdCheck validates files without starting anything: a cluster document
// (default) or a node bootstrap file (--node). Every problem is printed with
// its position; the exit status is 1 if there was any.
func cmdCheck(ctx context.Context, args []string) int { return runCheck(args, os.Stdout, os.Stderr) }

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	node := fs.Bool("node", false, "the files are node bootstrap files")
	witness := fs.Bool("witness", false, "with --node: check them as a witness's, as `vipgate run --witness` does")
	quiet := fs.Bool("q", false, "print nothing when the files are valid")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: vipgate check [--node [--witness]] FILE...\n\n")
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(files) == 0 {
		fs.Usage()
		return 2
	}
	status := 0
	for _, f := range files {
		var err error
		var c *config.Cluster
		if *node {
			role := ""
			if *witness {
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
		if !*quiet {
			fmt.Fprintf(stdout, "%s: ok\n", f)
		}
	}
	return status
}
