package proxy

import (
	"time"

	"github.com/vipgate/vipgate/core/upstream"
)

// logRec collects one request's access-log fields.
type logRec struct {
	start, reqDone, tw, tc, tr, end time.Time
	status                          int
	bytes                           int64
	term                            string
	backend                         *httpBackend
	server                          *upstream.Server
	err                             string
	ck                              *cookieState // nil: no cookie persistence
	retries, queuePos               int64
}

func msSince(a, b time.Time) int64 {
	if a.IsZero() || b.IsZero() {
		return -1
	}
	return b.Sub(a).Milliseconds()
}

// logLine writes the request's access-log line (option httplog;
// accessRec.appendText has the layout, docs/http.md "Access log").
func (s *session) logLine(r *logRec) {
	if r.end.IsZero() {
		r.end = time.Now()
	}
	f := s.h.f
	a := accessRec{
		http: true, client: s.clientAddr, accept: r.start, frontend: f.Name, tls: s.isTLS,
		backend: f.Name,
		tq:      msSince(r.start, r.reqDone), tw: msSince(r.reqDone, r.tw), tc: msSince(r.tw, r.tc),
		tr: msSince(r.tc, r.tr), ta: msSince(r.start, r.end),
		status: r.status, bytes: r.bytes, term: httpTerm(r),
		actconn: f.p.conns.Load(), feconn: f.Counters.CurSessions.Load(),
		retries: r.retries, beQueue: r.queuePos,
		request: s.logb, vars: s.vars, reason: r.err,
	}
	if r.backend != nil {
		a.backend = r.backend.b.Name
		a.beconn = r.backend.b.Counters.CurSessions.Load()
	}
	if r.server != nil {
		a.server = r.server.Name
		a.srvconn = r.server.Counters.CurSessions.Load()
	}
	a.countReleased(&s.lease, r.server)
	f.p.logAccess(&a)
}

// httpTerm is the 4-letter termination state: the session's two, then the
// persistence cookie's two (cookieState.termLetters).
func httpTerm(r *logRec) string {
	t := r.term
	if len(t) != 2 {
		t = "--"
	}
	ck := r.ck.termLetters()
	return t + string(ck[:])
}
