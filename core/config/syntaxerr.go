package config

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML parser names the line where the enclosing block starts
// ("frontends:" for a mis-indented key 200 lines below). The line that
// breaks the document is the first one after which the document fails the
// same way. Parsing every growing prefix finds it but is quadratic (126 s
// for a 400 KB file, blocking reloads meanwhile); instead:
//
//  1. one parse reads the document a byte at a time, so the bytes it read
//     before failing bound the breaking line from above (the parser looks
//     ahead a few characters, at most to the end of the token it fails on);
//  2. prefixes ending a few lines before that bound are tried backwards,
//     which finds the line in one or two parses as a rule;
//  3. if the failing token is long (a block scalar), a binary search over
//     the rest of the lines finishes it in O(log n) parses.
//
// So the work is a constant number of parses of the document, plus a
// logarithmic number in the rare case.

// locateBackSteps is how many prefixes step 2 tries.
const locateBackSteps = 8

// locateSyntaxError returns the positioned problem and the number of bytes
// the parser was given in all (the measure of the work done, for tests).
func locateSyntaxError(name string, data []byte, err error) (Problem, int) {
	pos, msg := yamlErrPos(name, err), yamlErrMsg(err)
	if pos.Line == 0 || strings.Contains(msg, "end of stream") {
		return Problem{Pos: pos, Msg: msg}, 0
	}
	ends := lineEnds(data) // ends[i] is the offset just past line i+1
	work := 0
	fails := func(line int) bool {
		end := ends[line-1]
		work += end
		var n yaml.Node
		perr := yaml.Unmarshal(data[:end], &n)
		return perr != nil && yamlErrMsg(perr) == msg
	}

	// 1. The upper bound: the line holding the last byte the parser read.
	r := &byteReader{data: data}
	var n yaml.Node
	perr := yaml.NewDecoder(r).Decode(&n)
	work += r.off
	hi := len(ends)
	if perr != nil && yamlErrMsg(perr) == msg && r.off > 0 {
		hi = sort.SearchInts(ends, r.off) + 1
	}
	lo := pos.Line // the answer is in [lo, hi]; prefixes up to hi fail
	if hi < lo {
		return Problem{Pos: pos, Msg: msg}, work
	}
	// 2. Backwards from the bound.
	for i := 0; i < locateBackSteps && hi > lo; i++ {
		if !fails(hi - 1) {
			lo = hi
			break
		}
		hi--
	}
	// 3. Binary search over what is left: the smallest failing line.
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if hi != pos.Line {
		msg = fmt.Sprintf("%s (in the block that starts at line %d)", msg, pos.Line)
		pos.Line, pos.Column = hi, 0
	}
	return Problem{Pos: pos, Msg: msg}, work
}

// lineEnds returns the offset just past each line (the last line may lack
// its newline).
func lineEnds(data []byte) []int {
	var ends []int
	for off := 0; off < len(data); {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			off = len(data)
		} else {
			off += nl + 1
		}
		ends = append(ends, off)
	}
	return ends
}

// byteReader hands the parser one byte a call, so off is exactly how far
// it read.
type byteReader struct {
	data []byte
	off  int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.data[r.off]
	r.off++
	return 1, nil
}
