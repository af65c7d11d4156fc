package main

import "context"

func cmdStatus(ctx context.Context, args []string) int { return 2 }
