package config

import (
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// bigDoc is a valid document of about size bytes (backends with servers),
// with tail appended.
func bigDoc(size int, tail string) []byte {
	var b strings.Builder
	b.WriteString("backends:\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "  - name: be%d\n    servers:\n      - {name: s1, address: '10.0.0.1:80'}\n      - {name: s2, address: '10.0.0.2:80'}\n", i)
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// locate parses doc, which must have a syntax error, and locates it.
func locate(t *testing.T, doc []byte) (Problem, int) {
	t.Helper()
	var n yaml.Node
	err := yaml.Unmarshal(doc, &n)
	if err == nil {
		t.Fatalf("no syntax error in %q", doc)
	}
	return locateSyntaxError("big.yaml", doc, err)
}

// TestSyntaxErrorLocationLinear: one line indented wrong at the end of a
// 400 KB file (126 s with the prefix-by-prefix search) is located with
// work proportional to the file: the parser is given a small multiple of
// the file's size, and four times the file is about four times the work.
func TestSyntaxErrorLocationLinear(t *testing.T) {
	const bad = "  - name: last\n   servers: []\n"
	var works []int
	for _, size := range []int{100 << 10, 400 << 10} {
		doc := bigDoc(size, bad)
		p, work := locate(t, doc)
		lines := strings.Count(string(doc), "\n")
		if p.Pos.Line != lines || !strings.Contains(p.Msg, "(in the block that starts at line 1)") {
			t.Fatalf("%d KB: %s, want line %d", size>>10, p, lines)
		}
		if work > 4*len(doc) {
			t.Errorf("%d KB: the parser was given %d bytes, %.1f times the file (ceiling 4)", size>>10, work, float64(work)/float64(len(doc)))
		}
		t.Logf("%d KB: work %.2f× the file", size>>10, float64(work)/float64(len(doc)))
		works = append(works, work)
	}
	if r := float64(works[1]) / float64(works[0]); r > 5 {
		t.Errorf("4× the file took %.1f× the work (linear is 4)", r)
	}
}

// referenceLocate is the original prefix-by-prefix search: the first line
// at or after the reported one whose prefix fails the same way.
func referenceLocate(data []byte, err error) int {
	pos, msg := yamlErrPos("x", err), yamlErrMsg(err)
	ends := lineEnds(data)
	for line := pos.Line; line >= 1 && line <= len(ends); line++ {
		var n yaml.Node
		perr := yaml.Unmarshal(data[:ends[line-1]], &n)
		if perr != nil && yamlErrMsg(perr) == msg {
			return line
		}
	}
	return pos.Line
}

// TestSyntaxErrorLocationMatchesReference: on small documents the fast
// locator names the same line as the quadratic search, including errors
// in the middle, inside long block scalars and in flow collections.
func TestSyntaxErrorLocationMatchesReference(t *testing.T) {
	long := "    " + strings.Repeat("text text text\n    ", 200)
	docs := []string{
		"defaults: {mode: tcp}\nfrontends:\n  - name: f\n    bind: ':80'\n  - name: g\n   bind: ':81'\n",
		"a:\n  b: 1\n c: 2\n",
		"a: 1\nb: [1, 2\nc: 3\n",
		string(bigDoc(5000, "")) + "  - name: x\n   bad: 1\n" + string(bigDoc(5000, ""))[len("backends:\n"):],
		"lua:\n  plugins:\n    - name: p\n      source: |\n" + long + "\n   oops: 1\n",
		"a:\n  - b: |\n" + long + "  c: [1, 2\n  d: {x: 1\n",
		"a: {b: 1, c: [1, 2, {d: 3}\ne: 4\n" + strings.Repeat("f: 5\n", 50),
		"a: 'unterminated\nb: 2\n" + strings.Repeat("c: 3\n", 50),
		"a:\n\tb: 1\n",
		"a: &x 1\nb: *y\n",
		"- a\n- b\nc: d\n" + strings.Repeat("- e\n", 30),
	}
	for i, doc := range docs {
		var n yaml.Node
		err := yaml.Unmarshal([]byte(doc), &n)
		if err == nil {
			t.Fatalf("doc %d: no syntax error", i)
		}
		p, _ := locateSyntaxError("x", []byte(doc), err)
		if p.Pos.Line == 0 {
			continue // no line to improve on
		}
		if want := referenceLocate([]byte(doc), err); p.Pos.Line != want {
			t.Errorf("doc %d: line %d, the prefix search says %d (%s)", i, p.Pos.Line, want, p)
		}
	}
}
