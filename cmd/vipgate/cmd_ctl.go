package main

import "context"

func cmdCtl(ctx context.Context, args []string) int { return 2 }
