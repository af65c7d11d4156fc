package main

import (
	"context"
	"fmt"
	"os"
)

// cmdConfig is a placeholder until its subsystem lands.
func cmdConfig(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "vipgate config: not available in this build")
	return 2
}
