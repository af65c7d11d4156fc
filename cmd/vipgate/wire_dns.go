package main

import (
	"context"
	"fmt"

	mdns "github.com/miekg/dns"

	"github.com/vipgate/vipgate/cluster/state"
	"github.com/vipgate/vipgate/dns"
	"github.com/vipgate/vipgate/scripting"
)

// newDNS wires the authoritative DNS server into a node: on when the node
// file lists dns.listen addresses. Answers follow the committed decisions
// pushed to it (the source's subscribers) and its proxy's view of backend
// health.
func newDNS(e *env) (subsystem, error) {
	if len(e.Node.DNS.Listen) == 0 {
		return nil, nil
	}
	st := &dns.Decided{Backends: (&dnsBackends{e: e}).BackendHealthy}
	if !e.Node.Raft.Enabled() {
		// Nothing is committed without raft: this node judges its own
		// datacenter from its gateway at query time.
		st.Local = (&staticView{e: e}).DatacenterHealthy
	}
	e.Source.Subscribe(state.DecideFunc(func(d *state.Decisions) { st.Decide(d.Active, d.Healthy()) }))
	srv := dns.New(dns.Options{
		Listen:  e.Node.DNS.Listen,
		Sockets: e.Node.DNS.Sockets,
		State:   st,
		Log:     e.Log.With("sub", "dns"),
	})
	e.Admin.Section("dns", srv.Status)
	if e.Metrics != nil {
		if err := e.Metrics.Register(dns.NewCollector(srv)); err != nil {
			return nil, fmt.Errorf("dns metrics: %w", err)
		}
	}
	return srv, nil
}

// dnsBackends answers backend health from the live proxy.
type dnsBackends struct{ e *env }

// BackendHealthy: a backend is healthy in dc when one of its servers there
// (or without a datacenter) is usable; unknown when it has none there.
func (s *dnsBackends) BackendHealthy(backend, dc string) (bool, bool) {
	if s.e.Proxy == nil {
		return false, false
	}
	known := false
	for _, sv := range s.e.Proxy.Servers(backend) {
		if d := sv.Settings().Datacenter; d != "" && d != dc {
			continue
		}
		known = true
		if sv.Usable() {
			return true, true
		}
	}
	return false, known
}

// wireLuaDNS points the DNS server's service hooks at the node's Lua
// runtime. Both are built before the first snapshot is applied, so a
// service naming a hook is answered by it from the first query.
func wireLuaDNS(subs []subsystem) {
	var srv *dns.Server
	var lua *luaSubsystem
	for _, s := range subs {
		switch s := s.(type) {
		case *dns.Server:
			srv = s
		case *luaSubsystem:
			lua = s
		}
	}
	if srv != nil && lua != nil {
		srv.SetHookResolver(luaDNSHooks(lua.rt))
	}
}

// luaDNSHooks resolves service hooks (`hook: plugin.function`) to the Lua
// runtime. A name the runtime does not know fails at query time, which the
// server counts and answers by policy.
func luaDNSHooks(rt *scripting.Runtime) dns.HookResolver {
	return func(ref string) (dns.Hook, bool) {
		return func(ctx context.Context, q dns.Query) (dns.Answer, bool, error) {
			a, err := rt.DNSAnswer(ctx, ref, scripting.DNSQuestion{
				Name: q.Name, Type: mdns.TypeToString[q.Type], Client: q.Client, Subnet: q.Subnet,
				Datacenter: q.Datacenter, Default: q.Answer,
			})
			if err != nil || !a.Handled {
				return dns.Answer{}, false, err
			}
			return dns.Answer{Addrs: a.Addrs, Datacenter: a.Datacenter, TTL: a.TTL}, true, nil
		}, true
	}
}
