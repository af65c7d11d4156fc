// Package importer translates haproxy.cfg and keepalived.conf into a vipgate
// cluster document (`vipgate import`). Parsing is strict about grammar (an
// input that cannot be read is a positioned error) and lenient about
// meaning: every directive that has no vipgate equivalent becomes one
// positioned warning, and the output is always a document config.Parse
// accepts.
package importer

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vipgate/vipgate/core/config"
)

// Warning is one directive that was not (or not exactly) translated.
type Warning struct {
	File      string
	Line      int
	Directive string
	Why       string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", w.File, w.Line, w.Directive, w.Why)
}

// Input is one file to translate. Name appears in warnings, errors and
// the output's comments.
type Input struct {
	Name string
	Data []byte
	// Node is the vipgate node the file belongs to (`vipgate import
	// --keepalived NODE=FILE`); empty: a keepalived.conf's router_id, else
	// its file name.
	Node string
}

// Options selects the inputs. Either or both may be set.
type Options struct {
	// HAProxy is one haproxy.cfg for every node.
	HAProxy *Input
	// HAProxyNodes are each node's own haproxy.cfg (Node set on each):
	// merged, with what only some nodes have placed on them.
	HAProxyNodes []*Input
	// Keepalived are keepalived.conf files, one per node of the same
	// VRRP instances: they are merged (priorities per router_id).
	Keepalived []*Input
	// Datacenters maps node names to their datacenter (`vipgate import
	// --datacenter NODE=DC`): the document lists the datacenters and tags
	// the servers placed on one datacenter's nodes with it.
	Datacenters map[string]string
	// FS reads keepalived `include` files and lists haproxy `crt`
	// directories; nil means the local file system.
	FS FS
}

// Result is the translated document.
type Result struct {
	// YAML is the cluster document, with comments.
	YAML []byte
	// Cluster is YAML as config.Parse read it back.
	Cluster  *config.Cluster
	Warnings []Warning
	// Skipped are the directives with no meaning in vipgate, as listed
	// in the document's header ("file:line: directive (why)").
	Skipped []string
}

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }
func (osFS) IsDir(name string) bool {
	st, err := os.Stat(name)
	return err == nil && st.IsDir()
}

// translator holds the state of one import.
type translator struct {
	c config.Cluster
	// kaVIPs are the IPv4 virtual_ipaddress entries of every keepalived
	// file (prefix as written; vmac: the instance uses use_vmac), for
	// virtual_servers with lb_kind DR.
	kaVIPs   map[netip.Addr]kaVIP
	warnings []Warning
	// skipped are directives with no meaning in vipgate (process
	// management and the like): listed in the output, not warned about.
	skipped []string
	// comments are head comments keyed by "defaults", "frontend:NAME",
	// "backend:NAME".
	comments map[string][]string
	// footer is appended after the document as comments.
	footer []string
	// header is written before the document as comments.
	header []string

	proxies       []*proxy
	src           provenance
	vrrpInstSrc   []hline
	vrrpSrc       []hline
	defaultsHead  hline
	templates     *bool
	globalMaxConn int
	// globalMaxConnLine is where global maxconn is.
	globalMaxConnLine hline
	// serverVerify is global ssl-server-verify: the verify of servers and
	// checks over TLS that do not set their own.
	serverVerify string
	// bindMinVer, bindMaxVer: global ssl-default-bind-options, for the
	// frontends whose binds set no version.
	bindMinVer, bindMaxVer string
	// fs lists certificate directories (and reads keepalived includes).
	fs         FS
	mailerSets map[string]*mailerSet
	// logs are haproxy.cfg's log lines, for the node file's log targets.
	logs logPlan
}

func (t *translator) warn(l hline, directive, why string) {
	t.warnings = append(t.warnings, Warning{File: l.file, Line: l.num, Directive: directive, Why: why})
}

func (t *translator) warnKA(n *kanode, directive, why string) {
	t.warnings = append(t.warnings, Warning{File: n.file, Line: n.line, Directive: directive, Why: why})
}

func (t *translator) skip(l hline, why string) {
	s := fmt.Sprintf("%s:%d: %s", l.file, l.num, strings.Join(l.args, " "))
	if why != "" {
		s += " (" + why + ")"
	}
	t.skipped = append(t.skipped, s)
}

func (t *translator) note(key, s string) { t.comments[key] = append(t.comments[key], s) }

// Import translates the inputs. It fails only when an input cannot be
// parsed (a *ParseError) or, which would be a bug, when the translation is
// not a valid cluster document.
func Import(o Options) (*Result, error) {
	if o.HAProxy == nil && len(o.HAProxyNodes) == 0 && len(o.Keepalived) == 0 {
		return nil, fmt.Errorf("nothing to import: give a haproxy.cfg, a keepalived.conf or both")
	}
	t := &translator{comments: map[string][]string{}, mailerSets: map[string]*mailerSet{}, fs: o.FS}
	if t.fs == nil {
		t.fs = osFS{}
	}
	if o.HAProxy != nil && len(o.HAProxyNodes) > 0 {
		return nil, fmt.Errorf("give either one haproxy.cfg for every node or one per node (NODE=FILE), not both")
	}
	seen := map[string]string{}
	for _, in := range append(append([]*Input(nil), o.HAProxyNodes...), o.Keepalived...) {
		if in.Node != "" && !config.ValidName(in.Node) {
			return nil, fmt.Errorf("%s: node name %q: use letters, digits, '_', '.', '-'", in.Name, in.Node)
		}
	}
	for _, in := range o.HAProxyNodes {
		if in.Node == "" {
			return nil, fmt.Errorf("%s: several haproxy.cfg files: say which node each belongs to (NODE=FILE)", in.Name)
		}
		if f, dup := seen[in.Node]; dup {
			return nil, fmt.Errorf("%s and %s are both node %s's haproxy.cfg", f, in.Name, in.Node)
		}
		seen[in.Node] = in.Name
	}
	var from []string
	if len(o.HAProxyNodes) > 0 {
		for _, in := range o.HAProxyNodes {
			from = append(from, in.Name)
		}
		if err := t.translateHAProxyNodes(o.HAProxyNodes); err != nil {
			return nil, err
		}
	}
	if o.HAProxy != nil {
		from = append(from, o.HAProxy.Name)
		if err := t.translateHAProxy(o.HAProxy.Name, o.HAProxy.Data); err != nil {
			return nil, err
		}
		t.finishAlerts()
	}
	var known []string // every node the inputs name
	for _, in := range o.HAProxyNodes {
		known = append(known, in.Node)
	}
	if len(o.Keepalived) > 0 {
		var files []*kaFile
		for _, in := range o.Keepalived {
			from = append(from, in.Name)
			nodes, err := parseKeepalived(in.Name, in.Data, t.fs, 0)
			if err != nil {
				return nil, err
			}
			f := t.readKeepalived(in.Name, nodes)
			f.node = in.Node
			files = append(files, f)
		}
		byNode := map[string]string{}
		for _, f := range files {
			if other, dup := byNode[f.nodeName()]; dup {
				return nil, fmt.Errorf("%s and %s both describe node %s (router_id, else the file name): name each file's node with NODE=FILE", other, f.name, f.nodeName())
			}
			byNode[f.nodeName()] = f.name
			if !slices.Contains(known, f.nodeName()) {
				known = append(known, f.nodeName())
			}
		}
		for _, in := range o.HAProxyNodes {
			if _, ok := byNode[in.Node]; !ok {
				t.warn(hline{file: in.Name, num: 1}, "node "+in.Node, fmt.Sprintf("no keepalived.conf of this node was imported (nodes: %s)", strings.Join(slices.Sorted(maps.Keys(byNode)), ", ")))
			}
		}
		// Frontends first: a track script checking the proxy becomes a
		// proxy track only when there are frontends to track.
		t.kaVirtualServers(files)
		t.translateKeepalived(files)
	}
	t.tagDatacenters(o.Datacenters, known)
	out, c, err := t.renderValid(from)
	if err != nil {
		return nil, err
	}
	// Warnings in input order: files as given, lines ascending.
	fileOrder := map[string]int{}
	for _, w := range t.warnings {
		if _, ok := fileOrder[w.File]; !ok {
			fileOrder[w.File] = len(fileOrder)
		}
	}
	sort.SliceStable(t.warnings, func(i, j int) bool {
		a, b := t.warnings[i], t.warnings[j]
		if a.File != b.File {
			return fileOrder[a.File] < fileOrder[b.File]
		}
		return a.Line < b.Line
	})
	return &Result{YAML: out, Cluster: c, Warnings: t.warnings, Skipped: t.skipped}, nil
}

// render writes the document: header comments, the YAML with head
// comments on sections and items, then the footer.
func (t *translator) render(from []string) ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(&t.c); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "defaults", "vrrp", "alerts", "stick_tables":
			k.HeadComment = commentText(t.comments[k.Value])
		case "frontends", "backends":
			kind := strings.TrimSuffix(k.Value, "s")
			for _, item := range v.Content {
				name := mapValue(item, "name")
				if cs := t.comments[kind+":"+name]; len(cs) > 0 {
					item.HeadComment = commentText(cs)
				}
				if kind == "frontend" {
					// Rule.Backend is always written; an action rule has none.
					if rules := mapNode(item, "rules"); rules != nil {
						for _, r := range rules.Content {
							dropEmptyKey(r, "backend")
						}
					}
				}
				if kind == "backend" {
					if sv := mapNode(item, "servers"); sv != nil {
						for _, s := range sv.Content {
							s.Style = yaml.FlowStyle
						}
					}
					if b := mapNode(item, "balance"); b != nil {
						b.Style = yaml.FlowStyle
					}
				}
			}
		}
	}
	tidy(root)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by `vipgate import` from %s.\n", strings.Join(from, ", "))
	b.WriteString("# Review the warnings it printed, then check with `vipgate check` and apply.\n")
	for _, h := range t.header {
		b.WriteString(commentLine(h))
	}
	if len(t.skipped) > 0 {
		b.WriteString("#\n# Not carried over (no meaning in vipgate):\n")
		for _, s := range t.skipped {
			b.WriteString(commentLine("  " + s))
		}
	}
	if len(root.Content) > 0 {
		b.WriteString("\n")
		y, err := config.Marshal(root)
		if err != nil {
			return nil, fmt.Errorf("marshal: %w", err)
		}
		b.Write(y)
	}
	if len(t.footer) > 0 {
		b.WriteString("\n")
		for _, f := range t.footer {
			b.WriteString(commentLine(f))
		}
	}
	return b.Bytes(), nil
}

func commentText(lines []string) string {
	var out []string
	for _, l := range lines {
		for _, s := range strings.Split(l, "\n") {
			for _, w := range wrap(sanitizeComment(s), 100) {
				out = append(out, strings.TrimRight("# "+w, " "))
			}
		}
	}
	return strings.Join(out, "\n")
}

// wrap breaks s at spaces into lines of at most width bytes (longer words
// stay whole).
func wrap(s string, width int) []string {
	var out []string
	for len(s) > width {
		i := strings.LastIndexByte(s[:width], ' ')
		if i <= 0 {
			break
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	return append(out, s)
}

func commentLine(s string) string {
	if s == "" {
		return "#\n"
	}
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		b.WriteString(strings.TrimRight("# "+sanitizeComment(l), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// sanitizeComment keeps input bytes from ending the comment or breaking
// the YAML: control characters become spaces, invalid UTF-8 is replaced.
func sanitizeComment(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff {
			return ' '
		}
		return r
	}, s)
}

func mapNode(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) string {
	if n := mapNode(m, key); n != nil {
		return n.Value
	}
	return ""
}

func dropEmptyKey(m *yaml.Node, key string) {
	if m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode && m.Content[i+1].Value == "" {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// roundDuration matches Go's long forms of whole hours and minutes.
var roundDuration = regexp.MustCompile(`^([0-9]+h)?([0-9]+m)?0s$`)

// tidy makes the encoder's output read like hand-written YAML: lists of
// scalars on one line, "1h" instead of "1h0m0s".
func tidy(n *yaml.Node) {
	switch n.Kind {
	case yaml.SequenceNode:
		flat := true
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				flat = false
			}
		}
		if flat && len(n.Content) > 0 {
			n.Style = yaml.FlowStyle
		}
	case yaml.ScalarNode:
		if m := roundDuration.FindStringSubmatch(n.Value); m != nil && (m[1] != "" || m[2] != "") {
			v := m[1] + m[2]
			if m[1] != "" && m[2] == "0m" {
				v = m[1]
			}
			n.Value = v
		}
	}
	for _, c := range n.Content {
		tidy(c)
	}
}

// tagDatacenters lists the datacenters the command line names and tags
// each server placed only on nodes of one datacenter with it: that
// datacenter's nodes prefer it, and it counts as that datacenter's own in
// the active-datacenter roll-up. A server placed on every node of its
// datacenter (seed004: one node per site, each with its own servers) is
// limited to that datacenter instead of those nodes (local_only), so a
// node added to the site later uses it too, and no other site ever does,
// as with the per-site haproxy.cfg. That needs the datacenter of every
// node the inputs name (known): an untagged node could be in any.
func (t *translator) tagDatacenters(dcOf map[string]string, known []string) {
	if len(dcOf) == 0 {
		return
	}
	var names []string
	for _, n := range slices.Sorted(maps.Keys(dcOf)) {
		if dc := dcOf[n]; !slices.Contains(names, dc) {
			names = append(names, dc)
		}
	}
	for _, dc := range names {
		t.c.Datacenters = append(t.c.Datacenters, config.Datacenter{Name: dc})
	}
	for i := range t.c.Backends {
		b := &t.c.Backends[i]
		for j := range b.Servers {
			s := &b.Servers[j]
			nodes := s.Nodes
			if len(nodes) == 0 {
				nodes = b.Nodes
			}
			if len(nodes) == 0 || s.Datacenter != "" {
				continue
			}
			dc := dcOf[nodes[0]]
			if dc == "" || slices.ContainsFunc(nodes, func(n string) bool { return dcOf[n] != dc }) {
				continue
			}
			s.Datacenter = dc
			if len(s.Nodes) > 0 && b.Datacenter == "" && len(b.Nodes) == 0 && !slices.ContainsFunc(known, func(n string) bool {
				in, tagged := dcOf[n]
				return !tagged || (in == dc) != slices.Contains(s.Nodes, n)
			}) {
				s.Nodes, s.LocalOnly = nil, true
			}
		}
	}
	var lines []string
	for _, n := range slices.Sorted(maps.Keys(dcOf)) {
		lines = append(lines, fmt.Sprintf("%s: datacenter %s", n, dcOf[n]))
	}
	t.footer = append(t.footer, "Each node's bootstrap file names its datacenter ("+strings.Join(lines, "; ")+"). Order `datacenters:` with the primary first and set their roles (docs/cluster.md).")
}
