package raft

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// A replicated document must mean the same on every node, so it may not
// point at local files that config.Parse would read (Lua plugins given by
// `file:` without `source:`). InlineFiles, run where the files are (the
// `vipgate apply` CLI, the bootstrap seed), copies each such file into the
// document as `source:`, keeping `file:` as a label; SelfContained, run in
// validation, refuses documents that still depend on local files.

// luaPlugins returns the mapping nodes of lua.plugins[*].
func luaPlugins(root *yaml.Node) []*yaml.Node {
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	lua := mapGet(root, "lua")
	plugins := mapGet(lua, "plugins")
	if plugins == nil || plugins.Kind != yaml.SequenceNode {
		return nil
	}
	var out []*yaml.Node
	for _, p := range plugins.Content {
		if p.Kind == yaml.MappingNode {
			out = append(out, p)
		}
	}
	return out
}

func mapGet(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// SelfContained reports a document that still names local files.
func SelfContained(src []byte) error {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil // config.Parse reports syntax errors with positions
	}
	for i, p := range luaPlugins(&root) {
		if f := mapGet(p, "file"); f != nil && mapGet(p, "source") == nil {
			return fmt.Errorf("%s:%d:%d: lua.plugins.%d.file: %q is a file on one machine; a replicated document must carry the code as source: (vipgate apply -f inlines it for you)",
				docName, f.Line, f.Column, i, f.Value)
		}
	}
	return nil
}

// InlineFiles returns src with every Lua plugin file (relative paths from
// baseDir) copied in as source. src is returned unchanged when there is
// nothing to inline.
func InlineFiles(src []byte, baseDir string) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return src, nil
	}
	changed := false
	var errs []error // every missing file, not only the first
	for _, p := range luaPlugins(&root) {
		f := mapGet(p, "file")
		if f == nil || mapGet(p, "source") != nil {
			continue
		}
		name := f.Value
		if !filepath.IsAbs(name) {
			name = filepath.Join(baseDir, name)
		}
		data, err := os.ReadFile(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: lua plugin file: %w", f.Line, err))
			continue
		}
		p.Content = append(p.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "source"},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(data), Style: yaml.LiteralStyle})
		changed = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if !changed {
		return src, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
