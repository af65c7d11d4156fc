// Package exec is the "exec" health check kind (HAProxy's external-check):
// a command that exits 0 when the server is healthy. It gets the server in
// its arguments and environment the way HAProxy passes them, so existing
// external-check scripts work unchanged:
//
//	argv: command [args...] <proxy_address> <proxy_port> <server_address> <server_port>
//
// with NOT_USED for the proxy address and port (a vipgate backend has no
// listener of its own), and the environment HAPROXY_PROXY_NAME,
// HAPROXY_SERVER_NAME, HAPROXY_SERVER_ADDR, HAPROXY_SERVER_PORT plus
// VIPGATE_BACKEND, VIPGATE_SERVER, VIPGATE_SERVER_ADDR, VIPGATE_SERVER_PORT
// and VIPGATE_PARAM_<NAME> for each of the check's params. The command runs
// in its own process group, which is killed when the check times out.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
)

// Path is the PATH the command runs with; the rest of vipgate's
// environment is not passed (HAProxy clears it too).
const Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// maxOutput bounds what is kept of the command's output for the reason.
const maxOutput = 4 << 10

// Checker runs the command once per Check call; it is safe for concurrent use.
type Checker struct {
	argv   []string
	params []string // VIPGATE_PARAM_X=v, sorted
}

// New builds an exec checker from a validated check config.
func New(c *config.Check) (health.Checker, error) {
	if len(c.Command) == 0 || c.Command[0] == "" {
		return nil, errors.New("an exec check needs command")
	}
	ch := &Checker{argv: append([]string(nil), c.Command...)}
	for k, v := range c.Params {
		ch.params = append(ch.params, "VIPGATE_PARAM_"+envName(k)+"="+v)
	}
	sort.Strings(ch.params)
	return ch, nil
}

func envName(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
}

// limited keeps the first maxOutput bytes and discards the rest.
type limited struct{ bytes.Buffer }

func (l *limited) Write(p []byte) (int, error) {
	if room := maxOutput - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Check runs the command for t.
func (ch *Checker) Check(ctx context.Context, t health.Target) health.Result {
	start := time.Now()
	host, port, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return health.Result{Reason: fmt.Sprintf("address %q: %v", t.Addr, err)}
	}
	args := append(append([]string(nil), ch.argv[1:]...), "NOT_USED", "NOT_USED", host, port)
	cmd := exec.CommandContext(ctx, ch.argv[0], args...)
	cmd.Env = append([]string{
		"PATH=" + Path,
		"HAPROXY_PROXY_NAME=" + t.Backend,
		"HAPROXY_PROXY_ADDR=", "HAPROXY_PROXY_PORT=",
		"HAPROXY_SERVER_NAME=" + t.Server,
		"HAPROXY_SERVER_ADDR=" + host,
		"HAPROXY_SERVER_PORT=" + port,
		"VIPGATE_BACKEND=" + t.Backend,
		"VIPGATE_SERVER=" + t.Server,
		"VIPGATE_SERVER_ADDR=" + host,
		"VIPGATE_SERVER_PORT=" + port,
	}, ch.params...)
	cmd.Dir = "/"
	// Its own process group, so a timeout kills what the script started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A background child that keeps stdout open must not hold the check.
	cmd.WaitDelay = time.Second
	var out limited
	cmd.Stdout, cmd.Stderr = &out, &out

	err = cmd.Run()
	d := time.Since(start)
	if ctx.Err() != nil {
		return health.Result{Reason: health.Reason(ctx.Err()), Duration: d}
	}
	if err == nil {
		return health.Result{OK: true, Duration: d}
	}
	var ee *exec.ExitError
	reason := err.Error()
	if errors.As(err, &ee) {
		reason = ee.ProcessState.String() // "exit status 1", "signal: killed"
	} else if errors.Is(err, exec.ErrNotFound) || errors.Is(err, syscall.ENOENT) {
		reason = fmt.Sprintf("command %q not found", ch.argv[0])
	}
	if line := firstLine(out.String()); line != "" {
		reason += ": " + line
	}
	return health.Result{Reason: reason, Duration: d}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.TrimSpace(s)
}
