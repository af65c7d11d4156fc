package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Lua is the scripting section: named plugins (Lua source plus their own
// configuration table) and the limits every call runs under.
//
//	lua:
//	  defaults: {timeout: 50ms, fallback: continue, pool_size: 16}
//	  plugins:
//	    - name: canary
//	      file: lua/canary.lua        # read and inlined when the document is loaded
//	      config: {header: X-Canary, backend: app-canary}
type Lua struct {
	Defaults LuaDefaults `yaml:"defaults,omitempty" json:"defaults,omitempty"`
	Plugins  []LuaPlugin `yaml:"plugins,omitempty" json:"plugins,omitempty"`
}

// LuaDefaults are the limits and the failure policy of every Lua call;
// a plugin may override timeout and fallback.
type LuaDefaults struct {
	// Timeout bounds one routing-hook or DNS-hook call (default 1s). It is
	// wall-clock time: it cuts off runaway scripts, and must leave room for
	// GC pauses and CPU starvation on a busy node.
	// Checks and track scripts run under the check's own timeout.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// HandlerTimeout bounds one event-handler call (default 5s): handlers
	// may call a webhook.
	HandlerTimeout Duration `yaml:"handler_timeout,omitempty" json:"handler_timeout,omitempty"`
	// Fallback is what a request gets when its hook fails or times out:
	// "continue" (the frontend's rules and default backend), "500" or "503".
	Fallback string `yaml:"fallback,omitempty" json:"fallback,omitempty"`
	// PoolSize is how many idle Lua states are kept per generation of
	// scripts (default 16). More are created under load and closed after.
	PoolSize int `yaml:"pool_size,omitempty" json:"pool_size,omitempty"`
	// MaxString caps any string a single library call may build
	// (string.rep, string.format, table.concat, string.gsub), default 1MiB.
	MaxString int `yaml:"max_string,omitempty" json:"max_string,omitempty"`
	// MaxAlloc stops a call that has run for more than a few milliseconds
	// while the heap grew by more than this many bytes (default 64MiB): a
	// loop doubling a string is one VM instruction per step.
	MaxAlloc int `yaml:"max_alloc,omitempty" json:"max_alloc,omitempty"`
	// CallStack bounds the Lua call depth (default 200).
	CallStack int `yaml:"call_stack,omitempty" json:"call_stack,omitempty"`
	// Registry bounds the Lua value stack in slots (default 65536).
	Registry int `yaml:"registry,omitempty" json:"registry,omitempty"`
	// ErrorThreshold is how many failed calls of one function within a
	// minute publish a lua.errors event (default 10).
	ErrorThreshold int `yaml:"error_threshold,omitempty" json:"error_threshold,omitempty"`
}

// LuaPlugin is one named script. Its global functions are addressed as
// "plugin.function" by frontends (route), checks (script) and handlers.
type LuaPlugin struct {
	Name string `yaml:"name" json:"name"`
	// Source is the Lua code. File names a file (relative to the cluster
	// document) that is read when the document is loaded and put into
	// Source, so that the replicated document carries the code itself.
	Source string `yaml:"source,omitempty" json:"source,omitempty"`
	File   string `yaml:"file,omitempty" json:"file,omitempty"`
	// Config is handed to the script as the read-only table `config`.
	Config map[string]any `yaml:"config,omitempty" json:"config,omitempty"`
	// Timeout and Fallback override lua.defaults for this plugin's hooks.
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Fallback string   `yaml:"fallback,omitempty" json:"fallback,omitempty"`
	// Handlers subscribe functions of this plugin to events.
	Handlers []LuaHandler `yaml:"handlers,omitempty" json:"handlers,omitempty"`

	// functions are the global functions the source defines at top level.
	functions map[string]bool
}

// LuaHandler calls Function for every event whose kind is in Events
// ("*" = every event) and whose level is at least as severe as MinLevel.
type LuaHandler struct {
	Events   StringList `yaml:"events" json:"events"`
	Function string     `yaml:"function" json:"function"`
	MinLevel string     `yaml:"min_level,omitempty" json:"min_level,omitempty"`
}

// Built-in Lua defaults.
const (
	DefaultLuaTimeout        = time.Second
	DefaultLuaHandlerTimeout = 5 * time.Second
	DefaultLuaPoolSize       = 16
	DefaultLuaMaxString      = 1 << 20
	DefaultLuaMaxAlloc       = 64 << 20
	DefaultLuaCallStack      = 200
	DefaultLuaRegistry       = 1 << 16
	DefaultLuaErrorThreshold = 10
)

// Plugin returns the named plugin or nil.
func (l *Lua) Plugin(name string) *LuaPlugin {
	for i := range l.Plugins {
		if l.Plugins[i].Name == name {
			return &l.Plugins[i]
		}
	}
	return nil
}

// EffectiveTimeout is the plugin's timeout or the default.
func (l *Lua) EffectiveTimeout(p *LuaPlugin) time.Duration {
	if p != nil && p.Timeout > 0 {
		return p.Timeout.D()
	}
	return l.Defaults.Timeout.D()
}

// EffectiveFallback is the plugin's fallback or the default.
func (l *Lua) EffectiveFallback(p *LuaPlugin) string {
	if p != nil && p.Fallback != "" {
		return p.Fallback
	}
	return l.Defaults.Fallback
}

// ResolveFunction splits a reference ("plugin.function", or a bare
// "function" defined by exactly one plugin) into plugin and function.
func (l *Lua) ResolveFunction(ref string) (plugin, function string, err error) {
	if p, f, ok := strings.Cut(ref, "."); ok {
		pl := l.Plugin(p)
		if pl == nil {
			return "", "", fmt.Errorf("no lua plugin %q (have: %s)", p, l.pluginNames())
		}
		if pl.functions != nil && !pl.functions[f] {
			return "", "", fmt.Errorf("lua plugin %q defines no global function %q (have: %s)", p, f, sortedKeys(pl.functions))
		}
		return p, f, nil
	}
	var found []string
	for i := range l.Plugins {
		if l.Plugins[i].functions[ref] {
			found = append(found, l.Plugins[i].Name)
		}
	}
	switch len(found) {
	case 1:
		return found[0], ref, nil
	case 0:
		return "", "", fmt.Errorf("no lua plugin defines a global function %q (write plugin.function)", ref)
	}
	return "", "", fmt.Errorf("lua function %q is ambiguous: defined by plugins %s (write plugin.function)", ref, strings.Join(found, ", "))
}

func (l *Lua) pluginNames() string {
	if len(l.Plugins) == 0 {
		return "none"
	}
	n := make([]string, len(l.Plugins))
	for i := range l.Plugins {
		n[i] = l.Plugins[i].Name
	}
	return strings.Join(n, ", ")
}

func sortedKeys(m map[string]bool) string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	if len(k) == 0 {
		return "none"
	}
	return strings.Join(k, ", ")
}

// Fill sets every unset (zero) limit to its default. It is the one place
// the defaults are applied: the config loader calls it before validation
// (so a negative value is refused there, not replaced), and the Lua runtime
// calls it for a section it builds itself (an empty one at start).
func (d *LuaDefaults) Fill() {
	if d.Timeout == 0 {
		d.Timeout = Duration(DefaultLuaTimeout)
	}
	if d.HandlerTimeout == 0 {
		d.HandlerTimeout = Duration(DefaultLuaHandlerTimeout)
	}
	if d.Fallback == "" {
		d.Fallback = "continue"
	}
	if d.PoolSize == 0 {
		d.PoolSize = DefaultLuaPoolSize
	}
	if d.MaxString == 0 {
		d.MaxString = DefaultLuaMaxString
	}
	if d.MaxAlloc == 0 {
		d.MaxAlloc = DefaultLuaMaxAlloc
	}
	if d.CallStack == 0 {
		d.CallStack = DefaultLuaCallStack
	}
	if d.Registry == 0 {
		d.Registry = DefaultLuaRegistry
	}
	if d.ErrorThreshold == 0 {
		d.ErrorThreshold = DefaultLuaErrorThreshold
	}
}

var luaNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func validFallback(s string) bool { return s == "continue" || s == "500" || s == "503" }

// luaBaseDir is where plugin files are looked up: next to the document.
func luaBaseDir(docFile string) string {
	if docFile == "" || strings.HasPrefix(docFile, "<") {
		return "."
	}
	return filepath.Dir(docFile)
}

func (c *Cluster) validateLua(p *Problems) {
	l := &c.Lua
	d := &l.Defaults
	if !validFallback(d.Fallback) {
		p.Addf(Path("lua", "defaults", "fallback"), "fallback %q: want continue, 500 or 503", d.Fallback)
	}
	if d.Timeout < Duration(time.Millisecond) || d.Timeout > Duration(time.Minute) {
		p.Addf(Path("lua", "defaults", "timeout"), "timeout %s out of range 1ms-1m", d.Timeout.D())
	}
	if d.HandlerTimeout < Duration(time.Millisecond) || d.HandlerTimeout > Duration(10*time.Minute) {
		p.Addf(Path("lua", "defaults", "handler_timeout"), "handler_timeout %s out of range 1ms-10m", d.HandlerTimeout.D())
	}
	if d.PoolSize < 1 || d.PoolSize > 4096 {
		p.Addf(Path("lua", "defaults", "pool_size"), "pool_size %d out of range 1-4096", d.PoolSize)
	}
	if d.MaxString < 1024 || d.MaxString > 1<<30 {
		p.Addf(Path("lua", "defaults", "max_string"), "max_string %d out of range 1024-1073741824", d.MaxString)
	}
	if d.MaxAlloc < 1<<20 || d.MaxAlloc > 1<<34 {
		p.Addf(Path("lua", "defaults", "max_alloc"), "max_alloc %d out of range 1MiB-16GiB", d.MaxAlloc)
	}
	if d.CallStack < 16 || d.CallStack > 100000 {
		p.Addf(Path("lua", "defaults", "call_stack"), "call_stack %d out of range 16-100000", d.CallStack)
	}
	if d.Registry < 1024 || d.Registry > 1<<24 {
		p.Addf(Path("lua", "defaults", "registry"), "registry %d out of range 1024-16777216", d.Registry)
	}
	if d.ErrorThreshold < 1 {
		p.Addf(Path("lua", "defaults", "error_threshold"), "error_threshold %d must be at least 1", d.ErrorThreshold)
	}

	seen := map[string]int{}
	for i := range l.Plugins {
		pl := &l.Plugins[i]
		path := Path("lua", "plugins", i)
		switch {
		case pl.Name == "":
			p.Addf(path, "a lua plugin needs a name")
		case !luaNameRE.MatchString(pl.Name):
			p.Addf(Path(path, "name"), "plugin name %q: use letters, digits, _ and - (no dots: functions are named plugin.function)", pl.Name)
		}
		if j, dup := seen[pl.Name]; dup && pl.Name != "" {
			p.Addf(Path(path, "name"), "duplicate lua plugin %q (also plugins.%d)", pl.Name, j)
		}
		seen[pl.Name] = i
		if pl.Fallback != "" && !validFallback(pl.Fallback) {
			p.Addf(Path(path, "fallback"), "fallback %q: want continue, 500 or 503", pl.Fallback)
		}
		if pl.Timeout != 0 && (pl.Timeout < Duration(time.Millisecond) || pl.Timeout > Duration(time.Minute)) {
			p.Addf(Path(path, "timeout"), "timeout %s out of range 1ms-1m", pl.Timeout.D())
		}
		srcPath := Path(path, "source")
		switch {
		case pl.File != "" && pl.Source == "":
			// Inline the file so that every node runs the same code whatever
			// its disk holds.
			name := pl.File
			if !filepath.IsAbs(name) {
				name = filepath.Join(luaBaseDir(p.file), name)
			}
			data, err := os.ReadFile(name)
			if err != nil {
				p.Addf(Path(path, "file"), "plugin %q: %v", pl.Name, err)
				continue
			}
			pl.Source = string(data)
			srcPath = Path(path, "file")
		case pl.File == "" && pl.Source == "":
			p.Addf(path, "plugin %q needs source (inline Lua) or file", pl.Name)
			continue
		case pl.File != "":
			srcPath = Path(path, "file")
		}
		fns, err := LuaGlobalFunctions(pl.Name, pl.Source)
		if err != nil {
			c.addLuaSyntaxProblem(p, srcPath, pl, err)
			continue
		}
		pl.functions = fns
		for h := range pl.Handlers {
			hp := Path(path, "handlers", h)
			hd := &pl.Handlers[h]
			if len(hd.Events) == 0 {
				p.Addf(hp, "a handler needs events (event kinds such as server.down, or \"*\")")
			}
			if hd.Function == "" {
				p.Addf(hp, "a handler needs function")
			} else if !fns[hd.Function] {
				p.Addf(Path(hp, "function"), "plugin %q defines no global function %q (have: %s)", pl.Name, hd.Function, sortedKeys(fns))
			}
			if hd.MinLevel != "" {
				if _, ok := luaLevels[hd.MinLevel]; !ok {
					p.Addf(Path(hp, "min_level"), "min_level %q: want emerg, alert, crit, err, warning, notice, info or debug", hd.MinLevel)
				}
			}
		}
	}

	// References from the rest of the document.
	for i := range c.Frontends {
		if r := c.Frontends[i].Route; r != "" {
			if _, _, err := l.ResolveFunction(r); err != nil {
				p.Addf(Path("frontends", i, "route"), "route %q: %v", r, err)
			}
		}
	}
	for i := range c.VRRP.Instances {
		for j, tr := range c.VRRP.Instances[i].Track {
			if tr.Kind == "lua" && tr.Script != "" {
				if _, _, err := l.ResolveFunction(tr.Script); err != nil {
					p.Addf(Path("vrrp", "instances", i, "track", j, "script"), "script %q: %v", tr.Script, err)
				}
			}
		}
	}
	for i := range c.Backends {
		if ch := c.Backends[i].Check; ch != nil && ch.Kind == "lua" && ch.Script != "" {
			if _, _, err := l.ResolveFunction(ch.Script); err != nil {
				p.Addf(Path("backends", i, "check", "script"), "script %q: %v", ch.Script, err)
			}
		}
	}
}

// luaLevels mirrors events.Level names (config does not import events).
var luaLevels = map[string]int{"emerg": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7}

// LuaSyntaxError is a script that does not parse. Line is the line in the
// plugin's source.
type LuaSyntaxError struct {
	Plugin string
	Line   int
	Column int
	Msg    string
}

func (e *LuaSyntaxError) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("plugin %q: lua syntax error at end of source: %s", e.Plugin, e.Msg)
	}
	return fmt.Sprintf("plugin %q: lua line %d: %s", e.Plugin, e.Line, e.Msg)
}

// LuaGlobalFunctions parses a plugin's source and lists the global
// functions it defines at top level (`function f()` or `f = function()`).
func LuaGlobalFunctions(plugin, src string) (map[string]bool, error) {
	chunk, err := parse.Parse(strings.NewReader(src), plugin)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			msg := strings.TrimSpace(pe.Message)
			if pe.Token != "" {
				msg = fmt.Sprintf("%s near %s", msg, strconv.Quote(pe.Token))
			}
			line, col := pe.Pos.Line, pe.Pos.Column
			if line <= 0 {
				// Unexpected end of source: point at its last line.
				line, col = strings.Count(strings.TrimRight(src, "\n"), "\n")+1, 0
				msg = "unexpected end of source: " + msg
			}
			return nil, &LuaSyntaxError{Plugin: plugin, Line: line, Column: col, Msg: msg}
		}
		return nil, &LuaSyntaxError{Plugin: plugin, Msg: strings.TrimSpace(err.Error())}
	}
	fns := map[string]bool{}
	for _, st := range chunk {
		switch s := st.(type) {
		case *ast.FuncDefStmt:
			if id, ok := s.Name.Func.(*ast.IdentExpr); ok && s.Name.Receiver == nil {
				fns[id.Value] = true
			}
		case *ast.AssignStmt:
			for i, lhs := range s.Lhs {
				id, ok := lhs.(*ast.IdentExpr)
				if !ok || i >= len(s.Rhs) {
					continue
				}
				if _, ok := s.Rhs[i].(*ast.FunctionExpr); ok {
					fns[id.Value] = true
				}
			}
		}
	}
	return fns, nil
}

// addLuaSyntaxProblem positions a syntax error at its Lua line: in the
// plugin's file, or inside the YAML document for a block-literal source.
func (c *Cluster) addLuaSyntaxProblem(p *Problems, srcPath string, pl *LuaPlugin, err error) {
	var se *LuaSyntaxError
	if !errors.As(err, &se) || se.Line <= 0 {
		p.Addf(srcPath, "%v", err)
		return
	}
	pos := p.lookup(srcPath)
	switch {
	case pl.File != "":
		name := pl.File
		if !filepath.IsAbs(name) {
			name = filepath.Join(luaBaseDir(p.file), name)
		}
		pos = Position{File: name, Line: se.Line, Column: se.Column}
	case pos.Line > 0 && blockScalarAt(c.Source, pos.Line):
		// The literal's first line follows the "source: |" line.
		pos = Position{File: pos.File, Line: pos.Line + se.Line}
	}
	p.list = append(p.list, Problem{Pos: pos, Path: srcPath, Msg: err.Error()})
}

// blockScalarAt reports whether line (1-based) of src ends with a block
// scalar indicator ("|", ">", "|-", ...).
func blockScalarAt(src []byte, line int) bool {
	lines := strings.Split(string(src), "\n")
	if line > len(lines) {
		return false
	}
	l := strings.TrimSpace(lines[line-1])
	if i := strings.Index(l, " #"); i >= 0 {
		l = strings.TrimSpace(l[:i])
	}
	l = strings.TrimRight(l, "+-0123456789")
	return strings.HasSuffix(l, "|") || strings.HasSuffix(l, ">")
}
