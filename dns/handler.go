package dns

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	// ednsSize is the UDP payload size we advertise and answer up to: the
	// DNS flag day 2020 value, which avoids IP fragmentation.
	ednsSize = 1232
	// maxCNAME bounds CNAME chains inside our zones (loops included).
	maxCNAME = 8
	// hookTimeout bounds a Lua hook; past it the policy answer is sent.
	hookTimeout = 100 * time.Millisecond
)

// worker answers queries one at a time with buffers it reuses, so that the
// query path allocates as little as miekg/dns allows. One per socket
// goroutine; never shared.
type worker struct {
	srv  *Server
	req  mdns.Msg
	resp mdns.Msg
	opt  mdns.OPT
	ecs  mdns.EDNS0_SUBNET
	out  []byte
	idx  []int
	src  netip.Addr
	// name and reqOpt back the fast parser's results.
	name    []byte
	reqOpt  mdns.OPT
	optList []mdns.EDNS0
	ecsIn   mdns.EDNS0_SUBNET
	ecsAddr [16]byte
	// noFast forces the full parser (tests compare both paths).
	noFast bool
	// axfr is set when the question was an allowed zone transfer (TCP).
	axfr *zone
	// rrl is what the last response counts as for rate limiting.
	rrl rrlToken
}

func newWorker(s *Server) *worker {
	return &worker{srv: s, out: make([]byte, 0, 65535), idx: make([]int, 0, 8), name: make([]byte, 0, 256)}
}

// handle answers one query packet from src. It returns nil when nothing
// must be sent (too short to answer, or a response); TCP zone transfers
// set w.axfr instead. Rate limiting is the caller's (UDP only).
func (w *worker) handle(in []byte, src netip.Addr, tcp bool) []byte {
	st := w.srv.stats
	w.axfr = nil
	w.rrl = rrlToken{}
	w.src = src.Unmap()
	if len(in) < 12 || in[2]&0x80 != 0 {
		// No header to answer, or a response: answering responses would
		// let two servers ping-pong forever.
		st.Dropped.Add(1)
		return nil
	}
	snap := w.srv.snap.Load()
	if w.noFast || !w.fastParse(in, snap) {
		w.req = mdns.Msg{Question: w.req.Question[:0], Answer: w.req.Answer[:0], Ns: w.req.Ns[:0], Extra: w.req.Extra[:0]}
		if err := w.req.Unpack(in); err != nil || !countsHold(in, &w.req) {
			st.FormErr.Add(1)
			return w.rawError(in, mdns.RcodeFormatError)
		}
	}
	req := &w.req
	resp := &w.resp
	resp.MsgHdr = mdns.MsgHdr{Id: req.Id, Response: true, Opcode: req.Opcode, RecursionDesired: req.RecursionDesired, CheckingDisabled: req.CheckingDisabled}
	resp.Compress = true
	resp.Question = req.Question
	resp.Answer, resp.Ns, resp.Extra = resp.Answer[:0], resp.Ns[:0], resp.Extra[:0]

	// EDNS: at most one OPT, version 0 only.
	var opt *mdns.OPT
	for _, rr := range req.Extra {
		if o, ok := rr.(*mdns.OPT); ok {
			if opt != nil {
				return w.finish(nil, nil, 0, mdns.RcodeFormatError, tcp, 512, nil)
			}
			opt = o
		}
	}
	size := 512
	cl := clientInfo{addr: src.Unmap(), bits: src.Unmap().BitLen()}
	var ecsIn *mdns.EDNS0_SUBNET
	if opt != nil {
		size = max(512, min(int(opt.UDPSize()), ednsSize))
		if opt.Version() != 0 {
			return w.finish(nil, nil, 0, mdns.RcodeBadVers, tcp, size, opt)
		}
		for _, o := range opt.Option {
			if e, ok := o.(*mdns.EDNS0_SUBNET); ok {
				ecsIn = e
				if e.SourceNetmask > 0 {
					a, ok := netip.AddrFromSlice(e.Address)
					if !ok {
						return w.finish(nil, nil, 0, mdns.RcodeFormatError, tcp, size, opt)
					}
					a = a.Unmap()
					// RFC 7871 §6: address bits past the source prefix must be zero.
					if p, err := a.Prefix(int(e.SourceNetmask)); err != nil || p.Addr() != a {
						return w.finish(nil, nil, 0, mdns.RcodeFormatError, tcp, size, opt)
					}
					cl = clientInfo{addr: a, bits: int(e.SourceNetmask)}
				}
			}
		}
	}
	if tcp {
		size = 65535
	}
	if req.Opcode != mdns.OpcodeQuery {
		return w.finish(nil, nil, 0, mdns.RcodeNotImplemented, tcp, size, opt)
	}
	if len(req.Question) != 1 {
		return w.finish(nil, nil, 0, mdns.RcodeFormatError, tcp, size, opt)
	}
	q := req.Question[0]
	if q.Qclass != mdns.ClassINET && q.Qclass != mdns.ClassANY {
		st.Refused.Add(1)
		return w.finish(nil, nil, q.Qtype, mdns.RcodeRefused, tcp, size, opt)
	}
	name := strings.ToLower(q.Name)
	var z *zone
	if snap != nil {
		z = snap.zoneFor(name)
	}
	if z == nil {
		// Not ours, and we do not recurse (RA stays clear).
		st.Refused.Add(1)
		return w.finish(nil, nil, q.Qtype, mdns.RcodeRefused, tcp, size, opt)
	}
	switch q.Qtype {
	case mdns.TypeAXFR, mdns.TypeIXFR:
		if !tcp || name != z.apex {
			return w.finish(z.other, nil, q.Qtype, mdns.RcodeNotImplemented, tcp, size, opt)
		}
		if !allowed(z.transfer, src) {
			st.TransfersDeny.Add(1)
			return w.finish(z.other, nil, q.Qtype, mdns.RcodeRefused, tcp, size, opt)
		}
		w.axfr = z
		return nil
	}
	counter, rcode, scope := w.resolve(snap, z, name, q.Qtype, cl)
	// resolve left the owner in w.rrl.name: a name the zone holds, never
	// one the client made up, so a spoofed flood cannot spread over
	// buckets of its own (BIND: wildcard answers count for the wildcard,
	// referrals for the delegation, empty answers per name whatever the
	// type).
	switch {
	case rcode == mdns.RcodeNameError:
		w.rrl = rrlToken{kind: rrlNXDomain, name: z.apex}
	case rcode != mdns.RcodeSuccess:
		w.rrl = rrlToken{}
	case w.rrl.kind == rrlReferral:
	case len(w.resp.Answer) == 0:
		w.rrl.kind = rrlNoData
	default:
		w.rrl.kind, w.rrl.qtype = rrlAnswer, q.Qtype
	}
	var ecsOut *mdns.EDNS0_SUBNET
	if ecsIn != nil {
		w.ecs = mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: ecsIn.Family, SourceNetmask: ecsIn.SourceNetmask, Address: ecsIn.Address}
		switch {
		case ecsIn.SourceNetmask == 0:
		case scope < 0:
			w.ecs.SourceScope = ecsIn.SourceNetmask
		default:
			w.ecs.SourceScope = uint8(scope)
		}
		ecsOut = &w.ecs
	}
	return w.finish(counter, ecsOut, q.Qtype, rcode, tcp, size, opt)
}

func allowed(nets []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// finish sets the rcode and OPT, counts, packs and truncates.
func (w *worker) finish(counter *nameStats, ecs *mdns.EDNS0_SUBNET, qtype uint16, rcode int, tcp bool, size int, opt *mdns.OPT) []byte {
	resp := &w.resp
	resp.Rcode = rcode
	if rcode == mdns.RcodeFormatError {
		w.srv.stats.FormErr.Add(1)
	}
	counter.count(qtype, rcode)
	if opt != nil {
		w.opt.Hdr = mdns.RR_Header{Name: ".", Rrtype: mdns.TypeOPT}
		w.opt.Option = w.opt.Option[:0]
		w.opt.SetUDPSize(ednsSize)
		w.opt.SetDo(opt.Do())
		if ecs != nil {
			w.opt.Option = append(w.opt.Option, ecs)
		}
		resp.Extra = append(resp.Extra, &w.opt)
	}
	// Name compression costs a map per message in miekg/dns; most answers
	// fit without it, so it is used only when the plain form is too big.
	resp.Compress = false
	out, err := resp.PackBuffer(w.out[:cap(w.out)])
	if err == nil && len(out) > size {
		resp.Compress = true
		out, err = resp.PackBuffer(w.out[:cap(w.out)])
	}
	if err != nil {
		resp.Answer, resp.Ns, resp.Extra = resp.Answer[:0], resp.Ns[:0], resp.Extra[:0]
		resp.Rcode = mdns.RcodeServerFailure
		if out, err = resp.PackBuffer(w.out[:cap(w.out)]); err != nil {
			return nil
		}
	}
	if len(out) > size {
		// Too big for the client's buffer: say so, and it retries on TCP.
		w.srv.stats.Truncated.Add(1)
		resp.Truncated = true
		resp.Answer, resp.Ns = resp.Answer[:0], resp.Ns[:0]
		resp.Extra = resp.Extra[:0]
		if opt != nil {
			resp.Extra = append(resp.Extra, &w.opt)
		}
		if out, err = resp.PackBuffer(w.out[:cap(w.out)]); err != nil {
			return nil
		}
	}
	return out
}

// rawError answers a packet we could not parse with its header only.
// countsHold reports whether the sections hold as many records as the
// header announces. miekg/dns stops quietly at the end of the packet, so a
// query announcing an OPT it lacks (ARCOUNT 1, nothing after the
// question) would be answered as if it had no EDNS; NSD answers it
// FORMERR ("if more RRs left in Add. Section, FORMERR"), and so do we: the
// client believes it sent EDNS and would misread a plain answer.
func countsHold(in []byte, m *mdns.Msg) bool {
	return len(in) >= 12 &&
		int(binary.BigEndian.Uint16(in[4:])) == len(m.Question) &&
		int(binary.BigEndian.Uint16(in[6:])) == len(m.Answer) &&
		int(binary.BigEndian.Uint16(in[8:])) == len(m.Ns) &&
		int(binary.BigEndian.Uint16(in[10:])) == len(m.Extra)
}

func (w *worker) rawError(in []byte, rcode int) []byte {
	out := w.out[:12]
	clear(out)
	copy(out[:2], in[:2])
	// QR, the opcode and RD from the query; nothing else.
	out[2] = 0x80 | in[2]&0x79
	out[3] = byte(rcode & 0xf)
	return out
}

// resolve fills the answer for name/qtype in zone z (RFC 1034 §4.3.2 for
// an authoritative server, with RFC 4592 wildcards and RFC 8482 ANY).
func (w *worker) resolve(snap *snapshot, z *zone, name string, qtype uint16, cl clientInfo) (*nameStats, int, int) {
	resp := &w.resp
	resp.Authoritative = true
	var counter *nameStats
	scope := 0
	for hop := 0; ; hop++ {
		if cut := z.cutAbove(name); cut != nil && !(cut.name == name && qtype == mdns.TypeDS) {
			if hop > 0 {
				return counter, mdns.RcodeSuccess, scope
			}
			// Referral: not authoritative for what is delegated.
			resp.Authoritative = false
			w.rrl = rrlToken{kind: rrlReferral, name: cut.name}
			resp.Ns = append(resp.Ns, cut.rrsets[mdns.TypeNS]...)
			w.glue(snap, cut.rrsets[mdns.TypeNS])
			return cut.stats, mdns.RcodeSuccess, scope
		}
		n := z.nodes[name]
		synth := false
		if n == nil {
			n = z.wildcard(name)
			if n == nil {
				if counter == nil {
					counter = z.other
				}
				resp.Ns = append(resp.Ns, z.negSOA)
				return counter, mdns.RcodeNameError, scope
			}
			synth = true
		}
		if counter == nil {
			counter = n.stats
		}
		if hop == 0 {
			w.rrl.name = n.name // the wildcard's own name when synthesized
		}
		if n.svc != nil && (qtype == mdns.TypeA || qtype == mdns.TypeAAAA || qtype == mdns.TypeANY) {
			t := qtype
			if t == mdns.TypeANY {
				t = mdns.TypeA
			}
			before := len(resp.Answer)
			scope = w.service(n.svc, name, t, cl)
			if len(resp.Answer) == before && qtype == mdns.TypeANY {
				scope = w.service(n.svc, name, mdns.TypeAAAA, cl)
			}
			if len(resp.Answer) == before {
				resp.Ns = append(resp.Ns, z.negSOA)
			}
			return counter, mdns.RcodeSuccess, scope
		}
		if cn := n.rrsets[mdns.TypeCNAME]; len(cn) > 0 && qtype != mdns.TypeCNAME {
			rr := cn[0]
			if synth {
				rr = synthesize(rr, name)
			}
			resp.Answer = append(resp.Answer, rr)
			target := rr.(*mdns.CNAME).Target
			z2 := snap.zoneFor(target)
			if z2 == nil || hop >= maxCNAME {
				// Out of our zones: the resolver follows the rest.
				return counter, mdns.RcodeSuccess, scope
			}
			z, name = z2, target
			continue
		}
		var rrs []mdns.RR
		if qtype == mdns.TypeANY {
			// RFC 8482: one RRset is enough; it keeps ANY small.
			if len(n.types) > 0 {
				rrs = n.rrsets[n.types[0]]
			}
		} else {
			rrs = n.rrsets[qtype]
		}
		if len(rrs) == 0 {
			resp.Ns = append(resp.Ns, z.negSOA)
			return counter, mdns.RcodeSuccess, scope
		}
		for _, rr := range rrs {
			if synth {
				rr = synthesize(rr, name)
			}
			resp.Answer = append(resp.Answer, rr)
		}
		switch qtype {
		case mdns.TypeMX, mdns.TypeSRV, mdns.TypeNS:
			w.glue(snap, rrs)
		}
		return counter, mdns.RcodeSuccess, scope
	}
}

// service appends the computed answer for a service name.
func (w *worker) service(svc *service, name string, qtype uint16, cl clientInfo) int {
	st := w.srv.state
	var scope int
	w.idx, scope = svc.choose(st, cl, w.idx)
	if svc.hook != "" {
		if r := w.srv.hooks.Load(); r != nil {
			if h, ok := (*r)(svc.hook); ok {
				if w.hookAnswer(h, svc, name, qtype, cl) {
					// The hook's answer may depend on anything about the client.
					return -1
				}
			}
		}
	}
	w.resp.Answer = svc.appendRRs(w.resp.Answer, w.idx, qtype)
	return scope
}

func (w *worker) hookAnswer(h Hook, svc *service, name string, qtype uint16, cl clientInfo) bool {
	q := Query{Name: name, Type: qtype, Client: w.src, Service: svc.cfgName, Policy: svc.policy, Answer: svc.addrs(w.idx)}
	if cl.bits < cl.addr.BitLen() || cl.addr != w.src {
		q.Subnet = netip.PrefixFrom(cl.addr, cl.bits)
	}
	if len(w.idx) == 1 {
		q.Datacenter = svc.dcs[w.idx[0]].name
	}
	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	defer cancel()
	ans, ok, err := callHook(ctx, h, q)
	if err == nil && ok && ans.Datacenter != "" && len(ans.Addrs) == 0 {
		found := false
		for i := range svc.dcs {
			if svc.dcs[i].name == ans.Datacenter {
				ans.Addrs, found = svc.dcs[i].addrs, true
			}
		}
		if !found {
			err = fmt.Errorf("hook chose datacenter %q, which has no VIPs for this service", ans.Datacenter)
		}
	}
	if err != nil {
		w.srv.stats.HookErrors.Add(1)
		w.srv.logHookError(svc, err)
		return false
	}
	if !ok {
		return false
	}
	ttl := svc.ttl
	if ans.TTL > 0 {
		ttl = ans.TTL
	}
	for _, a := range ans.Addrs {
		a = a.Unmap()
		if (qtype == mdns.TypeA) == a.Is4() && a.IsValid() {
			w.resp.Answer = append(w.resp.Answer, addrRR(name, ttl, a))
		}
	}
	return true
}

// callHook turns a panicking hook into an error: bad scripts must not take
// the server down.
func callHook(ctx context.Context, h Hook, q Query) (a Answer, ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, ok, err = Answer{}, false, &hookPanic{r}
		}
	}()
	return h(ctx, q)
}

type hookPanic struct{ v any }

func (p *hookPanic) Error() string { return "hook panicked: " + fmt.Sprint(p.v) }

// glue adds the in-zone addresses of NS/MX/SRV targets as additional data.
func (w *worker) glue(snap *snapshot, rrs []mdns.RR) {
	for _, rr := range rrs {
		var target string
		switch r := rr.(type) {
		case *mdns.NS:
			target = r.Ns
		case *mdns.MX:
			target = r.Mx
		case *mdns.SRV:
			target = r.Target
		default:
			continue
		}
		z := snap.zoneFor(target)
		if z == nil {
			continue
		}
		if n := z.nodes[target]; n != nil {
			w.resp.Extra = append(w.resp.Extra, n.rrsets[mdns.TypeA]...)
			w.resp.Extra = append(w.resp.Extra, n.rrsets[mdns.TypeAAAA]...)
		}
	}
}

// cutAbove returns the highest delegation at or above name, if any.
func (z *zone) cutAbove(name string) *node {
	if !z.hasCuts {
		return nil
	}
	var cut *node
	for p := name; len(p) > len(z.apex); {
		if n := z.nodes[p]; n != nil && n.cut {
			cut = n
		}
		i := strings.IndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[i+1:]
	}
	return cut
}

// wildcard finds the wildcard node that synthesizes name: the "*" child of
// name's closest encloser (RFC 4592 §3.3.1).
func (z *zone) wildcard(name string) *node {
	if !z.hasWild {
		return nil
	}
	for p := name; len(p) > len(z.apex); {
		i := strings.IndexByte(p, '.')
		if i < 0 {
			return nil
		}
		p = p[i+1:]
		if n := z.nodes[p]; n != nil {
			return n.wild
		}
	}
	return nil
}

func synthesize(rr mdns.RR, owner string) mdns.RR {
	c := mdns.Copy(rr)
	c.Header().Name = owner
	return c
}

// slipped rewrites the last response as an empty truncated one: what RRL
// sends instead of a dropped answer, so that real clients retry on TCP.
func (w *worker) slipped() []byte {
	resp := &w.resp
	resp.Truncated = true
	resp.Answer, resp.Ns = resp.Answer[:0], resp.Ns[:0]
	var opt mdns.RR
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype == mdns.TypeOPT {
			opt = rr
		}
	}
	resp.Extra = resp.Extra[:0]
	if opt != nil {
		resp.Extra = append(resp.Extra, opt)
	}
	out, err := resp.PackBuffer(w.out[:cap(w.out)])
	if err != nil {
		return nil
	}
	return out
}
