package health

import (
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
