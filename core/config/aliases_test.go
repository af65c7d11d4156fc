package config

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// aliasBomb is the red-team file: 300 frontends aliasing one with 300
// rules aliasing one with 300 header matches aliasing one that carries an
// unknown key — 27 million header matches once expanded, from 2.8 KB.
func aliasBomb(n int) string {
	rep := func(a string) string { return strings.TrimSuffix(strings.Repeat(a+",", n-1), ",") }
	return fmt.Sprintf("frontends: [&F {name: f, rules: [&R {header: [&H {name: a, bogus: 1},%s]},%s]},%s]\n",
		rep("*H"), rep("*R"), rep("*F"))
}

// TestAliasBombRefused: the file is refused with the position of the alias
// that crosses the bound, allocating a bounded amount (the unbounded walk
// took 6 GB); sharing below the bound still works, and a recursive anchor
// is named.
func TestAliasBombRefused(t *testing.T) {
	doc := []byte(aliasBomb(300))
	var err error
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Parse("bomb.yaml", doc)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("accepted")
	}
	if !strings.HasPrefix(err.Error(), "bomb.yaml:1:") || !strings.Contains(err.Error(), "aliases expand the document by more than 100000 nodes") {
		t.Fatalf("error %q", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Fatalf("refusing the bomb allocated %d MB (ceiling 64 MB)", got>>20)
	}
	if allocs := testing.AllocsPerRun(3, func() { Parse("bomb.yaml", doc) }); allocs > 200_000 {
		t.Fatalf("%v allocations to refuse the bomb (ceiling 200000)", allocs)
	}

	// Moderate sharing stays legal (the unknown key is reported as such);
	// 20×20×20 trips the YAML library's own guard (nearly every node an
	// alias's copy), reported as the only problem.
	_, err = Parse("shared.yaml", []byte(aliasBomb(6)))
	if err == nil || !strings.Contains(err.Error(), `unknown key "bogus"`) || strings.Contains(err.Error(), "aliases expand") {
		t.Fatalf("moderate sharing: %v", err)
	}
	_, err = Parse("shared.yaml", []byte(aliasBomb(20)))
	if err == nil || err.Error() != "shared.yaml: document contains excessive aliasing" {
		t.Fatalf("20×20×20: %v", err)
	}

	for _, tc := range []struct{ doc, want string }{
		{"backends: &x [*x]\n", "x.yaml:1:15: alias *x is used inside its own anchor"},
		{"backends: &x [{name: a, servers: [*x]}]\n", "x.yaml:1:35: alias *x is used inside its own anchor"},
	} {
		if _, err := Parse("x.yaml", []byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
}

// TestAliasBombRefusedInNodeFile: the node file goes through the same gate.
func TestAliasBombRefusedInNodeFile(t *testing.T) {
	doc := "" +
		"x: &A [1,2,3,4,5,6,7,8,9,10]\n" +
		"y: &B [" + strings.TrimSuffix(strings.Repeat("*A,", 100), ",") + "]\n" +
		"z: &C [" + strings.TrimSuffix(strings.Repeat("*B,", 100), ",") + "]\n" +
		"w: [" + strings.TrimSuffix(strings.Repeat("*C,", 100), ",") + "]\n"
	_, err := ParseNode("node.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "aliases expand the document") {
		t.Fatalf("%v", err)
	}
}
