package vrrp_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/internal/testnet"
)

const vip = "198.18.0.200"

// opts describe one VRRP instance as both vipgate and keepalived see it.
type opts struct {
	version  int
	interval time.Duration
	auth     string
	unicast  []string          // node addresses; empty = multicast
	prio     map[string]int    // node name → priority
	preempt  map[string]bool   // node name → preempt (default true)
	track    string            // exec track command (vipgate), weight -150
	kaTrack  string            // keepalived: vrrp_script file with the same check, weight -150
	extra    map[string]string // extra YAML lines per instance
}

func (o opts) ivl() string {
	if o.version == 2 {
		return fmt.Sprintf("%ds", int(o.interval/time.Second))
	}
	return fmt.Sprintf("%dms", o.interval.Milliseconds())
}

// vipgateDoc is the one cluster document every vipgate node reads: an
// instance per node (by `nodes:`) so nodes may differ in preempt.
func vipgateDoc(o opts) string {
	var b strings.Builder
	b.WriteString("vrrp:\n  instances:\n")
	for node, prio := range o.prio {
		fmt.Fprintf(&b, "    - name: vi-%s\n      nodes: [%s]\n      interface: eth0\n      vrid: 51\n      version: %d\n      priority: %d\n      advert_interval: %s\n      garp_master_delay: 1s\n      vips: [\"%s/24\"]\n",
			node, node, o.version, prio, o.ivl(), vip)
		if p, ok := o.preempt[node]; ok && !p {
			b.WriteString("      preempt: false\n")
		}
		if o.auth != "" {
			fmt.Fprintf(&b, "      auth_pass: %s\n", o.auth)
		}
		if len(o.unicast) > 0 {
			fmt.Fprintf(&b, "      unicast_peers: [%s]\n", strings.Join(o.unicast, ", "))
		}
		if o.track != "" {
			// The timeout is generous: on a loaded 2-core machine sh + ip
			// can take longer than the interval, and a timed-out check is a
			// failure — the priority would flap between adverts.
			fmt.Fprintf(&b, "      track:\n        - kind: exec\n          name: script\n          command: [sh, -c, %q]\n          interval: 200ms\n          timeout: 2s\n          weight: -150\n", o.track)
		}
	}
	return b.String()
}

func keepalivedConf(o opts, node, self string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id %s\n  vrrp_garp_master_delay 1\n  script_user root\n}\n", node)
	if o.kaTrack != "" {
		fmt.Fprintf(&b, "vrrp_script chk {\n  script %q\n  interval 1\n  weight -150\n}\n", o.kaTrack)
	}
	fmt.Fprintf(&b, "vrrp_instance VI {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority %d\n  version %d\n", o.prio[node], o.version)
	if o.version == 2 {
		fmt.Fprintf(&b, "  advert_int %d\n", int(o.interval/time.Second))
	} else {
		fmt.Fprintf(&b, "  advert_int %.2f\n", o.interval.Seconds())
	}
	if p, ok := o.preempt[node]; ok && !p {
		b.WriteString("  nopreempt\n")
	}
	if o.auth != "" {
		fmt.Fprintf(&b, "  authentication {\n    auth_type PASS\n    auth_pass %s\n  }\n", o.auth)
	}
	if len(o.unicast) > 0 {
		fmt.Fprintf(&b, "  unicast_src_ip %s\n  unicast_peer {\n", self)
		for _, u := range o.unicast {
			if u != self {
				fmt.Fprintf(&b, "    %s\n", u)
			}
		}
		b.WriteString("  }\n")
	}
	if o.kaTrack != "" {
		b.WriteString("  track_script {\n    chk\n  }\n")
	}
	fmt.Fprintf(&b, "  virtual_ipaddress {\n    %s/24\n  }\n}\n", vip)
	return b.String()
}

type bed struct {
	n      *testnet.Net
	hosts  map[string]*testnet.Host
	addrs  map[string]string
	client *testnet.Host
	w      *vipWatch
}

// newBed makes hosts a, b, c… (198.18.0.1, .2, …) and a client (.100).
func newBed(t *testing.T, names ...string) *bed {
	t.Helper()
	testenv.Short(t)
	n := testnet.New(t)
	b := &bed{n: n, hosts: map[string]*testnet.Host{}, addrs: map[string]string{}}
	var hs []*testnet.Host
	for i, name := range names {
		b.addrs[name] = fmt.Sprintf("198.18.0.%d", i+1)
		b.hosts[name] = n.AddHost(name, b.addrs[name]+"/24")
		hs = append(hs, b.hosts[name])
	}
	b.client = n.AddHost("client", "198.18.0.100/24")
	b.w = watchVIP(t, vip, hs...)
	return b
}

// checkDual fails when two nodes held the VIP longer than one advert
// interval (plus scheduling slack of the 2-core CI machine).
func (b *bed) checkDual(t *testing.T, o opts) {
	t.Helper()
	if d := b.w.dual(); d > o.interval+50*time.Millisecond {
		t.Fatalf("VIP held by two nodes for %s (advert interval %s)", d, o.interval)
	}
}

func TestNetnsFailover(t *testing.T) {
	b := newBed(t, "a", "b")
	dir := t.TempDir()
	o := opts{version: 3, interval: 100 * time.Millisecond, prio: map[string]int{"a": 200, "b": 100},
		track: "test ! -e " + dir + "/fail-$(ip netns identify)"}
	doc := vipgateDoc(o)
	pa := startVipgate(t, b.hosts["a"], "a", doc)
	startVipgate(t, b.hosts["b"], "b", doc)
	long := 10 * time.Second
	waitHolder(t, b.w, "a", long)

	t.Log("link down on the master")
	b.n.Cable(b.hosts["a"], false)
	waitHolder(t, b.w, "b", long)
	b.n.Cable(b.hosts["a"], true)
	waitHolder(t, b.w, "a", long) // preempts back
	b.checkDual(t, o)

	t.Log("track script fails on the master")
	fail := filepath.Join(dir, "fail-"+b.hosts["a"].NS)
	os.WriteFile(fail, nil, 0o644)
	waitHolder(t, b.w, "b", long)
	os.Remove(fail)
	waitHolder(t, b.w, "a", long)
	b.checkDual(t, o)

	t.Log("master process killed")
	pa.kill()
	b.w.crashed("a")
	waitHolder(t, b.w, "b", long)
	b.hosts["a"].Run("ip", "addr", "del", vip+"/24", "dev", "eth0") // the crashed box reboots clean
	b.w.revive("a")
	pa = startVipgate(t, b.hosts["a"], "a", doc)
	waitHolder(t, b.w, "a", long)
	b.checkDual(t, o)

	t.Log("clean shutdown of the master")
	pa.stop()
	waitHolder(t, b.w, "b", long)
	b.checkDual(t, o)
	if out := pa.out.String(); !strings.Contains(out, "to=STOP") {
		t.Fatalf("no STOP transition logged:\n%s", out)
	}
}

func TestNetnsThreeNodes(t *testing.T) {
	b := newBed(t, "a", "b", "c")
	o := opts{version: 3, interval: 100 * time.Millisecond, prio: map[string]int{"a": 100, "b": 150, "c": 200}}
	doc := vipgateDoc(o)
	p := map[string]*proc{}
	for _, n := range []string{"a", "b", "c"} {
		p[n] = startVipgate(t, b.hosts[n], n, doc)
	}
	waitHolder(t, b.w, "c", 10*time.Second)
	p["c"].stop()
	waitHolder(t, b.w, "b", 10*time.Second)
	b.n.Cable(b.hosts["b"], false)
	waitHolder(t, b.w, "a", 10*time.Second)
	b.n.Cable(b.hosts["b"], true)
	waitHolder(t, b.w, "b", 10*time.Second)
	b.checkDual(t, o)
}

func TestNetnsPreempt(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		t.Run(fmt.Sprintf("preempt=%v", preempt), func(t *testing.T) {
			b := newBed(t, "a", "b")
			// 200ms adverts: a loaded CI machine can starve a process for
			// longer than a 50ms Master_Down_Interval.
			o := opts{version: 3, interval: 200 * time.Millisecond, prio: map[string]int{"a": 200, "b": 100}, preempt: map[string]bool{"a": preempt}}
			doc := vipgateDoc(o)
			startVipgate(t, b.hosts["b"], "b", doc)
			waitHolder(t, b.w, "b", 10*time.Second)
			pa := startVipgate(t, b.hosts["a"], "a", doc)
			if preempt {
				waitHolder(t, b.w, "a", 10*time.Second)
				return
			}
			testenv.Eventually(t, 10*time.Second, "a backup", func() bool { return strings.Contains(pa.out.String(), "to=BACKUP") })
			// Master_Down_Interval is ~0.65s: after four of them a would
			// have preempted if it were going to.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				if h := b.w.holder(); h != "b" {
					t.Fatalf("nopreempt: VIP moved to %q", h)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestNetnsUnicast(t *testing.T) {
	b := newBed(t, "a", "b")
	// Multicast is not forwarded to the nodes: only unicast can elect.
	b.n.BlockMulticast(b.hosts["a"])
	b.n.BlockMulticast(b.hosts["b"])
	o := opts{version: 3, interval: 100 * time.Millisecond, prio: map[string]int{"a": 200, "b": 100}, unicast: []string{"198.18.0.1", "198.18.0.2"}}
	doc := vipgateDoc(o)
	pa := startVipgate(t, b.hosts["a"], "a", doc)
	startVipgate(t, b.hosts["b"], "b", doc)
	waitHolder(t, b.w, "a", 10*time.Second)
	b.n.Cable(b.hosts["a"], false)
	waitHolder(t, b.w, "b", 10*time.Second)
	b.n.Cable(b.hosts["a"], true)
	waitHolder(t, b.w, "a", 10*time.Second)
	pa.stop()
	waitHolder(t, b.w, "b", 10*time.Second)
	b.checkDual(t, o)
}

// TestNetnsMulticastBlocked proves the segment of TestNetnsUnicast really
// drops multicast: multicast instances there cannot see each other and
// both become master.
func TestNetnsMulticastBlocked(t *testing.T) {
	b := newBed(t, "a", "b")
	b.n.BlockMulticast(b.hosts["a"])
	b.n.BlockMulticast(b.hosts["b"])
	doc := vipgateDoc(opts{version: 3, interval: 50 * time.Millisecond, prio: map[string]int{"a": 200, "b": 100}})
	startVipgate(t, b.hosts["a"], "a", doc)
	startVipgate(t, b.hosts["b"], "b", doc)
	waitHolder(t, b.w, "a+b", 10*time.Second)
}

// TestKeepalivedInterop pairs a vipgate node with the Debian keepalived on
// one segment, each side master in turn, for v2 with PASS, v3 and unicast.
// The master fails in each way of TestNetnsFailover — link down, track
// script failing (weight -150), crash, clean shutdown — and the other
// implementation must take over each time (and the master take back what
// preemption gives it).
func TestKeepalivedInterop(t *testing.T) {
	modes := []struct {
		name string
		o    opts
	}{
		{"v2-pass-multicast", opts{version: 2, interval: time.Second, auth: "s3cret"}},
		{"v3-multicast", opts{version: 3, interval: 100 * time.Millisecond}},
		{"v2-unicast", opts{version: 2, interval: time.Second, unicast: []string{"198.18.0.1", "198.18.0.2"}}},
		{"v3-unicast", opts{version: 3, interval: 100 * time.Millisecond, unicast: []string{"198.18.0.1", "198.18.0.2"}}},
	}
	for _, m := range modes {
		for _, vipgateMaster := range []bool{true, false} {
			name := m.name + "/keepalived-master"
			if vipgateMaster {
				name = m.name + "/vipgate-master"
			}
			t.Run(name, func(t *testing.T) {
				testenv.RequireTool(t, "keepalived")
				b := newBed(t, "v", "k") // v = vipgate 198.18.0.1, k = keepalived .2
				o := m.o
				o.prio = map[string]int{"v": 100, "k": 200}
				master, backup := "k", "v"
				if vipgateMaster {
					o.prio = map[string]int{"v": 200, "k": 100}
					master, backup = "v", "k"
				}
				dir := t.TempDir()
				o.track = "test ! -e " + dir + "/fail-$(ip netns identify)"
				o.kaTrack = filepath.Join(dir, "track.sh")
				if err := os.WriteFile(o.kaTrack, []byte("#!/bin/sh\n"+o.track+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				docO := o
				docO.prio = map[string]int{"v": o.prio["v"]}
				vDoc, kConf := vipgateDoc(docO), keepalivedConf(o, "k", "198.18.0.2")
				pv := startVipgate(t, b.hosts["v"], "v", vDoc)
				pk := startKeepalived(t, b.hosts["k"], kConf)
				procs := map[string]*proc{"v": pv, "k": pk}
				var logs []*proc // every keepalived and vipgate process, restarted ones too
				logs = append(logs, pv, pk)
				long := 15 * time.Second
				waitHolder(t, b.w, master, long)

				t.Log("link down on the master")
				b.n.Cable(b.hosts[master], false)
				waitHolder(t, b.w, backup, long)
				b.n.Cable(b.hosts[master], true)
				waitHolder(t, b.w, master, long)

				t.Log("track script fails on the master")
				fail := filepath.Join(dir, "fail-"+b.hosts[master].NS)
				if err := os.WriteFile(fail, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				waitHolder(t, b.w, backup, long)
				os.Remove(fail)
				waitHolder(t, b.w, master, long)

				t.Log("master crashes")
				procs[master].kill()
				b.w.crashed(master)
				waitHolder(t, b.w, backup, long)
				b.hosts[master].Run("ip", "addr", "del", vip+"/24", "dev", "eth0") // the crashed box reboots clean
				b.w.revive(master)
				if master == "v" {
					procs["v"] = startVipgate(t, b.hosts["v"], "v", vDoc)
				} else {
					procs["k"] = startKeepalived(t, b.hosts["k"], kConf)
				}
				logs = append(logs, procs[master])
				waitHolder(t, b.w, master, long)

				t.Log("clean shutdown of the master")
				procs[master].stop()
				waitHolder(t, b.w, backup, long)
				if len(o.unicast) > 0 && !vipgateMaster {
					// keepalived preempting back after its own link flap sends
					// its adverts to a neighbour entry that failed while the
					// link was down; they wait in its ARP queue, so both hold
					// the VIP until that resolves. keepalived-side behaviour,
					// reported rather than asserted.
					t.Logf("longest dual hold: %s", b.w.dual())
				} else {
					b.checkDual(t, o)
				}

				for _, p := range logs {
					out := p.out.String()
					if strings.HasPrefix(p.name, "keepalived") {
						if errs := keepalivedProtocolErrors(out); len(errs) > 0 {
							t.Fatalf("keepalived complained about vipgate:\n%s", strings.Join(errs, "\n"))
						}
					} else if strings.Contains(out, "dropped advertisement") {
						t.Fatalf("vipgate dropped keepalived's adverts:\n%s", out)
					}
				}
			})
		}
	}
}

// TestNetnsIPv6 runs VRRPv3 over IPv6 (ff02::12, link-local sources) with
// a link-local VIP, so no address outside the test's own link is used.
func TestNetnsIPv6(t *testing.T) {
	b := newBed(t, "a", "b")
	const vip6 = "fe80::200"
	w := watchVIP(t, vip6, b.hosts["a"], b.hosts["b"])
	doc := strings.ReplaceAll(vipgateDoc(opts{version: 3, interval: 100 * time.Millisecond, prio: map[string]int{"a": 200, "b": 100}}), vip+"/24", vip6+"/64")
	pa := startVipgate(t, b.hosts["a"], "a", doc)
	startVipgate(t, b.hosts["b"], "b", doc)
	waitHolder(t, w, "a", 10*time.Second)
	b.n.Cable(b.hosts["a"], false)
	waitHolder(t, w, "b", 10*time.Second)
	b.n.Cable(b.hosts["a"], true)
	waitHolder(t, w, "a", 10*time.Second)
	pa.stop()
	waitHolder(t, w, "b", 10*time.Second)
	if d := w.dual(); d > 150*time.Millisecond {
		t.Fatalf("VIP held by two nodes for %s", d)
	}
	if out := pa.out.String(); strings.Contains(out, "dropped advertisement") || strings.Contains(out, "cannot") {
		t.Fatalf("errors in a's log:\n%s", out)
	}
}

// TestNetnsVMAC: with use_vmac the VIP answers with the virtual router MAC
// from whichever node is master, so the client's ARP entry never changes.
func TestNetnsVMAC(t *testing.T) {
	b := newBed(t, "a", "b")
	doc := vipgateDoc(opts{version: 3, interval: 100 * time.Millisecond, prio: map[string]int{"a": 200, "b": 100}})
	doc = strings.ReplaceAll(doc, "      vips:", "      use_vmac: true\n      vips:")
	pa := startVipgate(t, b.hosts["a"], "a", doc)
	startVipgate(t, b.hosts["b"], "b", doc)
	hostsHold := func(want string) func() bool {
		return func() bool {
			out, _ := b.hosts[want].Run("ip", "-o", "addr", "show", "dev", "vrrp.51")
			return strings.Contains(out, vip+"/24")
		}
	}
	testenv.Eventually(t, 10*time.Second, "VIP on a's vrrp.51", hostsHold("a"))
	lladdr := func() string {
		b.client.Run("ping", "-c1", "-W1", vip)
		out, _ := b.client.Run("ip", "neigh", "show", vip)
		return out
	}
	const vmac = "00:00:5e:00:01:33"
	if n := lladdr(); !strings.Contains(n, vmac) {
		la, _ := b.hosts["a"].Run("sh", "-c", "ip -br link; cat /proc/sys/net/ipv4/conf/*/arp_ignore; ip -br addr")
		t.Fatalf("client's neighbour entry for the VIP: %q, want %s\n%s", n, vmac, la)
	}
	// The parent interfaces must not answer for the VIP, nor the macvlan for
	// the node's own address.
	if out, _ := b.client.Run("ip", "neigh", "show", "198.18.0.1"); strings.Contains(out, vmac) {
		t.Fatalf("node address resolved to the virtual MAC: %s", out)
	}
	pa.stop()
	testenv.Eventually(t, 10*time.Second, "VIP on b's vrrp.51", hostsHold("b"))
	testenv.Eventually(t, 10*time.Second, "client reaches the VIP on b", func() bool {
		_, err := b.client.Run("ping", "-c1", "-W1", vip)
		return err == nil
	})
	if n := lladdr(); !strings.Contains(n, vmac) {
		t.Fatalf("after failover: %q", n)
	}
	if out, _ := b.hosts["a"].Run("ip", "link", "show", "vrrp.51"); !strings.Contains(out, "does not exist") {
		t.Fatalf("a left its macvlan behind: %s", out)
	}
}

// TestNetnsTwoInstancesOneInterface: two virtual routers share eth0, each
// with its own master (active/active, as two VIPs of one datacenter often
// are). Each ignores the other's adverts without complaint; a link down
// moves both VIPs to the surviving node and they split again after it. The
// VIP keeps the label its `vips` line gives it.
func TestNetnsTwoInstancesOneInterface(t *testing.T) {
	b := newBed(t, "a", "b")
	const vip2 = "198.18.0.201"
	w2 := watchVIP(t, vip2, b.hosts["a"], b.hosts["b"])
	doc := fmt.Sprintf(`vrrp:
  instances:
    - {name: vi51, interface: eth0, vrid: 51, version: 3, advert_interval: 100ms, priorities: {a: 200, b: 100},
       vips: ["%s/24 dev eth0 label eth0:vip51"]}
    - {name: vi52, interface: eth0, vrid: 52, version: 3, advert_interval: 100ms, priorities: {a: 100, b: 200},
       vips: ["%s/24"]}
`, vip, vip2)
	pa := startVipgate(t, b.hosts["a"], "a", doc)
	pb := startVipgate(t, b.hosts["b"], "b", doc)
	long := 10 * time.Second
	waitHolder(t, b.w, "a", long)
	waitHolder(t, w2, "b", long)
	if out := b.hosts["a"].MustRun(t, "ip", "-o", "-4", "addr", "show", "dev", "eth0"); !strings.Contains(out, vip+"/24") || !strings.Contains(out, "eth0:vip51") {
		t.Fatalf("VIP without its label on a:\n%s", out)
	}

	b.n.Cable(b.hosts["a"], false)
	waitHolder(t, b.w, "b", long)
	waitHolder(t, w2, "b", long)
	b.n.Cable(b.hosts["a"], true)
	waitHolder(t, b.w, "a", long)
	waitHolder(t, w2, "b", long)
	o := opts{interval: 100 * time.Millisecond}
	b.checkDual(t, o)
	if d := w2.dual(); d > o.interval+50*time.Millisecond {
		t.Fatalf("%s held by two nodes for %s", vip2, d)
	}
	for _, p := range []*proc{pa, pb} {
		if out := p.out.String(); strings.Contains(out, "dropped advertisement") {
			t.Fatalf("%s dropped adverts:\n%s", p.name, out)
		}
	}
}
