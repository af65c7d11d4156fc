package importer

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// kanode is one keepalived statement: its words, and its block when it has
// one ({ ... }).
type kanode struct {
	file     string
	line     int
	args     []string
	children []*kanode
	block    bool
}

func (n *kanode) keyword() string {
	if len(n.args) == 0 {
		return ""
	}
	return n.args[0]
}

// arg returns word i or "".
func (n *kanode) arg(i int) string {
	if i < len(n.args) {
		return n.args[i]
	}
	return ""
}

// FS reads included files. Paths are as written (after joining relative
// include patterns with the including file's directory).
type FS interface {
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

const maxIncludeDepth = 8

type katok struct {
	line int
	s    string
	// brace is set for an unquoted { or }.
	brace bool
}

// parseKeepalived reads keepalived.conf into a statement tree. Grammar:
// words separated by blanks, "double quotes" group words, # and ! start a
// comment, { and } open and close a block (on the statement's line or on
// the next one), `include GLOB` splices in files.
func parseKeepalived(file string, data []byte, fs FS, depth int) ([]*kanode, error) {
	if depth > maxIncludeDepth {
		return nil, &ParseError{File: file, Msg: fmt.Sprintf("includes nested deeper than %d (a loop?)", maxIncludeDepth)}
	}
	var lines [][]katok
	for i, raw := range strings.Split(string(data), "\n") {
		toks, err := splitKeepalivedLine(strings.TrimSuffix(raw, "\r"), i+1)
		if err != nil {
			return nil, &ParseError{File: file, Line: i + 1, Msg: err.Error()}
		}
		if len(toks) > 0 {
			lines = append(lines, toks)
		}
	}
	root := &kanode{file: file, block: true}
	stack := []*kanode{root}
	for _, toks := range lines {
		var cur *kanode
		flush := func() error {
			if cur == nil {
				return nil
			}
			parent := stack[len(stack)-1]
			n := cur
			cur = nil
			if n.keyword() == "include" && len(n.args) >= 2 {
				inc, err := includeFiles(file, n, fs, depth)
				if err != nil {
					return err
				}
				parent.children = append(parent.children, inc...)
				return nil
			}
			parent.children = append(parent.children, n)
			return nil
		}
		for _, t := range toks {
			switch {
			case t.brace && t.s == "{":
				var n *kanode
				if cur != nil {
					n = cur
					cur = nil
					parent := stack[len(stack)-1]
					parent.children = append(parent.children, n)
				} else {
					// A brace on its own line opens the previous statement's block.
					parent := stack[len(stack)-1]
					if len(parent.children) == 0 || parent.children[len(parent.children)-1].block {
						return nil, &ParseError{File: file, Line: t.line, Msg: "'{' without a statement to open"}
					}
					n = parent.children[len(parent.children)-1]
				}
				n.block = true
				stack = append(stack, n)
			case t.brace && t.s == "}":
				if err := flush(); err != nil {
					return nil, err
				}
				if len(stack) == 1 {
					return nil, &ParseError{File: file, Line: t.line, Msg: "'}' without an open block"}
				}
				stack = stack[:len(stack)-1]
			default:
				if cur == nil {
					cur = &kanode{file: file, line: t.line}
				}
				cur.args = append(cur.args, t.s)
			}
		}
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if len(stack) > 1 {
		open := stack[len(stack)-1]
		return nil, &ParseError{File: file, Line: open.line, Msg: fmt.Sprintf("block %q is not closed (missing '}')", open.keyword())}
	}
	return root.children, nil
}

func includeFiles(file string, n *kanode, fs FS, depth int) ([]*kanode, error) {
	if fs == nil {
		return nil, &ParseError{File: file, Line: n.line, Msg: "include: no file system to read included files from"}
	}
	pat := n.args[1]
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(filepath.Dir(file), pat)
	}
	names, err := fs.Glob(pat)
	if err != nil {
		return nil, &ParseError{File: file, Line: n.line, Msg: fmt.Sprintf("include %s: %v", n.args[1], err)}
	}
	sort.Strings(names)
	var out []*kanode
	for _, name := range names {
		data, err := fs.ReadFile(name)
		if err != nil {
			return nil, &ParseError{File: file, Line: n.line, Msg: fmt.Sprintf("include %s: %v", n.args[1], err)}
		}
		nodes, err := parseKeepalived(name, data, fs, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, nodes...)
	}
	return out, nil
}

func splitKeepalivedLine(s string, line int) ([]katok, error) {
	var out []katok
	var b strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			out = append(out, katok{line: line, s: b.String()})
			b.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case (c == '#' || c == '!') && !inWord:
			return out, nil
		case c == '{' || c == '}':
			flush()
			out = append(out, katok{line: line, s: string(c), brace: true})
		case c == '"':
			inWord = true
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("unterminated double quote")
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
		default:
			inWord = true
			b.WriteByte(c)
		}
	}
	flush()
	return out, nil
}
