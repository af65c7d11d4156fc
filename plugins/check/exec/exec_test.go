package exec_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/internal/testenv"
	chkexec "github.com/vipgate/vipgate/plugins/check/exec"
)

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t *testing.T, c *config.Check, timeout time.Duration) health.Result {
	t.Helper()
	c.Kind = "exec"
	ch, err := chkexec.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return ch.Check(ctx, health.Target{Backend: "exchange", Server: "ex1", Addr: "198.18.0.10:443", Check: c})
}

func TestExec(t *testing.T) {
	testenv.RequireTool(t, "sh")
	// The HAProxy external-check interface: four trailing arguments and the
	// HAPROXY_* variables.
	haproxyStyle := script(t, `
[ "$#" = 5 ] || { echo "argc $#"; exit 2; }
[ "$1" = "--flag" ] || { echo "arg1 $1"; exit 2; }
[ "$2" = NOT_USED ] && [ "$3" = NOT_USED ] || { echo "proxy args $2 $3"; exit 2; }
[ "$4" = 198.18.0.10 ] && [ "$5" = 443 ] || { echo "server args $4 $5"; exit 2; }
[ "$HAPROXY_SERVER_ADDR" = 198.18.0.10 ] && [ "$HAPROXY_SERVER_PORT" = 443 ] || { echo "env addr"; exit 2; }
[ "$HAPROXY_SERVER_NAME" = ex1 ] && [ "$HAPROXY_PROXY_NAME" = exchange ] || { echo "env names"; exit 2; }
[ "$VIPGATE_BACKEND/$VIPGATE_SERVER" = exchange/ex1 ] || { echo "vipgate env"; exit 2; }
[ "$VIPGATE_PARAM_MAIL_DB" = db01 ] || { echo "param $VIPGATE_PARAM_MAIL_DB"; exit 2; }
[ -z "$HOME" ] || { echo "environment leaked"; exit 2; }
exit 0
`)
	tests := []struct {
		name   string
		check  config.Check
		ok     bool
		reason string
	}{
		{"exit 0", config.Check{Command: []string{"true"}}, true, ""},
		{"exit 1 with message", config.Check{Command: []string{script(t, "echo 'database dismounted'\necho second line\nexit 1")}}, false, "exit status 1: database dismounted"},
		{"haproxy interface", config.Check{Command: []string{haproxyStyle, "--flag"}, Params: map[string]string{"mail-db": "db01"}}, true, ""},
		{"not found", config.Check{Command: []string{"/nonexistent/check"}}, false, `command "/nonexistent/check" not found`},
		{"not in PATH", config.Check{Command: []string{"no-such-check-command"}}, false, `command "no-such-check-command" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, &tt.check, 5*time.Second)
			if r.OK != tt.ok || !strings.HasPrefix(r.Reason, tt.reason) {
				t.Fatalf("got ok=%v reason=%q, want ok=%v reason %q", r.OK, r.Reason, tt.ok, tt.reason)
			}
		})
	}
}

// A timed-out check kills the whole process group, including what the
// script started in the background.
func TestExecTimeoutKillsGroup(t *testing.T) {
	testenv.RequireTool(t, "sh")
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	s := script(t, "sleep 60 &\necho $! > "+pidFile+"\nsleep 60\n")
	start := time.Now()
	r := run(t, &config.Check{Command: []string{s}}, 300*time.Millisecond)
	if r.OK || r.Reason != "timeout" {
		t.Fatalf("got %+v, want a timeout", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("check took %s despite a 300ms timeout", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "background child killed", func() bool {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true // gone
		}
		// Killed but not yet reaped by init is dead too.
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
	})
	_ = syscall.Kill(pid, syscall.SIGKILL) // in case the assertion failed
}

func TestExecNeedsCommand(t *testing.T) {
	if _, err := chkexec.New(&config.Check{Kind: "exec"}); err == nil {
		t.Fatal("empty command accepted")
	}
}

func BenchmarkExecCheck(b *testing.B) {
	ch, err := chkexec.New(&config.Check{Kind: "exec", Command: []string{"true"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if r := ch.Check(ctx, health.Target{Addr: "127.0.0.1:1"}); !r.OK {
			b.Fatal(r.Reason)
		}
	}
}
