package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/vipgate/vipgate/cluster/state"
	"github.com/vipgate/vipgate/core/admin"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/internal/logtarget"
)

// cmdRun is `vipgate run ARGS...` (the tests call it so).
func cmdRun(ctx context.Context, args []string) int {
	return runSub(ctx, "run", args, os.Stdout, os.Stderr)
}

func newRunCmd() *cobra.Command {
	var nodeFile, cfgFile, demoBackends string
	var witness bool
	cmd := &cobra.Command{
		Use:   "run [--node node.yaml] [--config cluster.yaml] [--witness]",
		Short: "run a node (proxy, VRRP, raft, DNS, alerts)",
		Long: `Run a node: the proxy, VRRP, raft, DNS and alerting its node file and the
cluster config ask for, until SIGTERM or SIGINT.

Without --node it reads $VIPGATE_NODE, else ` + defaultNodeFile + `.
SIGHUP reloads: a standalone node re-reads its cluster file, a raft node
re-applies the committed config (its node-local files may have changed).
Under systemd (Type=notify) it reports READY once listeners, VRRP and DNS
are up, RELOADING around a reload, WATCHDOG and STOPPING.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			stderr := cmd.ErrOrStderr()
			role := ""
			if witness {
				role = config.RoleWitness
			}
			file, err := nodeFileOrDefault(nodeFile)
			if err != nil {
				return err
			}
			node, err := loadNodeAs(file, role)
			if err != nil {
				return err
			}
			if cfgFile != "" {
				node.Config = cfgFile
			}
			logs, level := newLogs(node.Log, stderr)
			log := logs.Log
			if demoBackends != "" {
				if err := startDemoBackends(ctx, strings.Split(demoBackends, ",")); err != nil {
					return fmt.Errorf("demo backends: %w", err)
				}
			}
			if err := runNodeLogs(ctx, node, logs, level); err != nil {
				// The log targets' senders have stopped with the node: why
				// it stopped goes to stderr (systemd's journal) when they
				// do not already.
				if !logsToStderr(node.Log) {
					log = slog.New(slog.NewTextHandler(stderr, nil))
				}
				reportRunError(stderr, log, err)
				return exitCode(exitFailed)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&nodeFile, "node", "", "node bootstrap file (name, datacenter, data_dir, listen addresses; default $VIPGATE_NODE or "+defaultNodeFile+")")
	f.StringVar(&cfgFile, "config", "", "cluster config file (standalone mode, or to seed a new raft cluster)")
	f.BoolVar(&witness, "witness", false, "run as a raft witness only (no proxy, no VRRP, no DNS)")
	f.StringVar(&demoBackends, "demo-backends", "", "start demo HTTP backends on these comma-separated addresses (for make run)")
	_ = cmd.MarkFlagFilename("node", "yaml", "yml")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

// reportRunError says why the node stopped. A config that does not
// validate is printed as vipgate check prints it, one problem a line (in a
// log line the problems would be one escaped string).
func reportRunError(w io.Writer, log *slog.Logger, err error) {
	var ce *config.Error
	if !errors.As(err, &ce) {
		log.Error("node stopped", "err", err)
		return
	}
	fmt.Fprintf(w, "vipgate run: the cluster config has %d problem(s); nothing was started:\n%s\n", len(ce.Problems), ce.Error())
	log.Error("node stopped: the cluster config is not valid", "problems", len(ce.Problems))
}

// logConfigError logs a refused config (a reload): one summary line, then
// one line per problem with its position.
func logConfigError(log *slog.Logger, msg, file string, err error) {
	var ce *config.Error
	if !errors.As(err, &ce) {
		log.Error(msg, "file", file, "err", err)
		return
	}
	log.Error(msg, "file", file, "problems", len(ce.Problems))
	for _, p := range ce.Problems {
		log.Error("config problem", "at", p.Pos.String(), "path", p.Path, "problem", p.Msg)
	}
}

// defaultNodeFile is the node file `vipgate run` reads without --node, where
// the Debian package installs it.
const defaultNodeFile = "/etc/vipgate/node.yaml"

// nodeFileOrDefault is the node file to run: the flag's, else
// $VIPGATE_NODE (a second instance on one host, tests), else
// defaultNodeFile, which must then exist: a node made up from defaults
// would not be the one the operator meant.
func nodeFileOrDefault(flagFile string) (string, error) {
	if flagFile != "" {
		return flagFile, nil
	}
	file, from := defaultNodeFile, "the default"
	if e := os.Getenv("VIPGATE_NODE"); e != "" {
		file, from = e, "from VIPGATE_NODE"
	}
	if _, err := os.Stat(file); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("no node file: %s (%s without --node) does not exist; give --node FILE (see examples/quickstart/node.yaml)", file, from)
		}
		return "", fmt.Errorf("node file %s (%s without --node): %w", file, from, err)
	}
	return file, nil
}

// loadNode reads the bootstrap file, or makes a local one for standalone use.
func loadNode(file string) (*config.Node, error) { return loadNodeAs(file, "") }

// loadNodeAs is loadNode with the role overridden (when not empty) before
// the file is validated, so that --witness judges the file as a witness's.
func loadNodeAs(file, role string) (*config.Node, error) {
	if file == "" {
		host, _ := os.Hostname()
		if host == "" || !config.ValidName(host) {
			host = "node1"
		}
		return config.ParseNodeAs("(defaults)", []byte(fmt.Sprintf(
			"name: %s\ndatacenter: dc1\ndata_dir: %s\n", host, filepath.Join(os.TempDir(), "vipgate-"+host))), role)
	}
	return config.LoadNodeFileAs(file, role)
}

func newLogger(c config.NodeLog) (*slog.Logger, *slog.LevelVar) {
	logs, lv := newLogs(c, os.Stderr)
	return logs.Log, lv
}

// logsToStderr reports whether the node's own log is written to stderr
// (no targets, or stderr among them).
func logsToStderr(c config.NodeLog) bool {
	if len(c.Targets) == 0 {
		return true
	}
	for _, t := range c.Targets {
		if t.Address == "stderr" {
			return true
		}
	}
	return false
}

// newLogs builds the node's loggers on its log targets (stderr alone
// without targets).
func newLogs(c config.NodeLog, stderr io.Writer) (*logtarget.Set, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	_ = lv.UnmarshalText([]byte(c.Level))
	return logtarget.New(c, lv, stderr), lv
}

// runNode wires and runs every subsystem until ctx ends, with the access
// lines on log.
func runNode(ctx context.Context, node *config.Node, log *slog.Logger, level *slog.LevelVar) error {
	return runNodeLogs(ctx, node, &logtarget.Set{Log: log, Access: log}, level)
}

// runNodeLogs is runNode with the node's log targets: their senders run as
// long as the node.
func runNodeLogs(ctx context.Context, node *config.Node, logs *logtarget.Set, level *slog.LevelVar) error {
	log := logs.Log
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Caught from the start: by default SIGHUP and SIGUSR1 end a process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	// The log senders outlive ctx: a graceful stop still logs the
	// connections that finish during its grace.
	logsCtx, endLogs := context.WithCancel(context.WithoutCancel(ctx))
	logsDone := make(chan struct{})
	go func() { defer close(logsDone); _ = logs.Run(logsCtx, log) }()
	defer func() { endLogs(); <-logsDone }()
	if err := os.MkdirAll(node.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// The frontends' own log targets (log_targets) follow the config;
	// the other access lines go to the node's.
	router := logtarget.NewRouter(logs.Access.Handler(), level, node.Log.Format)
	bus := events.New(node.Name, node.Datacenter)
	adm := admin.New(log.With("sub", "admin"), node.Admin.Tokens, node.Admin.ReadTokens)
	e := &env{
		Node: node, Log: log, Bus: bus, Admin: adm,
		Checks:    health.NewRegistry(),
		IsLeader:  func() bool { return true },
		Metrics:   prometheus.NewRegistry(),
		LogLevel:  level,
		AccessLog: slog.New(router),
	}
	e.Metrics.MustRegister(logTargetCollector{logs, router})
	e.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerNodeAdmin(ctx, e)
	registerBuiltinChecks(e.Checks)

	// The source first: every subsystem built below subscribes to it.
	src, err := newConfigSource(e)
	if err != nil {
		return err
	}
	e.Source = src
	cfgNow := func() *config.Cluster {
		if rs, ok := src.(*raftSource); ok {
			return rs.n.State().Config
		}
		if e.Proxy != nil {
			return e.Proxy.Config()
		}
		return nil
	}
	registerDecisionMetrics(e, src, clusterDatacenters(cfgNow))

	subs := []subsystem{accessLogRouter{router}}
	var px *proxySubsystem
	var ts *transparentSub
	if node.Role != config.RoleWitness {
		px = newProxySubsystem(e)
		e.Proxy = px.proxy
		// Order matters: scripting and persistence install their hooks
		// into the proxy before it applies a config that names them.
		for _, mk := range []func(*env) (subsystem, error){newLua, newStickSync} {
			s, err := mk(e)
			if err != nil {
				return err
			}
			if s != nil {
				subs = append(subs, s)
			}
		}
		// The committed server overrides follow the proxy: enforced on
		// commit, and again after each reconcile (it may replace servers).
		ov := state.NewOverrides(px.proxy)
		src.Subscribe(ov)
		// The routing of transparent-source backends is in place before
		// the proxy's first connection from a client's address.
		ts = newTransparent(e)
		subs = append(subs, ts, px, ov)
	}

	if node.Role != config.RoleWitness {
		for _, mk := range []func(*env) (subsystem, error){newDR, newVRRP, newDNS, newAlerts} {
			s, err := mk(e)
			if err != nil {
				return err
			}
			if s != nil {
				subs = append(subs, s)
			}
		}
	} else {
		s, err := newAlerts(e)
		if err != nil {
			return err
		}
		if s != nil {
			subs = append(subs, s)
		}
	}
	subs = append(subs, newCertWatch(e))
	if e.Proxy != nil {
		registerProxyAdmin(e)
	}
	wireLuaDNS(subs)

	ln, err := net.Listen("tcp", node.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin api on %s: %w", node.Admin.Listen, err)
	}
	if !adm.AuthEnabled() && !isLoopback(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("admin api on %s: without tokens the admin API may only listen on loopback", node.Admin.Listen)
	}
	tlsCfg, err := adminTLS(node.Admin.TLS)
	if err != nil {
		ln.Close()
		return err
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(subs)+3)
	// The proxy (for its open connections) and the admin API outlive ctx
	// by a graceful stop's grace: lastCtx ends when that is over.
	lastCtx, endLast := context.WithCancel(context.WithoutCancel(ctx))
	defer endLast()
	runIn := func(ctx context.Context, name string, f func(context.Context) error) <-chan struct{} {
		wg.Add(1)
		done := make(chan struct{})
		go func() {
			defer wg.Done()
			defer close(done)
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		return done
	}
	run := func(name string, f func(context.Context) error) <-chan struct{} { return runIn(ctx, name, f) }
	runIn(lastCtx, "admin", func(ctx context.Context) error { return adm.Serve(ctx, ln, tlsCfg) })
	run("config", src.Run)
	stopReq := registerStopAdmin(e, cancel)

	// Apply the first snapshot before starting subsystems, so that they
	// start configured (listeners open before the first connection).
	var first *config.Cluster
	select {
	case first = <-src.Updates():
	case err := <-errc:
		return err
	case <-ctx.Done():
		return nil
	}
	e.configMetrics.applied(applyAll(subs, first, log))
	if err := listenEarly(subs); err != nil {
		return err
	}
	var vrrpDone <-chan struct{} // closed once VRRP has resigned (a stop)
	for _, s := range subs {
		switch {
		// The transparent-source routing stays while the proxy's
		// connections from client addresses finish.
		case s == subsystem(px) || (ts != nil && s == subsystem(ts)):
			runIn(lastCtx, s.Name(), s.Run)
		case s.Name() == "vrrp":
			vrrpDone = run(s.Name(), s.Run)
		default:
			run(s.Name(), s.Run)
		}
	}
	if err := awaitStarted(ctx, subs, errc); err != nil {
		cancel()
		endLast()
		wg.Wait()
		return err
	}
	log.Info("vipgate running", "node", node.Name, "datacenter", node.Datacenter, "role", node.Role,
		"admin", ln.Addr().String(), "version", version)
	if px != nil {
		for fe, addrs := range px.proxy.ListenAddrs() {
			log.Info("listening", "frontend", fe, "addrs", strings.Join(addrs, ","))
		}
	}

	sd, watchdog, stopWatchdog := newNotifier(log)
	defer stopWatchdog()
	if ctx.Err() == nil {
		sd.ready()
	}
	var reloaded <-chan struct{} // a reload under way, READY=1 once done
	for {
		select {
		case c := <-src.Updates():
			e.configMetrics.applied(applyAll(subs, c, log))
		case <-hup:
			// A standalone node re-reads its file; a raft node re-applies
			// the committed document (its node-local files may have changed).
			if reloaded == nil {
				sd.reloading()
			}
			if r, ok := src.(interface{ Reload() }); ok {
				r.Reload()
			}
			if r, ok := src.(reloadAcker); ok {
				reloaded = r.Reloaded()
			} else {
				sd.ready()
			}
		case <-reloaded:
			select {
			case c := <-src.Updates():
				e.configMetrics.applied(applyAll(subs, c, log))
			default:
			}
			reloaded = nil
			sd.ready()
		case <-watchdog:
			sd.watchdog()
		case err := <-errc:
			log.Error("subsystem failed", "err", err)
			cancel()
			endLast()
			wg.Wait()
			return err
		case <-usr1:
			log.Info("SIGUSR1: soft stop")
			cancel()
		case <-ctx.Done():
			// SIGTERM, SIGINT, SIGUSR1 or POST /api/v1/stop: every
			// subsystem stops now (VRRP resigns with priority 0), the
			// proxy accepts nothing new and its connections get the grace.
			sd.stopping()
			if px != nil {
				awaitResigned(vrrpDone, log)
				gracefulStop(px.proxy, stopReq.grace(node.HardStopAfter.D()), log)
			}
			log.Info("shutting down")
			endLast()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				log.Warn("some subsystems did not stop within 10s")
			}
			return nil
		}
	}
}

// applyAll hands a snapshot to every subsystem. A subsystem that cannot
// apply it logs and keeps its previous state; the others go on. It
// reports whether every subsystem applied it.
func applyAll(subs []subsystem, c *config.Cluster, log *slog.Logger) bool {
	ok := true
	for _, s := range subs {
		if err := s.Apply(c); err != nil {
			log.Error("applying config", "subsystem", s.Name(), "err", err)
			ok = false
		}
	}
	return ok
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// newConfigSource builds where config snapshots and committed decisions
// come from: raft when the node file configures it, else the config file.
func newConfigSource(e *env) (configSource, error) {
	rs, err := newRaftSource(e)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	if rs != nil {
		e.IsLeader = rs.n.IsLeader
		e.LeaderContact = rs.n.LeaderContact
		return rs, nil
	}
	if e.Node.Role == config.RoleWitness {
		return nil, errors.New("a witness needs a raft section in its node file")
	}
	if e.Node.Config == "" {
		return nil, errors.New("no cluster config: give --config FILE (or config: in the node file), or configure raft")
	}
	registerStandaloneAdmin(e)
	fs := newFileSource(e.Node.Config, e.Node, e.Log)
	e.Admin.Section("datacenters", func() any { return standaloneDCStatus(e, fs) })
	return fs, nil
}

// staticView judges datacenter health without raft, where nothing is
// committed: this node's datacenter from this gateway alone (its proxy
// when frontends are configured, its VRRP state when VRRP runs here);
// other datacenters are unknown.
type staticView struct{ e *env }

func (v *staticView) DatacenterHealthy(dc string) (bool, bool) {
	if dc != v.e.Node.Datacenter {
		return false, false
	}
	return gatewayHealth(v.e, v.e.Proxy.Config()).Alone().Healthy, true
}

// standaloneDCStatus is the "datacenters" status section of a node
// without raft, in the shape of a raft node's: the file's primary is
// active, this node's datacenter is judged by this gateway alone
// (staticView), the others are unknown.
func standaloneDCStatus(e *env, fs *fileSource) map[string]any {
	out := map[string]any{"standalone": true, "node_datacenter": e.Node.Datacenter, "datacenters": []dcInfo{}}
	d := fs.decisions.Decisions()
	if d == nil || e.Proxy == nil || e.Proxy.Config() == nil {
		return out
	}
	out["active"] = d.Active
	v := &staticView{e: e}
	var dcs []dcInfo
	for _, dc := range e.Proxy.Config().Datacenters {
		i := dcInfo{Name: dc.Name, Role: dc.Role, Active: dc.Name == d.Active}
		if h, known := v.DatacenterHealthy(dc.Name); known {
			i.Healthy = &h
		}
		dcs = append(dcs, i)
	}
	if dcs != nil {
		out["datacenters"] = dcs
	}
	return out
}

// registerStandaloneAdmin answers the raft endpoints (config, membership,
// datacenter decisions) of a node without raft with what to do instead,
// rather than a bare 404.
func registerStandaloneAdmin(e *env) {
	h := func(w http.ResponseWriter, r *http.Request) {
		admin.WriteError(w, http.StatusConflict, fmt.Errorf("this node runs standalone (no raft section in its node file): "+
			"it has no replicated config, membership or datacenter decision; its config is the file given to vipgate run "+
			"(edit it and send SIGHUP), and vipgate ctl acts on this node"))
	}
	for _, p := range []string{"/api/v1/config", "/api/v1/config/", "/api/v1/cluster", "/api/v1/cluster/", "/api/v1/dc", "/api/v1/dc/"} {
		e.Admin.HandleFunc(p, admin.Read, h)
	}
}
