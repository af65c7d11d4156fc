package scripting

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/proxy"
)

// docLuaBlocks returns the ```lua blocks of the docs, by file.
func docLuaBlocks(t *testing.T) map[string][]string {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("docs not found: %v", err)
	}
	re := regexp.MustCompile("(?s)```lua\n(.*?)```")
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out[filepath.Base(f)] = append(out[filepath.Base(f)], m[1])
		}
	}
	return out
}

// TestDocLuaExamplesCompile: every complete Lua example in docs/ is valid
// Lua (fragments with "..." are outlines, not code).
func TestDocLuaExamplesCompile(t *testing.T) {
	n := 0
	for file, blocks := range docLuaBlocks(t) {
		for i, src := range blocks {
			if strings.Contains(src, "...") {
				continue
			}
			n++
			if _, err := compileSource("doc", src); err != nil {
				t.Errorf("%s, lua block %d: %v\n%s", file, i+1, err, src)
			}
		}
	}
	if n < 4 {
		t.Errorf("only %d complete Lua examples found in docs/", n)
	}
}

// TestDocStickKeyExample runs the Lua-computed stick key of
// docs/persistence.md as the stick rule does (a route hook on a tcp
// transaction that sets stick_key).
func TestDocStickKeyExample(t *testing.T) {
	var src string
	for _, b := range docLuaBlocks(t)["persistence.md"] {
		if strings.Contains(b, `plugin "keys"`) {
			src = b
		}
	}
	if src == "" {
		t.Fatal(`no Lua example for plugin "keys" in docs/persistence.md`)
	}
	rt := New(Options{})
	if err := rt.Apply(&config.Lua{Plugins: []config.LuaPlugin{{Name: "keys", Source: src}}}); err != nil {
		t.Fatal(err)
	}
	h, err := rt.Hook("keys.tenant")
	if err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{"acme.example.com": "acme", "": ""} {
		tx := &proxy.Txn{Frontend: "exchange", SNI: sni}
		if _, err := h.Route(context.Background(), tx); err != nil {
			t.Fatalf("sni %q: %v", sni, err)
		}
		if got := tx.Vars["stick_key"]; got != want {
			t.Errorf("sni %q: stick_key %q, want %q", sni, got, want)
		}
	}
}

// TestLuaAPIDocumented: every txn method and every function of the modules
// vipgate adds for plugins (vipgate, net, json, log) is named in
// docs/lua.md. A function added to the API without its documentation fails
// here.
func TestLuaAPIDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/lua.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var missing []string
	for name := range txnMethods {
		// `txn:name(…)`, or a later method of the same row: "… / `name`".
		if !strings.Contains(doc, "txn:"+name+"(") && !strings.Contains(doc, "/ `"+name+"`") && !strings.Contains(doc, "/ `"+name+"(") {
			missing = append(missing, "txn:"+name)
		}
	}
	// The functions a plugin sees as "module.name", read from a state's
	// plugin environment (modules are frozen views: Lua's pairs sees nothing).
	r := newRig(t, `function f() end`)
	st, err := r.rt.gen.Load().newState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	var got []string
	for _, m := range []string{"vipgate", "net", "json", "log"} {
		tbl, ok := st.envs["p"].store.RawGetString(m).(*lua.LTable)
		if !ok {
			t.Fatalf("module %s missing from the plugin environment", m)
		}
		if mt, ok := tbl.Metatable.(*lua.LTable); ok {
			if idx, ok := mt.RawGetString("__index").(*lua.LTable); ok {
				tbl = idx
			}
		}
		tbl.ForEach(func(k, v lua.LValue) {
			if _, ok := v.(*lua.LFunction); ok {
				got = append(got, m+"."+k.String())
			}
		})
	}
	if len(got) < 10 {
		t.Fatalf("the plugin environment has only %v", got)
	}
	for _, name := range got {
		mod, fn, _ := strings.Cut(name, ".")
		// `module.name(…)`, `module.name` or `module.name{…}`; log.debug/info/warn/error is one row.
		re := regexp.MustCompile("`" + regexp.QuoteMeta(mod) + `\.([a-z_]+/)*` + regexp.QuoteMeta(fn) + "[({`/]")
		if !re.MatchString(doc) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("not documented in docs/lua.md: %s", strings.Join(missing, ", "))
	}
}
