package health

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// Budget is how long one check may take, as HAProxy bounds it: with
// `timeout check` set, the connect may take min(timeout connect, inter)
// and, once connected, the rest of the check `timeout check`; without it,
// the whole check, connect included, takes at most inter.
type Budget struct {
	// Total bounds the whole check (the context deadline).
	Total time.Duration
	// Connect bounds the connect alone; 0 = only Total.
	Connect time.Duration
	// Read bounds the check from the moment the connection is established;
	// 0 = only Total.
	Read time.Duration
}

// CheckBudget computes the bounds of one check of c (a defaulted config).
func CheckBudget(c *config.Check) Budget {
	inter := c.Inter.D()
	if c.Timeout <= 0 {
		return Budget{Total: inter}
	}
	if c.Kind == "lua" || c.Kind == "exec" {
		// Nothing to connect: the script or command has timeout check.
		return Budget{Total: c.Timeout.D()}
	}
	connect := c.ConnectTimeout.D()
	if connect <= 0 || (inter > 0 && connect > inter) {
		connect = inter
	}
	return Budget{Total: connect + c.Timeout.D(), Connect: connect, Read: c.Timeout.D()}
}

type budgetKey struct{}

// WithBudget attaches b to ctx for Dial (the context's own deadline should
// be b.Total).
func WithBudget(ctx context.Context, b Budget) context.Context {
	return context.WithValue(ctx, budgetKey{}, b)
}

type sendProxyKey struct{}

// WithSendProxy makes Dial start the connection with a PROXY protocol
// header ("v1" or "v2"; "" or "none": without).
func WithSendProxy(ctx context.Context, version string) context.Context {
	if version == "" || version == "none" {
		return ctx
	}
	return context.WithValue(ctx, sendProxyKey{}, version)
}

// The PROXY headers of a health check, as HAProxy sends them: a check
// stands for no client, so v1 says UNKNOWN and v2 is a LOCAL command;
// servers then use the connection's own addresses.
var (
	proxyV1Check = []byte("PROXY UNKNOWN\r\n")
	proxyV2Check = []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")
)

// Dial opens a check's connection: the connect is bounded by the check's
// connect budget, and from the moment it is established the connection's
// deadline is the read budget (else the context's deadline). The
// connection closes with RST, as HAProxy's checks do: a check every 2s to
// every server must not pile up TIME_WAIT sockets on the gateway. Check
// kinds that connect use it so that `timeout check` means what it means
// in HAProxy.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	b, _ := ctx.Value(budgetKey{}).(Budget)
	dctx := ctx
	if b.Connect > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, b.Connect)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(dctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	if b.Read > 0 {
		_ = c.SetDeadline(time.Now().Add(b.Read))
	} else if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if v, _ := ctx.Value(sendProxyKey{}).(string); v != "" {
		hdr := proxyV1Check
		if v == "v2" {
			hdr = proxyV2Check
		}
		if _, err := c.Write(hdr); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("sending the PROXY header: %w", err)
		}
	}
	return c, nil
}
