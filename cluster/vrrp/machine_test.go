package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	self  = netip.MustParseAddr("198.18.0.5")
	lower = netip.MustParseAddr("198.18.0.2")
	upper = netip.MustParseAddr("198.18.0.9")
)

func kinds(acts []Action) string {
	var b []string
	for _, a := range acts {
		switch a.Kind {
		case SendAdvert:
			b = append(b, "advert("+itoa(int(a.Priority))+")")
		case AddVIPs:
			b = append(b, "add")
		case DelVIPs:
			b = append(b, "del")
		case Announce:
			b = append(b, "garp")
		case Transition:
			b = append(b, a.From.String()+">"+a.To.String())
		}
	}
	return strings.Join(b, " ")
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

func v3(preempt bool) Params {
	return Params{Version: 3, Interval: time.Second, Preempt: preempt, Self: self}
}

func TestMachineStartup(t *testing.T) {
	tests := []struct {
		name string
		prio int
		want string
		st   State
	}{
		{"backup", 100, "INIT>BACKUP", Backup},
		{"address owner is master at once and announces", 255, "advert(255) add garp INIT>MASTER", Master},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(v3(true), tc.prio)
			if got := kinds(m.Start(t0)); got != tc.want {
				t.Fatalf("actions %q, want %q", got, tc.want)
			}
			if m.State() != tc.st {
				t.Fatalf("state %s", m.State())
			}
		})
	}
}

// TestMachineTimers checks Master_Down_Interval = 3*interval + skew with
// skew = (256-prio)*interval/256 (v3) and (256-prio)/256 s (v2).
func TestMachineTimers(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		prio int
		want time.Duration
	}{
		{"v3 1s prio 100", v3(true), 100, 3*time.Second + 156*time.Second/256},
		{"v3 100ms prio 200", Params{Version: 3, Interval: 100 * time.Millisecond, Self: self}, 200, 300*time.Millisecond + 56*100*time.Millisecond/256},
		{"v2 3s prio 100 skew in seconds", Params{Version: 2, Interval: 3 * time.Second, Self: self}, 100, 9*time.Second + 156*time.Second/256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(tc.p, tc.prio)
			m.Start(t0)
			if got := m.Deadline().Sub(t0); got != tc.want {
				t.Fatalf("master down after %s, want %s", got, tc.want)
			}
			if acts := m.Tick(m.Deadline().Add(-time.Nanosecond)); len(acts) != 0 {
				t.Fatalf("early tick acted: %s", kinds(acts))
			}
			// Takeover must install the VIPs and announce them (MetalLB #291).
			if got := kinds(m.Tick(m.Deadline())); got != "advert("+itoa(tc.prio)+") add garp BACKUP>MASTER" {
				t.Fatalf("takeover actions %q", got)
			}
			if got := m.Deadline().Sub(t0) - tc.want; got != tc.p.Interval {
				t.Fatalf("next advert after %s, want %s", got, tc.p.Interval)
			}
		})
	}
}

func TestMachineBackupAdverts(t *testing.T) {
	tests := []struct {
		name       string
		preempt    bool
		from       netip.Addr
		prio       uint8
		wantMaster bool // still heading for master (advert discarded)
		deadline   time.Duration
	}{
		{"higher priority keeps us backup", true, upper, 150, false, 3*time.Second + 156*time.Second/256},
		{"equal priority keeps us backup", true, lower, 100, false, 3*time.Second + 156*time.Second/256},
		{"lower priority is preempted", true, lower, 50, true, 0},
		{"nopreempt accepts a lower master", false, lower, 50, false, 3*time.Second + 156*time.Second/256},
		{"resign: take over after skew", true, upper, 0, true, 156 * time.Second / 256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(v3(tc.preempt), 100)
			m.Start(t0)
			now := t0.Add(500 * time.Millisecond)
			before := m.Deadline()
			m.Advert(now, tc.from, tc.prio, time.Second)
			switch {
			case tc.deadline == 0:
				if m.Deadline() != before {
					t.Fatalf("timer moved: advert not discarded")
				}
			case m.Deadline() != now.Add(tc.deadline):
				t.Fatalf("timer at +%s, want +%s", m.Deadline().Sub(now), tc.deadline)
			}
			if !tc.wantMaster && tc.prio != 0 && m.MasterAddr() != tc.from {
				t.Fatalf("master addr %s, want %s", m.MasterAddr(), tc.from)
			}
		})
	}
}

func TestMachineMasterAdverts(t *testing.T) {
	tests := []struct {
		name string
		from netip.Addr
		prio uint8
		want string
	}{
		{"higher priority wins", lower, 150, "del MASTER>BACKUP"},
		{"equal priority, higher address wins", upper, 100, "del MASTER>BACKUP"},
		// Another master that must yield (it took over while we were
		// paused or cut off): advertise and re-announce the VIPs at once.
		{"equal priority, lower address loses", lower, 100, "advert(100) garp"},
		{"lower priority master: reassert", upper, 50, "advert(100) garp"},
		{"resign from another master: advertise now", upper, 0, "advert(100)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(v3(true), 100)
			m.Start(t0)
			m.Tick(m.Deadline())
			if m.State() != Master {
				t.Fatal("not master")
			}
			if got := kinds(m.Advert(t0.Add(5*time.Second), tc.from, tc.prio, time.Second)); got != tc.want {
				t.Fatalf("actions %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMachineV3LearnsMasterInterval(t *testing.T) {
	m := NewMachine(v3(true), 100)
	m.Start(t0)
	m.Advert(t0, upper, 200, 100*time.Millisecond)
	if got, want := m.Deadline().Sub(t0), 300*time.Millisecond+156*100*time.Millisecond/256; got != want {
		t.Fatalf("down interval %s, want %s (from the master's interval)", got, want)
	}
}

func TestMachinePreemptDelay(t *testing.T) {
	p := v3(true)
	p.PreemptDelay = 10 * time.Second
	m := NewMachine(p, 200)
	m.Start(t0)
	// A lower-priority master is accepted for preempt_delay…
	for s := 0; s < 10; s++ {
		now := t0.Add(time.Duration(s) * time.Second)
		if acts := m.Tick(now); len(acts) != 0 {
			t.Fatalf("preempted at %ds: %s", s, kinds(acts))
		}
		m.Advert(now, lower, 100, time.Second)
	}
	// …then ignored, so the down timer makes us master.
	now := t0.Add(10 * time.Second)
	m.Advert(now, lower, 100, time.Second)
	if got := kinds(m.Tick(m.Deadline())); !strings.HasSuffix(got, "BACKUP>MASTER") {
		t.Fatalf("after preempt_delay: %q", got)
	}
	if m.Deadline().Sub(now) > 4*time.Second {
		t.Fatal("took over too late")
	}
}

func TestMachineFaultAndStop(t *testing.T) {
	m := NewMachine(v3(true), 100)
	m.Start(t0)
	m.Tick(m.Deadline())
	if got := kinds(m.SetFault(t0.Add(5*time.Second), "link down")); got != "advert(0) del MASTER>FAULT" {
		t.Fatalf("fault from master: %q", got)
	}
	if !m.Deadline().IsZero() {
		t.Fatal("timer runs in FAULT")
	}
	if acts := m.Advert(t0.Add(6*time.Second), upper, 50, time.Second); len(acts) != 0 {
		t.Fatal("FAULT reacted to an advert")
	}
	if got := kinds(m.SetFault(t0.Add(7*time.Second), "")); got != "FAULT>BACKUP" {
		t.Fatalf("fault cleared: %q", got)
	}
	m.Tick(m.Deadline())
	if got := kinds(m.Stop(t0.Add(20*time.Second), "shutdown")); got != "advert(0) del MASTER>STOP" {
		t.Fatalf("stop: %q", got)
	}
	// Fault before start: start in FAULT.
	m = NewMachine(v3(true), 255)
	m.SetFault(t0, "link down")
	if got := kinds(m.Start(t0)); got != "INIT>FAULT" {
		t.Fatalf("start in fault: %q", got)
	}
}

func TestMachinePriorityChange(t *testing.T) {
	m := NewMachine(v3(true), 100)
	m.Start(t0)
	m.Tick(m.Deadline())
	if got := kinds(m.SetPriority(t0.Add(5*time.Second), 80)); got != "advert(80)" {
		t.Fatalf("priority drop as master: %q", got)
	}
	if acts := m.SetPriority(t0.Add(5*time.Second), 80); len(acts) != 0 {
		t.Fatal("same priority acted")
	}
	if m.SetPriority(t0, 999); m.Priority() != 255 {
		t.Fatal("not clamped")
	}
}

func BenchmarkMachineAdvert(b *testing.B) {
	m := NewMachine(v3(true), 100)
	m.Start(t0)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		m.Advert(now, upper, 150, time.Second)
	}
}

func TestStateTextRoundTrip(t *testing.T) {
	for s := Init; s <= Stopped; s++ {
		b, _ := s.MarshalText()
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%s: got %v, %v", s, back, err)
		}
	}
	var x State
	if err := x.UnmarshalText([]byte("PRIMARY")); err == nil {
		t.Error("unknown state accepted")
	}
}

// The soak found it: a backup SIGSTOPped and resumed found its
// master-down timer long overdue and took over before reading the
// master's adverts queued meanwhile: the VIP on two nodes and the clients'
// ARP entries pulled to the backup. A timer that fires late means this
// process did not run: it listens one more interval (once).
func TestMachineLateTimerIsOwnStall(t *testing.T) {
	tests := []struct {
		name  string
		late  time.Duration
		then  func(m *Machine, at time.Time) []Action
		want  string
		state State
	}{
		{"on time: the master is gone", 0, nil, "advert(100) add garp BACKUP>MASTER", Master},
		{"a little late (load): still takes over", 400 * time.Millisecond, nil, "advert(100) add garp BACKUP>MASTER", Master},
		{"stalled: listens again", 5 * time.Second, nil, "", Backup},
		{"stalled, then the master's advert: stays backup", 5 * time.Second, func(m *Machine, at time.Time) []Action {
			return m.Advert(at.Add(time.Millisecond), upper, 150, time.Second)
		}, "", Backup},
		{"stalled, then silence: takes over", 5 * time.Second, func(m *Machine, at time.Time) []Action {
			return m.Tick(m.Deadline().Add(5 * time.Second)) // late again: deferred once only
		}, "advert(100) add garp BACKUP>MASTER", Master},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMachine(v3(true), 100)
			m.Start(t0)
			m.Advert(t0.Add(time.Second), upper, 150, time.Second)
			at := m.Deadline().Add(tc.late)
			got := kinds(m.Tick(at))
			if tc.then != nil {
				got = kinds(tc.then(m, at))
			}
			if got != tc.want || m.State() != tc.state {
				t.Fatalf("actions %q state %s, want %q %s", got, m.State(), tc.want, tc.state)
			}
		})
	}
}
