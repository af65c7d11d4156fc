package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGenDocsCmd writes the man pages and shell completions of the command
// tree (make deb packages them; docs/operations.md). Hidden: it is a build
// step, not an operator's command.
func newGenDocsCmd(root *cobra.Command) *cobra.Command {
	var man, completions string
	cmd := &cobra.Command{
		Use:    "gendocs",
		Short:  "write the man pages and shell completions of every command",
		Hidden: true,
		Args:   exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if man == "" && completions == "" {
				return usageErrorf("give --man DIR and/or --completions DIR")
			}
			// The default completion command is added at execution; the
			// pages should describe it as well.
			root.InitDefaultCompletionCmd()
			if man != "" {
				if err := os.MkdirAll(man, 0o755); err != nil {
					return err
				}
				// The date comes from SOURCE_DATE_EPOCH when set (reproducible builds).
				hdr := &doc.GenManHeader{Section: "1", Source: "vipgate " + version, Manual: "vipgate manual"}
				if err := doc.GenManTree(root, hdr, man); err != nil {
					return fmt.Errorf("man pages: %w", err)
				}
			}
			if completions != "" {
				if err := os.MkdirAll(completions, 0o755); err != nil {
					return err
				}
				for name, gen := range map[string]func(string) error{
					"vipgate.bash": func(f string) error { return root.GenBashCompletionFileV2(f, true) },
					"_vipgate":     root.GenZshCompletionFile,
					"vipgate.fish": func(f string) error { return root.GenFishCompletionFile(f, true) },
				} {
					if err := gen(filepath.Join(completions, name)); err != nil {
						return fmt.Errorf("completion %s: %w", name, err)
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&man, "man", "", "write the man pages (section 1) into this directory")
	cmd.Flags().StringVar(&completions, "completions", "", "write the bash, zsh and fish completions into this directory")
	return cmd
}
