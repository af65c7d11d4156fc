package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestEveryKeyIsDocumented keeps docs/ a complete configuration reference:
// every YAML key the decoder accepts, in the cluster document and the node
// file, must appear in backquotes (`key` or `key:`) in some page of docs/.
// A key added without documentation fails here, naming the key and where it
// lives in the document.
func TestEveryKeyIsDocumented(t *testing.T) {
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no docs/*.md found: %v", err)
	}
	var all strings.Builder
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	docs := all.String()
	// A key counts as documented when it appears as code: `key`, `key:`,
	// `key: value`, `parent.key`, or as a YAML line inside a code block.
	documented := func(key string) bool {
		q := regexp.QuoteMeta(key)
		re := regexp.MustCompile("`([a-z0-9_.]*\\.)?" + q + "[`:= ]|(?m)^\\s*(# *)?(- )?" + q + ":|[{,] ?" + q + ":")
		return re.MatchString(docs)
	}
	keys := map[string]string{} // key -> first path seen
	collectKeys(reflect.TypeOf(Cluster{}), "cluster", keys, map[reflect.Type]bool{})
	collectKeys(reflect.TypeOf(Node{}), "node", keys, map[reflect.Type]bool{})
	var missing []string
	for k, where := range keys {
		if !documented(k) {
			missing = append(missing, where+"."+k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d config key(s) not documented in docs/*.md:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if len(keys) < 50 {
		t.Fatalf("only %d keys found: the reflection walk is broken", len(keys))
	}
}

func collectKeys(t reflect.Type, path string, keys map[string]string, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") || (f.Anonymous && name == "") {
			collectKeys(f.Type, path, keys, seen)
			continue
		}
		if name == "" {
			continue // not decoded from YAML under its own key
		}
		if _, ok := keys[name]; !ok {
			keys[name] = path
		}
		collectKeys(f.Type, path+"."+name, keys, seen)
	}
}
