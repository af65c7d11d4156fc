package vrrp

import (
	"strings"
	"time"
)

const groupPrefix = "sync group "

// syncGroup makes its instances change state together, as keepalived's
// vrrp_sync_group: one in FAULT puts all in FAULT, one becoming master
// pulls the others to master, one falling back to backup pushes the
// others back.
type syncGroup struct {
	name    string
	members []*Instance
}

func (g *syncGroup) changed(from *Instance, to State, reason string) {
	if strings.HasPrefix(reason, groupPrefix) {
		return // caused by the group: do not echo it back
	}
	for _, o := range g.members {
		if o == from {
			continue
		}
		reason := groupPrefix + g.name + ": " + from.cfg.Name + " is " + to.String()
		go o.do(func(now time.Time) []Action {
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

// faultReason is the instance's own fault (link, tracks), without the group's.
func (in *Instance) faultReason() string {
	if in.linkDown {
		return "interface " + in.cfg.Interface + " is down"
	}
	return in.verdict.Fault
}
