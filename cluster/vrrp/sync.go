package vrrp

import (
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/config"
)

const groupPrefix = "sync group "

// syncGroup makes its instances change state together, as keepalived's
// vrrp_sync_group: one in FAULT puts all in FAULT, one becoming master
// pulls the others to master, one falling back to backup pushes the
// others back. The group has a state of its own (FAULT as soon as one
// member is, otherwise the state all members share) and its notify
// scripts run when that state changes.
type syncGroup struct {
	name    string
	cfg     config.VRRPSyncGroup
	members []*Instance

	mu     sync.Mutex
	states map[*Instance]State // as last reported through changed
	state  State               // Init until the members first agree
	// queue holds the group's notify commands, run in order, one at a
	// time, by one goroutine at a time; idle is closed while none runs.
	queue [][]string
	idle  chan struct{}
}

func newSyncGroup(cfg config.VRRPSyncGroup, members []*Instance, prev *syncGroup) *syncGroup {
	g := &syncGroup{name: cfg.Name, cfg: cfg, members: members, states: map[*Instance]State{}}
	if prev != nil && prev.name == cfg.Name {
		prev.mu.Lock()
		g.state = prev.state
		for _, m := range members {
			if s, ok := prev.states[m]; ok {
				g.states[m] = s
			}
		}
		prev.mu.Unlock()
	}
	return g
}

func (g *syncGroup) changed(from *Instance, to State, reason string) {
	g.record(from, to)
	if strings.HasPrefix(reason, groupPrefix) {
		return // caused by the group: do not echo it back
	}
	for _, o := range g.members {
		if o == from {
			continue
		}
		reason := groupPrefix + g.name + ": " + from.cfg.Name + " is " + to.String()
		go o.do(func(now time.Time) []Action {
			// Each message is its own goroutine, and goroutines run in
			// any order (a newer one often first): one that a later
			// change of from's has superseded is dropped, or a stale
			// "is MASTER" arriving after "is FAULT" would pull o out of
			// the group's fault. The later change's own message follows.
			if g.stateOf(from) != to {
				return nil
			}
			switch to {
			case Fault:
				o.groupFault = reason
				return o.m.SetFault(now, reason)
			case Master:
				o.groupFault = ""
				var acts []Action
				if o.m.State() == Fault && o.faultReason() == "" {
					acts = o.m.SetFault(now, "")
				}
				return append(acts, o.m.Force(now, Master, reason)...)
			case Backup:
				if o.groupFault != "" {
					o.groupFault = ""
					if o.faultReason() == "" {
						return o.m.SetFault(now, "")
					}
				}
				return o.m.Force(now, Backup, reason)
			}
			return nil
		})
	}
}

// record notes a member's new state and, when the group's own state
// changes with it, queues the group's notify scripts on that member's
// notifier (after the member's own: transitions keep their order).
func (g *syncGroup) record(in *Instance, to State) {
	g.mu.Lock()
	if g.states == nil {
		g.states = map[*Instance]State{}
	}
	g.states[in] = to
	next := g.state
	all := true
	for _, m := range g.members {
		s := g.states[m]
		if s == Fault {
			next, all = Fault, false
			break
		}
		all = all && s == to
	}
	if all {
		next = to
	}
	changed := next != g.state && next != Init
	g.state = next
	if changed {
		g.queueLocked(in.log, next)
	}
	g.mu.Unlock()
}

// queueLocked queues the scripts for group state next (under g.mu) and
// starts the runner when none runs: scripts of different members'
// goroutines keep the order of the group's transitions.
func (g *syncGroup) queueLocked(log *slog.Logger, next State) {
	specific := notifyFor(next, g.cfg.NotifyMaster, g.cfg.NotifyBackup, g.cfg.NotifyFault, g.cfg.NotifyStop)
	log.Info("vrrp sync group transition", "group", g.name, "to", next)
	if specific != "" {
		g.queue = append(g.queue, []string{specific})
	}
	if g.cfg.Notify != "" {
		// keepalived passes priority 0 for a group.
		g.queue = append(g.queue, []string{g.cfg.Notify, "GROUP", g.name, next.String(), "0"})
	}
	if len(g.queue) == 0 || (g.idle != nil && !isClosed(g.idle)) {
		return
	}
	idle := make(chan struct{})
	g.idle = idle
	go func() {
		for {
			g.mu.Lock()
			if len(g.queue) == 0 {
				close(idle) // under g.mu: a command queued later starts a new runner
				g.mu.Unlock()
				return
			}
			cmd := g.queue[0]
			g.queue = g.queue[1:]
			g.mu.Unlock()
			runNotify(log, cmd)
		}
	}()
}

// stateOf is in's state as last recorded.
func (g *syncGroup) stateOf(in *Instance) State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.states[in]
}

// wait returns when no group script runs or waits to run.
func (g *syncGroup) wait() {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle != nil {
		<-idle
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// faultReason is the instance's own fault (link, tracks), without the group's.
func (in *Instance) faultReason() string {
	if in.linkDown {
		return "interface " + in.cfg.Interface + " is down"
	}
	return in.verdict.Fault
}
