package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
)

// Received is one packet off the wire.
type Received struct {
	Data     []byte
	Src, Dst netip.Addr
	TTL      int
}

// NetIO is everything an instance does to the host. The Linux one is in
// netio_linux.go; tests use a fake.
type NetIO interface {
	// Self is the source address of our advertisements.
	Self() netip.Addr
	Send(b []byte, dst netip.Addr) error
	// Recv delivers received packets until Close.
	Recv() <-chan Received
	// Link delivers the interface's state (true = up); the current state
	// first.
	Link() <-chan bool
	AddVIPs() error
	DelVIPs() error
	// Announce sends one round of gratuitous ARP / unsolicited NA.
	Announce() error
	// Reach makes the unicast peers and us know each other's link-layer
	// address again (after a link came back, neighbour entries are often
	// FAILED and adverts would wait seconds in the ARP queue).
	Reach(peers []netip.Addr) error
	Close() error
}

// Status is one instance in `vipgate status`.
type Status struct {
	Name         string `json:"name"`
	VRID         int    `json:"vrid"`
	Interface    string `json:"interface"`
	State        State  `json:"state"`
	Priority     int    `json:"priority"`
	BasePriority int    `json:"base_priority"`
	Master       string `json:"master,omitempty"`
	// MasterNode names the node behind Master when it is known for
	// certain (see masterNode and Options.NodeOf); "" otherwise.
	MasterNode     string    `json:"master_node,omitempty"`
	LastTransition time.Time `json:"last_transition"`
	LastReason     string    `json:"last_reason,omitempty"`
	// Transitions counts state changes since the instance started.
	Transitions uint64            `json:"transitions"`
	VIPs        []string          `json:"vips"`
	Tracks      []TrackStatus     `json:"tracks,omitempty"`
	Received    uint64            `json:"adverts_received"`
	Sent        uint64            `json:"adverts_sent"`
	Dropped     map[string]uint64 `json:"dropped,omitempty"`
}

// Instance drives one Machine from the network, its tracks and its clock.
type Instance struct {
	name     string
	node     string
	cfg      config.VRRPInstance // owned by the Run goroutine (Update)
	prio     int                 // base priority on this node
	io       NetIO
	m        *Machine
	log      *slog.Logger
	bus      *events.Bus
	tracks   atomic.Pointer[trackRunner] // replaced by Update, read by Status
	now      func() time.Time
	dsts     []netip.Addr
	auth     [8]byte
	vips     map[netip.Addr]bool
	addrs    []netip.Addr // VIPs in config order, as advertised
	group    atomic.Pointer[syncGroup]
	ctl      chan func(time.Time) []Action
	buf      []byte
	sent     atomic.Uint64
	recv     atomic.Uint64
	mu       sync.Mutex
	st       Status
	drops    map[string]uint64
	lastLog  map[string]time.Time
	notifyCh chan []string
	done     chan struct{}
	// Owned by the Run goroutine.
	garpAt     time.Time
	linkDown   bool
	verdict    TrackVerdict
	groupFault string
	stopTracks func() // stops the running track runner
}

// InstanceOptions are an instance's collaborators.
type InstanceOptions struct {
	Node   string // this node's name (for per-node priority)
	IO     NetIO
	Log    *slog.Logger
	Bus    *events.Bus // may be nil
	Tracks []Track
	Now    func() time.Time // default time.Now
}

// NewInstance makes an instance from its validated config.
func NewInstance(cfg config.VRRPInstance, o InstanceOptions) (*Instance, error) {
	if o.IO == nil {
		return nil, errors.New("no network I/O")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	in := &Instance{
		name: cfg.Name, node: o.Node, cfg: cfg, io: o.IO, log: o.Log.With("vrrp", cfg.Name), bus: o.Bus, now: o.Now,
		prio: cfg.PriorityFor(o.Node), vips: map[netip.Addr]bool{},
		ctl:   make(chan func(time.Time) []Action, 8),
		drops: map[string]uint64{}, lastLog: map[string]time.Time{}, notifyCh: make(chan []string, 16),
		done: make(chan struct{}),
	}
	in.tracks.Store(newTrackRunner(o.Tracks))
	for _, s := range cfg.VIPs {
		v, err := config.ParseVIP(s)
		if err != nil {
			return nil, fmt.Errorf("vip %q: %w", s, err)
		}
		in.vips[v.Prefix.Addr()] = true
		in.addrs = append(in.addrs, v.Prefix.Addr())
	}
	self := o.IO.Self()
	if len(cfg.UnicastPeers) > 0 {
		for _, s := range cfg.UnicastPeers {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("unicast peer %q: %w", s, err)
			}
			if a != self {
				in.dsts = append(in.dsts, a)
			}
		}
	} else if self.Is4() {
		in.dsts = []netip.Addr{Group4}
	} else {
		in.dsts = []netip.Addr{Group6}
	}
	if cfg.AuthPass != "" {
		in.auth = PassAuth(cfg.AuthPass)
	}
	in.m = NewMachine(params(cfg, self), in.prio)
	in.st = Status{Name: cfg.Name, VRID: cfg.VRID, Interface: cfg.Interface, State: Init, Priority: in.prio, BasePriority: in.prio, VIPs: cfg.VIPs}
	return in, nil
}

func params(cfg config.VRRPInstance, self netip.Addr) Params {
	return Params{Version: cfg.Version, Interval: cfg.AdvertInterval.D(), Preempt: cfg.PreemptOn(),
		PreemptDelay: cfg.PreemptDelay.D(), Self: self}
}

// Name is the instance name.
func (in *Instance) Name() string { return in.name }

// Status is a snapshot for `vipgate status`.
func (in *Instance) Status() Status {
	in.mu.Lock()
	s := in.st
	s.Dropped = make(map[string]uint64, len(in.drops))
	for k, v := range in.drops {
		s.Dropped[k] = v
	}
	in.mu.Unlock()
	s.Tracks = in.tracks.Load().status()
	s.Sent, s.Received = in.sent.Load(), in.recv.Load()
	return s
}

func (in *Instance) packet(prio uint8) Packet {
	p := Packet{Version: uint8(in.cfg.Version), VRID: uint8(in.cfg.VRID), Priority: prio, Interval: in.cfg.AdvertInterval.D()}
	if in.cfg.AuthPass != "" {
		p.AuthType, p.Auth = AuthPass, in.auth
	}
	p.Addrs = in.addrs
	return p
}

func (in *Instance) send(prio uint8) {
	p := in.packet(prio)
	for _, d := range in.dsts {
		var err error
		in.buf, err = p.AppendMarshal(in.buf[:0], in.io.Self(), d)
		if err == nil {
			err = in.io.Send(in.buf, d)
		}
		if err != nil {
			in.logLimited("send", "cannot send advertisement", "to", d, "err", err)
			continue
		}
		in.sent.Add(1)
	}
}

// drop counts a rejected packet and logs it at most every 10s per reason.
func (in *Instance) drop(reason string, args ...any) {
	in.mu.Lock()
	in.drops[reason]++
	in.mu.Unlock()
	in.logLimited(reason, "dropped advertisement: "+reason, args...)
}

func (in *Instance) logLimited(key, msg string, args ...any) {
	in.logLimitedAt(slog.LevelWarn, key, msg, args...)
}

func (in *Instance) logLimitedAt(level slog.Level, key, msg string, args ...any) {
	now := in.now()
	in.mu.Lock()
	last, n := in.lastLog[key], in.drops[key]
	ok := last.IsZero() || now.Sub(last) >= 10*time.Second
	if ok {
		in.lastLog[key] = now
	}
	in.mu.Unlock()
	if ok {
		in.log.Log(context.Background(), level, msg, append(args, "count", n)...)
	}
}

// accept validates a received packet against this instance (RFC 5798
// §7.1, RFC 3768 §7.1) and returns it when the machine should see it.
func (in *Instance) accept(r Received) (Packet, bool) {
	if r.Src == in.io.Self() {
		return Packet{}, false // our own, looped back
	}
	if len(r.Data) >= 2 && int(r.Data[1]) != in.cfg.VRID {
		// Another virtual router on the same link: normal with several
		// instances per interface, so counted but logged at debug only.
		in.mu.Lock()
		in.drops["other_vrid"]++
		in.mu.Unlock()
		in.logLimitedAt(slog.LevelDebug, "other_vrid", "ignored advertisement of another virtual router", "from", r.Src, "vrid", r.Data[1])
		return Packet{}, false
	}
	if r.TTL != TTL {
		in.drop("ttl", "from", r.Src, "ttl", r.TTL)
		return Packet{}, false
	}
	p, err := Parse(r.Data, r.Src, r.Dst)
	if err != nil {
		in.drop("malformed", "from", r.Src, "err", err)
		return p, false
	}
	in.recv.Add(1)
	if int(p.Version) != in.cfg.Version {
		in.drop("version", "from", r.Src, "got", p.Version, "want", in.cfg.Version)
		return p, false
	}
	if p.Version == 2 {
		want := uint8(AuthNone)
		if in.cfg.AuthPass != "" {
			want = AuthPass
		}
		if p.AuthType != want || (want == AuthPass && p.Auth != in.auth) {
			in.drop("auth", "from", r.Src, "auth_type", p.AuthType)
			return p, false
		}
		if p.Interval != in.cfg.AdvertInterval.D() {
			in.drop("interval", "from", r.Src, "got", p.Interval, "want", in.cfg.AdvertInterval.D())
			return p, false
		}
	}
	if p.Priority != 0 && !in.sameAddrs(p.Addrs) {
		in.drop("addresses", "from", r.Src, "got", p.Addrs)
		return p, false
	}
	return p, true
}

func (in *Instance) sameAddrs(a []netip.Addr) bool {
	if len(a) != len(in.vips) {
		return false
	}
	for _, x := range a {
		if !in.vips[x] {
			return false
		}
	}
	return true
}

// Run starts the instance and drives it until ctx ends; then it resigns
// (priority 0 advertisement) and removes its addresses.
func (in *Instance) Run(ctx context.Context) error {
	defer close(in.done)
	defer in.io.Close()
	in.stopTracks = func() {}
	defer func() { in.stopTracks() }()
	nctx, ncancel := context.WithCancel(context.Background())
	var nwg sync.WaitGroup
	nwg.Add(1)
	go func() { defer nwg.Done(); in.notifier(nctx) }()
	defer func() { ncancel(); nwg.Wait() }()

	// Never hold a VIP we did not take: a previous crash may have left one.
	_ = in.io.DelVIPs()
	if tr := in.tracks.Load(); len(tr.tracks) > 0 {
		in.applyVerdict(in.now(), tr.initial(ctx))
		in.startTracks(tr, false)
	}
	link := in.io.Link()
	recv := in.io.Recv()
	// The link's current state comes first; wait for it briefly so a down
	// interface starts in FAULT rather than as a master that cannot talk.
	select {
	case up, ok := <-link:
		if ok && !up {
			in.linkDown = true
			in.applyFaults(in.now())
		}
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
	}
	in.reach()
	in.perform(in.m.Start(in.now()))

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d := in.m.Deadline()
		if !in.garpAt.IsZero() && (d.IsZero() || in.garpAt.Before(d)) {
			d = in.garpAt
		}
		if d.IsZero() {
			timer.Reset(time.Hour)
		} else {
			timer.Reset(max(time.Until(d), 0))
		}
		select {
		case <-ctx.Done():
			in.resign(recv)
			return nil
		case <-timer.C:
			now := in.now()
			if !in.garpAt.IsZero() && !now.Before(in.garpAt) {
				in.garpAt = time.Time{}
				if in.m.State() == Master {
					in.announceBurst()
					if r := in.cfg.GARPMasterRefresh.D(); r > 0 {
						in.garpAt = now.Add(r)
					}
				}
			}
			in.perform(in.m.Tick(now))
		case r, ok := <-recv:
			if !ok {
				recv = nil
				continue
			}
			if p, ok := in.accept(r); ok {
				in.perform(in.m.Advert(in.now(), r.Src, p.Priority, p.Interval))
			}
		case up, ok := <-link:
			if !ok {
				link = nil
				continue
			}
			if in.linkDown != up {
				continue
			}
			in.linkDown = !up
			if up {
				in.reach()
			}
			in.applyFaults(in.now())
		case v := <-in.tracks.Load().out:
			in.applyVerdict(in.now(), v)
		case f := <-in.ctl:
			in.perform(f(in.now()))
		}
	}
}

// resign stops the instance. A master sends priority 0 but keeps the
// addresses until the successor's first advertisement arrives (or
// resignWait passes): until the backup has taken over, the VIP
// keeps answering here, so a clean handover loses nothing. The two hold it
// together only for the flight time of that one advertisement.
func (in *Instance) resign(recv <-chan Received) {
	wasMaster := in.m.State() == Master
	acts := in.m.Stop(in.now(), "shutdown")
	if !wasMaster {
		in.perform(acts)
		return
	}
	var rest []Action
	for i, a := range acts {
		if a.Kind != SendAdvert {
			rest = acts[i:]
			break
		}
		in.send(a.Priority)
	}
	deadline := time.NewTimer(resignWait(in.cfg.Version, in.cfg.AdvertInterval.D()))
	defer deadline.Stop()
wait:
	for recv != nil {
		select {
		case <-deadline.C:
			break wait
		case r, ok := <-recv:
			if !ok {
				break wait
			}
			if p, ok := in.accept(r); ok && p.Priority > 0 {
				break wait
			}
		}
	}
	in.perform(rest)
}

// startTracks runs tr's checks until the instance stops or Update replaces
// them. With first, the runner checks every track once and reports that
// verdict before its interval loop (Update does not block the instance on
// a check; until the verdict comes the old one stands).
func (in *Instance) startTracks(tr *trackRunner, first bool) {
	in.stopTracks()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if first {
			tr.publish(tr.initial(ctx))
		}
		tr.run(ctx)
	}()
	in.stopTracks = func() { cancel(); wg.Wait() }
}

// Update applies a changed configuration of the same virtual router
// without leaving the current state: a master stays master (and keeps its
// VIPs and the connections to them) through a change of priority,
// preemption, interval, authentication, notify scripts, GARP settings or
// tracks. The manager calls it only when LiveChange says the change needs
// no restart. tracks are the built track sources of cfg; with
// tracksChanged they replace the running ones.
func (in *Instance) Update(cfg config.VRRPInstance, tracks []Track, tracksChanged bool) {
	in.do(func(now time.Time) []Action {
		in.cfg = cfg
		in.prio = cfg.PriorityFor(in.node)
		in.auth = [8]byte{}
		if cfg.AuthPass != "" {
			in.auth = PassAuth(cfg.AuthPass)
		}
		// A refresh turned off fires at most once more (a pending burst is
		// not told apart from a refresh); one turned on starts now.
		if r := cfg.GARPMasterRefresh.D(); r > 0 && in.m.State() == Master && in.garpAt.IsZero() {
			in.garpAt = now.Add(r)
		}
		in.mu.Lock()
		in.st.BasePriority = in.prio
		in.mu.Unlock()
		acts := in.m.SetParams(now, params(cfg, in.io.Self()))
		if tracksChanged {
			tr := newTrackRunner(tracks)
			in.tracks.Store(tr)
			if len(tracks) == 0 {
				in.stopTracks()
				in.stopTracks = func() {}
				in.verdict = TrackVerdict{}
			} else {
				in.startTracks(tr, true)
			}
		}
		in.perform(acts)
		in.applyVerdict(now, in.verdict)
		in.log.Info("vrrp instance updated in place", "state", in.m.State(), "priority", in.m.Priority())
		return nil
	})
}

// LiveChange reports whether an instance configured as old can become new
// with Update, without a restart: the same virtual router (name,
// interface, VRID, version), the same addresses and the same peers.
func LiveChange(old, new config.VRRPInstance) bool {
	clear := func(c config.VRRPInstance) config.VRRPInstance {
		c.Datacenter, c.Nodes = "", nil
		c.Priority, c.Priorities = 0, nil
		c.AdvertInterval, c.Preempt, c.PreemptDelay = 0, nil, 0
		c.AcceptMode, c.AuthType, c.AuthPass = nil, "", ""
		c.Track = nil
		c.NotifyMaster, c.NotifyBackup, c.NotifyFault, c.NotifyStop, c.Notify = "", "", "", "", ""
		c.GARPMasterDelay, c.GARPMasterRepeat, c.GARPMasterRefresh = nil, 0, 0
		return c
	}
	return reflect.DeepEqual(clear(old), clear(new))
}

// resignWait is how long a resigning master keeps its VIPs waiting for its
// successor's first advert. A backup that hears priority 0 takes over after
// its Skew_Time, at most 1s (v2) or one advert interval (v3); twice that
// covers a busy backup. At least 500ms, so that very short adverts still
// leave a loaded backup time to act; at most 5s, so that the node's
// shutdown budget (10s) always removes the addresses before exit.
func resignWait(version int, iv time.Duration) time.Duration {
	skew := iv
	if version == 2 {
		skew = time.Second
	}
	return min(max(2*skew, 500*time.Millisecond), 5*time.Second) + 100*time.Millisecond
}

func (in *Instance) reach() {
	if len(in.cfg.UnicastPeers) == 0 {
		return
	}
	if err := in.io.Reach(in.dsts); err != nil {
		in.logLimited("reach", "cannot refresh unicast peers' neighbour entries", "err", err)
	}
}

func (in *Instance) applyVerdict(now time.Time, v TrackVerdict) {
	in.verdict = v
	p := in.prio
	// keepalived never lets tracking change an address owner's 255.
	if p != 255 {
		p = min(max(p+v.Delta, 1), 254)
	}
	in.perform(in.m.SetPriority(now, p))
	in.applyFaults(now)
}

func (in *Instance) applyFaults(now time.Time) {
	reason := in.verdict.Fault
	if in.linkDown {
		reason = "interface " + in.cfg.Interface + " is down"
	}
	if reason == "" && in.groupFault != "" {
		reason = in.groupFault
	}
	in.perform(in.m.SetFault(now, reason))
}

// perform carries out the machine's actions in order.
func (in *Instance) perform(acts []Action) {
	for _, a := range acts {
		switch a.Kind {
		case SendAdvert:
			in.send(a.Priority)
		case AddVIPs:
			if err := in.io.AddVIPs(); err != nil {
				in.log.Error("cannot add virtual addresses", "err", err)
			}
		case DelVIPs:
			in.garpAt = time.Time{}
			if err := in.io.DelVIPs(); err != nil {
				in.log.Error("cannot remove virtual addresses", "err", err)
			}
		case Announce:
			in.announceBurst()
			if d := in.cfg.GARPMasterDelay; d != nil && *d > 0 {
				in.garpAt = in.now().Add(d.D())
			} else if r := in.cfg.GARPMasterRefresh.D(); r > 0 {
				in.garpAt = in.now().Add(r)
			}
		case Transition:
			in.transition(a)
		}
	}
	in.mu.Lock()
	in.st.Priority = in.m.Priority()
	in.st.State = in.m.State()
	in.st.Master = ""
	a := in.m.MasterAddr()
	if a.IsValid() {
		in.st.Master = a.String()
	}
	in.st.MasterNode = masterNode(in.node, in.st.State, a, in.cfg.UnicastSrcIPs)
	in.mu.Unlock()
}

func (in *Instance) announceBurst() {
	n := max(in.cfg.GARPMasterRepeat, 1)
	for range n {
		if err := in.io.Announce(); err != nil {
			in.logLimited("announce", "cannot send gratuitous ARP / NA", "err", err)
			return
		}
	}
}

func (in *Instance) transition(a Action) {
	now := in.now()
	in.mu.Lock()
	in.st.LastTransition, in.st.LastReason = now, a.Reason
	in.st.Transitions++
	in.mu.Unlock()
	in.log.Info("vrrp transition", "from", a.From, "to", a.To, "reason", a.Reason, "priority", in.m.Priority())
	if in.bus != nil {
		lvl := events.Notice
		if a.To == Fault {
			lvl = events.Warning
		}
		in.bus.Publish(events.Event{
			Kind: events.VRRPTransition, Level: lvl, Scope: events.Local, Time: now, Subject: in.cfg.Name,
			Message: fmt.Sprintf("VRRP instance %s: %s → %s (%s)", in.cfg.Name, a.From, a.To, a.Reason),
			Attrs:   map[string]string{"instance": in.cfg.Name, "from": a.From.String(), "to": a.To.String(), "reason": a.Reason, "vrid": strconv.Itoa(in.cfg.VRID)},
		})
	}
	specific := notifyFor(a.To, in.cfg.NotifyMaster, in.cfg.NotifyBackup, in.cfg.NotifyFault, in.cfg.NotifyStop)
	prio := strconv.Itoa(in.m.Priority())
	if specific != "" {
		in.queueNotify([]string{specific})
	}
	if in.cfg.Notify != "" {
		in.queueNotify([]string{in.cfg.Notify, "INSTANCE", in.cfg.Name, a.To.String(), prio})
	}
	if g := in.group.Load(); g != nil {
		g.changed(in, a.To, a.Reason)
	}
}

func (in *Instance) queueNotify(cmd []string) {
	select {
	case in.notifyCh <- cmd:
	default:
		in.logLimited("notify", "notify queue full; script skipped", "script", cmd[0])
	}
}

// notifier runs notify scripts one at a time, in transition order, like
// keepalived. A script is a shell command line; keepalived's arguments
// follow it as $1.. . The last ones (notify_stop) still run after ctx
// ends, with a short deadline.
func (in *Instance) notifier(ctx context.Context) {
	runOne := func(cmd []string) { runNotify(in.log, cmd) }
	for {
		select {
		case cmd := <-in.notifyCh:
			runOne(cmd)
		case <-ctx.Done():
			for {
				select {
				case cmd := <-in.notifyCh:
					runOne(cmd)
				default:
					return
				}
			}
		}
	}
}

// notifyFor picks the state-specific notify script (notify_master …).
func notifyFor(s State, master, backup, fault, stop string) string {
	switch s {
	case Master:
		return master
	case Backup:
		return backup
	case Fault:
		return fault
	case Stopped:
		return stop
	}
	return ""
}

// runNotify runs one notify command line with its arguments as $1.. .
func runNotify(log *slog.Logger, cmd []string) {
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"-c", cmd[0] + ` "$@"`, "vrrp-notify"}, cmd[1:]...)
	c := exec.CommandContext(cctx, "/bin/sh", args...)
	if out, err := c.CombinedOutput(); err != nil {
		log.Warn("notify script failed", "script", cmd[0], "err", err, "output", string(out))
	}
}

// do runs f on the instance's goroutine (sync groups use it).
func (in *Instance) do(f func(now time.Time) []Action) {
	select {
	case in.ctl <- f:
	case <-in.done:
	}
}

// masterNode names the node whose adverts made it master from what is
// certain without asking anyone: this node when it is master, else the
// node whose unicast_src_ips entry is the adverts' source address (the
// address it sends from by configuration). "" when neither says.
func masterNode(self string, st State, master netip.Addr, srcIPs map[string]string) string {
	if st == Master {
		return self
	}
	if !master.IsValid() {
		return ""
	}
	for node, s := range srcIPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Unmap() == master.Unmap() {
			return node
		}
	}
	return ""
}
