// Package track holds the VRRP track sources other than Lua: process
// present, interface up, the local proxy's health, and the glue that turns
// a `track:` entry of the config into a source — reusing the health-check
// registry for the exec, http and lua kinds so they behave exactly like
// health checks of the same kind.
package track

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vipgate/vipgate/cluster/vrrp"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/health"
)

// LocalHealther is the part of the proxy the "proxy" kind asks.
type LocalHealther interface {
	LocalHealthy(frontends []string) (bool, string)
}

// Options are what the factory needs from the node. Either may be nil;
// then the kinds needing it are reported as unavailable.
type Options struct {
	Checks *health.Registry
	Proxy  LocalHealther
	// ProcRoot is /proc unless a test says otherwise.
	ProcRoot string
}

// Factory builds track sources for every kind of config.VRRPTrack.
func Factory(o Options) vrrp.TrackFactory {
	return func(t *config.VRRPTrack) (vrrp.TrackSource, error) {
		switch t.Kind {
		case "process":
			return Process{Name: t.Process, ProcRoot: o.ProcRoot}, nil
		case "interface":
			return Interface{Name: t.Interface}, nil
		case "file":
			return File{Path: t.File, Weight: t.Weight}, nil
		case "proxy":
			if o.Proxy == nil {
				return nil, errors.New("kind proxy: this node runs no proxy")
			}
			fe := append([]string(nil), t.Frontends...)
			return vrrp.TrackFunc(func(context.Context) health.Result {
				ok, why := o.Proxy.LocalHealthy(fe)
				return health.Result{OK: ok, Reason: why}
			}), nil
		case "exec":
			// Not the health-check exec kind: that one appends HAProxy's
			// server arguments, which breaks keepalived scripts such as
			// `killall -0 haproxy`. A track script runs exactly as written.
			if len(t.Command) == 0 {
				return nil, errors.New("exec track needs a command")
			}
			return Exec{Argv: append([]string(nil), t.Command...), Params: t.Params}, nil
		case "lua", "http":
			if o.Checks == nil {
				return nil, fmt.Errorf("kind %s: no health-check registry", t.Kind)
			}
			c := &config.Check{Kind: t.Kind, Timeout: t.Timeout, Script: t.Script, Command: t.Command, Params: t.Params}
			var target health.Target
			if t.Kind == "http" {
				u, err := url.Parse(t.URL)
				if err != nil {
					return nil, fmt.Errorf("url %q: %w", t.URL, err)
				}
				port := u.Port()
				if port == "" {
					port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
				}
				c.SSL = u.Scheme == "https"
				c.Verify = "required"
				c.HTTP = &config.HTTPCheck{Path: u.RequestURI(), Host: u.Host}
				target.Addr = net.JoinHostPort(u.Hostname(), port)
			}
			target.Check = c
			ch, err := o.Checks.New(c)
			if err != nil {
				return nil, err
			}
			return vrrp.TrackFunc(func(ctx context.Context) health.Result { return ch.Check(ctx, target) }), nil
		}
		return nil, fmt.Errorf("unknown track kind %q", t.Kind)
	}
}

// Process is OK while a process with this name runs: its comm (as in
// `ps -e`) or the base name of its argv[0] (keepalived track_process).
type Process struct {
	Name     string
	ProcRoot string
}

// Check implements vrrp.TrackSource.
func (p Process) Check(ctx context.Context) health.Result {
	root := p.ProcRoot
	if root == "" {
		root = "/proc"
	}
	start := time.Now()
	ents, err := os.ReadDir(root)
	if err != nil {
		return health.Result{Reason: err.Error()}
	}
	for _, e := range ents {
		if ctx.Err() != nil {
			return health.Result{Reason: "timed out scanning processes"}
		}
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if comm, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil && string(bytes.TrimSpace(comm)) == p.Name {
			return health.Result{OK: true, Duration: time.Since(start)}
		}
		if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cmd) > 0 {
			argv0, _, _ := bytes.Cut(cmd, []byte{0})
			if filepath.Base(string(argv0)) == p.Name {
				return health.Result{OK: true, Duration: time.Since(start)}
			}
		}
	}
	return health.Result{Reason: "process " + p.Name + " is not running", Duration: time.Since(start)}
}

// File is keepalived's track_file: the file holds a number, read at every
// check (keepalived watches it with inotify; the track interval bounds the
// delay here). With Weight 0 a non-zero number fails the track (FAULT);
// otherwise the number times Weight is the track's priority delta, FAULT
// below -253. A missing file reads as 0, what keepalived's init_file
// writes; a file that does not hold a number is FAULT, since whoever wrote
// it meant to change something.
type File struct {
	Path   string
	Weight int
}

// Check implements vrrp.TrackSource.
func (f File) Check(context.Context) health.Result {
	b, err := os.ReadFile(f.Path)
	var v int64
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fileFault(err.Error())
	default:
		text := strings.TrimSpace(string(b))
		v, err = strconv.ParseInt(text, 10, 32)
		if err != nil {
			if len(text) > 40 {
				text = text[:40] + "…"
			}
			return fileFault(fmt.Sprintf("file %s holds %q, not a number", f.Path, text))
		}
	}
	if f.Weight == 0 {
		if v != 0 {
			return health.Result{Reason: fmt.Sprintf("file %s holds %d", f.Path, v)}
		}
		return health.Result{OK: true}
	}
	d := max(min(v*int64(f.Weight), 1<<20), -1<<20)
	r := health.Result{OK: d >= -253, PriorityDelta: int(d), HasDelta: true}
	if !r.OK {
		r.Reason = fmt.Sprintf("file %s holds %d (× weight %d = %d, below -253)", f.Path, v, f.Weight, d)
	}
	return r
}

// fileFault is a track file that cannot be read as a number: FAULT
// whatever the weight.
func fileFault(reason string) health.Result {
	return health.Result{Reason: reason, PriorityDelta: -254, HasDelta: true}
}

// Interface is OK while the interface exists, is up and has carrier.
type Interface struct{ Name string }

// Check implements vrrp.TrackSource.
func (i Interface) Check(context.Context) health.Result {
	ifi, err := net.InterfaceByName(i.Name)
	if err != nil {
		return health.Result{Reason: "interface " + i.Name + ": " + err.Error()}
	}
	switch {
	case ifi.Flags&net.FlagUp == 0:
		return health.Result{Reason: "interface " + i.Name + " is down"}
	case ifi.Flags&net.FlagRunning == 0:
		return health.Result{Reason: "interface " + i.Name + " has no carrier"}
	}
	return health.Result{OK: true}
}

// Exec runs a command; exit status 0 is OK (keepalived vrrp_script). It
// runs in its own process group, killed when the timeout ends, and gets
// VIPGATE_PARAM_<NAME> for each param.
type Exec struct {
	Argv   []string
	Params map[string]string
}

// Check implements vrrp.TrackSource.
func (e Exec) Check(ctx context.Context) health.Result {
	start := time.Now()
	cmd := exec.CommandContext(ctx, e.Argv[0], e.Argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for k, v := range e.Params {
		cmd.Env = append(cmd.Env, "VIPGATE_PARAM_"+strings.ToUpper(k)+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r := health.Result{OK: err == nil, Duration: time.Since(start)}
	if err != nil {
		msg := strings.TrimSpace(out.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if len(msg) > 200 {
			msg = msg[:200]
		}
		r.Reason = err.Error()
		if ctx.Err() != nil {
			r.Reason = "timed out"
		}
		if msg != "" {
			r.Reason += ": " + msg
		}
	}
	return r
}
