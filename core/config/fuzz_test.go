package config

import "testing"

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
