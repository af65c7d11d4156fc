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
}

// flowTable maps 5-tuples to servers. It belongs to one goroutine (an
// interface's reader), so it takes no lock; servers' flow gauges
// (CurSessions) are atomics read by stats and leastconn.
type flowTable struct {
	m   map[flowKey]*flow
	max int
}

func newFlowTable() *flowTable { return &flowTable{m: map[flowKey]*flow{}, max: maxFlows} }

// lookup returns the live entry for k (nil when none or expired).
func (t *flowTable) lookup(k flowKey, now int64) *flow {
	f := t.m[k]
	if f == nil {
		return nil
	}
	if now >= f.expires {
		t.remove(k, f)
		return nil
	}
	return f
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

// touch extends the flow after a packet with these TCP flags.
func (f *flow) touch(proto, flags uint8, now int64) {
	idle := udpIdle
	if proto == protoTCP {
		if flags&(tcpFIN|tcpRST) != 0 {
			f.closing = true
		} else if flags&tcpSYN != 0 {
			f.closing = false // a reused tuple: a new connection
		}
		idle = tcpIdle
		if f.closing {
			idle = tcpClosing
		}
	}
	f.expires = now + int64(idle)
}

func (t *flowTable) remove(k flowKey, f *flow) {
	delete(t.m, k)
	f.srv.Counters.SessionEnd()
	if f.backend != nil {
		f.backend.SessionEnd()
	}
}

// sweep removes expired flows and those drop says to forget (their server
// left the configuration, or went down with on_marked_down
// shutdown-sessions): their next packet is placed again.
func (t *flowTable) sweep(now int64, drop func(*upstream.Server) bool) (removed int) {
	for k, f := range t.m {
		if now >= f.expires || (drop != nil && drop(f.srv)) {
			t.remove(k, f)
			removed++
		}
	}
	return removed
}

// clear forgets every flow (the reader stops).
func (t *flowTable) clear() {
	for k, f := range t.m {
		t.remove(k, f)
	}
}

func (t *flowTable) len() int { return len(t.m) }

// templates are persistence_timeout's IPVS templates (stick on src): a
// client address keeps its server this long after its last packet.
type templates struct {
	m map[netip.Addr]*template
}

type template struct {
	srv     *upstream.Server
	expires int64
}

func (ts *templates) get(a netip.Addr, now int64) *upstream.Server {
	t := ts.m[a]
	if t == nil || now >= t.expires {
		return nil
	}
	return t.srv
}

func (ts *templates) put(a netip.Addr, srv *upstream.Server, until int64) {
	if ts.m == nil {
		ts.m = map[netip.Addr]*template{}
	}
	t := ts.m[a]
	if t == nil {
		if len(ts.m) >= maxFlows {
			return
		}
		t = &template{}
		ts.m[a] = t
	}
	t.srv, t.expires = srv, until
}

func (ts *templates) sweep(now int64) {
	for a, t := range ts.m {
		if now >= t.expires {
			delete(ts.m, a)
		}
	}
}
