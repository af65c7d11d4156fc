package main

import (
	"context"
	"fmt"
	"os"
)

// cmdAlerts is a placeholder until its subsystem lands.
func cmdAlerts(ctx context.Context, args []string) int {
	fmt.Fprintln(os.Stderr, "vipgate alerts: not available in this build")
	return 2
}
