package scripting

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vipgate/vipgate/core/events"
)

// levels maps the config's min_level names (events.ParseLevel accepts them).
func handlerWants(minLevel string, kinds []string, e events.Event) bool {
	if minLevel != "" {
		if l, err := events.ParseLevel(minLevel); err == nil && e.Level > l {
			return false
		}
	}
	for _, k := range kinds {
		if k == "*" || k == string(e.Kind) {
			return true
		}
	}
	return false
}

// Dispatch calls every handler of the current generation that subscribed
// to e's kind, one after another, each under the handler timeout. It
// returns how many handlers ran and how many failed. Run calls it for
// every event of the bus. A cluster-wide event (datacenter failover,
// config applied...) reaches the handlers of the raft leader only, so that
// a webhook fires once for the cluster, not once per node.
func (r *Runtime) Dispatch(ctx context.Context, e events.Event) (ran, failed int) {
	if e.EffectiveScope() == events.Cluster && !r.isLeader() {
		return 0, 0
	}
	g := r.gen.Load()
	for _, p := range g.order {
		for _, h := range p.handlers {
			if !handlerWants(h.MinLevel, h.Events, e) {
				continue
			}
			ran++
			err := r.call(ctx, g, kindHandler, p.name, h.Function, g.defaults.HandlerTimeout.D(), func(s *state) int {
				s.L.Push(eventTable(s.L, e))
				return 1
			}, 0, nil)
			if err != nil {
				failed++
			}
		}
	}
	return ran, failed
}

func eventTable(L *lua.LState, e events.Event) *lua.LTable {
	t := L.CreateTable(0, 10)
	t.RawSetString("kind", lua.LString(e.Kind))
	t.RawSetString("level", lua.LString(e.Level.String()))
	t.RawSetString("scope", lua.LString(e.Scope.String()))
	t.RawSetString("time", lua.LNumber(float64(e.Time.UnixNano())/1e9))
	t.RawSetString("time_text", lua.LString(e.Time.UTC().Format(time.RFC3339)))
	t.RawSetString("node", lua.LString(e.Node))
	t.RawSetString("datacenter", lua.LString(e.DC))
	t.RawSetString("subject", lua.LString(e.Subject))
	t.RawSetString("message", lua.LString(e.Message))
	t.RawSetString("seq", lua.LNumber(e.Seq))
	attrs := L.CreateTable(0, len(e.Attrs))
	for k, v := range e.Attrs {
		attrs.RawSetString(k, lua.LString(v))
	}
	t.RawSetString("attrs", attrs)
	return t
}

// Run feeds bus events to the handlers until ctx ends. Handlers run one at
// a time in event order; a slow handler delays the next ones (each is
// bounded by handler_timeout) and, when the buffer fills, the bus counts
// the events this subscriber lost.
func (r *Runtime) Run(ctx context.Context) error {
	go r.guard.run(ctx)
	if r.bus == nil {
		<-ctx.Done()
		return nil
	}
	sub := r.bus.Subscribe("lua", 256, func(e events.Event) bool {
		// A handler failing on lua.errors would feed itself.
		return e.Kind != events.LuaErrors || r.hasHandlerFor(e)
	})
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-sub.C:
			if !ok {
				return nil
			}
			r.Dispatch(ctx, e)
		}
	}
}

func (r *Runtime) hasHandlerFor(e events.Event) bool {
	g := r.gen.Load()
	for _, p := range g.order {
		for _, h := range p.handlers {
			for _, k := range h.Events {
				if k == string(e.Kind) {
					return true
				}
			}
		}
	}
	return false
}

// DNSQuestion is what a DNS answer hook sees.
type DNSQuestion struct {
	Name   string // FQDN, lower case, with the final dot
	Type   string // "A", "AAAA", ...
	Client netip.Addr
	// Subnet is the EDNS Client Subnet when the query carried one.
	Subnet netip.Prefix
	// Datacenter is the datacenter the server's policy chose.
	Datacenter string
	// Default is the answer the policy would give.
	Default []netip.Addr
}

// DNSAnswer is a hook's decision. Handled false means "no opinion: use the
// default answer".
type DNSAnswer struct {
	Handled    bool
	Addrs      []netip.Addr
	TTL        uint32 // 0 = the record's TTL
	Datacenter string
}

// DNSAnswer calls plugin.function(q) to override a service record's
// answer. The function returns nil (no opinion), a datacenter name, or a
// list of addresses, optionally followed by a TTL. A failure yields
// Handled false and the error: the DNS server answers by its policy.
func (r *Runtime) DNSAnswer(ctx context.Context, ref string, q DNSQuestion) (DNSAnswer, error) {
	pname, fn, err := r.resolve(ref)
	if err != nil {
		return DNSAnswer{}, err
	}
	g := r.gen.Load()
	var ans DNSAnswer
	err = r.call(ctx, g, kindDNS, pname, fn, 0, func(s *state) int {
		L := s.L
		t := L.CreateTable(0, 6)
		t.RawSetString("name", lua.LString(q.Name))
		t.RawSetString("type", lua.LString(q.Type))
		if q.Client.IsValid() {
			t.RawSetString("client", lua.LString(q.Client.Unmap().String()))
		}
		if q.Subnet.IsValid() {
			t.RawSetString("subnet", lua.LString(q.Subnet.String()))
		}
		t.RawSetString("datacenter", lua.LString(q.Datacenter))
		def := L.CreateTable(len(q.Default), 0)
		for _, a := range q.Default {
			def.Append(lua.LString(a.String()))
		}
		t.RawSetString("default", def)
		L.Push(t)
		return 1
	}, 2, func(s *state) error {
		L := s.L
		switch v := L.Get(1).(type) {
		case lua.LString:
			ans.Handled, ans.Datacenter = true, string(v)
		case *lua.LTable:
			ans.Handled = true
			for k, e := v.Next(lua.LNil); k != lua.LNil; k, e = v.Next(k) {
				if len(ans.Addrs) == maxCopyEntries {
					return fmt.Errorf("dns answer: more than %d addresses", maxCopyEntries)
				}
				a, err := netip.ParseAddr(e.String())
				if err != nil {
					return fmt.Errorf("dns answer: %q is not an IP address", e.String())
				}
				ans.Addrs = append(ans.Addrs, a)
			}
		case *lua.LNilType:
		default:
			return fmt.Errorf("the dns hook returned a %s: return nil, a datacenter name or a list of addresses", v.Type())
		}
		if n, ok := L.Get(2).(lua.LNumber); ok && n > 0 {
			ans.TTL = uint32(n)
		}
		return nil
	})
	if err != nil {
		return DNSAnswer{}, err
	}
	return ans, nil
}
