package exchange2dc

// The fault-injection soak (`make soak`, and its short form in `make e2e`):
// the reference deployment under client load while a scheduler driven by a
// seeded PRNG injects faults in random order, and operator commands run in
// the middle of them. Everything is recorded in a history that
// internal/soakcheck judges at the end (docs/soak.md).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vipgate/vipgate/internal/soakcheck"
	"github.com/vipgate/vipgate/internal/testenv"
)

// The VRIDs of cluster.yaml and the address each one carries.
var vrids = map[int]string{51: vip["dc1"], 52: vip["dc2"]}

// The fault kinds the scheduler draws from.
const (
	faultKill        = "kill"        // SIGKILL a node, restart it when healed
	faultPause       = "pause"       // SIGSTOP, SIGCONT when healed
	faultCutDCs      = "cut-dc1-dc2" // no traffic between the datacenters
	faultCutWitness  = "cut-witness" // site 3 unreachable
	faultLoss        = "loss"        // 30% loss on the router's way into one datacenter only
	faultDiskFull    = "disk-full"   // the node's data directory full
	faultMTADown     = "mta-down"    // the relay stopped
	opApply          = "apply"       // vipgate apply of a changed document
	opFailover       = "dc failover" // vipgate dc failover <the other one>
	soakDiskNode     = "gw-a2"       // its data directory is a small tmpfs
	soakSampleEvery  = 200 * time.Millisecond
	soakRecoverLimit = 90 * time.Second // a fault not recovered from by then ends the run
)

// Clock jumps are not among the faults: CLOCK_REALTIME is not namespaced
// (setting it moves the whole machine and every other test on it), time
// namespaces (unshare --time) only offset CLOCK_MONOTONIC and
// CLOCK_BOOTTIME, once, before the first process enters them, and a Go
// binary reads the clock through the vDSO, so libfaketime's LD_PRELOAD
// does not reach it. vipgate's timers run on the monotonic clock; what a
// wall-clock step could still change (certificate validity, mail dates) is
// not what this soak checks.

func TestSoak(t *testing.T) {
	if os.Getenv("VIPGATE_SOAK") == "" {
		t.Skip("the soak runs with `make soak` or `make e2e` (VIPGATE_SOAK=1, root)")
	}
	testenv.RequireRoot(t)
	for _, tool := range []string{"ip", "openssl", "nginx", "exim4", "mount"} {
		testenv.RequireTool(t, tool)
	}
	seed := time.Now().UnixNano() % 1_000_000_000
	if v := os.Getenv("SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("SEED=%q: want a number", v)
		}
		seed = n
	}
	dur := 90 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("SOAK_DURATION=%q: want a duration such as 10m", v)
		}
		dur = d
	}
	t.Logf("soak: seed %d (replay with SEED=%d), %s of faults", seed, seed, dur)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	exampleDir, _ := os.Getwd()
	l := newLab(ctx, t, vipgateBin(t))
	k := &soak{lab: l, rng: rand.New(rand.NewPCG(uint64(seed), 0x50a6)),
		h:    &soakcheck.History{Seed: seed},
		proc: map[string]string{}, inc: map[string]int{}, queued: map[string]soakcheck.Queued{}, events: map[string]bool{}}
	k.prepare(exampleDir)
	rep := &report{}
	s := &scenario{lab: l, rep: rep, example: k.dir, doc: k.docPath(0), seeded: true}
	k.s = s
	seeded := time.Now()
	if !s.guard(s.setup) {
		rep.print(os.Stdout, 0)
		t.FailNow()
	}
	seedDoc, _ := os.ReadFile(k.seed)
	k.h.Ops = append(k.h.Ops,
		soakcheck.Op{Kind: opApply, Node: "gw-a1", At: seeded, OK: true, Result: "seed (node files' config:)", DocHash: hashDoc(seedDoc)},
		soakcheck.Op{Kind: opApply, Node: "gw-b1", At: time.Now(), OK: true, Result: "set-up", DocHash: k.docHash(0)})
	for _, g := range s.members() {
		k.proc[g.name], k.inc[g.name] = soakcheck.Running, 1
	}

	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	k.h.Start = time.Now()
	go func() { defer wg.Done(); k.sampleLoop(sctx) }()

	k.schedule(ctx, dur)
	k.finish()
	stopSampling()
	wg.Wait()
	for _, p := range []*prober{s.vdi1, s.vdi2, s.inet} {
		p.stop()
	}
	k.h.End = time.Now()
	k.collect()

	hist := filepath.Join(l.dir, "history.json")
	if err := k.h.Save(hist); err != nil {
		t.Error(err)
	}
	res := soakcheck.Check(k.h)
	res.Print(os.Stdout, k.h)
	if !res.OK() {
		fmt.Printf("history: %s\n", hist)
		t.Errorf("soak (seed %d): %d invariant violation(s); replay with SEED=%d", seed, len(res.Violations), seed)
	}
	if k.broken != "" {
		t.Errorf("soak (seed %d): %s", seed, k.broken)
	}
}

type soak struct {
	lab *lab
	s   *scenario
	rng *rand.Rand
	h   *soakcheck.History

	mu     sync.Mutex // guards what the sampler reads: proc, inc, queued, h.Samples
	proc   map[string]string
	inc    map[string]int
	queued map[string]soakcheck.Queued // node + Message-ID
	events map[string]bool             // node, incarnation, seq: events noted

	seed    string   // the seed document of the node files
	dir     string   // the documents the run applies
	docs    []string // their paths, by number
	applied int      // documents written so far
	disk    string   // soakDiskNode's data directory (a tmpfs)
	fillers int
	broken  string // why the run stopped early
}

// prepare writes the run's cluster document (the example's, with alert
// retries fast enough to drain within the run and the ops digest window
// shorter than it) and mounts the small tmpfs for the full-disk fault.
func (k *soak) prepare(exampleDir string) {
	t := k.lab.t
	k.dir = filepath.Join(k.lab.dir, "soak")
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(exampleDir, "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(src), "      coalesce: 1m\n", "      coalesce: 10s\n", 1)
	doc = strings.Replace(doc, "alerts:\n", "alerts:\n  queue: {retry_min: 1s, retry_max: 4s}\n", 1)
	if doc == string(src) || !strings.Contains(doc, "retry_max: 4s") || !strings.Contains(doc, "coalesce: 10s") {
		t.Fatal("soak: cluster.yaml no longer has the lines the soak changes (coalesce: 1m, alerts:)")
	}
	k.docs = append(k.docs, filepath.Join(k.dir, "cluster.yaml"))
	if err := os.WriteFile(k.docs[0], []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every node file keeps a seed document (config:), as the issue's
	// reporter's did: a restart must never commit it again over what was
	// applied since (the checker's "only forward"). The seed differs from
	// the applied document in the zone's SOA minimum.
	k.seed = filepath.Join(k.dir, "seed.yaml")
	if err := os.WriteFile(k.seed, []byte(strings.Replace(doc, "minimum: 60}", "minimum: 50}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(k.dir, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(exampleDir, "nodes", "*.yaml"))
	for _, f := range files {
		nf, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		nf = append(nf, []byte("config: "+k.seed+"\n")...)
		if err := os.WriteFile(filepath.Join(k.dir, "nodes", filepath.Base(f)), nf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k.disk = filepath.Join(k.lab.dir, "data", soakDiskNode)
	if err := os.MkdirAll(k.disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "vipgate-soak", k.disk).CombinedOutput(); err != nil {
		t.Fatalf("tmpfs for %s: %v: %s", soakDiskNode, err, out)
	}
	// After the processes stop (cleanups run last-in first-out).
	t.Cleanup(func() { _ = exec.Command("umount", "-l", k.disk).Run() })
}

func (k *soak) docPath(n int) string { return k.docs[n] }

func (k *soak) docHash(n int) string {
	data, err := os.ReadFile(k.docs[n])
	if err != nil {
		return ""
	}
	return hashDoc(data)
}

func hashDoc(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// nextDoc writes a new document: the previous one with the zone's SOA
// minimum changed (harmless to clients, different every time).
func (k *soak) nextDoc() int {
	prev, _ := os.ReadFile(k.docs[len(k.docs)-1])
	n := len(k.docs)
	doc := strings.Replace(string(prev), fmt.Sprintf("minimum: %d}", 59+n), fmt.Sprintf("minimum: %d}", 60+n), 1)
	p := filepath.Join(k.dir, fmt.Sprintf("cluster-%d.yaml", n))
	if doc == string(prev) {
		k.lab.t.Fatalf("soak: cannot change the SOA minimum in %s", k.docs[n-1])
	}
	_ = os.WriteFile(p, []byte(doc), 0o644)
	k.docs = append(k.docs, p)
	return n
}

// --- the scheduler ---------------------------------------------------------

// schedule injects faults one after the other, each healed after a few
// seconds and followed by the recovery (a quiet moment), with operator
// commands at random moments, inside faults too, until dur has passed.
func (k *soak) schedule(ctx context.Context, dur time.Duration) {
	end := time.Now().Add(dur)
	kinds := []string{faultKill, faultPause, faultCutDCs, faultCutWitness, faultLoss, faultDiskFull, faultMTADown}
	for time.Now().Before(end) && ctx.Err() == nil && k.broken == "" {
		kind := kinds[k.rng.IntN(len(kinds))]
		f := k.inject(kind)
		hold := time.Duration(2000+k.rng.IntN(5000)) * time.Millisecond
		if k.rng.IntN(3) == 0 {
			k.sleep(ctx, hold/2)
			k.operate()
			k.sleep(ctx, hold/2)
		} else {
			k.sleep(ctx, hold)
		}
		k.heal(f)
		k.recover(ctx, f)
		if k.rng.IntN(3) == 0 {
			k.operate()
		}
		k.sleep(ctx, time.Duration(1000+k.rng.IntN(2000))*time.Millisecond)
	}
}

func (k *soak) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// inject starts one fault and returns its record (End still zero).
func (k *soak) inject(kind string) *soakcheck.Fault {
	l := k.lab
	members := k.s.members()
	f := &soakcheck.Fault{Kind: kind, Start: time.Now(), Disruptive: true}
	switch kind {
	case faultKill:
		g := members[k.rng.IntN(len(members))]
		f.Target, f.LosesSends = g.name, true
		f.Start = time.Now()
		g.p.stop(syscall.SIGKILL)
		k.setProc(g.name, soakcheck.Dead)
	case faultPause:
		g := members[k.rng.IntN(len(members))]
		f.Target = g.name
		k.setProc(g.name, soakcheck.Paused)
		f.Start = time.Now()
		_ = g.p.cmd.Process.Signal(syscall.SIGSTOP)
	case faultCutDCs:
		f.Target = "dc1-dc2"
		k.router("add")
	case faultCutWitness:
		f.Target, f.Disruptive = "site3", false
		l.nets["site3"].Cable(l.legs["site3"], false)
	case faultLoss:
		dc := []string{"dc1", "dc2"}[k.rng.IntN(2)]
		f.Target, f.Note = dc, "30% of the frames into "+dc+" dropped, none out of it"
		k.loss(dc, 300)
	case faultDiskFull:
		f.Target, f.Disruptive, f.LosesSends = soakDiskNode, false, true
		k.fillers++
		p := filepath.Join(k.disk, fmt.Sprintf("filler-%d", k.fillers))
		// dd stops at ENOSPC, which is the point.
		_ = exec.Command("dd", "if=/dev/zero", "of="+p, "bs=1M").Run()
	case faultMTADown:
		f.Target, f.Disruptive = "relay", false
		l.mu.Lock()
		ps := append([]*proc(nil), l.procs...)
		l.mu.Unlock()
		for _, p := range ps {
			if p.name == "relay-exim" && p.alive() {
				p.stop(syscall.SIGTERM)
			}
		}
	}
	l.t.Logf("soak: %s %s at %s", kind, f.Target, f.Start.Format("15:04:05.000"))
	return f
}

// heal ends the fault and records it.
func (k *soak) heal(f *soakcheck.Fault) {
	l := k.lab
	switch f.Kind {
	case faultKill:
		g := l.gws[f.Target]
		l.startNode(g)
		k.mu.Lock()
		k.inc[g.name]++
		k.proc[g.name] = soakcheck.Starting
		k.mu.Unlock()
		// Running from when it serves its API: by then it has removed the
		// addresses the kill left (the checker holds it to that).
		if _, ok := l.wait(time.Minute, func() bool { _, ok := g.raft(); return ok }); ok {
			k.setProc(g.name, soakcheck.Running)
		}
	case faultPause:
		g := l.gws[f.Target]
		k.setProc(g.name, soakcheck.Starting)
		_ = g.p.cmd.Process.Signal(syscall.SIGCONT)
		// As after a restart: accountable for its addresses from when it
		// answers again (its VRRP timers fire first thing on resuming).
		if _, ok := l.wait(time.Minute, func() bool { _, ok := g.raft(); return ok }); ok {
			k.setProc(g.name, soakcheck.Running)
		}
	case faultCutDCs:
		k.router("del")
	case faultCutWitness:
		l.nets["site3"].Cable(l.legs["site3"], true)
	case faultLoss:
		k.loss(f.Target, 0)
	case faultDiskFull:
		files, _ := filepath.Glob(filepath.Join(k.disk, "filler-*"))
		for _, p := range files {
			_ = os.Remove(p)
		}
	case faultMTADown:
		l.startRelay()
	}
	f.End = time.Now()
	l.t.Logf("soak: %s %s healed at %s", f.Kind, f.Target, f.End.Format("15:04:05.000"))
	k.mu.Lock()
	k.h.Faults = append(k.h.Faults, *f)
	k.mu.Unlock()
}

func (k *soak) setProc(node, state string) {
	k.mu.Lock()
	k.proc[node] = state
	k.mu.Unlock()
}

// router adds or removes the policy rules that make the router drop what
// goes between the two datacenters (both ways), and only that.
func (k *soak) router(op string) {
	r := k.lab.legs["inet"]
	for _, p := range [][2]string{{"dc1", "dc2"}, {"dc2", "dc1"}} {
		out, err := r.Run("ip", "rule", op, "from", segment[p[0]]+".0/24", "to", segment[p[1]]+".0/24", "blackhole")
		if err != nil {
			k.lab.t.Fatalf("router: ip rule %s: %v: %s", op, err, out)
		}
	}
}

// loss sets the drop rate (per mille) of the router's way into dc:
// netem where the kernel has it, the driver's delay line otherwise.
func (k *soak) loss(dc string, perMille uint32) {
	iface := k.lab.legs[dc].Iface
	if dl := k.lab.lines[iface]; dl != nil {
		dl.loss.Store(perMille)
		return
	}
	args := []string{"qdisc", "change", "dev", iface, "root", "netem", "delay", "10ms"}
	if perMille > 0 {
		args = append(args, "loss", fmt.Sprintf("%d.%d%%", perMille/10, perMille%10))
	}
	if out, err := k.lab.legs["inet"].Run("tc", args...); err != nil {
		k.lab.t.Fatalf("tc %v: %v: %s", args, err, out)
	}
}

// operate runs one operator command through a random running node: an
// apply of a new document, or a failover to the datacenter not active.
func (k *soak) operate() {
	l := k.lab
	var up []*gateway
	for _, g := range k.s.members() {
		k.mu.Lock()
		st := k.proc[g.name]
		k.mu.Unlock()
		if st == soakcheck.Running {
			up = append(up, g)
		}
	}
	if len(up) == 0 {
		return
	}
	g := up[k.rng.IntN(len(up))]
	op := soakcheck.Op{Node: g.name, At: time.Now()}
	if k.rng.IntN(2) == 0 {
		n := k.nextDoc()
		op.Kind, op.DocHash = opApply, k.docHash(n)
		out, err := l.cli(g, "apply", "-f", k.docs[n], "-m", fmt.Sprintf("soak %d", n), "--author", "soak")
		op.OK, op.Result = err == nil && strings.Contains(out, "committed version"), lastLine(out)
	} else {
		v, _ := g.dcState()
		to := "dc2"
		if v.Active == "dc2" {
			to = "dc1"
		}
		op.Kind = opFailover
		out, err := l.cli(g, "dc", "failover", to, "--reason", "soak", "--author", "soak")
		op.OK, op.Result = err == nil, to+": "+lastLine(out)
	}
	l.t.Logf("soak: %s on %s: ok=%v %s", op.Kind, op.Node, op.OK, op.Result)
	k.mu.Lock()
	k.h.Ops = append(k.h.Ops, op)
	k.mu.Unlock()
}

// recover waits, after a fault was healed, until the cluster is whole:
// every node answers, each VIP has one holder, every node has caught up
// with the leader's config version. Not a pass/fail on time: a cluster
// that does not get there within soakRecoverLimit ends the run (the
// checker then judges what was recorded), as a steady state lost for good.
func (k *soak) recover(ctx context.Context, f *soakcheck.Fault) {
	why := ""
	_, ok := k.lab.wait(soakRecoverLimit, func() bool {
		why = k.notWhole()
		return why == "" || ctx.Err() != nil
	})
	if !ok {
		k.broken = fmt.Sprintf("no recovery %s after %s %s was healed: %s", soakRecoverLimit, f.Kind, f.Target, why)
		k.lab.t.Log("soak: " + k.broken)
	}
}

func (k *soak) notWhole() string {
	var versions []uint64
	for _, g := range k.s.members() {
		r, ok := g.raft()
		if !ok {
			return g.name + " does not answer"
		}
		versions = append(versions, r.Version)
	}
	for _, v := range versions[1:] {
		if v != versions[0] {
			return fmt.Sprintf("config versions differ: %v", versions)
		}
	}
	for _, dc := range []string{"dc1", "dc2"} {
		if h := k.lab.holder(dc); h == "" || strings.Contains(h, "+") {
			return fmt.Sprintf("%s VIP held by %q", dc, h)
		}
	}
	return ""
}

// finish ends the run whole: faults healed (by schedule), the cluster
// recovered, then the alert queues drained so that every mail is
// delivered or dead-lettered by the time the history is judged.
func (k *soak) finish() {
	if k.broken != "" {
		return
	}
	_, ok := k.lab.wait(2*time.Minute, func() bool {
		for _, g := range k.s.members() {
			var st struct {
				Queued int `json:"queued"`
			}
			if err := g.get("/api/v1/alerts", &st); err != nil || st.Queued > 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		k.broken = "the alert queues did not drain within 2m after the last fault"
	}
	// A node restarted by the last fault may preempt its VIP back after
	// the cluster was already whole: a failover window the run must not
	// end inside (the checker would find the clients never served after
	// it). Not a pass/fail on time: past the limit the checker judges.
	if _, ok := k.lab.wait(time.Minute, k.settled); !ok {
		k.lab.t.Log("soak: the VIPs or the active datacenter still moving, or a client not served since, 1m after the last fault")
	}
	time.Sleep(2 * time.Second) // the relay's last deliveries reach the maildir
}

// settled: each VIP is back on its preferred node (the example's
// priorities: gw-a1 and gw-b1, once every fault is healed), every
// datacenter's committed health is healthy (no automatic failover can be
// pending: one that a partition's silence started may still come seconds
// after the heal, until the other datacenter's reports reach the leader
// again), no VIP changed holders and no node's active datacenter changed
// in the samples of the last few seconds, and every client has been
// served by a request that started after the last such change.
func (k *soak) settled() bool {
	if k.lab.holder("dc1") != "gw-a1" || k.lab.holder("dc2") != "gw-b1" {
		return false
	}
	var st struct {
		Datacenters []struct {
			Healthy *bool `json:"healthy"`
		} `json:"datacenters"`
	}
	if err := k.s.gw("gw-a1").get("/api/v1/dc", &st); err != nil || len(st.Datacenters) == 0 {
		return false
	}
	for _, d := range st.Datacenters {
		if d.Healthy == nil || !*d.Healthy {
			return false
		}
	}
	k.mu.Lock()
	last := soakcheck.LastFailover(k.h)
	k.mu.Unlock()
	if time.Since(last) < soakSettle {
		return false
	}
	for _, p := range []*prober{k.s.vdi1, k.s.vdi2, k.s.inet} {
		if p.firstOK(last, nil).IsZero() {
			return false
		}
	}
	return true
}

// soakSettle is how long the samples must show no failover before a run
// ends: several of the example's 500ms VRRP adverts.
const soakSettle = 3 * time.Second

// --- the recorder ----------------------------------------------------------

func (k *soak) sampleLoop(ctx context.Context) {
	handles := map[string]*netlink.Handle{}
	for _, g := range k.s.gateways() {
		ns, err := netns.GetFromName(g.host.NS)
		if err != nil {
			k.lab.t.Errorf("namespace %s: %v", g.host.NS, err)
			return
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			k.lab.t.Errorf("netlink in %s: %v", g.host.NS, err)
			return
		}
		defer h.Close()
		handles[g.name] = h
	}
	tick := time.NewTicker(soakSampleEvery)
	defer tick.Stop()
	for n := 0; ; n++ {
		k.sample(ctx, handles)
		if n%10 == 0 {
			k.readEvents(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sample records one instant: process states first, then the addresses
// (so an address seen on a node recorded as running was its own), then
// what each running node's API says, then the alert queues.
func (k *soak) sample(ctx context.Context, handles map[string]*netlink.Handle) {
	s := soakcheck.Sample{At: time.Now(), VIPs: map[int][]string{}, Nodes: map[string]soakcheck.NodeSample{}}
	k.mu.Lock()
	for n, p := range k.proc {
		s.Nodes[n] = soakcheck.NodeSample{Proc: p, Incarnation: k.inc[n]}
	}
	k.mu.Unlock()
	for _, g := range k.s.gateways() {
		addrs, err := handles[g.name].AddrList(nil, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			for vrid, v := range vrids {
				if a.IP.String() == v {
					s.VIPs[vrid] = append(s.VIPs[vrid], g.name)
				}
			}
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, g := range k.s.members() {
		ns := s.Nodes[g.name]
		if ns.Proc != soakcheck.Running {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			var dc struct {
				Active string `json:"active"`
				Index  uint64 `json:"index"`
				Leader bool   `json:"leader"`
			}
			var cfg struct {
				Version uint64 `json:"version"`
				YAML    string `json:"yaml"`
			}
			var rs raftStatus
			if apiGet(rctx, g, "/api/v1/dc", &dc) == nil && apiGet(rctx, g, "/api/v1/config", &cfg) == nil && apiGet(rctx, g, "/api/v1/status/raft", &rs) == nil {
				ns.OK, ns.Active, ns.Index, ns.Leader, ns.Term, ns.Version = true, dc.Active, dc.Index, dc.Leader, rs.Term, cfg.Version
				if cfg.Version > 0 {
					ns.DocHash = hashDoc([]byte(cfg.YAML))
				}
			}
			mu.Lock()
			s.Nodes[g.name] = ns
			mu.Unlock()
		}()
	}
	wg.Wait()
	k.readQueues()
	k.mu.Lock()
	k.h.Samples = append(k.h.Samples, s)
	k.mu.Unlock()
}

// readEvents notes what the running nodes published since the last
// read (each node keeps its recent events; seq orders them per process).
func (k *soak) readEvents(ctx context.Context) {
	for _, g := range k.s.members() {
		k.mu.Lock()
		st, inc := k.proc[g.name], k.inc[g.name]
		k.mu.Unlock()
		if st != soakcheck.Running {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		var evs []struct {
			Kind    string    `json:"kind"`
			Level   any       `json:"level"`
			Subject string    `json:"subject"`
			Time    time.Time `json:"time"`
			Seq     uint64    `json:"seq"`
		}
		err := apiGet(rctx, g, "/api/v1/events?n=1000", &evs)
		cancel()
		if err != nil {
			continue
		}
		k.mu.Lock()
		for _, e := range evs {
			key := fmt.Sprintf("%s %d %d", g.name, inc, e.Seq)
			if k.events[key] {
				continue
			}
			k.events[key] = true
			k.h.Events = append(k.h.Events, soakcheck.Event{Node: g.name, Kind: e.Kind, Level: fmt.Sprint(e.Level), Subject: e.Subject, At: e.Time})
		}
		k.mu.Unlock()
	}
}

func apiGet(ctx context.Context, g *gateway, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:9900"+path, nil)
	if err != nil {
		return err
	}
	resp, err := g.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", path, resp.StatusCode)
	}
	return json.Unmarshal(b, out)
}

// queueRecord is what the soak reads of an alert queue file (the alerter's
// on-disk format: a "VGQ1 <crc> <length>" line, then the JSON record).
type queueRecord struct {
	MessageID string            `json:"message_id"`
	Subject   string            `json:"subject"`
	Created   time.Time         `json:"created"`
	To        []string          `json:"to"`
	Delivered []string          `json:"delivered"`
	Rejected  map[string]string `json:"rejected"`
}

func readRecord(path string) (queueRecord, bool) {
	var r queueRecord
	data, err := os.ReadFile(path)
	if err != nil {
		return r, false
	}
	_, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok || json.Unmarshal(body, &r) != nil || r.MessageID == "" {
		return r, false
	}
	return r, true
}

// readQueues notes every mail waiting in a node's queue.
func (k *soak) readQueues() {
	for _, g := range k.s.members() {
		files, _ := filepath.Glob(filepath.Join(k.lab.dir, "data", g.name, "alerts", "mail-*"))
		for _, f := range files {
			if strings.Contains(filepath.Base(f), ".") { // temporary or .corrupt
				continue
			}
			r, ok := readRecord(f)
			if !ok {
				continue
			}
			key := g.name + " " + r.MessageID
			k.mu.Lock()
			q, seen := k.queued[key]
			if !seen {
				q = soakcheck.Queued{Node: g.name, ID: r.MessageID, Subject: r.Subject, At: r.Created}
			}
			for _, to := range append(r.To, r.Delivered...) {
				q.To = addAddr(q.To, to)
			}
			k.queued[key] = q
			k.mu.Unlock()
		}
	}
}

func addAddr(l []string, a string) []string {
	if m, err := mail.ParseAddress(a); err == nil {
		a = m.Address
	}
	for _, x := range l {
		if strings.EqualFold(x, a) {
			return l
		}
	}
	return append(l, a)
}

// collect adds to the history what is read once at the end: the client
// requests, the queued mails, the dead letters, the relay's maildir.
func (k *soak) collect() {
	for _, p := range []*prober{k.s.vdi1, k.s.vdi2, k.s.inet} {
		p.mu.Lock()
		for _, r := range p.results {
			q := soakcheck.Request{Client: p.name, Start: r.start, End: r.end, Target: r.target, Server: r.server}
			if r.err != nil {
				q.Err = r.err.Error()
			}
			k.h.Requests = append(k.h.Requests, q)
		}
		p.mu.Unlock()
	}
	for _, q := range k.queued {
		k.h.Queued = append(k.h.Queued, q)
	}
	for _, g := range k.s.members() {
		files, _ := filepath.Glob(filepath.Join(k.lab.dir, "data", g.name, "alerts", "dead-*"))
		for _, f := range files {
			if r, ok := readRecord(f); ok {
				d := soakcheck.Queued{Node: g.name, ID: r.MessageID, Subject: r.Subject, At: r.Created}
				for to := range r.Rejected {
					d.To = addAddr(d.To, to)
				}
				k.h.DeadLetter = append(k.h.DeadLetter, d)
			}
		}
	}
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(k.lab.mail, sub, "*"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			m, err := mail.ReadMessage(bytes.NewReader(data))
			if err != nil || m.Header.Get("X-Vipgate-Node") == "" {
				continue
			}
			st, _ := os.Stat(f)
			k.h.Mails = append(k.h.Mails, soakcheck.Mail{ID: m.Header.Get("Message-Id"), Recipient: addAddr(nil, m.Header.Get("Envelope-To"))[0],
				Node: m.Header.Get("X-Vipgate-Node"), Subject: m.Header.Get("Subject"), At: st.ModTime()})
		}
	}
}
