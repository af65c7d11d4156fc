package soakcheck

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// The invariants, as named in violations and in the report.
const (
	OneVIPHolder    = "one VIP holder per VRID"
	OneActiveDC     = "one active datacenter per raft index"
	VersionsForward = "committed config versions only go forward"
	AlertsOnce      = "every alert delivered once or dead-lettered"
	FailInWindows   = "client requests fail only inside failover windows"
)

// Violation is one broken promise, with when and the evidence.
type Violation struct {
	Invariant string    `json:"invariant"`
	At        time.Time `json:"at"`
	Detail    string    `json:"detail"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s: %s", v.At.UTC().Format("15:04:05.000"), v.Invariant, v.Detail)
}

// Window is a measured failover window: from a disruptive fault's
// injection until the client's first successful request after it was
// healed.
type Window struct {
	Client string
	Fault  string
	From   time.Time
	To     time.Time
	Closed bool // the client was served again
}

// Result is the verdict and the figures of one history.
type Result struct {
	Violations []Violation
	Windows    []Window
	// Figures.
	Faults      map[string]int // per kind
	Ops         map[string][2]int
	Samples     int
	StaleVIPs   int               // samples where a dead or paused node still carried a VIP
	Requests    map[string][2]int // client → ok, failed
	Queued      int               // distinct alert mails seen queued
	Delivered   int               // distinct (mail, recipient) delivered
	Duplicates  int               // further copies explained by a sender's fault
	DeadLetters int
}

// OK reports whether no invariant was broken.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

// Check runs every invariant over the history.
func Check(h *History) *Result {
	r := &Result{Faults: map[string]int{}, Ops: map[string][2]int{}, Requests: map[string][2]int{}, Samples: len(h.Samples)}
	for _, f := range h.Faults {
		r.Faults[f.Kind]++
	}
	for _, o := range h.Ops {
		c := r.Ops[o.Kind]
		if o.OK {
			c[0]++
		} else {
			c[1]++
		}
		r.Ops[o.Kind] = c
	}
	r.checkVIPs(h)
	r.checkActive(h)
	r.checkVersions(h)
	r.checkAlerts(h)
	r.checkRequests(h)
	sort.SliceStable(r.Violations, func(i, j int) bool { return r.Violations[i].At.Before(r.Violations[j].At) })
	return r
}

func (r *Result) fail(inv string, at time.Time, format string, args ...any) {
	r.Violations = append(r.Violations, Violation{Invariant: inv, At: at, Detail: fmt.Sprintf(format, args...)})
}

// checkVIPs: at every sample, at most one running node carries a VRID's
// address. A dead or paused process cannot remove its address (nor can
// keepalived's): such a leftover is counted as stale, and it counts again
// as soon as the node runs: a restarted or resumed node must drop it before
// anything else.
func (r *Result) checkVIPs(h *History) {
	for _, s := range h.Samples {
		stale := false
		for _, vrid := range slices.Sorted(maps.Keys(s.VIPs)) {
			var live []string
			for _, n := range s.VIPs[vrid] {
				if ns, ok := s.Nodes[n]; ok && ns.Proc != Running && ns.Proc != "" {
					stale = true
					continue
				}
				live = append(live, n)
			}
			if len(live) > 1 {
				r.fail(OneVIPHolder, s.At, "VRID %d held by %s", vrid, strings.Join(live, " and "))
			}
		}
		if stale {
			r.StaleVIPs++
		}
	}
}

// checkActive: nodes whose FSMs stand at the same raft index hold the same
// active datacenter (the state machine is deterministic, so anything else
// is divergence: two sides deciding on their own). Keyed by index alone,
// which is stricter than by term and index.
func (r *Result) checkActive(h *History) {
	type seen struct {
		dc, node string
		term     uint64
		at       time.Time
	}
	byIndex := map[uint64]seen{}
	for _, s := range h.Samples {
		for _, n := range slices.Sorted(maps.Keys(s.Nodes)) {
			ns := s.Nodes[n]
			if !ns.OK || ns.Index == 0 {
				continue
			}
			prev, ok := byIndex[ns.Index]
			if !ok {
				byIndex[ns.Index] = seen{ns.Active, n, ns.Term, s.At}
				continue
			}
			if prev.dc != ns.Active {
				r.fail(OneActiveDC, s.At, "index %d: %s has %q active (term %d), %s had %q (term %d, at %s)",
					ns.Index, n, ns.Active, ns.Term, prev.node, prev.dc, prev.term, prev.at.UTC().Format("15:04:05.000"))
			}
		}
	}
}

// checkVersions: on every node (within one process life) the committed
// version never decreases; one version is one document everywhere; the
// documents follow the order in which they were applied (a document
// committed again after a newer one is a rollback, e.g. a re-seed); at the
// end every node holds the last document applied.
func (r *Result) checkVersions(h *History) {
	applyPos := map[string]int{}
	lastOK := -1
	for i, o := range h.Ops {
		if o.Kind == "apply" && o.DocHash != "" {
			applyPos[o.DocHash] = i
			if o.OK {
				lastOK = i
			}
		}
	}
	type key struct {
		node string
		inc  int
	}
	last := map[key]uint64{}
	docOf := map[uint64]string{}
	final := map[string]NodeSample{}
	for _, s := range h.Samples {
		for _, n := range slices.Sorted(maps.Keys(s.Nodes)) {
			ns := s.Nodes[n]
			if !ns.OK {
				continue
			}
			final[n] = ns
			k := key{n, ns.Incarnation}
			if v, ok := last[k]; ok && ns.Version < v {
				r.fail(VersionsForward, s.At, "%s went from version %d back to %d", n, v, ns.Version)
			}
			last[k] = ns.Version
			if ns.Version == 0 || ns.DocHash == "" {
				continue
			}
			if d, ok := docOf[ns.Version]; ok && d != ns.DocHash {
				r.fail(VersionsForward, s.At, "version %d is document %s on %s, %s elsewhere", ns.Version, short(ns.DocHash), n, short(d))
			}
			docOf[ns.Version] = ns.DocHash
			if _, ok := applyPos[ns.DocHash]; !ok && len(applyPos) > 0 {
				r.fail(VersionsForward, s.At, "%s holds document %s (version %d) that no apply committed", n, short(ns.DocHash), ns.Version)
			}
		}
	}
	vs := slices.Sorted(maps.Keys(docOf))
	for i := 1; i < len(vs); i++ {
		a, b := docOf[vs[i-1]], docOf[vs[i]]
		pa, oka := applyPos[a]
		pb, okb := applyPos[b]
		if oka && okb && pb <= pa {
			r.fail(VersionsForward, h.End, "version %d commits document %s again after version %d committed a newer one (%s)",
				vs[i], short(b), vs[i-1], short(a))
		}
	}
	if lastOK < 0 {
		return
	}
	for _, n := range slices.Sorted(maps.Keys(final)) {
		ns := final[n]
		if p, ok := applyPos[ns.DocHash]; !ok || p < lastOK {
			r.fail(VersionsForward, h.End, "%s ends with document %s (version %d), not the last applied %s",
				n, short(ns.DocHash), ns.Version, short(h.Ops[lastOK].DocHash))
		}
	}
}

// checkAlerts: every mail seen queued reached each of its recipients, or
// is listed in the dead-letter queue for it; no recipient got a mail twice
// unless its sender was killed or could not write its queue in between
// (SMTP has no exactly-once: the relay accepted it, the sender never
// recorded that; the copy keeps its Message-ID, so a mail client shows it
// once).
func (r *Result) checkAlerts(h *History) {
	type rk struct{ id, rcpt string }
	copies := map[rk][]Mail{}
	for _, m := range h.Mails {
		if m.ID == "" {
			r.fail(AlertsOnce, m.At, "mail %q from %s has no Message-ID", m.Subject, m.Node)
			continue
		}
		k := rk{m.ID, strings.ToLower(m.Recipient)}
		copies[k] = append(copies[k], m)
	}
	dead := map[rk]bool{}
	for _, d := range h.DeadLetter {
		for _, to := range d.To {
			dead[rk{d.ID, strings.ToLower(to)}] = true
		}
		r.DeadLetters++
	}
	queued := map[string]Queued{}
	for _, q := range h.Queued {
		p, ok := queued[q.ID]
		if !ok {
			queued[q.ID] = q
			continue
		}
		p.To = union(p.To, q.To)
		queued[q.ID] = p
	}
	r.Queued = len(queued)
	for _, id := range slices.Sorted(maps.Keys(queued)) {
		q := queued[id]
		for _, to := range q.To {
			k := rk{id, strings.ToLower(to)}
			if len(copies[k]) == 0 && !dead[k] {
				r.fail(AlertsOnce, q.At, "mail %s %q from %s never reached %s and is not a dead letter", id, q.Subject, q.Node, to)
			}
		}
	}
	keys := make([]rk, 0, len(copies))
	for k := range copies {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].id != keys[j].id {
			return keys[i].id < keys[j].id
		}
		return keys[i].rcpt < keys[j].rcpt
	})
	for _, k := range keys {
		cs := copies[k]
		r.Delivered++
		sort.Slice(cs, func(i, j int) bool { return cs[i].At.Before(cs[j].At) })
		for i := 1; i < len(cs); i++ {
			if explained(h.Faults, cs[i].Node, cs[i-1].At, cs[i].At) {
				r.Duplicates++
				continue
			}
			r.fail(AlertsOnce, cs[i].At, "mail %s %q from %s delivered to %s again (first at %s)",
				k.id, cs[i].Subject, cs[i].Node, k.rcpt, cs[i-1].At.UTC().Format("15:04:05.000"))
		}
	}
}

// mtimeSlack: the MTA's delivery times come from file modification times,
// whole seconds on some filesystems.
const mtimeSlack = time.Second

// explained: a fault that may repeat a send hit node between the two
// copies.
func explained(faults []Fault, node string, first, again time.Time) bool {
	for _, f := range faults {
		if !f.LosesSends || f.Target != node {
			continue
		}
		end := f.End
		if end.IsZero() {
			end = again
		}
		if !f.Start.After(again) && !end.Before(first.Add(-mtimeSlack)) {
			return true
		}
	}
	return false
}

// change is a failover seen in the samples: a VIP changed holders or a
// node's active datacenter changed, between two samples.
type change struct {
	what     string
	from, to time.Time
}

func changes(h *History) []change {
	var out []change
	for i := 1; i < len(h.Samples); i++ {
		a, b := h.Samples[i-1], h.Samples[i]
		for vrid := range b.VIPs {
			if x, y := liveHolders(a, vrid), liveHolders(b, vrid); x != y {
				out = append(out, change{fmt.Sprintf("VRID %d %q→%q", vrid, x, y), a.At, b.At})
			}
		}
		for vrid := range a.VIPs {
			if _, ok := b.VIPs[vrid]; !ok && liveHolders(a, vrid) != "" {
				out = append(out, change{fmt.Sprintf("VRID %d %q→\"\"", vrid, liveHolders(a, vrid)), a.At, b.At})
			}
		}
		for _, n := range slices.Sorted(maps.Keys(b.Nodes)) {
			x, y := a.Nodes[n], b.Nodes[n]
			if x.OK && y.OK && x.Active != y.Active {
				out = append(out, change{fmt.Sprintf("active %s→%s", x.Active, y.Active), a.At, b.At})
				break
			}
		}
	}
	return out
}

// LastFailover is when the samples last showed a failover (the sample
// that shows it), or the start of the run when none did.
func LastFailover(h *History) time.Time {
	last := h.Start
	for _, c := range changes(h) {
		if c.to.After(last) {
			last = c.to
		}
	}
	return last
}

func liveHolders(s Sample, vrid int) string {
	var l []string
	for _, n := range s.VIPs[vrid] {
		if ns, ok := s.Nodes[n]; !ok || ns.Proc == Running || ns.Proc == "" {
			l = append(l, n)
		}
	}
	sort.Strings(l)
	return strings.Join(l, "+")
}

// checkRequests: a failed request must overlap a failover window of its
// client. Each disruptive fault opens one for every client, closed by the
// client's first successful request that started after the fault was
// healed; so does every failover the samples show (a VIP changing holders,
// the active datacenter changing: a preempting master, a failover back),
// from the sample before it to the first success after the sample that
// shows it. A window that never closes is a client never served again.
func (r *Result) checkRequests(h *History) {
	moves := changes(h)
	byClient := map[string][]Request{}
	for _, q := range h.Requests {
		byClient[q.Client] = append(byClient[q.Client], q)
		c := r.Requests[q.Client]
		if q.Err == "" {
			c[0]++
		} else {
			c[1]++
		}
		r.Requests[q.Client] = c
	}
	for _, client := range slices.Sorted(maps.Keys(byClient)) {
		reqs := byClient[client]
		sort.Slice(reqs, func(i, j int) bool { return reqs[i].Start.Before(reqs[j].Start) })
		var ws []Window
		for _, f := range h.Faults {
			if !f.Disruptive {
				continue
			}
			w := Window{Client: client, Fault: f.Kind + " " + f.Target, From: f.Start, To: h.End}
			healed := f.End
			if healed.IsZero() {
				healed = h.End
			}
			for _, q := range reqs {
				if q.Err == "" && !q.Start.Before(healed) {
					w.To, w.Closed = q.End, true
					break
				}
			}
			if !w.Closed {
				r.fail(FailInWindows, healed, "%s was not served again after %s was healed", client, w.Fault)
			}
			ws = append(ws, w)
		}
		for _, c := range moves {
			w := Window{Client: client, Fault: c.what, From: c.from, To: h.End}
			for _, q := range reqs {
				if q.Err == "" && !q.Start.Before(c.to) {
					w.To, w.Closed = q.End, true
					break
				}
			}
			if !w.Closed {
				r.fail(FailInWindows, c.to, "%s was not served again after %s", client, c.what)
			}
			ws = append(ws, w)
		}
		r.Windows = append(r.Windows, ws...)
		for _, q := range reqs {
			if q.Err == "" || inWindow(ws, q) {
				continue
			}
			r.fail(FailInWindows, q.Start, "%s: request to %s failed outside any failover window (%s, took %s)",
				client, q.Target, q.Err, q.End.Sub(q.Start).Round(time.Millisecond))
		}
	}
}

func inWindow(ws []Window, q Request) bool {
	for _, w := range ws {
		if !q.End.Before(w.From) && !q.Start.After(w.To) {
			return true
		}
	}
	return false
}

// Print writes the figures and the verdict.
func (r *Result) Print(w io.Writer, h *History) {
	fmt.Fprintf(w, "soak: seed %d, %s, %d samples (replay: SEED=%d)\n", h.Seed, h.End.Sub(h.Start).Round(time.Second), r.Samples, h.Seed)
	var fs []string
	n := 0
	for _, k := range slices.Sorted(maps.Keys(r.Faults)) {
		fs = append(fs, fmt.Sprintf("%s %d", k, r.Faults[k]))
		n += r.Faults[k]
	}
	fmt.Fprintf(w, "  faults injected: %d (%s)\n", n, strings.Join(fs, ", "))
	var cmds []string
	for _, k := range slices.Sorted(maps.Keys(r.Ops)) {
		cmds = append(cmds, fmt.Sprintf("%s %d ok %d failed", k, r.Ops[k][0], r.Ops[k][1]))
	}
	fmt.Fprintf(w, "  operator commands: %s\n", strings.Join(cmds, ", "))
	merged := mergeWindows(r.Windows)
	var total, longest time.Duration
	for _, m := range merged {
		total += m.To.Sub(m.From)
		longest = max(longest, m.To.Sub(m.From))
	}
	fmt.Fprintf(w, "  failover windows: %d (merged over clients), %s in all, longest %s\n", len(merged), total.Round(time.Millisecond), longest.Round(time.Millisecond))
	for _, c := range slices.Sorted(maps.Keys(r.Requests)) {
		fmt.Fprintf(w, "  requests %-10s %d ok, %d failed\n", c, r.Requests[c][0], r.Requests[c][1])
	}
	byKind := map[string]int{}
	for _, e := range h.Events {
		byKind[e.Kind]++
	}
	var ks []string
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		ks = append(ks, fmt.Sprintf("%s %d", k, byKind[k]))
	}
	fmt.Fprintf(w, "  events published: %d (%s)\n", len(h.Events), strings.Join(ks, ", "))
	fmt.Fprintf(w, "  alert mails: %d seen queued, %d delivered (mail × recipient), %d repeated copies after a sender's crash, %d dead letters\n",
		r.Queued, r.Delivered, r.Duplicates, r.DeadLetters)
	fmt.Fprintf(w, "  stale VIPs on dead or paused nodes: %d samples\n", r.StaleVIPs)
	if r.OK() {
		fmt.Fprintf(w, "  checker: all invariants hold\n")
		return
	}
	fmt.Fprintf(w, "  checker: %d violation(s):\n", len(r.Violations))
	for i, v := range r.Violations {
		if i == 50 {
			fmt.Fprintf(w, "    … %d more\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(w, "    %s\n", v)
	}
}

// mergeWindows joins overlapping windows (whatever the client).
func mergeWindows(ws []Window) []Window {
	s := append([]Window(nil), ws...)
	sort.Slice(s, func(i, j int) bool { return s[i].From.Before(s[j].From) })
	var out []Window
	for _, w := range s {
		if len(out) > 0 && !w.From.After(out[len(out)-1].To) {
			if w.To.After(out[len(out)-1].To) {
				out[len(out)-1].To = w.To
			}
			continue
		}
		out = append(out, w)
	}
	return out
}

func short(h string) string {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range out {
			if strings.EqualFold(x, y) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}
