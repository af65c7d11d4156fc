package main

import (
	"context"
	"fmt"
	"os"
)

// cmdImport is a placeholder until its subsystem lands.
func cmdImport(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "vipgate import: not available in this build")
	return 2
}
