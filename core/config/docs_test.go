package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestConfigReferenceComplete: every key of the cluster document and the
// node file is documented: it appears as `key` (or `key:` / `key: …`) in
// docs/. A field added without its documentation fails here.
func TestConfigReferenceComplete(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("docs not found: %v", err)
	}
	var docs strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(b)
	}
	text := docs.String()
	documented := func(key string) bool {
		for _, form := range []string{"`" + key + "`", "`" + key + ":", " " + key + ": ", "{" + key + ": ", ", " + key + ": ", "." + key + "`", "`" + key + ".", "." + key + "[", " " + key + ":\n"} {
			if strings.Contains(text, form) {
				return true
			}
		}
		return false
	}
	missing := map[string][]string{}
	keys := 0
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || t.PkgPath() != reflect.TypeFor[Cluster]().PkgPath() {
			return
		}
		seen[t] = true
		for f := range t.Fields() {
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if strings.Contains(opts, "inline") {
				walk(f.Type, path)
				continue
			}
			if name == "" {
				continue
			}
			keys++
			if !documented(name) {
				missing[name] = append(missing[name], path+"."+name)
			}
			walk(f.Type, path+"."+name)
		}
	}
	walk(reflect.TypeFor[Cluster](), "cluster")
	walk(reflect.TypeFor[Node](), "node")
	if keys < 100 {
		t.Fatalf("the walk found %d keys: it no longer sees the config types", keys)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range missing {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Errorf("config key %q is not documented in docs/ (at %s)", k, strings.Join(missing[k], ", "))
	}
}
