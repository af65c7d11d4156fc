package proxy

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
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
}

func msSince(a, b time.Time) int64 {
	if a.IsZero() || b.IsZero() {
		return -1
	}
	return b.Sub(a).Milliseconds()
}

// logLine writes the HAProxy-like line (docs/http.md "Access log"):
//
//	client:port [date] frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes term "request"
func (s *session) logLine(r *logRec) {
	if r.end.IsZero() {
		r.end = time.Now()
	}
	b := make([]byte, 0, 256)
	b = s.clientAddr.AppendTo(b)
	b = append(b, " ["...)
	b = r.start.UTC().AppendFormat(b, "02/Jan/2006:15:04:05.000")
	b = append(b, "] "...)
	b = append(b, s.h.f.Name...)
	if s.isTLS {
		b = append(b, '~')
	}
	b = append(b, ' ')
	if r.backend != nil {
		b = append(b, r.backend.b.Name...)
	} else {
		b = append(b, s.h.f.Name...)
	}
	b = append(b, '/')
	if r.server != nil {
		b = append(b, r.server.Name...)
	} else {
		b = append(b, "<NOSRV>"...)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, msSince(r.start, r.reqDone), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, msSince(r.reqDone, r.tw), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, msSince(r.tw, r.tc), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, msSince(r.tc, r.tr), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, msSince(r.start, r.end), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, ' ')
	term := r.term
	if term == "" {
		term = "--"
	}
	b = append(b, term...)
	b = append(b, " \""...)
	if len(s.logb) > 0 {
		b = append(b, s.logb...)
	} else {
		b = append(b, "<BADREQ>"...)
	}
	b = append(b, '"')
	if len(s.vars) > 0 {
		keys := make([]string, 0, len(s.vars))
		for k := range s.vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, " {"...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, k...)
			b = append(b, '=')
			b = strconv.AppendQuote(b, s.vars[k])
		}
		b = append(b, '}')
	}
	attrs := []slog.Attr{slog.String("frontend", s.h.f.Name)}
	if r.err != "" {
		attrs = append(attrs, slog.String("reason", r.err))
	}
	s.h.log.LogAttrs(context.Background(), slog.LevelInfo, string(b), attrs...)
}
