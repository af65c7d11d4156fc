package main

import (
	"context"
	"fmt"
	"os"
)

// cmdApply is a placeholder until its subsystem lands.
func cmdApply(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "vipgate apply: not available in this build")
	return 2
}
