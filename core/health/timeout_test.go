package health

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

// TestCheckBudget: the bounds of one check follow HAProxy's "timeout check"
// rule. Without it, the whole check (connect + read) takes at most inter;
// with it, the connect takes at most min(timeout connect, inter) and the
// rest of the check timeout check.
func TestCheckBudget(t *testing.T) {
	const ms = time.Millisecond
	for _, tt := range []struct {
		name, timeouts, check string
		want                  Budget
	}{
		{"no timeout check: whole check bounded by inter, not by a shorter connect",
			"{connect: 1s}", "{inter: 2s}", Budget{Total: 2000 * ms}},
		{"no timeout check, connect longer than inter",
			"{connect: 5s}", "{inter: 2s}", Budget{Total: 2000 * ms}},
		{"timeout check: connect min(connect, inter), read timeout check",
			"{connect: 1s, check: 500ms}", "{inter: 2s}", Budget{Total: 1500 * ms, Connect: 1000 * ms, Read: 500 * ms}},
		{"timeout check with connect longer than inter",
			"{connect: 10s, check: 3s}", "{inter: 2s}", Budget{Total: 5000 * ms, Connect: 2000 * ms, Read: 3000 * ms}},
		{"check.timeout is timeout check too",
			"{connect: 1s}", "{inter: 2s, timeout: 300ms}", Budget{Total: 1300 * ms, Connect: 1000 * ms, Read: 300 * ms}},
		{"exec: nothing to connect, timeout check bounds the command",
			"{connect: 1s, check: 4s}", "{inter: 2s, kind: exec, command: [/bin/true]}", Budget{Total: 4000 * ms}},
		{"exec without timeout check: inter",
			"{connect: 1s}", "{inter: 2s, kind: exec, command: [/bin/true]}", Budget{Total: 2000 * ms}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := "backends:\n  - {name: a, timeouts: " + tt.timeouts + ", check: " + tt.check +
				", servers: [{name: s, address: '127.0.0.1:1'}]}\n"
			c, err := config.Parse("t.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := CheckBudget(c.Backends[0].Check); got != tt.want {
				t.Fatalf("budget %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDialSendProxy: with send_proxy a check's connection starts with
// HAProxy's health-check PROXY header (v1 UNKNOWN, v2 LOCAL), which
// PROXY-protocol servers accept without client addresses; without it,
// nothing is sent first.
func TestDialSendProxy(t *testing.T) {
	tests := []struct {
		version string
		want    string
	}{
		{"v1", "PROXY UNKNOWN\r\n"},
		{"v2", "\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"},
		{"none", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, _ := io.ReadAll(c)
				got <- string(b)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := Dial(WithSendProxy(ctx, tt.version), "tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write([]byte("x"))
			c.(*net.TCPConn).CloseWrite()
			if g := <-got; g != tt.want+"x" {
				t.Fatalf("server read %q, want %q", g, tt.want+"x")
			}
			c.Close()
		})
	}
}
