package main

import (
	"context"
	"os"

	"github.com/vipgate/vipgate/core/config/importer"
)

// cmdImport translates haproxy.cfg and/or keepalived.conf into a cluster
// document (docs/migration.md). The command itself lives in the importer
// package so its tests can drive it end to end.
func cmdImport(ctx context.Context, args []string) int {
	return importer.RunCLI(args, os.Stdout, os.Stderr)
}
