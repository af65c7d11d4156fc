package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP state. Fault and Stopped are keepalived's additions to
// the RFC's Init/Backup/Master.
type State int

// States.
const (
	Init State = iota
	Backup
	Master
	Fault
	Stopped
)

var stateNames = [...]string{"INIT", "BACKUP", "MASTER", "FAULT", "STOP"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText makes states readable in JSON status.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state name back (clients of the status API).
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown VRRP state %q", b)
}

// Params are what the machine needs from the configuration.
type Params struct {
	Version      int
	Interval     time.Duration // our advertisement interval
	Preempt      bool
	PreemptDelay time.Duration
	// Self is our primary address on the interface: compared with the
	// master's on equal priority (the higher address wins, RFC 5798 §6.4.3).
	Self netip.Addr
}

// ActionKind is what the machine asks its driver to do.
type ActionKind int

// Actions, in the order the driver should perform them.
const (
	// SendAdvert sends an advertisement with Action.Priority.
	SendAdvert ActionKind = iota
	// AddVIPs installs the virtual addresses (and GARPs after them).
	AddVIPs
	// DelVIPs removes them.
	DelVIPs
	// Announce sends gratuitous ARP / unsolicited NA for the addresses.
	Announce
	// Transition reports a state change (events, notify scripts).
	Transition
)

// Action is one output of a step.
type Action struct {
	Kind     ActionKind
	Priority uint8 // SendAdvert
	From, To State // Transition
	Reason   string
}

// Machine is the RFC 5798 state machine with keepalived's extensions
// (fault, preempt_delay, nopreempt). It does no I/O and reads no clock:
// every input carries the time, and the driver asks Deadline when to call
// Tick next. That keeps every transition unit-testable.
type Machine struct {
	p        Params
	prio     int // effective priority 1..255
	state    State
	fault    string // non-empty while a fault holds
	running  bool
	masterIv time.Duration // Master_Adver_Interval (learned in v3)
	master   netip.Addr    // current master's address as seen
	// timer is the adver timer (Master) or the master-down timer (Backup).
	timer time.Time
	// preemptAt is when a lower-priority master may be preempted
	// (keepalived preempt_delay); zero means not waiting.
	preemptAt time.Time
	// deferred: the master-down timer already fired late once and was
	// re-armed (see Tick); the next expiry takes over.
	deferred bool
	out      []Action
}

// NewMachine makes a machine in Init with priority prio (1..255).
func NewMachine(p Params, prio int) *Machine {
	return &Machine{p: p, prio: prio, masterIv: p.Interval}
}

// State is the current state.
func (m *Machine) State() State { return m.state }

// Priority is the effective priority.
func (m *Machine) Priority() int { return m.prio }

// MasterAddr is the address of the current master (ours when master),
// invalid when unknown.
func (m *Machine) MasterAddr() netip.Addr {
	if m.state == Master {
		return m.p.Self
	}
	return m.master
}

// Deadline is when Tick must next be called; zero means no timer runs.
func (m *Machine) Deadline() time.Time {
	if !m.running || (m.state != Master && m.state != Backup) {
		return time.Time{}
	}
	return m.timer
}

func (m *Machine) skew() time.Duration {
	if m.p.Version == 2 {
		return time.Duration(256-m.prio) * time.Second / 256
	}
	return time.Duration(256-m.prio) * m.masterIv / 256
}

func (m *Machine) masterDown() time.Duration { return 3*m.masterIv + m.skew() }

func (m *Machine) emit(a Action) { m.out = append(m.out, a) }

func (m *Machine) flush() []Action {
	out := m.out
	m.out = nil
	return out
}

func (m *Machine) to(s State, reason string) {
	if s == m.state {
		return
	}
	from := m.state
	if from == Master {
		m.emit(Action{Kind: DelVIPs})
	}
	m.state = s
	if s == Master {
		m.master = m.p.Self
		m.emit(Action{Kind: AddVIPs})
		m.emit(Action{Kind: Announce})
	}
	m.preemptAt = time.Time{}
	m.deferred = false
	m.emit(Action{Kind: Transition, From: from, To: s, Reason: reason})
}

// Start leaves Init (RFC 5798 §6.4.1): the address owner becomes master at
// once, everyone else backup with the master-down timer running.
func (m *Machine) Start(now time.Time) []Action {
	m.running = true
	m.enter(now, "startup")
	return m.flush()
}

func (m *Machine) enter(now time.Time, reason string) {
	if m.fault != "" {
		m.to(Fault, m.fault)
		return
	}
	if m.prio == 255 {
		m.emit(Action{Kind: SendAdvert, Priority: 255})
		m.to(Master, reason+" (address owner)")
		m.timer = now.Add(m.p.Interval)
		return
	}
	m.masterIv = m.p.Interval
	m.master = netip.Addr{}
	m.to(Backup, reason)
	m.timer = now.Add(m.masterDown())
}

// Tick fires due timers.
func (m *Machine) Tick(now time.Time) []Action {
	if !m.running || m.timer.IsZero() || now.Before(m.timer) {
		return nil
	}
	switch m.state {
	case Master:
		m.emit(Action{Kind: SendAdvert, Priority: uint8(m.prio)})
		m.timer = now.Add(m.p.Interval)
	case Backup:
		if late := now.Sub(m.timer); late > m.masterIv/2 && !m.deferred {
			// The timer fires this late when this process did not run
			// (SIGSTOP, a frozen VM, a long stall): the silence was ours,
			// not the master's, whose adverts are still unread. Taking over
			// now would hold the VIP beside it and pull the clients' ARP
			// entries over for nothing. Listen one more master-down
			// interval; once only, so a node that is merely slow still
			// takes over.
			m.deferred = true
			m.timer = now.Add(m.masterDown())
			return m.flush()
		}
		m.emit(Action{Kind: SendAdvert, Priority: uint8(m.prio)})
		reason := "master down timer expired"
		if m.master.IsValid() {
			reason = "no advertisement from " + m.master.String()
		}
		m.to(Master, reason)
		m.timer = now.Add(m.p.Interval)
	}
	return m.flush()
}

// Advert feeds a received advertisement that passed validation (VRID,
// authentication, TTL, checksum, address list) from address src.
func (m *Machine) Advert(now time.Time, src netip.Addr, prio uint8, interval time.Duration) []Action {
	if !m.running {
		return nil
	}
	switch m.state {
	case Backup:
		if prio == 0 {
			// The master resigned: take over after Skew_Time only.
			m.timer = now.Add(m.skew())
			break
		}
		m.deferred = false
		lower := int(prio) < m.prio
		if lower && m.p.Preempt {
			if m.p.PreemptDelay <= 0 {
				break // discard: the down timer makes us master
			}
			if m.preemptAt.IsZero() {
				m.preemptAt = now.Add(m.p.PreemptDelay)
			}
			if !now.Before(m.preemptAt) {
				break
			}
		} else if !lower {
			m.preemptAt = time.Time{}
		}
		m.master = src
		if m.p.Version == 3 && interval > 0 {
			m.masterIv = interval
		}
		m.timer = now.Add(m.masterDown())
	case Master:
		if prio == 0 {
			// Another master resigned; make sure the backups hear us.
			m.emit(Action{Kind: SendAdvert, Priority: uint8(m.prio)})
			m.timer = now.Add(m.p.Interval)
			break
		}
		if int(prio) > m.prio || (int(prio) == m.prio && src.Compare(m.p.Self) > 0) {
			m.masterIv = m.p.Interval
			if m.p.Version == 3 && interval > 0 {
				m.masterIv = interval
			}
			m.to(Backup, fmt.Sprintf("higher priority master %s (priority %d)", src, prio))
			m.master = src
			m.timer = now.Add(m.masterDown())
			break
		}
		// Another master that must yield to us: it took over while we were
		// silent (paused, cut off) and its gratuitous ARPs moved the
		// switches and the clients to it. Our advert makes it step down;
		// our own announcement brings them back at once instead of when
		// their ARP entries expire (keepalived does the same).
		m.emit(Action{Kind: SendAdvert, Priority: uint8(m.prio)})
		m.emit(Action{Kind: Announce})
		m.timer = now.Add(m.p.Interval)
	}
	return m.flush()
}

// SetPriority changes the effective priority (tracking). A master that
// drops below a backup keeps the role until the backup preempts it, as
// in keepalived; advertising at once lets that happen without waiting.
func (m *Machine) SetPriority(now time.Time, prio int) []Action {
	if prio < 1 {
		prio = 1
	}
	if prio > 255 {
		prio = 255
	}
	if prio == m.prio {
		return nil
	}
	m.prio = prio
	if m.running && m.state == Master {
		m.emit(Action{Kind: SendAdvert, Priority: uint8(prio)})
		m.timer = now.Add(m.p.Interval)
	}
	return m.flush()
}

// SetParams changes preemption and the advertisement interval of a
// running machine without a transition (a config change applied in
// place). Version and Self are fixed for a machine's life. A master with
// a new interval advertises at once so that v3 backups learn it.
func (m *Machine) SetParams(now time.Time, p Params) []Action {
	p.Version, p.Self = m.p.Version, m.p.Self
	old := m.p
	m.p = p
	if !p.Preempt || p.PreemptDelay != old.PreemptDelay {
		m.preemptAt = time.Time{}
	}
	if p.Interval != old.Interval && m.running {
		switch m.state {
		case Master:
			m.masterIv = p.Interval
			m.emit(Action{Kind: SendAdvert, Priority: uint8(m.prio)})
			m.timer = now.Add(p.Interval)
		case Backup:
			if p.Version == 2 {
				// v2 routers share one configured interval.
				m.masterIv = p.Interval
			}
		}
	}
	return m.flush()
}

// SetFault enters FAULT (reason non-empty) or leaves it (reason empty).
// A master in fault sends a priority 0 advertisement first so a backup
// takes over at once instead of after Master_Down_Interval.
func (m *Machine) SetFault(now time.Time, reason string) []Action {
	was := m.fault
	m.fault = reason
	if !m.running || (was == "") == (reason == "") {
		return nil
	}
	if reason != "" {
		if m.state == Master {
			m.emit(Action{Kind: SendAdvert, Priority: 0})
		}
		m.to(Fault, reason)
		m.timer = time.Time{}
	} else {
		m.enter(now, "fault cleared")
	}
	return m.flush()
}

// Stop resigns: a master sends priority 0 and removes its addresses.
func (m *Machine) Stop(now time.Time, reason string) []Action {
	if !m.running {
		return nil
	}
	if m.state == Master {
		m.emit(Action{Kind: SendAdvert, Priority: 0})
	}
	m.to(Stopped, reason)
	m.running = false
	m.timer = time.Time{}
	return m.flush()
}

// Force moves a running, non-faulted machine to Master or Backup (sync
// groups). It is a no-op in the same state.
func (m *Machine) Force(now time.Time, s State, reason string) []Action {
	if !m.running || m.fault != "" || m.state == s || (s != Master && s != Backup) {
		return m.flush()
	}
	if s == Master {
		m.emit(Action{Kind: SendAdvert, Priority: uint8(m.prio)})
		m.to(Master, reason)
		m.timer = now.Add(m.p.Interval)
	} else {
		m.masterIv = m.p.Interval
		m.to(Backup, reason)
		m.timer = now.Add(m.masterDown())
	}
	return m.flush()
}
