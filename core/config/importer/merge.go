package importer

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/vipgate/vipgate/core/config"
)

// A deployment where each node has its own haproxy.cfg (seed004: the same
// frontend, each node with its own servers) is imported file by file and
// merged: what every node has is written once, what only some nodes have
// gets `nodes: [...]`, and what two nodes define differently under one
// name becomes one element per node. Nothing of a node's file is dropped
// for another's without a warning.

// nodeHAProxy is one node's translated haproxy.cfg.
type nodeHAProxy struct {
	node string
	file string
	t    *translator
}

type mergedFE struct {
	fe    config.Frontend
	src   feSrc
	nodes []string
}

type mergedSrv struct {
	s     config.Server
	line  hline
	nodes []string
}

type mergedBE struct {
	be      config.Backend
	src     beSrc
	nodes   []string
	servers []*mergedSrv
}

// translateHAProxyNodes translates each node's haproxy.cfg and merges
// them into t.
func (t *translator) translateHAProxyNodes(ins []*Input) error {
	var subs []nodeHAProxy
	for _, in := range ins {
		st := &translator{comments: map[string][]string{}, mailerSets: map[string]*mailerSet{}, fs: t.fs}
		if err := st.translateHAProxy(in.Name, in.Data); err != nil {
			return err
		}
		st.finishAlerts()
		subs = append(subs, nodeHAProxy{node: in.Node, file: in.Name, t: st})
	}
	var all []string
	for _, s := range subs {
		all = append(all, s.node)
	}
	first := subs[0].t
	t.c.Defaults = first.c.Defaults
	t.defaultsHead = first.defaultsHead
	for _, s := range subs[1:] {
		if !reflect.DeepEqual(s.t.c.Defaults, first.c.Defaults) {
			t.warn(s.t.defaultsHead, "defaults", fmt.Sprintf("differs from %s:%d; the document has one defaults section: the first file's is used (set the differing values on this node's frontends and backends by hand)", first.defaultsHead.file, first.defaultsHead.num))
		}
	}

	// Backends first: a backend renamed for one node renames the
	// references of that node's frontends.
	var bes []*mergedBE
	for _, s := range subs {
		renamed := map[string]string{}
		for i, b := range s.t.c.Backends {
			src := s.t.src.be[i]
			var m *mergedBE
			for _, o := range bes {
				if o.be.Name == b.Name {
					m = o
				}
			}
			if m != nil && !sameBackend(m.be, b) {
				t.warn(src.head, "backend "+b.Name, fmt.Sprintf("differs from %s:%d in more than its servers: each node gets its own backend %s-%s", m.src.head.file, m.src.head.num, b.Name, s.node))
				renamed[b.Name] = b.Name + "-" + s.node
				b.Name = renamed[b.Name]
				m = nil
			}
			if m == nil {
				m = &mergedBE{be: b, src: beSrc{head: src.head}}
				m.be.Servers = nil
				bes = append(bes, m)
			}
			m.nodes = append(m.nodes, s.node)
			for j, sv := range b.Servers {
				line := hline{}
				if j < len(src.servers) {
					line = src.servers[j]
				}
				m.addServer(t, sv, line, s.node)
			}
		}
		for i := range s.t.c.Frontends {
			f := &s.t.c.Frontends[i]
			if n, ok := renamed[f.DefaultBackend]; ok {
				f.DefaultBackend = n
			}
			for j := range f.Rules {
				if n, ok := renamed[f.Rules[j].Backend]; ok {
					f.Rules[j].Backend = n
				}
			}
		}
	}
	var fes []*mergedFE
	for _, s := range subs {
		for i, f := range s.t.c.Frontends {
			src := s.t.src.fe[i]
			var m *mergedFE
			for _, o := range fes {
				if o.fe.Name == f.Name {
					m = o
				}
			}
			if m != nil && !reflect.DeepEqual(m.fe, f) {
				t.warn(src.head, "frontend "+f.Name, fmt.Sprintf("differs from %s:%d: each node gets its own frontend %s-%s", m.src.head.file, m.src.head.num, f.Name, s.node))
				f.Name += "-" + s.node
				m = nil
			}
			if m == nil {
				m = &mergedFE{fe: f, src: src}
				fes = append(fes, m)
			}
			m.nodes = append(m.nodes, s.node)
		}
	}
	for _, m := range bes {
		if !slices.Equal(m.nodes, all) {
			m.be.Nodes = m.nodes
		}
		for _, sv := range m.servers {
			if !slices.Equal(sv.nodes, m.nodes) {
				sv.s.Nodes = sv.nodes
			}
			m.be.Servers = append(m.be.Servers, sv.s)
			m.src.servers = append(m.src.servers, sv.line)
		}
		t.c.Backends = append(t.c.Backends, m.be)
		t.src.be = append(t.src.be, m.src)
	}
	for _, m := range fes {
		if !slices.Equal(m.nodes, all) {
			m.fe.Nodes = m.nodes
		}
		t.c.Frontends = append(t.c.Frontends, m.fe)
		t.src.fe = append(t.src.fe, m.src)
	}

	for _, s := range subs {
		st := s.t
		for i, tb := range st.c.StickTables {
			j := slices.IndexFunc(t.c.StickTables, func(o config.StickTable) bool { return o.Name == tb.Name })
			switch {
			case j < 0:
				t.c.StickTables = append(t.c.StickTables, tb)
				t.src.tables = append(t.src.tables, st.src.tables[i])
			case !reflect.DeepEqual(t.c.StickTables[j], tb):
				t.warn(st.src.tables[i], "stick-table "+tb.Name, fmt.Sprintf("differs from %s:%d; the first file's is used", t.src.tables[j].file, t.src.tables[j].num))
			}
		}
		for i, mm := range st.c.Alerts.Mailers {
			if !slices.ContainsFunc(t.c.Alerts.Mailers, func(o config.Mailer) bool { return reflect.DeepEqual(o, mm) }) {
				t.c.Alerts.Mailers = append(t.c.Alerts.Mailers, mm)
				t.src.mailers = append(t.src.mailers, st.src.mailers[i])
			}
		}
		for i, r := range st.c.Alerts.Rules {
			if !slices.ContainsFunc(t.c.Alerts.Rules, func(o config.AlertRule) bool { return reflect.DeepEqual(o, r) }) {
				t.c.Alerts.Rules = append(t.c.Alerts.Rules, r)
				t.src.rules = append(t.src.rules, st.src.rules[i])
			}
		}
		if f := st.c.Alerts.From; f != "" {
			switch {
			case t.c.Alerts.From == "":
				t.c.Alerts.From = f
			case t.c.Alerts.From != f:
				t.footer = append(t.footer, fmt.Sprintf("%s sends alerts from %s; vipgate has one sender for the cluster: %s is used.", s.file, f, t.c.Alerts.From))
			}
		}
		t.warnings = append(t.warnings, st.warnings...)
		t.skipped = append(t.skipped, st.skipped...)
		t.header = appendNew(t.header, st.header...)
		t.footer = appendNew(t.footer, st.footer...)
		for k, cs := range st.comments {
			t.comments[k] = appendNew(t.comments[k], cs...)
		}
		t.proxies = append(t.proxies, st.proxies...)
	}
	return nil
}

// addServer adds node's server sv to the merged backend: the same server
// on another node is one server; the same name with other settings is a
// server of its own.
func (m *mergedBE) addServer(t *translator, sv config.Server, line hline, node string) {
	for _, o := range m.servers {
		if o.s.Name != sv.Name {
			continue
		}
		if reflect.DeepEqual(o.s, sv) {
			o.nodes = append(o.nodes, node)
			return
		}
		t.warn(line, "server "+sv.Name, fmt.Sprintf("differs from %s:%d: each node gets its own server %s-%s", o.line.file, o.line.num, sv.Name, node))
		sv.Name += "-" + node
	}
	m.servers = append(m.servers, &mergedSrv{s: sv, line: line, nodes: []string{node}})
}

// sameBackend reports whether two backends differ at most in servers.
func sameBackend(a, b config.Backend) bool {
	a.Servers, b.Servers = nil, nil
	return reflect.DeepEqual(a, b)
}

func appendNew(to []string, from ...string) []string {
	for _, s := range from {
		if !slices.Contains(to, s) {
			to = append(to, s)
		}
	}
	return to
}
