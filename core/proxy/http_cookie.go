package proxy

import (
	"bytes"
	"strconv"

	"github.com/vipgate/vipgate/core/proxy/httpparse"
	"github.com/vipgate/vipgate/core/upstream"
)

// cookieState is what the client's persistence cookie said.
type cookieState struct {
	srv          *upstream.Server // usable server named by a valid cookie
	valid        bool             // the client has a valid cookie for srv
	first        int64            // its first-seen date (maxlife), unix seconds
	redispatched bool
	// reqLog and respLog are the 3rd and 4th letters of HAProxy's
	// termination state: what the request's persistence cookie was (N, I,
	// D, V, E, O) and what became of the response's (N, I, U, R, D).
	reqLog, respLog byte
}

// termLetters are the 3rd and 4th termination-state letters of st: "--"
// when the backend has no cookie persistence.
func (st *cookieState) termLetters() [2]byte {
	if st == nil || st.reqLog == 0 {
		return [2]byte{'-', '-'}
	}
	r := st.reqLog
	if r == 'V' && st.redispatched {
		r = 'D'
	}
	w := st.respLog
	if w == 0 {
		w = 'N'
	}
	return [2]byte{r, w}
}

// serverByCookie finds the server whose cookie value is v.
func serverByCookie(b *Backend, v []byte) *upstream.Server {
	for _, s := range b.Servers {
		if st := s.Settings(); st != nil && st.Cookie == string(v) {
			return s
		}
	}
	return nil
}

// cookieValue returns the value of cookie name in a Cookie header value.
func cookieValue(h []byte, name string) ([]byte, bool) {
	for len(h) > 0 {
		var pair []byte
		if i := bytes.IndexByte(h, ';'); i >= 0 {
			pair, h = h[:i], h[i+1:]
		} else {
			pair, h = h, nil
		}
		pair = bytes.TrimSpace(pair)
		k, v, ok := bytes.Cut(pair, []byte("="))
		if ok && string(k) == name {
			return v, true
		}
	}
	return nil, false
}

// lookupCookie reads the backend's persistence cookie from the request
// (HAProxy semantics: a cookie naming a server that is down, unknown, or
// expired by maxidle/maxlife is ignored, and the request is balanced).
func (s *session) lookupCookie(hb *httpBackend, req *httpparse.Request) cookieState {
	st := s.findCookie(hb, req)
	if st.reqLog == 0 {
		st.reqLog = 'N'
	}
	return st
}

func (s *session) findCookie(hb *httpBackend, req *httpparse.Request) cookieState {
	ck := hb.cookie
	for i := range req.Headers {
		if !httpparse.EqualFold(req.Headers[i].Name, "cookie") {
			continue
		}
		v, ok := cookieValue(req.Headers[i].Value, ck.Name)
		if !ok {
			continue
		}
		st := cookieState{reqLog: 'I'}
		switch ck.Mode {
		case "prefix":
			if j := bytes.IndexByte(v, '~'); j > 0 {
				v = v[:j]
			} else {
				return st
			}
		case "insert":
			if ck.MaxIdle > 0 || ck.MaxLife > 0 {
				parts := bytes.Split(v, []byte("|"))
				if len(parts) != 3 {
					return st
				}
				idle, err1 := strconv.ParseInt(string(parts[1]), 10, 64)
				first, err2 := strconv.ParseInt(string(parts[2]), 10, 64)
				if err1 != nil || err2 != nil {
					return st
				}
				now := unixNow()
				if ck.MaxIdle > 0 && now-idle > int64(ck.MaxIdle.D().Seconds()) {
					st.reqLog = 'E'
					return st
				}
				if ck.MaxLife > 0 && now-first > int64(ck.MaxLife.D().Seconds()) {
					st.reqLog = 'O'
					return st
				}
				st.first = first
				v = parts[0]
			}
		}
		srv := serverByCookie(hb.b, v)
		if srv == nil {
			return st
		}
		if !srv.UsableForPersistence() {
			st.reqLog = 'D'
			return st
		}
		st.srv, st.valid, st.reqLog = srv, true, 'V'
		return st
	}
	return cookieState{}
}

// appendCookieHeader writes a request Cookie header toward the server:
// insert+indirect removes the persistence cookie, prefix strips "SRV~".
func (s *session) appendCookieHeader(b []byte, hb *httpBackend, h []byte) []byte {
	ck := hb.cookie
	start := len(b)
	b = append(b, "Cookie: "...)
	n := 0
	for len(h) > 0 {
		var pair []byte
		if i := bytes.IndexByte(h, ';'); i >= 0 {
			pair, h = h[:i], h[i+1:]
		} else {
			pair, h = h, nil
		}
		pair = bytes.TrimSpace(pair)
		if len(pair) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(pair, []byte("="))
		if ok && string(k) == ck.Name {
			if ck.Mode == "insert" {
				continue
			}
			if j := bytes.IndexByte(v, '~'); j >= 0 {
				pair = append(append(k[:len(k):len(k)], '='), v[j+1:]...)
			}
		}
		if n > 0 {
			b = append(b, "; "...)
		}
		b = append(b, pair...)
		n++
	}
	if n == 0 {
		return b[:start]
	}
	return append(b, '\r', '\n')
}

// appendSetCookie writes a server's Set-Cookie toward the client: rewrite
// replaces the persistence cookie's value by the server's, prefix prepends
// it, insert drops the server's own cookie of that name (HAProxy).
func (s *session) appendSetCookie(b []byte, hb *httpBackend, v []byte, srv *upstream.Server, st *cookieState) []byte {
	ck := hb.cookie
	nv, rest, _ := bytes.Cut(v, []byte(";"))
	k, val, ok := bytes.Cut(bytes.TrimSpace(nv), []byte("="))
	if !ok || string(k) != ck.Name {
		return appendHeader(b, "Set-Cookie", v)
	}
	if ck.Mode == "insert" {
		st.respLog = 'D'
		return b
	}
	st.respLog = 'R'

	sv := srv.Settings().Cookie
	b = append(b, "Set-Cookie: "...)
	b = append(b, k...)
	b = append(b, '=')
	switch ck.Mode {
	case "rewrite":
		b = append(b, sv...)
	case "prefix":
		b = append(b, sv...)
		b = append(b, '~')
		b = append(b, val...)
	}
	if len(rest) > 0 || bytes.IndexByte(v, ';') >= 0 {
		b = append(b, ';')
		b = append(b, rest...)
	}
	return append(b, '\r', '\n')
}

// appendInsertedCookie adds the insert-mode Set-Cookie (and nocache's
// Cache-Control) unless indirect says the client already has a valid one.
func (s *session) appendInsertedCookie(b []byte, hb *httpBackend, st *cookieState, srv *upstream.Server) []byte {
	ck := hb.cookie
	if ck.Mode != "insert" {
		return b
	}
	dated := ck.MaxIdle > 0 || ck.MaxLife > 0
	if ck.Indirect && st.valid && st.srv == srv && !dated {
		return b
	}
	if st.valid && st.srv == srv {
		st.respLog = 'U' // a dated cookie refreshed
	} else {
		st.respLog = 'I'
	}
	b = append(b, "Set-Cookie: "...)
	b = append(b, ck.Name...)
	b = append(b, '=')
	b = append(b, srv.Settings().Cookie...)
	if dated {
		now := unixNow()
		first := now
		if st.valid && st.srv == srv && st.first > 0 {
			first = st.first
		}
		b = append(b, '|')
		b = strconv.AppendInt(b, now, 10)
		b = append(b, '|')
		b = strconv.AppendInt(b, first, 10)
	}
	b = append(b, "; path=/"...)
	if ck.Domain != "" {
		b = append(b, "; domain="...)
		b = append(b, ck.Domain...)
	}
	if ck.HTTPOnly {
		b = append(b, "; HttpOnly"...)
	}
	if ck.Secure {
		b = append(b, "; Secure"...)
	}
	b = append(b, '\r', '\n')
	if ck.NoCache {
		b = append(b, "Cache-Control: private\r\n"...)
	}
	return b
}
