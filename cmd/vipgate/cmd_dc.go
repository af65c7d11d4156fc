package main

import (
	"context"
	"fmt"
	"os"
)

// cmdDC is a placeholder until its subsystem lands.
func cmdDC(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "vipgate dc: not available in this build")
	return 2
}
