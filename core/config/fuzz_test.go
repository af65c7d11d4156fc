package config

import (
	"testing"
	"time"

	"github.com/vipgate/vipgate/internal/testenv"
)

// FuzzParse: any input yields a config or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodDoc))
	f.Add([]byte("frontends: [{name: a, bind: ':1', default_backend: b}]\nbackends: [{name: b, servers: [{name: s, address: 'h:1'}]}]\n"))
	f.Add([]byte("defaults: {timeouts: {connect: 1d}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
	})
}

// FuzzParseHostile is the config parser's part of make fuzz-long: any
// input, seeded with the red-team files (alias bombs, recursive anchors,
// syntax errors deep in a large file, truncated documents), is decided
// within an allocation ceiling proportional to its size and, while
// fuzzing, a time ceiling.
func FuzzParseHostile(f *testing.F) {
	for _, s := range []string{
		goodDoc,
		aliasBomb(300),
		aliasBomb(20),
		"a: &x [*x, *x]\n",
		"backends: &x [{name: a, servers: [*x]}]\n",
		"x: &a [1,2,3]\ny: &b [*a,*a,*a,*a]\nz: &c [*b,*b,*b,*b]\nbackends: [*c,*c,*c,*c]\n",
		"defaults:\n  mode: http\n",
		"frontends:\n  - name: f\n    bind: ':80'\n   default_backend: b\n",
		"a: {b: [1, 2\n",
		string(bigDoc(20<<10, "  - name: last\n   servers: []\n")),
		"<<: *nothing\n",
		"frontends: [{<<: &m {name: a}, bind: ':1', default_backend: b}, {<<: *m}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		testenv.Ceilings(t, "Parse", 64<<20+uint64(len(data))*2048, 5*time.Second, func() {
			c, err := Parse("fuzz.yaml", data)
			if err == nil && c == nil {
				t.Fatal("nil config without error")
			}
		})
	})
}
