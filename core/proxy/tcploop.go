package proxy

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy/evloop"
	"github.com/vipgate/vipgate/core/upstream"
)

// The tcp mode's event-loop path (tcploop_linux.go) serves the plain
// sessions of a frontend (most tcp frontends: route by address and port,
// balance, relay) on the proxy's event loops, one per P, without a
// goroutine per connection and without the net package's per-socket system
// calls. Everything that must wait or look at the bytes stays on the
// goroutine path (tcp.go): inspecting the ClientHello, Lua hooks, PROXY
// protocol, source-address binds, persistence learnt from the response,
// and the backend queue (a session that would queue is handed over, with
// its attempts so far, to connectAndRelay).

// loopEligible says why the sessions of h's frontend cannot all be served
// on an event loop ("" when they can).
func (h *tcpHandler) loopEligible() string {
	f := h.f
	switch {
	case !evloop.Supported:
		return "no event loop on this platform"
	case h.inspect:
		return "inspect_delay: the first bytes are inspected"
	case f.hook != nil || f.Cfg.Route != "":
		return "route: a Lua hook routes"
	case f.Cfg.AcceptProxy:
		return "accept_proxy"
	}
	for _, bn := range f.backendNames() {
		b := f.backends[bn]
		if b == nil {
			continue // refused as PR by both paths
		}
		switch {
		case b.Cfg.SendProxy != "":
			return "backend " + b.Name + ": send_proxy"
		case len(b.srcDial) > 0:
			return "backend " + b.Name + ": source"
		case b.persist != nil && (b.persist.NeedsInspection() || b.persist.WantsResponse()):
			return "backend " + b.Name + ": persistence reads the session's bytes"
		}
		for _, s := range b.Servers {
			if _, ok := b.serverAddr(s); !ok {
				return "backend " + b.Name + ": server " + s.Name + " has a host name, not an address"
			}
		}
	}
	return ""
}

// logPath says, when it changes with a config, which way the frontend's
// tcp sessions are served (and why not on the loops).
func (f *Frontend) logPath(old *Frontend) {
	h, ok := f.handler.(*tcpHandler)
	if !ok {
		return
	}
	why := h.loopWhy
	if f.p.opts.NoEventLoop {
		why = "proxy.event_loop: false"
	}
	if old != nil {
		if oh, ok := old.handler.(*tcpHandler); ok && oh.loopWhy == h.loopWhy {
			return
		}
	}
	if why == "" {
		f.p.log.Info("tcp sessions on the event loops", "frontend", f.Name)
	} else {
		f.p.log.Info("tcp sessions on goroutines", "frontend", f.Name, "reason", why)
	}
}

// serverAddr is s's numeric address, when it has one (a name is resolved
// by the goroutine path's dialer).
func (b *Backend) serverAddr(s *upstream.Server) (netip.AddrPort, bool) {
	ap, ok := b.addrs[s]
	return ap, ok
}

// needsLocal reports whether the frontend's rules look at the port the
// client connected to (a getsockname per connection otherwise saved).
func needsLocal(fc *config.Frontend) bool {
	for _, r := range fc.Rules {
		if len(r.DstPort) > 0 {
			return true
		}
	}
	return false
}

// loopable reports whether the listener may hand this frontend's new
// connections to an event loop.
func (f *Frontend) loopable() bool {
	h, ok := f.handler.(*tcpHandler)
	return ok && h.loopOK && !f.p.opts.NoEventLoop
}

// loopSet is the proxy's event loops, made when a listener first needs
// one and run until the proxy's context ends and their sessions are over.
type loopSet struct {
	mu     sync.Mutex
	loops  []*tcpLoop
	failed bool
}

// tcpLoop is one event loop and what its sessions share.
type tcpLoop struct {
	lp *evloop.Loop
	// scratch is the loop's read buffer: a session holds bytes of its own
	// only while a write waits for its peer.
	scratch []byte
	log     *slog.Logger
}

// get returns loop i (mod the number of loops), making them on first use;
// nil when they cannot be made (logged once: the goroutine path serves).
func (s *loopSet) get(ctx context.Context, i, n int, log *slog.Logger) *tcpLoop {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return nil
	}
	if s.loops == nil {
		for range max(n, 1) {
			lp, err := evloop.New()
			if err != nil {
				log.Warn("no event loop; tcp sessions run on goroutines", "err", err)
				s.failed = true
				for _, l := range s.loops {
					go func() { _ = l.lp.Run(ctx) }() // closes it: nothing is registered
				}
				s.loops = nil
				return nil
			}
			tl := &tcpLoop{lp: lp, scratch: make([]byte, smallBuf), log: log}
			lp.OnPanic = tl.onPanic
			s.loops = append(s.loops, tl)
		}
		for _, l := range s.loops {
			go func() {
				if err := l.lp.Run(ctx); err != nil {
					log.Error("event loop ended", "err", err)
				}
			}()
		}
	}
	return s.loops[i%len(s.loops)]
}
