package main

import (
	"context"
	"fmt"
	"os"
)

// cmdCluster is a placeholder until its subsystem lands.
func cmdCluster(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "vipgate cluster: not available in this build")
	return 2
}
