package checktest

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/health"
)

// ReadBudgetEndsCheck runs ch against a server that accepts and never
// answers, with a 100ms read budget (HAProxy's "timeout check") and no
// overall deadline but a one-minute safety net: the check must end by
// itself, failed with "timeout".
func ReadBudgetEndsCheck(t *testing.T, ch health.Checker) {
	t.Helper()
	silent := Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bctx := health.WithBudget(ctx, health.Budget{Total: time.Hour, Connect: 5 * time.Second, Read: 100 * time.Millisecond})
	r := ch.Check(bctx, health.Target{Addr: silent})
	if ctx.Err() != nil {
		t.Fatal("the check ran until the safety deadline: the read budget was not applied")
	}
	if r.OK || !strings.Contains(r.Reason, "timeout") {
		t.Fatalf("silent server with a 100ms read budget: %+v, want a timeout", r)
	}
}
