// Command importgroups checks the house's import grouping, which gofmt
// does not: standard library first, then other modules, then this module,
// each class in one group of its own, groups split by a blank line
// (goimports -local github.com/vipgate/vipgate writes it so, but does not
// merge groups someone split). `make lint` runs it over every Go file.
package main

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
)

const local = "github.com/vipgate/vipgate"

// class orders the groups: 0 standard library, 1 other modules, 2 local.
func class(path string) int {
	switch first, _, _ := strings.Cut(path, "/"); {
	case path == local || strings.HasPrefix(path, local+"/"):
		return 2
	case strings.Contains(first, "."):
		return 1
	}
	return 0
}

var names = [...]string{"standard library", "other modules", local}

// check returns the problems of one file, each "file:line: what".
func check(fset *token.FileSet, file string) ([]string, error) {
	f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[int]bool{}
	prevLine, prevClass := -1, -1
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		pos := fset.Position(imp.Pos())
		line := pos.Line
		if imp.Doc != nil {
			line = fset.Position(imp.Doc.Pos()).Line
		}
		c := class(path)
		newGroup := prevLine < 0 || line > prevLine+1
		switch {
		case !newGroup && c != prevClass:
			out = append(out, fmt.Sprintf("%s:%d: %q (%s) shares a group with %s imports", file, pos.Line, path, names[c], names[prevClass]))
		case newGroup && seen[c]:
			out = append(out, fmt.Sprintf("%s:%d: %q: %s imports are split over several groups", file, pos.Line, path, names[c]))
		case newGroup && c < prevClass:
			out = append(out, fmt.Sprintf("%s:%d: %q: %s imports come before %s ones", file, pos.Line, path, names[c], names[prevClass]))
		}
		seen[c] = true
		prevLine, prevClass = pos.Line, c
	}
	return out, nil
}

func main() {
	fset := token.NewFileSet()
	bad := false
	for _, file := range os.Args[1:] {
		probs, err := check(fset, file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, p := range probs {
			fmt.Println(p)
			bad = true
		}
	}
	if bad {
		fmt.Println("import groups: standard library, other modules, then " + local + ", one group each (goimports -local " + local + " sorts within them)")
		os.Exit(1)
	}
}
