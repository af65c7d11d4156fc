package proxy

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/vipgate/vipgate/core/upstream"
)

// accessRec is one access-log line: HAProxy's `option httplog` field set
// (http) or `option tcplog` (tcp), in HAProxy's layout, so that halog and
// the usual grok patterns read it. The same fields, each under its own
// key, are the record's attributes (a JSON handler shows them all).
type accessRec struct {
	http     bool
	client   netip.AddrPort
	accept   time.Time
	frontend string
	tls      bool
	backend  string
	server   string // "" is <NOSRV>
	// Timers in milliseconds, -1 when the step was not reached: http has
	// Tq/Tw/Tc/Tr/Ta, tcp Tw/Tc and Tt (in ta).
	tq, tw, tc, tr, ta int64
	status             int
	bytes              int64
	term               string // 2 letters (tcp) or 4 (http)
	// HAProxy's counters at logging time: process, frontend, backend and
	// server connections, the connect retries, the server and backend
	// queue positions.
	actconn, feconn, beconn, srvconn, retries int64
	srvQueue, beQueue                         int64
	request                                   []byte // http; empty is <BADREQ>
	vars                                      map[string]string
	reason                                    string
}

// countReleased counts the logged session itself in beconn and srv_conn
// when its server slot (l, on srv) was released before the line was
// written: HAProxy logs while the session still holds it.
func (r *accessRec) countReleased(l *Lease, srv *upstream.Server) {
	if srv == nil || l.Server != srv || !l.done {
		return
	}
	r.srvconn++
	if l.b != nil && l.b.Name == r.backend {
		r.beconn++
	}
}

const acceptDateLayout = "02/Jan/2006:15:04:05.000"

// appendText writes the line:
//
//	http: %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r
//	tcp:  %ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq
//
// vipgate has no header or cookie captures: %CC and %CS are "-" and the
// {captures} blocks are absent, as in HAProxy without capture lines.
// Variables a routing hook set follow the request, in braces.
func (r *accessRec) appendText(b []byte) []byte {
	b = r.client.AppendTo(b)
	b = append(b, " ["...)
	b = r.accept.UTC().AppendFormat(b, acceptDateLayout)
	b = append(b, "] "...)
	b = append(b, r.frontend...)
	if r.tls {
		b = append(b, '~')
	}
	b = append(b, ' ')
	b = append(b, r.backend...)
	b = append(b, '/')
	b = append(b, r.serverName()...)
	b = append(b, ' ')
	timers := [...]int64{r.tq, r.tw, r.tc, r.tr, r.ta}
	ts := timers[:]
	if !r.http {
		ts = append(timers[:0], r.tw, r.tc, r.ta)
	}
	for i, t := range ts {
		if i > 0 {
			b = append(b, '/')
		}
		b = strconv.AppendInt(b, t, 10)
	}
	b = append(b, ' ')
	if r.http {
		b = strconv.AppendInt(b, int64(r.status), 10)
		b = append(b, ' ')
	}
	b = strconv.AppendInt(b, r.bytes, 10)
	if r.http {
		b = append(b, " - -"...)
	}
	b = append(b, ' ')
	b = append(b, r.term...)
	b = append(b, ' ')
	for i, c := range [...]int64{r.actconn, r.feconn, r.beconn, r.srvconn, r.retries} {
		if i > 0 {
			b = append(b, '/')
		}
		b = strconv.AppendInt(b, c, 10)
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.srvQueue, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, r.beQueue, 10)
	if r.http {
		b = append(b, " \""...)
		b = appendLogEscaped(b, r.requestLine())
		b = append(b, '"')
	}
	if len(r.vars) > 0 {
		b = append(b, " {"...)
		for i, k := range r.varKeys() {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, k...)
			b = append(b, '=')
			b = strconv.AppendQuote(b, r.vars[k])
		}
		b = append(b, '}')
	}
	return b
}

func (r *accessRec) serverName() string {
	if r.server == "" {
		return "<NOSRV>"
	}
	return r.server
}

func (r *accessRec) requestLine() []byte {
	if len(r.request) == 0 {
		return []byte("<BADREQ>")
	}
	return r.request
}

func (r *accessRec) varKeys() []string {
	keys := make([]string, 0, len(r.vars))
	for k := range r.vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// appendLogEscaped copies a request line as HAProxy logs it: control
// characters, '"', '#' and bytes above 0x7e as #XX, so that the quoted
// field never ends early and the line stays one line.
func appendLogEscaped(b, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '#' {
			b = append(b, '#', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// attrs are the line's fields, one key each (HAProxy's names for the
// timers and counters).
func (r *accessRec) attrs() []slog.Attr {
	a := make([]slog.Attr, 0, 26)
	mode := "tcp"
	if r.http {
		mode = "http"
	}
	a = append(a,
		slog.String("mode", mode),
		slog.String("client_ip", r.client.Addr().String()),
		slog.Int("client_port", int(r.client.Port())),
		slog.String("accept_date", r.accept.UTC().Format(time.RFC3339Nano)),
		slog.String("frontend", r.frontend),
		slog.Bool("tls", r.tls),
		slog.String("backend", r.backend),
		slog.String("server", r.serverName()),
	)
	if r.http {
		a = append(a, slog.Int64("Tq", r.tq), slog.Int64("Tw", r.tw), slog.Int64("Tc", r.tc),
			slog.Int64("Tr", r.tr), slog.Int64("Ta", r.ta), slog.Int("status", r.status))
	} else {
		a = append(a, slog.Int64("Tw", r.tw), slog.Int64("Tc", r.tc), slog.Int64("Tt", r.ta))
	}
	a = append(a,
		slog.Int64("bytes", r.bytes),
		slog.String("termination_state", r.term),
		slog.Int64("actconn", r.actconn),
		slog.Int64("feconn", r.feconn),
		slog.Int64("beconn", r.beconn),
		slog.Int64("srv_conn", r.srvconn),
		slog.Int64("retries", r.retries),
		slog.Int64("srv_queue", r.srvQueue),
		slog.Int64("backend_queue", r.beQueue),
	)
	if r.http {
		a = append(a, slog.String("request", string(r.requestLine())))
	}
	if len(r.vars) > 0 {
		vs := make([]any, 0, len(r.vars))
		for _, k := range r.varKeys() {
			vs = append(vs, slog.String(k, r.vars[k]))
		}
		a = append(a, slog.Group("vars", vs...))
	}
	if r.reason != "" {
		a = append(a, slog.String("reason", r.reason))
	}
	return a
}

// logAccess writes r to the proxy's access log: the message is the text
// line, the attributes its fields.
func (p *Proxy) logAccess(r *accessRec) {
	ctx := context.Background()
	if !p.access.Enabled(ctx, slog.LevelInfo) {
		return
	}
	p.access.LogAttrs(ctx, slog.LevelInfo, string(r.appendText(make([]byte, 0, 256))), r.attrs()...)
}
