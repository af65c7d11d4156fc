package scripting

import (
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/vipgate/vipgate/scripting/internal/luapm"
)

// Globals of the base library that scripts keep. Everything else is
// removed: load/loadstring/dofile/loadfile/require/module (code loading),
// getfenv/setfenv (escaping the environment), rawset (bypassing frozen
// tables), collectgarbage (runs Go's GC for the whole process), newproxy,
// _printregs. io, debug, package, coroutine and channel are never opened.
var safeBase = []string{
	"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
	"select", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "_VERSION",
}

var safeOS = []string{"time", "clock", "date"}

// openSandbox opens the allowed libraries and returns the table of safe
// globals every plugin environment starts from.
func (s *state) openSandbox() (*lua.LTable, error) {
	L := s.L
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}, {lua.OsLibName, lua.OpenOs}} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		if err := L.PCall(1, 0, nil); err != nil {
			return nil, fmt.Errorf("open lua library %s: %w", lib.name, err)
		}
	}
	g := L.G.Global
	base := L.NewTable()
	for _, k := range safeBase {
		if v := g.RawGetString(k); v != lua.LNil {
			base.RawSetString(k, v)
		}
	}

	// unpack and string.byte push one value per element from Go: bound
	// them by the value stack instead of looping until it overflows.
	base.RawSetString("unpack", L.NewFunction(s.unpack))

	// setmetatable on tables only, as in Lua 5.1: gopher-lua also accepts a
	// number, boolean or function and then changes the metatable of every
	// value of that type in the state, for every plugin and every later
	// call the pooled state serves.
	setmt := g.RawGetString("setmetatable").(*lua.LFunction)
	base.RawSetString("setmetatable", L.NewFunction(func(L *lua.LState) int {
		L.CheckTable(1)
		return forward(L, setmt, 1)
	}))

	// string: capped versions of the functions a deadline cannot interrupt.
	str := copyTable(L, g.RawGetString("string").(*lua.LTable), nil)
	str.RawSetString("dump", lua.LNil)
	str.RawSetString("rep", L.NewFunction(s.strRep))
	str.RawSetString("format", L.NewFunction(s.strFormat(str.RawGetString("format").(*lua.LFunction))))
	str.RawSetString("gsub", L.NewFunction(s.strGsub))
	str.RawSetString("byte", L.NewFunction(s.strByte(str.RawGetString("byte").(*lua.LFunction))))
	// Pattern matching that the call's deadline can interrupt (patterns.go).
	str.RawSetString("find", L.NewFunction(strFind))
	str.RawSetString("match", L.NewFunction(strMatch))
	str.RawSetString("gmatch", L.NewFunction(strGmatch))
	str.RawSetString("gfind", L.NewFunction(strGmatch))
	strView := frozen(L, str, "string field")
	base.RawSetString("string", strView)
	// Methods on string values ("x"):rep(n) go through the same view.
	if mt, ok := L.GetMetatable(lua.LString("")).(*lua.LTable); ok {
		mt.RawSetString("__index", strView)
		mt.RawSetString("__metatable", lua.LString("locked"))
	}

	tab := copyTable(L, g.RawGetString("table").(*lua.LTable), nil)
	tab.RawSetString("concat", L.NewFunction(s.tabConcat))
	base.RawSetString("table", frozen(L, tab, "table field"))

	// math.randomseed reseeds the process-wide generator: not for scripts.
	m := copyTable(L, g.RawGetString("math").(*lua.LTable), nil)
	m.RawSetString("randomseed", lua.LNil)
	base.RawSetString("math", frozen(L, m, "math field"))

	os := copyTable(L, g.RawGetString("os").(*lua.LTable), safeOS)
	base.RawSetString("os", frozen(L, os, "os field"))

	base.RawSetString("log", frozen(L, s.logModule(), "log field"))
	base.RawSetString("print", L.NewFunction(s.logAt(0)))
	base.RawSetString("vipgate", frozen(L, s.liveModule(), "vipgate field"))
	base.RawSetString("net", frozen(L, s.netModule(), "net field"))
	base.RawSetString("json", frozen(L, s.jsonModule(), "json field"))

	// Nothing reaches the real globals table any more.
	g.ForEach(func(k, _ lua.LValue) { g.RawSet(k, lua.LNil) })
	return base, nil
}

// copyTable copies src (only keys when keys is not nil).
func copyTable(L *lua.LState, src *lua.LTable, keys []string) *lua.LTable {
	t := L.NewTable()
	if keys != nil {
		for _, k := range keys {
			t.RawSetString(k, src.RawGetString(k))
		}
		return t
	}
	src.ForEach(func(k, v lua.LValue) { t.RawSet(k, v) })
	return t
}

// strRep is string.rep with the result capped at max_string.
func (s *state) strRep(L *lua.LState) int {
	str := L.CheckString(1)
	n := L.CheckInt(2)
	sep := L.OptString(3, "")
	if n <= 0 {
		L.Push(lua.LString(""))
		return 1
	}
	total := int64(len(str))*int64(n) + int64(len(sep))*int64(n-1)
	if total > int64(s.maxS) {
		L.ArgError(2, fmt.Sprintf("string.rep would build %d bytes, over the %d-byte limit (lua.defaults.max_string)", total, s.maxS))
	}
	if sep == "" {
		L.Push(lua.LString(strings.Repeat(str, n)))
		return 1
	}
	var b strings.Builder
	b.Grow(int(total))
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(str)
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// strFormat refuses widths and precisions over two digits, as C Lua does:
// "%999999999d" would otherwise allocate a gigabyte in one Go call. The
// result is capped at max_string before it is built, each argument counted
// at the most its conversion can write (%q escapes a byte as up to four,
// %x writes two or three), and checked again after.
func (s *state) strFormat(orig *lua.LFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		f := L.CheckString(1)
		size := len(f)
		arg := 2
		for i := 0; i < len(f); i++ {
			if f[i] != '%' {
				continue
			}
			i++
			if i < len(f) && f[i] == '%' {
				continue
			}
			space := false
			for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
				space = space || f[i] == ' '
				i++
			}
			digits := 0
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
				digits++
			}
			if i < len(f) && f[i] == '.' {
				i++
				pd := 0
				for i < len(f) && f[i] >= '0' && f[i] <= '9' {
					i++
					pd++
				}
				digits = max(digits, pd)
			}
			if digits > 2 {
				L.ArgError(1, "invalid format (width or precision too long)")
			}
			if i < len(f) && (f[i] == '*' || f[i] == '[') {
				// Go's fmt would take a width or an argument index from
				// the arguments; Lua has neither.
				L.ArgError(1, fmt.Sprintf("invalid conversion %%%c in format", f[i]))
			}
			factor := 1
			if i < len(f) {
				switch f[i] {
				case 'q':
					factor = 4
				case 'x', 'X':
					factor = 2
					if space {
						factor = 3
					}
				}
			}
			size += 100
			if str, ok := L.Get(arg).(lua.LString); ok {
				size += factor * len(str)
			}
			arg++
		}
		if size > s.maxS {
			L.ArgError(1, fmt.Sprintf("string.format result over the %d-byte limit (lua.defaults.max_string)", s.maxS))
		}
		n := forward(L, orig, 1)
		if str, ok := L.Get(-1).(lua.LString); ok && len(str) > s.maxS {
			L.ArgError(1, fmt.Sprintf("string.format result over the %d-byte limit (lua.defaults.max_string)", s.maxS))
		}
		return n
	}
}

// tabConcat is table.concat with the result size checked before building.
func (s *state) tabConcat(L *lua.LState) int {
	tbl := L.CheckTable(1)
	sep := L.OptString(2, "")
	i := L.OptInt(3, 1)
	j := L.OptInt(4, tbl.Len())
	if j-i > s.g.defaults.Registry*16 {
		L.ArgError(4, "table.concat range too large")
	}
	total := 0
	for k := i; k <= j; k++ {
		v := tbl.RawGetInt(k)
		if !lua.LVCanConvToString(v) {
			L.ArgError(1, fmt.Sprintf("invalid value (at index %d) in table for concat", k))
		}
		total += len(lua.LVAsString(v)) + len(sep)
		if total > s.maxS {
			L.ArgError(1, fmt.Sprintf("table.concat result over the %d-byte limit (lua.defaults.max_string)", s.maxS))
		}
	}
	var b strings.Builder
	b.Grow(total)
	for k := i; k <= j; k++ {
		if k > i {
			b.WriteString(sep)
		}
		b.WriteString(lua.LVAsString(tbl.RawGetInt(k)))
	}
	L.Push(lua.LString(b.String()))
	return 1
}

// strGsub is a linear string.gsub with the result capped (gopher-lua's
// copies the whole string once per match, which a long subject turns into
// minutes of uninterruptible work); its matching stops at the deadline.
func (s *state) strGsub(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTTable, lua.LTFunction, lua.LTNumber)
	repl := L.Get(3)
	limit := L.OptInt(4, -1)
	mds := findPattern(L, pat, str, 0, limit)
	var b strings.Builder
	last := 0
	capture := func(md *luapm.MatchData, idx int) lua.LValue {
		if idx >= md.CaptureLength() {
			if idx == 2 {
				idx = 0
			} else {
				L.RaiseError("invalid capture index %d", idx/2)
			}
		}
		if md.IsPosCapture(idx) {
			return lua.LNumber(md.Capture(idx))
		}
		return lua.LString(str[md.Capture(idx):md.Capture(idx+1)])
	}
	grow := func(n int) {
		if b.Len()+n > s.maxS {
			L.RaiseError("string.gsub result over the %d-byte limit (lua.defaults.max_string)", s.maxS)
		}
	}
	for _, md := range mds {
		start, end := md.Capture(0), md.Capture(1)
		grow(start - last)
		b.WriteString(str[last:start])
		whole := str[start:end]
		var out lua.LValue
		switch r := repl.(type) {
		case lua.LString, lua.LNumber:
			rs := lua.LVAsString(r)
			var rb strings.Builder
			// Literal runs are copied whole: byte by byte, a long
			// replacement cost more than the deadline before the cap
			// could refuse it.
			for i := 0; i < len(rs); {
				j := strings.IndexByte(rs[i:], '%')
				if j < 0 || i+j+1 >= len(rs) { // no escape left (a trailing % is literal)
					rb.WriteString(rs[i:])
					i = len(rs)
				} else {
					rb.WriteString(rs[i : i+j])
					c := rs[i+j+1]
					i += j + 2
					switch {
					case c == '0':
						rb.WriteString(whole)
					case c >= '1' && c <= '9':
						rb.WriteString(lua.LVAsString(capture(md, 2*int(c-'0'))))
					default:
						rb.WriteByte(c)
					}
				}
				if rb.Len() > s.maxS {
					L.RaiseError("string.gsub result over the %d-byte limit (lua.defaults.max_string)", s.maxS)
				}
			}
			out = lua.LString(rb.String())
		case *lua.LTable:
			out = L.GetTable(r, capture(md, 2))
		case *lua.LFunction:
			n := 0
			L.Push(r)
			if md.CaptureLength() <= 2 {
				L.Push(lua.LString(whole))
				n = 1
			} else {
				for i := 2; i < md.CaptureLength(); i += 2 {
					L.Push(capture(md, i))
					n++
				}
			}
			L.Call(n, 1)
			out = L.Get(-1)
			L.Pop(1)
		}
		switch v := out.(type) {
		case lua.LString, lua.LNumber:
			vs := lua.LVAsString(v)
			grow(len(vs))
			b.WriteString(vs)
		default:
			if out == lua.LNil || out == lua.LFalse {
				grow(len(whole))
				b.WriteString(whole)
			} else {
				L.RaiseError("invalid replacement value (a %s)", out.Type().String())
			}
		}
		last = end
	}
	grow(len(str) - last)
	b.WriteString(str[last:])
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(len(mds)))
	return 2
}

// maxResults bounds how many values one library call may return.
func (s *state) maxResults() int { return s.g.defaults.Registry / 4 }

func (s *state) unpack(L *lua.LState) int {
	tb := L.CheckTable(1)
	i := L.OptInt(2, 1)
	j := L.OptInt(3, tb.Len())
	if i > j {
		return 0
	}
	if n := int64(j) - int64(i) + 1; n > int64(s.maxResults()) {
		L.RaiseError("too many results to unpack (%d, limit %d)", n, s.maxResults())
	}
	for k := i; k <= j; k++ {
		L.Push(tb.RawGetInt(k))
	}
	return j - i + 1
}

func (s *state) strByte(orig *lua.LFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		str := L.CheckString(1)
		i := L.OptInt(2, 1)
		j := L.OptInt(3, i)
		if i < 0 {
			i += len(str) + 1
		}
		if j < 0 {
			j += len(str) + 1
		}
		if j-i+1 > s.maxResults() {
			L.RaiseError("string slice too long (%d bytes, limit %d)", j-i+1, s.maxResults())
		}
		return forward(L, orig, lua.MultRet)
	}
}

// forward calls fn with this call's arguments and returns its nret results
// (all of them for lua.MultRet).
func forward(L *lua.LState, fn *lua.LFunction, nret int) int {
	top := L.GetTop()
	L.Push(fn)
	for i := 1; i <= top; i++ {
		L.Push(L.Get(i))
	}
	L.Call(top, nret)
	return L.GetTop() - top
}
