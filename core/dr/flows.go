package dr

import (
	"net/netip"
	"time"

	"github.com/vipgate/vipgate/core/upstream"
)

// Idle timeouts of a flow, LVS's defaults (ipvsadm --set 900 120 300): an
// established TCP flow, one the client has closed (FIN or RST seen), and a
// UDP flow. The director sees one direction only, so "closed" is the
// client's FIN or RST.
const (
	tcpIdle    = 15 * time.Minute
	tcpClosing = 2 * time.Minute
	udpIdle    = 5 * time.Minute
)

// maxFlows bounds the table (64 bytes an entry: 64 MiB). Beyond it new
// flows are forwarded without an entry: their server is the algorithm's
// choice for each packet, which for maglev is the same server anyway.
const maxFlows = 1 << 20

// flow is an entry: where the flow goes and until when it is kept.
type flow struct {
	srv     *upstream.Server
	backend *upstream.Counters
	expires int64 // unix nano
	closing bool
	// inKernel: the flow is in the XDP fast path's map, sent to mac and
	// counted in slot there.
	inKernel bool
	mac      [6]byte
	slot     uint32
	// tmpl is the persistence template the flow keeps alive (nil: none).
	tmpl *template
}

// kernelFlows is the part of the XDP fast path the table keeps in step:
// the kernel forwards a flow's packets without the table seeing them, so
// its stamp keeps the flow alive, and a flow removed here leaves it too.
type kernelFlows interface {
	lastSeen(k flowKey) (unixNano int64, ok bool)
	del(k flowKey)
}

// flowTable maps 5-tuples to servers. It belongs to one goroutine (an
// interface's reader), so it takes no lock; servers' flow gauges
// (CurSessions) are atomics read by stats and leastconn.
type flowTable struct {
	m   map[flowKey]*flow
	max int
	// kernel is the fast path's flow map (nil: AF_PACKET only).
	kernel kernelFlows
}

func newFlowTable() *flowTable { return &flowTable{m: map[flowKey]*flow{}, max: maxFlows} }

// lookup returns the live entry for k (nil when none or expired).
func (t *flowTable) lookup(k flowKey, now int64) *flow {
	f := t.m[k]
	if f == nil {
		return nil
	}
	if t.expired(k, f, now) {
		t.remove(k, f, now)
		return nil
	}
	return f
}

// expired: idle past its timeout, in user space and in the kernel.
func (t *flowTable) expired(k flowKey, f *flow, now int64) bool {
	if now < f.expires {
		return false
	}
	if f.inKernel && t.kernel != nil {
		if seen, ok := t.kernel.lastSeen(k); ok && seen+f.idle(k.proto) > now {
			f.expires = seen + f.idle(k.proto)
			return false
		}
	}
	return true
}

// add records a new flow to srv; false when the table is full.
func (t *flowTable) add(k flowKey, srv *upstream.Server, backend *upstream.Counters, now int64) (*flow, bool) {
	if len(t.m) >= t.max {
		return nil, false
	}
	f := &flow{srv: srv, backend: backend}
	t.m[k] = f
	srv.Counters.SessionStartAt(now)
	if backend != nil {
		backend.SessionStartAt(now)
	}
	return f, true
}

// newConnection reports whether a packet starts a new connection on a
// tuple the table still holds, so it must be placed again rather than follow
// the old flow (LVS's conn_reuse_mode 1): a bare SYN after the client's FIN
// or RST, or one whose server is no longer usable (the old connection cannot
// live on without the client; a SYN retransmitted to a dead server would
// otherwise go on to it). A SYN in an open flow's life is left alone: the
// client's stack decides, and the server answers it.
func (f *flow) newConnection(proto, flags uint8) bool {
	if proto != protoTCP || flags&(tcpSYN|tcpACK) != tcpSYN {
		return false
	}
	return f.closing || !f.srv.Usable()
}

// touch extends the flow after a packet with these TCP flags.
func (f *flow) touch(proto, flags uint8, now int64) {
	if proto == protoTCP {
		if flags&(tcpFIN|tcpRST) != 0 {
			f.closing = true
		} else if flags&tcpSYN != 0 {
			f.closing = false // a reused tuple: a new connection
		}
	}
	f.expires = now + f.idle(proto)
}

// idle is how long the flow lives after its last packet (ns).
func (f *flow) idle(proto uint8) int64 {
	switch {
	case proto != protoTCP:
		return int64(udpIdle)
	case f.closing:
		return int64(tcpClosing)
	}
	return int64(tcpIdle)
}

func (t *flowTable) remove(k flowKey, f *flow, now int64) {
	delete(t.m, k)
	if f.tmpl != nil {
		f.tmpl.release(now)
	}
	if f.inKernel && t.kernel != nil {
		t.kernel.del(k)
	}
	f.srv.Counters.SessionEnd()
	if f.backend != nil {
		f.backend.SessionEnd()
	}
}

// sweep removes expired flows and those drop says to forget (their server
// left the configuration, or went down with on_marked_down
// shutdown-sessions, or their frontend is gone): their next packet is
// placed again.
func (t *flowTable) sweep(now int64, drop func(flowKey, *upstream.Server) bool) (removed int) {
	for k, f := range t.m {
		if (drop != nil && drop(k, f.srv)) || t.expired(k, f, now) {
			t.remove(k, f, now)
			removed++
		}
	}
	return removed
}

// clear forgets every flow (the reader stops).
func (t *flowTable) clear() {
	for k, f := range t.m {
		t.remove(k, f, 0)
	}
}

func (t *flowTable) len() int { return len(t.m) }

// templates are persistence_timeout's IPVS templates (stick on src): a
// client address keeps its server this long after its last packet, and
// (as an IPVS template with controlled connections) while a flow it placed
// lives, and this long after the last such flow ends. The flows matter with
// the XDP fast path, where a flow's packets do not reach user space.
type templates struct {
	m map[netip.Addr]*template
}

type template struct {
	srv     *upstream.Server
	expires int64
	persist int64
	// flows placed under the template and still in the table.
	flows int
}

// release: a flow under the template ended at now.
func (t *template) release(now int64) {
	t.flows--
	if t.flows == 0 && now+t.persist > t.expires {
		t.expires = now + t.persist
	}
}

func (t *template) live(now int64) bool { return t.flows > 0 || now < t.expires }

func (ts *templates) get(a netip.Addr, now int64) *upstream.Server {
	t := ts.m[a]
	if t == nil || !t.live(now) {
		return nil
	}
	return t.srv
}

// put keeps a's template on srv for persist after now, and returns it
// (nil: the table is full).
func (ts *templates) put(a netip.Addr, srv *upstream.Server, now, persist int64) *template {
	if ts.m == nil {
		ts.m = map[netip.Addr]*template{}
	}
	t := ts.m[a]
	if t == nil {
		if len(ts.m) >= maxFlows {
			return nil
		}
		t = &template{}
		ts.m[a] = t
	}
	t.srv, t.expires, t.persist = srv, now+persist, persist
	return t
}

func (ts *templates) sweep(now int64) {
	for a, t := range ts.m {
		if !t.live(now) {
			delete(ts.m, a)
		}
	}
}
