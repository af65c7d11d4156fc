package scripting

import (
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/vipgate/vipgate/scripting/internal/luapm"
)

// Lua patterns backtrack: string.find(s, ".-.-.-x") on a long s is hours of
// work inside one Go call, which the VM's deadline check between
// instructions never interrupts. string.find, match, gmatch and gsub
// therefore run on luapm, a copy of gopher-lua's matcher that checks the
// call's context every few thousand steps.

// findPattern runs pattern p over str under the call's context.
func findPattern(L *lua.LState, p, str string, offset, limit int) []*luapm.MatchData {
	ctx := L.Context()
	var interrupt func() error
	if ctx != nil {
		interrupt = ctx.Err
	}
	mds, err := luapm.Find(p, []byte(str), offset, limit, interrupt)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	return mds
}

// pushCaptures pushes the captures of md (the whole match when there are
// none and wholeIfNone is set) and returns how many.
func pushCaptures(L *lua.LState, str string, md *luapm.MatchData, wholeIfNone bool) int {
	if md.CaptureLength() <= 2 {
		if !wholeIfNone {
			return 0
		}
		L.Push(lua.LString(str[md.Capture(0):md.Capture(1)]))
		return 1
	}
	n := 0
	for i := 2; i < md.CaptureLength(); i += 2 {
		if md.IsPosCapture(i) {
			L.Push(lua.LNumber(md.Capture(i)))
		} else {
			L.Push(lua.LString(str[md.Capture(i):md.Capture(i+1)]))
		}
		n++
	}
	return n
}

// startIndex turns a Lua init argument into a 0-based offset (negative
// counts from the end), as string.find and string.match do.
func startIndex(str string, i int) int {
	if i > 0 {
		i--
	} else if i < 0 {
		i += len(str)
	}
	return max(0, i)
}

// patternArgs reads (s, pattern [, init]); with init past the end it
// pushes nil and returns ok false.
func patternArgs(L *lua.LState) (str, pat string, init int, ok bool) {
	str = L.CheckString(1)
	pat = L.CheckString(2)
	init = startIndex(str, L.OptInt(3, 1))
	if init > len(str) {
		L.Push(lua.LNil)
		return str, pat, init, false
	}
	return str, pat, init, true
}

// strFind is string.find(s, pattern [, init [, plain]]).
func strFind(L *lua.LState) int {
	str, pat, init, ok := patternArgs(L)
	if !ok {
		return 1
	}
	if pat == "" {
		L.Push(lua.LNumber(init + 1))
		L.Push(lua.LNumber(init))
		return 2
	}
	if L.GetTop() >= 4 && lua.LVAsBool(L.Get(4)) {
		pos := strings.Index(str[init:], pat)
		if pos < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(init + pos + 1))
		L.Push(lua.LNumber(init + pos + len(pat)))
		return 2
	}
	mds := findPattern(L, pat, str, init, 1)
	if len(mds) == 0 {
		L.Push(lua.LNil)
		return 1
	}
	md := mds[0]
	L.Push(lua.LNumber(md.Capture(0) + 1))
	L.Push(lua.LNumber(md.Capture(1)))
	return 2 + pushCaptures(L, str, md, false)
}

// strMatch is string.match(s, pattern [, init]).
func strMatch(L *lua.LState) int {
	str, pat, init, ok := patternArgs(L)
	if !ok {
		return 1
	}
	mds := findPattern(L, pat, str, init, 1)
	if len(mds) == 0 {
		L.Push(lua.LNil)
		return 1
	}
	return pushCaptures(L, str, mds[0], true)
}

// strGmatch is string.gmatch(s, pattern): the matches are found at the
// call (under its deadline), the iterator hands them out.
func strGmatch(L *lua.LState) int {
	str := L.CheckString(1)
	pat := L.CheckString(2)
	mds := findPattern(L, pat, str, 0, -1)
	next := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if next >= len(mds) {
			return 0
		}
		md := mds[next]
		next++
		return pushCaptures(L, str, md, true)
	}))
	return 1
}
