package luapm

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/yuin/gopher-lua/pm"
)

// TestInterrupt: a backtracking pattern stops when interrupt says so, with
// the interrupt's error in the message; matching without an interrupt and
// ordinary patterns are unaffected.
func TestInterrupt(t *testing.T) {
	src := []byte(strings.Repeat("a", 5000))
	calls := 0
	stop := errors.New("deadline")
	_, err := Find(".-.-.-b", src, 0, 1, func() error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "pattern matching stopped: deadline") || calls != 3 {
		t.Fatalf("err %v after %d checks", err, calls)
	}
	mds, err := Find("(a+)", src, 0, -1, nil)
	if err != nil || len(mds) != 1 || mds[0].Capture(3) != 5000 {
		t.Fatalf("plain match: %v %v", mds, err)
	}
}

// FuzzSameAsGopherLua: the copy matches exactly as gopher-lua's pm does.
func FuzzSameAsGopherLua(f *testing.F) {
	for _, s := range [][2]string{
		{"(%w+)=(%w+)", "a=1, b=2"}, {"%b()", "f(a(b)c)"}, {"(a)%1", "xaa"}, {"^a-$", "aaa"},
		{"[%a_][%w_]*", "_x1 y"}, {"()", "ab"}, {"%f[%w]%w+", "hi there"}, {"[^%s]+", " a b "},
	} {
		f.Add(s[0], s[1], 0, -1)
	}
	f.Fuzz(func(t *testing.T, pat, src string, offset, limit int) {
		if len(pat) > 40 || len(src) > 200 || offset < 0 || offset > len(src) {
			return
		}
		want, werr := pm.Find(pat, []byte(src), offset, limit)
		got, gerr := Find(pat, []byte(src), offset, limit, func() error { return nil })
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("errors differ: gopher-lua %v, luapm %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if len(want) != len(got) {
			t.Fatalf("%d matches, gopher-lua %d", len(got), len(want))
		}
		for i := range want {
			var w, g []int
			for k := 0; k < want[i].CaptureLength(); k++ {
				p := 0
				if want[i].IsPosCapture(k) {
					p = 1
				}
				w = append(w, want[i].Capture(k), p)
			}
			for k := 0; k < got[i].CaptureLength(); k++ {
				p := 0
				if got[i].IsPosCapture(k) {
					p = 1
				}
				g = append(g, got[i].Capture(k), p)
			}
			if !reflect.DeepEqual(w, g) {
				t.Fatalf("match %d: %v, gopher-lua %v", i, g, w)
			}
		}
	})
}
