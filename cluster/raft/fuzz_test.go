package raft

import (
	"testing"
)

// FuzzCommand feeds arbitrary log entries to the decoder and, when they
// decode, to validation and apply: neither may panic, and a refused
// command must leave the state untouched.
func FuzzCommand(f *testing.F) {
	for _, c := range []Command{putDoc(3), &SetActiveDC{DC: "dc2"}, &SetDCHealth{DC: "dc1"}, &SetServerAdmin{Backend: "web", Server: "s1", State: "drain"}, &SetMember{ID: "x"}, &SeedConfig{Source: doc(2)}} {
		data, _ := Encode(c)
		f.Add(data)
	}
	f.Add([]byte{1, '{', '"', 's', 'o', 'u', 'r', 'c', 'e', '"', ':', '"', 'e', '3', '0', '=', '"', '}'})
	base, err := apply((&State{}).clone(), putDoc(1), 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := Decode(data)
		if err != nil {
			return
		}
		n, err := apply(base, cmd, 2)
		if err != nil && n != base {
			t.Fatal("a refused command returned a new state")
		}
	})
}
