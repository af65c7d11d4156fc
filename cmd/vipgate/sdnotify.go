package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/vipgate/vipgate/internal/sdnotify"
)

// systemd's Type=notify (docs/operations.md): READY=1 is sent only once
// the node serves, so that units ordered after vipgate.service start with
// the VIPs, listeners and DNS up.

// earlyListener is a subsystem that would bind its sockets in Run (DNS).
// Binding them before Run makes a port in use fail the start, and lets
// READY=1 follow bound sockets.
type earlyListener interface{ Listen() error }

// starter is a subsystem that starts its work asynchronously in Run (VRRP)
// and says when it has.
type starter interface{ Started() <-chan struct{} }

func listenEarly(subs []subsystem) error {
	for _, s := range subs {
		if l, ok := s.(earlyListener); ok {
			if err := l.Listen(); err != nil {
				return err
			}
		}
	}
	return nil
}

// awaitStarted waits for every starter among subs, or for a subsystem to
// fail (the error), or for ctx to end (nil).
func awaitStarted(ctx context.Context, subs []subsystem, errc <-chan error) error {
	for _, s := range subs {
		st, ok := s.(starter)
		if !ok {
			continue
		}
		select {
		case <-st.Started():
		case err := <-errc:
			return err
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// reloadAcker is a config source that says when a reload asked of it is
// done (its snapshot, if valid, is on Updates by then; a refused one is
// logged). Without it, READY=1 follows the reload request at once.
type reloadAcker interface{ Reloaded() <-chan struct{} }

// notifier wraps sdnotify with logging: a failed notification is worth a
// line (systemd would time the start out or kill us on the watchdog) but
// never stops the node.
type notifier struct {
	n   *sdnotify.Notifier
	log *slog.Logger
}

func newNotifier(log *slog.Logger) (*notifier, <-chan time.Time, func()) {
	nt := &notifier{n: sdnotify.FromEnv(), log: log}
	iv, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog off", "err", err)
	}
	if nt.n == nil || iv <= 0 {
		return nt, nil, func() {}
	}
	t := time.NewTicker(iv)
	log.Info("systemd watchdog on", "interval", iv)
	return nt, t.C, t.Stop
}

func (nt *notifier) check(what string, err error) {
	if err != nil {
		nt.log.Warn("systemd notification failed", "state", what, "err", err)
	}
}

func (nt *notifier) ready()     { nt.check("READY", nt.n.Ready()) }
func (nt *notifier) reloading() { nt.check("RELOADING", nt.n.Reloading()) }
func (nt *notifier) stopping()  { nt.check("STOPPING", nt.n.Stopping()) }
func (nt *notifier) watchdog()  { nt.check("WATCHDOG", nt.n.Watchdog()) }
