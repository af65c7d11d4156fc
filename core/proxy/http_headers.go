package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy/httpparse"
	"github.com/vipgate/vipgate/core/upstream"
)

// hopOrFraming reports headers the proxy never forwards as received:
// hop-by-hop ones (RFC 9110 7.6.1) and the framing/host fields it rewrites
// itself from the parsed values.
func hopOrFraming(n []byte) bool {
	switch len(n) {
	case 2:
		return httpparse.EqualFold(n, "te")
	case 4:
		return httpparse.EqualFold(n, "host")
	case 7:
		return httpparse.EqualFold(n, "trailer") || httpparse.EqualFold(n, "upgrade")
	case 10:
		return httpparse.EqualFold(n, "connection") || httpparse.EqualFold(n, "keep-alive")
	case 14:
		return httpparse.EqualFold(n, "content-length")
	case 16:
		return httpparse.EqualFold(n, "proxy-connection")
	case 17:
		return httpparse.EqualFold(n, "transfer-encoding")
	}
	return false
}

// connListed reports whether the Connection header(s) name n (those
// headers are hop-by-hop too).
func connListed(m *httpparse.Message, n []byte) bool {
	if m.Conn&httpparse.ConnOther == 0 {
		return false
	}
	found := false
	for i := range m.Headers {
		if !httpparse.EqualFold(m.Headers[i].Name, "connection") {
			continue
		}
		httpparse.ConnectionNames(m.Headers[i].Value, func(t []byte) {
			if bytes.EqualFold(t, n) {
				found = true
			}
		})
	}
	return found
}

func inNames(list config.StringList, n []byte) bool {
	for _, x := range list {
		if httpparse.EqualFold(n, x) {
			return true
		}
	}
	return false
}

func inMap(m map[string]string, n []byte) bool {
	for k := range m {
		if httpparse.EqualFold(n, k) {
			return true
		}
	}
	return false
}

func appendHeader(b []byte, name string, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, '\r', '\n')
}

func appendHeaderS(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, '\r', '\n')
}

// removedByActs reports whether request rules delete or replace a header.
func removedByActs(acts []*config.Rule, n []byte, resp bool) bool {
	for _, r := range acts {
		if resp {
			if inNames(r.DelResponseHeader, n) || inMap(r.SetResponseHeader, n) {
				return true
			}
		} else if inNames(r.DelHeader, n) || inMap(r.SetHeader, n) {
			return true
		}
	}
	return false
}

func (s *session) appendActs(b []byte, acts []*config.Rule, resp bool) []byte {
	for _, r := range acts {
		set, add := r.SetHeader, r.AddHeader
		if resp {
			set, add = r.SetResponseHeader, r.AddResponseHeader
		}
		for _, m := range [2]map[string]string{set, add} {
			for k, v := range m {
				if !resp && strings.EqualFold(k, "host") {
					continue // written in place of the request's Host
				}
				b = append(b, k...)
				b = append(b, ": "...)
				b = s.appendTemplate(b, v)
				b = append(b, '\r', '\n')
			}
		}
	}
	return b
}

// setHostValue is the last set_header Host of the matching rules.
func setHostValue(acts []*config.Rule) (string, bool) {
	v, ok := "", false
	for _, r := range acts {
		for k, x := range r.SetHeader {
			if strings.EqualFold(k, "host") {
				v, ok = x, true
			}
		}
	}
	return v, ok
}

// buildRequestHead serialises the request toward the server into s.out.
func (s *session) buildRequestHead(hb *httpBackend, host []byte, absolute bool, path, query []byte, acts []*config.Rule, hooked bool, ck *cookieState) {
	req := &s.req
	o := s.h.opts
	b := s.out[:0]
	b = append(b, req.Method...)
	b = append(b, ' ')
	if absolute {
		b = append(b, path...)
		if query != nil {
			b = append(b, '?')
			b = append(b, query...)
		}
	} else {
		b = append(b, req.Target...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if v, ok := setHostValue(acts); ok {
		b = s.appendTemplate(b, v)
	} else {
		b = append(b, host...)
	}
	b = append(b, '\r', '\n')

	ff := o.ForwardFor
	ffOn := ff != nil && ff.Mode != "off"
	ffTrusted := false
	if ffOn {
		for _, n := range ff.ExceptNets() {
			if n.Contains(s.clientAddr.Addr()) {
				ffTrusted = true
				break
			}
		}
	}
	skip := func(n []byte) bool {
		if hopOrFraming(n) || connListed(&req.Message, n) {
			return true
		}
		if len(acts) > 0 && removedByActs(acts, n, false) {
			return true
		}
		if ffOn && !ffTrusted && ff.Mode == "replace" && httpparse.EqualFold(n, ff.Header) {
			return true
		}
		// The proxy states these itself; a client's own values are lies.
		if config.Flag(o.XForwardedProto) && httpparse.EqualFold(n, "x-forwarded-proto") {
			return true
		}
		if config.Flag(o.XForwardedPort) && httpparse.EqualFold(n, "x-forwarded-port") {
			return true
		}
		return false
	}
	cookieEdit := hb.cookie != nil && (hb.cookie.Mode == "prefix" || (hb.cookie.Mode == "insert" && hb.cookie.Indirect))
	if hooked && s.htxn.Header != nil {
		for k, vs := range s.htxn.Header {
			kb := []byte(k)
			// A script's header must not be able to split the head.
			if !config.ValidHeaderName(k) || skip(kb) {
				continue
			}
			for _, v := range vs {
				if !validHookValue(v) {
					continue
				}
				if cookieEdit && k == "Cookie" {
					b = s.appendCookieHeader(b, hb, []byte(v))
					continue
				}
				b = appendHeaderS(b, k, v)
			}
		}
	} else {
		for i := range req.Headers {
			hd := &req.Headers[i]
			if skip(hd.Name) {
				continue
			}
			if cookieEdit && httpparse.EqualFold(hd.Name, "cookie") {
				b = s.appendCookieHeader(b, hb, hd.Value)
				continue
			}
			b = append(b, hd.Name...)
			b = append(b, ": "...)
			b = append(b, hd.Value...)
			b = append(b, '\r', '\n')
		}
	}
	if req.Chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	} else if req.ContentLength >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, req.ContentLength, 10)
		b = append(b, '\r', '\n')
	}
	if req.HasUpgrade && req.Conn&httpparse.ConnUpgrade != 0 {
		b = append(b, "Connection: upgrade\r\n"...)
		for i := range req.Headers {
			if httpparse.EqualFold(req.Headers[i].Name, "upgrade") {
				b = appendHeader(b, "Upgrade", req.Headers[i].Value)
			}
		}
	}
	if ffOn && !ffTrusted {
		b = append(b, ff.Header...)
		b = append(b, ": "...)
		b = s.clientAddr.Addr().AppendTo(b)
		b = append(b, '\r', '\n')
	}
	proto := "http"
	if s.isTLS {
		proto = "https"
	}
	if config.Flag(o.XForwardedProto) {
		b = appendHeaderS(b, "X-Forwarded-Proto", proto)
	}
	if config.Flag(o.XForwardedPort) {
		b = append(b, "X-Forwarded-Port: "...)
		b = strconv.AppendUint(b, uint64(s.local.Port()), 10)
		b = append(b, '\r', '\n')
	}
	if config.Flag(o.Forwarded) {
		b = append(b, "Forwarded: for="...)
		b = appendForwardedNode(b, s.clientAddr.Addr())
		b = append(b, ";proto="...)
		b = append(b, proto...)
		if len(host) > 0 && forwardedTokenOK(host) {
			b = append(b, ";host="...)
			b = append(b, host...)
		}
		b = append(b, '\r', '\n')
	}
	if o.Via != "" {
		b = append(b, "Via: 1."...)
		b = append(b, byte('0'+req.Minor))
		b = append(b, ' ')
		b = append(b, o.Via...)
		b = append(b, '\r', '\n')
	}
	b = s.appendActs(b, acts, false)
	b = append(b, '\r', '\n')
	s.out = b
}

func validHookValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// appendForwardedNode writes an RFC 7239 node: IPv6 quoted and bracketed.
func appendForwardedNode(b []byte, a netip.Addr) []byte {
	if a.Is6() {
		b = append(b, `"[`...)
		b = a.AppendTo(b)
		return append(b, `]"`...)
	}
	return a.AppendTo(b)
}

func forwardedTokenOK(h []byte) bool {
	return httpparse.IsToken(bytes.ReplaceAll(h, []byte(":"), []byte(".")))
}

// writeResponseHead writes the response head toward the client into s.cw.
func (s *session) writeResponseHead(hb *httpBackend, clientKeep bool, minor int, noBody, dechunk bool, acts []*config.Rule, ck *cookieState, srv *upstream.Server) {
	resp := &s.resp
	o := s.h.opts
	b := s.cw.buf[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(resp.Status), 10)
	b = append(b, ' ')
	if len(resp.Reason) > 0 {
		b = append(b, resp.Reason...)
	} else {
		b = append(b, http.StatusText(resp.Status)...)
	}
	b = append(b, '\r', '\n')
	ckName := ""
	if hb.cookie != nil {
		ckName = hb.cookie.Name
	}
	for i := range resp.Headers {
		hd := &resp.Headers[i]
		if hopOrFraming(hd.Name) || connListed(&resp.Message, hd.Name) {
			continue
		}
		if len(acts) > 0 && removedByActs(acts, hd.Name, true) {
			continue
		}
		if ckName != "" && httpparse.EqualFold(hd.Name, "set-cookie") {
			b = s.appendSetCookie(b, hb, hd.Value, srv, ck)
			continue
		}
		b = append(b, hd.Name...)
		b = append(b, ": "...)
		b = append(b, hd.Value...)
		b = append(b, '\r', '\n')
	}
	switch {
	case resp.Status < 200 || resp.Status == 204:
		// Never framing fields here (RFC 9110 8.6, RFC 9112 6.1; HAProxy
		// drops them too): a client could wait for a body that is not
		// coming.
	case resp.Chunked:
		// An HTTP/1.0 client gets no Transfer-Encoding: a body is sent
		// decoded (dechunk), a HEAD answer says nothing of its framing.
		if !dechunk && minor >= 1 {
			b = append(b, "Transfer-Encoding: chunked\r\n"...)
		}
	case resp.ContentLength >= 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, resp.ContentLength, 10)
		b = append(b, '\r', '\n')
	}
	if resp.Status == 101 {
		b = append(b, "Connection: upgrade\r\n"...)
		for i := range resp.Headers {
			if httpparse.EqualFold(resp.Headers[i].Name, "upgrade") {
				b = appendHeader(b, "Upgrade", resp.Headers[i].Value)
			}
		}
	} else if !clientKeep {
		b = append(b, "Connection: close\r\n"...)
	} else if minor == 0 {
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	if hb.cookie != nil {
		b = s.appendInsertedCookie(b, hb, ck, srv)
	}
	if o.Via != "" {
		b = append(b, "Via: 1."...)
		b = append(b, byte('0'+resp.Minor))
		b = append(b, ' ')
		b = append(b, o.Via...)
		b = append(b, '\r', '\n')
	}
	b = s.appendActs(b, acts, true)
	for k, vs := range s.htxn.ResponseHeader {
		for _, v := range vs {
			if config.ValidHeaderName(k) && validHookValue(v) {
				b = appendHeaderS(b, k, v)
			}
		}
	}
	b = append(b, '\r', '\n')
	s.cw.buf = b
}

// unixNow is a seam for cookie date tests.
func unixNow() int64 { return time.Now().Unix() }

// appendTemplate writes a header value, replacing %[name] tokens (checked
// at config load) with this connection's values.
func (s *session) appendTemplate(b []byte, v string) []byte {
	for {
		i := strings.IndexByte(v, '%')
		if i < 0 || i+1 >= len(v) {
			return append(b, v...)
		}
		b = append(b, v[:i]...)
		if v[i+1] == '%' {
			b = append(b, '%')
			v = v[i+2:]
			continue
		}
		end := strings.IndexByte(v[i:], ']')
		if v[i+1] != '[' || end < 0 {
			return append(b, v[i:]...)
		}
		n := len(b)
		b = s.appendFetch(b, v[i+2:i+end])
		// Client-controlled values (SNI, certificate names) must not
		// break the head.
		for j := n; j < len(b); j++ {
			if b[j] < 0x20 || b[j] == 0x7f {
				b[j] = '?'
			}
		}
		v = v[i+end+1:]
	}
}

func (s *session) appendFetch(b []byte, name string) []byte {
	flag := func(on bool) []byte {
		if on {
			return append(b, '1')
		}
		return append(b, '0')
	}
	var cert *x509.Certificate
	if s.isTLS && len(s.tls.PeerCertificates) > 0 {
		cert = s.tls.PeerCertificates[0]
	}
	switch name {
	case "src":
		return s.clientAddr.Addr().AppendTo(b)
	case "src_port":
		return strconv.AppendUint(b, uint64(s.clientAddr.Port()), 10)
	case "dst":
		return s.local.Addr().AppendTo(b)
	case "dst_port":
		return strconv.AppendUint(b, uint64(s.local.Port()), 10)
	case "fe_name":
		return append(b, s.h.f.Name...)
	case "ssl_fc":
		return flag(s.isTLS)
	case "ssl_fc_sni":
		return append(b, s.tls.ServerName...)
	case "ssl_fc_protocol":
		if s.isTLS {
			return append(b, tlsVersionName(s.tls.Version)...)
		}
	case "ssl_c_used":
		return flag(cert != nil)
	case "ssl_c_s_dn":
		if cert != nil {
			return append(b, cert.Subject.String()...)
		}
	case "ssl_c_i_dn":
		if cert != nil {
			return append(b, cert.Issuer.String()...)
		}
	case "ssl_c_serial":
		if cert != nil {
			return append(b, cert.SerialNumber.Text(16)...)
		}
	}
	return b
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	}
	return "TLS"
}
