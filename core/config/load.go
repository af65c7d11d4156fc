// Package config is the cluster configuration document: YAML in, strictly
// decoded (unknown keys are errors), defaulted like HAProxy's `defaults`
// section, validated with every problem positioned at file:line:column, and
// diffable. It also holds the node-local bootstrap file (node.go).
//
// Every subsystem receives its part of one validated *Cluster, pushed to it,
// and reconciles to it (and to the committed decisions, pushed the same way
// by cluster/state); a *Cluster is never modified after Load returns it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Position is a place in a source file.
type Position struct {
	File   string
	Line   int
	Column int
}

func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Problem is one thing wrong with a document.
type Problem struct {
	Pos  Position
	Path string // dotted YAML path, e.g. "backends.0.servers.1.weight"
	Msg  string
}

func (p Problem) String() string {
	if p.Path != "" {
		return fmt.Sprintf("%s: %s: %s", p.Pos, p.Path, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.Pos, p.Msg)
}

// Error is every problem found in a document, in file order.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Problems collects validation problems. Validation code names the YAML path
// of the offending value; the position is looked up from the parsed document,
// falling back to the nearest parent that exists (a missing key is reported
// at the mapping that should hold it).
type Problems struct {
	file string
	pos  map[string]Position
	list []Problem
	// known is what the open sets may hold (nil: not checked).
	known *Known
}

// Path joins path elements: Path("backends", 2, "servers", 0) is
// "backends.2.servers.0".
func Path(elems ...any) string {
	var b strings.Builder
	for i, e := range elems {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprint(&b, e)
	}
	return b.String()
}

// Addf records a problem at path.
func (p *Problems) Addf(path, format string, args ...any) {
	p.list = append(p.list, Problem{Pos: p.lookup(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// written reports whether the document spells out path (a key or item).
func (p *Problems) written(path string) bool {
	_, ok := p.pos[path]
	return ok
}

func (p *Problems) lookup(path string) Position {
	for q := path; ; {
		if pos, ok := p.pos[q]; ok {
			return pos
		}
		if q == "" {
			break
		}
		i := strings.LastIndexByte(q, '.')
		if i < 0 {
			i = 0
		}
		q = q[:i]
	}
	return Position{File: p.file}
}

// Err returns nil when there were no problems.
func (p *Problems) Err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool {
		a, b := p.list[i].Pos, p.list[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return &Error{Problems: p.list}
}

// LoadFile reads and validates a cluster document.
func LoadFile(name string) (*Cluster, error) { return load(name, false, nil) }

func load(name string, files bool, known *Known) (*Cluster, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return parseDoc(name, data, files, known)
}

// Known names what the running build can build, for the sets plugins keep
// open: check kinds (the health registry's) and balance algorithms
// (core/balance's). core/config cannot import them, so the caller passes
// the names in; validation keeps no list of its own.
type Known struct {
	CheckKinds []string
	Algorithms []string
}

func (k *Known) has(list []string, name string) bool { return slices.Contains(list, name) }

// ParseKnown is Parse that also checks the names of check kinds and
// balance algorithms against known (with file:line, as every problem).
// Whoever is about to build from a document, or to propose it, calls this.
func ParseKnown(name string, data []byte, known Known) (*Cluster, error) {
	return parseDoc(name, data, false, &known)
}

// Parse decodes, defaults and validates a cluster document. name is used in
// positions only. It checks no names against the registries: the raft FSM
// parses with it, because every node must apply a committed entry the same
// way whatever plugins its build has (the proposer checked the names).
func Parse(name string, data []byte) (*Cluster, error) {
	return parseDoc(name, data, false, nil)
}

// parseDoc is Parse, also checking the files the document names when files
// is set (ParseAndCheckFiles), and the registries' names when known is.
func parseDoc(name string, data []byte, files bool, known *Known) (*Cluster, error) {
	c := &Cluster{}
	probs, err := decodeStrict(name, data, c)
	if err != nil {
		return nil, err
	}
	probs.known = known
	c.Source = data
	c.applyDefaults()
	c.validate(probs)
	if files {
		c.checkFiles(probs)
	}
	if err := probs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeStrict decodes data into out, reporting unknown keys and type errors
// with their positions. Only a YAML syntax error stops it (an error);
// unknown keys and type errors are collected in the returned Problems, so
// that validation runs too and `vipgate check` reports everything at once
// (a misspelt key and what its absence breaks).
func decodeStrict(name string, data []byte, out any) (*Problems, error) {
	probs := &Problems{file: name, pos: map[string]Position{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Problems: []Problem{syntaxProblem(name, data, err)}}
	}
	if len(root.Content) == 0 {
		return probs, nil // empty document: all defaults
	}
	doc := root.Content[0]
	// Aliases are measured before anything walks or decodes the tree: an
	// alias bomb is refused here in time proportional to the file.
	if pr := checkAliases(name, doc); pr != nil {
		return nil, &Error{Problems: []Problem{*pr}}
	}
	indexPositions(name, doc, "", probs.pos)
	// The decoder (with the YAML library's own aliasing guard) runs before
	// the key checker, which follows aliases too.
	if err := doc.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				probs.list = append(probs.list, Problem{Pos: yamlErrPos(name, errors.New(m)), Msg: yamlErrMsg(errors.New(m))})
			}
		} else {
			// The decoder gave up (its aliasing guard, a recursive
			// anchor): what it filled in is partial, validating it would
			// only add noise.
			return nil, &Error{Problems: []Problem{{Pos: yamlErrPos(name, err), Msg: strings.TrimPrefix(yamlErrMsg(err), "yaml: ")}}}
		}
	}
	checkKeys(doc, reflect.TypeOf(out).Elem(), "", probs)
	return probs, nil
}

// syntaxProblem positions a YAML syntax error.
func syntaxProblem(name string, data []byte, err error) Problem {
	p, _ := locateSyntaxError(name, data, err)
	return p
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+)(?:, column (\d+))?: `)

func yamlErrPos(file string, err error) Position {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return Position{File: file}
	}
	l, _ := strconv.Atoi(m[1])
	c, _ := strconv.Atoi(m[2])
	return Position{File: file, Line: l, Column: c}
}

func yamlErrMsg(err error) string {
	return yamlLineRE.ReplaceAllString(err.Error(), "")
}

// indexPositions records where every mapping value and sequence item starts.
func indexPositions(file string, n *yaml.Node, path string, m map[string]Position) {
	// Aliases are not followed: their position is where they are used, and
	// a recursive alias must not recurse here.
	m[path] = Position{File: file, Line: n.Line, Column: n.Column}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(k.Value)
			indexPositions(file, v, p, m)
			if v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode {
				// Point a block at its key, which is where a reader looks.
				m[p] = Position{File: file, Line: k.Line, Column: k.Column}
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			indexPositions(file, v, join(strconv.Itoa(i)), m)
		}
	}
}

// checkKeys reports mapping keys that t has no field for. Types that decode
// themselves (yaml.Unmarshaler) are trusted to check their own input.
func checkKeys(n *yaml.Node, t reflect.Type, path string, p *Problems) {
	checkKeysDepth(n, t, path, p, 0)
}

// maxAliasDepth is a second fence against looping: checkAliases has
// already refused recursive anchors and bounded the total expansion.
const maxAliasDepth = 32

func checkKeysDepth(n *yaml.Node, t reflect.Type, path string, p *Problems, aliases int) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if aliases >= maxAliasDepth {
			return
		}
		aliases++
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				p.list = append(p.list, Problem{
					Pos:  Position{File: p.file, Line: k.Line, Column: k.Column},
					Path: join(k.Value),
					Msg:  fmt.Sprintf("unknown key %q%s", k.Value, suggest(k.Value, fields)),
				})
				continue
			}
			checkKeysDepth(v, ft, join(k.Value), p, aliases)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, v := range n.Content {
			checkKeysDepth(v, t.Elem(), join(strconv.Itoa(i)), p, aliases)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeysDepth(n.Content[i+1], t.Elem(), join(n.Content[i].Value), p, aliases)
		}
	}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// yamlFields maps YAML keys to field types, following ",inline".
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// suggest proposes the closest known key for a typo.
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for f := range fields {
		if d := editDistance(k, f); d < bestD || (d == bestD && f < best) {
			best, bestD = f, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Marshal renders a document as YAML (used for diffs and history).
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
