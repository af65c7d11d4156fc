package main

import "context"

func cmdCheck(ctx context.Context, args []string) int { return 2 }
