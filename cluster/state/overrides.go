package state

import (
	"context"
	"strings"
	"sync"

	"github.com/vipgate/vipgate/cluster/raft"
	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/upstream"
)

// ServerLookup finds a live server of the local proxy (*proxy.Proxy
// satisfies it); nil when there is none by that name.
type ServerLookup interface {
	Server(backend, name string) *upstream.Server
}

// Overrides enforces the cluster's drain/maint decisions on the local
// proxy's servers. It is pushed the decisions on commit (Decide) and, as
// a subsystem placed after the proxy, each config snapshot once the proxy
// applied it (Apply): a reconcile may replace a server object. A cleared
// override sets the server ready once, so that node-local runtime actions
// stay untouched otherwise.
type Overrides struct {
	servers ServerLookup

	mu      sync.Mutex
	want    map[string]raft.ServerOverride
	applied map[string]string // key -> the override version enforced
}

// NewOverrides enforces on servers.
func NewOverrides(servers ServerLookup) *Overrides {
	return &Overrides{servers: servers, applied: map[string]string{}}
}

// Name implements the node's subsystem.
func (o *Overrides) Name() string { return "overrides" }

// Decide implements Subscriber.
func (o *Overrides) Decide(d *Decisions) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.want = d.Servers
	o.enforce()
}

// Apply re-enforces the committed overrides on the servers of the snapshot
// the proxy just applied.
func (o *Overrides) Apply(*config.Cluster) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.enforce()
	return nil
}

// Run has nothing to do between pushes.
func (o *Overrides) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (o *Overrides) enforce() {
	for key, ov := range o.want {
		b, name := splitKey(key)
		sv := o.servers.Server(b, name)
		if sv == nil {
			continue
		}
		version := ov.State + "@" + ov.Time.String()
		want, err := upstream.ParseAdmin(ov.State)
		if err == nil && sv.Admin() != want && o.applied[key] != version {
			sv.SetAdmin(want)
			o.applied[key] = version
		}
	}
	for key := range o.applied {
		if _, ok := o.want[key]; !ok {
			b, name := splitKey(key)
			if sv := o.servers.Server(b, name); sv != nil {
				sv.SetAdmin(upstream.Ready)
			}
			delete(o.applied, key)
		}
	}
}

func splitKey(k string) (backend, server string) {
	b, s, _ := strings.Cut(k, "/")
	return b, s
}
