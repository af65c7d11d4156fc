package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// MaxAliasNodes bounds what YAML aliases may add to a document, counted in
// nodes after expansion. Without a bound a file of a few kilobytes (three
// levels of 300 aliases to the level below) expands to tens of millions of
// nodes: everything that walks or decodes the tree would take gigabytes.
// What is written out is bounded by the file size; only the copies aliases
// make need this cap, and legitimate sharing (a server list used by a few
// backends) stays far below it.
const MaxAliasNodes = 100_000

// checkAliases measures the document as it would be after expanding every
// alias, in one pass over the written nodes (the expanded size of an anchor
// is computed once and reused by every alias to it), and refuses it once
// aliases add more than MaxAliasNodes nodes or an anchor contains itself.
// It runs before anything else walks the tree.
func checkAliases(file string, doc *yaml.Node) *Problem {
	a := aliasSizer{size: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}}
	a.walk(doc)
	if a.bad == nil {
		return nil
	}
	return &Problem{Pos: Position{File: file, Line: a.bad.Line, Column: a.bad.Column}, Msg: a.msg}
}

type aliasSizer struct {
	size  map[*yaml.Node]int  // expanded size of nodes already measured
	open  map[*yaml.Node]bool // nodes being measured (an alias to one is a cycle)
	added int                 // nodes aliases added so far
	bad   *yaml.Node
	msg   string
}

// walk returns the expanded size of n; once a.bad is set it returns at
// once, so sizes stay bounded by MaxAliasNodes plus the written nodes.
func (a *aliasSizer) walk(n *yaml.Node) int {
	if a.bad != nil || n == nil {
		return 0
	}
	if n.Kind == yaml.AliasNode {
		t := n.Alias
		if t == nil {
			return 1
		}
		if a.open[t] {
			a.bad, a.msg = n, fmt.Sprintf("alias *%s is used inside its own anchor (a recursive document)", n.Value)
			return 0
		}
		s, ok := a.size[t]
		if !ok {
			// Anchors come before their aliases, so t is normally measured;
			// measure it here otherwise, still once.
			s = a.walk(t)
		}
		a.added += s
		if a.added > MaxAliasNodes {
			a.bad, a.msg = n, fmt.Sprintf("aliases expand the document by more than %d nodes (here *%s); write the repeated part out or share less", MaxAliasNodes, n.Value)
			return 0
		}
		return s
	}
	if s, ok := a.size[n]; ok {
		return s
	}
	a.open[n] = true
	s := 1
	for _, c := range n.Content {
		s += a.walk(c)
	}
	delete(a.open, n)
	a.size[n] = s
	return s
}
