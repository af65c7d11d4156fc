package scripting

import (
	"context"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// A Go function that walks a Lua value runs as one VM instruction: neither
// the call's deadline nor the memory guard can stop it from outside. A
// table referenced twice is walked twice, so `t = {t, t}` 26 times is a
// few hundred bytes of Lua and 2^26 leaves for Go (json.encode of it took
// the process down). Every walk therefore goes through a converter, which
// charges what it would write against a byte budget and looks at the
// call's context (cancelled by the deadline and by the memory guard) as it
// goes.

// walkCheckEvery is how many values a converter visits between looks at
// its context.
const walkCheckEvery = 256

// maxWalkDepth is how deep a converter follows nested tables (a table that
// contains itself ends there).
const maxWalkDepth = 32

// converter turns Lua values into Go values (tables with keys 1..n become
// lists, others maps; functions and userdata their names) for JSON and log
// attributes.
type converter struct {
	ctx    context.Context
	budget int // bytes of output still allowed
	steps  int
	// full: the budget ran out; err: the context ended. Either stops the
	// walk; what was converted before stays.
	full bool
	err  error
}

func newConverter(ctx context.Context, budget int) *converter {
	if ctx == nil {
		ctx = context.Background()
	}
	return &converter{ctx: ctx, budget: budget}
}

func (c *converter) stopped() bool { return c.full || c.err != nil }

// charge takes n bytes from the budget and reports whether they fit.
func (c *converter) charge(n int) bool {
	c.steps++
	if c.steps%walkCheckEvery == 0 {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			return false
		}
	}
	if n > c.budget {
		c.budget = 0
		c.full = true
		return false
	}
	c.budget -= n
	return true
}

func (c *converter) value(v lua.LValue, depth int) any {
	if c.stopped() {
		return nil
	}
	switch x := v.(type) {
	case *lua.LNilType:
		c.charge(4)
		return nil
	case lua.LBool:
		c.charge(5)
		return bool(x)
	case lua.LString:
		if !c.charge(len(x) + 2) {
			return nil
		}
		return string(x)
	case lua.LNumber:
		c.charge(8)
		f := float64(x)
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case *lua.LTable:
		if depth >= maxWalkDepth {
			c.charge(12)
			return "(too deep)"
		}
		if !c.charge(2) {
			return nil
		}
		if n := x.Len(); n > 0 {
			list := make([]any, 0, min(n, 64))
			for i := 1; i <= n && !c.stopped(); i++ {
				if e := c.value(x.RawGetInt(i), depth+1); !c.stopped() {
					list = append(list, e)
				}
			}
			return list
		}
		m := map[string]any{}
		for k, e := x.Next(lua.LNil); k != lua.LNil && !c.stopped(); k, e = x.Next(k) {
			ks := k.String()
			if !c.charge(len(ks) + 3) {
				break
			}
			if ev := c.value(e, depth+1); !c.stopped() {
				m[ks] = ev
			}
		}
		return m
	}
	s := v.String()
	c.charge(len(s) + 2)
	return s
}
