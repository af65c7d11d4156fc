package scripting

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/vipgate/vipgate/core/proxy"
)

// txnBox is the Go side of the txn userdata. Header changes and variables
// are staged and applied only when the hook returns without error, so a
// failing (or timed-out) hook leaves the request and its variables
// untouched.
type txnBox struct {
	t    *proxy.Txn
	dec  proxy.Decision
	ops  []hdrOp
	vars []txnVar // set_var, in call order
	set  bool     // a decision method was called
}

type txnVar struct{ name, value string }

type hdrOp struct {
	resp  bool
	op    byte // 's'et, 'a'dd, 'd'el
	name  string
	value string
}

func (b *txnBox) reset() {
	b.t = nil
	b.dec = proxy.Decision{}
	b.ops = b.ops[:0]
	clear(b.vars)
	b.vars = b.vars[:0]
	b.set = false
}

// getVar is txn:var: the hook's own set_var first, then the txn's.
func (b *txnBox) getVar(name string) (string, bool) {
	for i := len(b.vars) - 1; i >= 0; i-- {
		if b.vars[i].name == name {
			return b.vars[i].value, true
		}
	}
	v, ok := b.t.Vars[name]
	return v, ok
}

// apply makes the staged changes: the hook returned normally.
func (b *txnBox) apply() {
	if len(b.vars) > 0 {
		// A new map: the caller's copies of the Txn may share the old one.
		m := make(map[string]string, len(b.t.Vars)+len(b.vars))
		maps.Copy(m, b.t.Vars)
		for _, v := range b.vars {
			m[v.name] = v.value
		}
		b.t.Vars = m
	}
	h := b.t.HTTP
	for _, o := range b.ops {
		if h == nil {
			return
		}
		hdr := &h.Header
		if o.resp {
			hdr = &h.ResponseHeader
		}
		if *hdr == nil {
			*hdr = http.Header{}
		}
		switch o.op {
		case 's':
			hdr.Set(o.name, o.value)
		case 'a':
			hdr.Add(o.name, o.value)
		case 'd':
			hdr.Del(o.name)
		}
	}
}

// RouteHook is a Lua function used as a frontend's routing hook. It
// resolves the plugin on every call, so a reload takes effect at once.
type RouteHook struct {
	rt       *Runtime
	plugin   string
	function string
}

// Hook returns the routing hook named by a frontend's route ("plugin.fn").
// It fits proxy.HookResolver.
func (r *Runtime) Hook(ref string) (proxy.RouteHook, error) {
	p, f, err := r.resolve(ref)
	if err != nil {
		return nil, err
	}
	return &RouteHook{rt: r, plugin: p, function: f}, nil
}

var _ proxy.RouteHook = (*RouteHook)(nil)

// Route calls the function with the txn. A failure is counted and logged;
// the request then gets the plugin's fallback: "continue" returns the error
// as it is (the proxy goes on with the frontend's rules), "500"/"503" wrap
// it in a *proxy.HookFailure with that status.
func (h *RouteHook) Route(ctx context.Context, t *proxy.Txn) (proxy.Decision, error) {
	g := h.rt.gen.Load()
	var dec proxy.Decision
	err := h.rt.call(ctx, g, kindRoute, h.plugin, h.function, 0, func(s *state) int {
		s.txn.t = t
		s.L.Push(s.txnUD)
		return 1
	}, 1, func(s *state) error {
		b := s.txn
		dec = b.dec
		switch v := s.L.Get(1).(type) {
		case lua.LString:
			// A backend name is the short form of txn:use_backend.
			if !b.set {
				dec.Backend = string(v)
			}
		case *lua.LTable, *lua.LFunction, *lua.LUserData, *lua.LState, *lua.LChannel:
			// Most likely a bug (returning the wrong variable): taking it
			// as "no opinion" would route silently by the rules instead.
			return fmt.Errorf("the route hook returned a %s: return nil or a backend name (or decide with txn methods)", v.Type())
		}
		b.apply()
		return nil
	})
	if err != nil {
		p := g.plugins[h.plugin]
		fb := g.defaults.Fallback
		if p != nil {
			fb = p.fallback
		}
		switch fb {
		case "500":
			return proxy.Decision{}, &proxy.HookFailure{Status: 500, Err: err}
		case "503":
			return proxy.Decision{}, &proxy.HookFailure{Status: 503, Err: err}
		}
		return proxy.Decision{}, err
	}
	return dec, nil
}

// openTxn builds the txn userdata reused for every call on this state.
func (s *state) openTxn() {
	L := s.L
	s.txn = &txnBox{}
	mt := L.NewTable()
	methods := L.NewTable()
	for name, fn := range txnMethods {
		fn := fn
		methods.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			b := s.txn
			if b.t == nil || L.Get(1) != s.txnUD {
				L.RaiseError("txn:%s: the txn is only valid during its hook call (call methods with ':')", name)
			}
			return fn(L, b)
		}))
	}
	mt.RawSetString("__index", methods)
	mt.RawSetString("__newindex", frozenSetter(L, "txn field"))
	mt.RawSetString("__metatable", lua.LString("locked"))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("txn"))
		return 1
	}))
	s.txnUD = L.NewUserData()
	s.txnUD.Value = s.txn
	s.txnUD.Metatable = mt
}

func pushStr(L *lua.LState, v string) int {
	L.Push(lua.LString(v))
	return 1
}

func pushOpt(L *lua.LState, v string) int {
	if v == "" {
		L.Push(lua.LNil)
	} else {
		L.Push(lua.LString(v))
	}
	return 1
}

func needHTTP(L *lua.LState, b *txnBox) *proxy.HTTPTxn {
	if b.t.HTTP == nil {
		L.RaiseError("this method needs an http-mode frontend (the txn is a tcp connection)")
	}
	return b.t.HTTP
}

// txnMethods are the methods of txn; every one takes the txn first.
var txnMethods = map[string]func(L *lua.LState, b *txnBox) int{
	"frontend": func(L *lua.LState, b *txnBox) int { return pushStr(L, b.t.Frontend) },
	"client_ip": func(L *lua.LState, b *txnBox) int {
		return pushStr(L, b.t.Client.Addr().Unmap().String())
	},
	"client_port": func(L *lua.LState, b *txnBox) int {
		L.Push(lua.LNumber(b.t.Client.Port()))
		return 1
	},
	"local_ip": func(L *lua.LState, b *txnBox) int { return pushStr(L, b.t.Local.Addr().Unmap().String()) },
	"local_port": func(L *lua.LState, b *txnBox) int {
		L.Push(lua.LNumber(b.t.Local.Port()))
		return 1
	},
	"sni": func(L *lua.LState, b *txnBox) int { return pushOpt(L, b.t.SNI) },
	"alpn": func(L *lua.LState, b *txnBox) int {
		t := L.CreateTable(len(b.t.ALPN), 0)
		for _, a := range b.t.ALPN {
			t.Append(lua.LString(a))
		}
		L.Push(t)
		return 1
	},
	"is_http": func(L *lua.LState, b *txnBox) int {
		L.Push(lua.LBool(b.t.HTTP != nil))
		return 1
	},
	"method": func(L *lua.LState, b *txnBox) int { return pushStr(L, needHTTP(L, b).Method) },
	"host":   func(L *lua.LState, b *txnBox) int { return pushStr(L, needHTTP(L, b).Host) },
	"path":   func(L *lua.LState, b *txnBox) int { return pushStr(L, needHTTP(L, b).Path) },
	"query":  func(L *lua.LState, b *txnBox) int { return pushStr(L, needHTTP(L, b).Query) },
	"query_param": func(L *lua.LState, b *txnBox) int {
		h := needHTTP(L, b)
		name := L.CheckString(2)
		vals, err := url.ParseQuery(h.Query)
		if err != nil && len(vals) == 0 {
			L.Push(lua.LNil)
			return 1
		}
		if v, ok := vals[name]; ok && len(v) > 0 {
			L.Push(lua.LString(v[0]))
			return 1
		}
		L.Push(lua.LNil)
		return 1
	},
	"header": func(L *lua.LState, b *txnBox) int {
		h := needHTTP(L, b)
		v := h.Header.Values(L.CheckString(2))
		if len(v) == 0 {
			L.Push(lua.LNil)
			return 1
		}
		return pushStr(L, v[0])
	},
	"headers": func(L *lua.LState, b *txnBox) int {
		h := needHTTP(L, b)
		if L.GetTop() >= 2 {
			v := h.Header.Values(L.CheckString(2))
			t := L.CreateTable(len(v), 0)
			for _, e := range v {
				t.Append(lua.LString(e))
			}
			L.Push(t)
			return 1
		}
		t := L.CreateTable(0, len(h.Header))
		for k, v := range h.Header {
			l := L.CreateTable(len(v), 0)
			for _, e := range v {
				l.Append(lua.LString(e))
			}
			t.RawSetString(strings.ToLower(k), l)
		}
		L.Push(t)
		return 1
	},
	"cookie": func(L *lua.LState, b *txnBox) int {
		h := needHTTP(L, b)
		name := L.CheckString(2)
		r := http.Request{Header: http.Header{"Cookie": h.Header.Values("Cookie")}}
		if c, err := r.Cookie(name); err == nil {
			return pushStr(L, c.Value)
		}
		L.Push(lua.LNil)
		return 1
	},
	"set_header":          hdrMethod(false, 's'),
	"add_header":          hdrMethod(false, 'a'),
	"del_header":          hdrMethod(false, 'd'),
	"set_response_header": hdrMethod(true, 's'),
	"add_response_header": hdrMethod(true, 'a'),
	"set_var": func(L *lua.LState, b *txnBox) int {
		name, val := L.CheckString(2), L.ToStringMeta(L.CheckAny(3)).String()
		b.vars = append(b.vars, txnVar{name: name, value: val})
		return 0
	},
	"var": func(L *lua.LState, b *txnBox) int {
		v, ok := b.getVar(L.CheckString(2))
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		return pushStr(L, v)
	},
	"use_backend": func(L *lua.LState, b *txnBox) int {
		b.dec.Backend, b.dec.Server, b.set = L.CheckString(2), "", true
		return 0
	},
	"use_server": func(L *lua.LState, b *txnBox) int {
		b.dec.Backend, b.dec.Server, b.set = L.CheckString(2), L.CheckString(3), true
		return 0
	},
	"deny": func(L *lua.LState, b *txnBox) int {
		st := L.OptInt(2, 403)
		if st < 200 || st > 599 {
			L.ArgError(2, "status "+strconv.Itoa(st)+" out of range 200-599")
		}
		b.dec.Deny, b.set = st, true
		return 0
	},
	"redirect": func(L *lua.LState, b *txnBox) int {
		needHTTP(L, b)
		loc := L.CheckString(2)
		code := L.OptInt(3, 302)
		switch code {
		case 301, 302, 303, 307, 308:
		default:
			L.ArgError(3, "redirect code "+strconv.Itoa(code)+": want 301, 302, 303, 307 or 308")
		}
		if loc == "" {
			L.ArgError(2, "redirect location must not be empty")
		}
		if strings.ContainsAny(loc, "\r\n\x00") {
			L.ArgError(2, "redirect location must not contain CR, LF or NUL")
		}
		b.dec.Redirect, b.dec.RedirectCode, b.set = loc, code, true
		return 0
	},
}

func hdrMethod(resp bool, op byte) func(L *lua.LState, b *txnBox) int {
	return func(L *lua.LState, b *txnBox) int {
		needHTTP(L, b)
		name := L.CheckString(2)
		if !validHeaderName(name) {
			L.ArgError(2, "invalid header name "+strconv.Quote(name))
		}
		val := ""
		if op != 'd' {
			val = L.ToStringMeta(L.CheckAny(3)).String()
			if strings.ContainsAny(val, "\r\n\x00") {
				L.ArgError(3, "header value must not contain CR, LF or NUL")
			}
		}
		b.ops = append(b.ops, hdrOp{resp: resp, op: op, name: name, value: val})
		return 0
	}
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
