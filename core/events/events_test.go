package events

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestPublishStampsAndFansOut(t *testing.T) {
	b := New("gw1", "dc1")
	all := b.Subscribe("all", 10, nil)
	servers := b.Subscribe("servers", 10, func(e Event) bool { return e.Kind == ServerDown || e.Kind == ServerUp })
	b.Publish(Event{Kind: ServerDown, Level: Warning, Subject: "be/a"})
	b.Publish(Event{Kind: ConfigApplied, Level: Notice, Node: "other", DC: "dc2", Time: time.Unix(100, 0)})

	e1, e2 := <-all.C, <-all.C
	if e1.Node != "gw1" || e1.DC != "dc1" || e1.Time.IsZero() || e1.Seq != 1 {
		t.Errorf("not stamped: %+v", e1)
	}
	if e2.Node != "other" || e2.DC != "dc2" || !e2.Time.Equal(time.Unix(100, 0)) || e2.Seq != 2 {
		t.Errorf("given fields overwritten: %+v", e2)
	}
	if e := <-servers.C; e.Kind != ServerDown {
		t.Errorf("filtered subscriber got %s", e.Kind)
	}
	select {
	case e := <-servers.C:
		t.Errorf("filter let %s through", e.Kind)
	default:
	}
}

func TestSlowSubscriberDropsAreCounted(t *testing.T) {
	b := New("gw1", "dc1")
	slow := b.Subscribe("slow", 2, nil)
	fast := b.Subscribe("fast", 100, nil)
	for range 10 {
		b.Publish(Event{Kind: ServerUp}) // must not block
	}
	if slow.Dropped() != 8 || fast.Dropped() != 0 {
		t.Errorf("dropped slow %d fast %d", slow.Dropped(), fast.Dropped())
	}
	st := b.SubscriberStats()
	if st["slow"] != 8 || st["fast"] != 0 {
		t.Errorf("SubscriberStats %v", st)
	}
	slow.Close()
	slow.Close() // idempotent
	if _, ok := b.SubscriberStats()["slow"]; ok {
		t.Error("closed subscriber still listed")
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 2 {
		t.Errorf("buffered events after close: %d", n)
	}
	b.Publish(Event{Kind: ServerUp}) // no panic on a closed subscriber
}

func TestRecentKeepsTheLatestInOrder(t *testing.T) {
	b := New("gw1", "dc1")
	for i := range recentSize + 10 {
		b.Publish(Event{Kind: ServerUp, Subject: fmt.Sprint(i)})
	}
	r := b.Recent(0)
	if len(r) != recentSize || r[0].Subject != "10" || r[len(r)-1].Subject != fmt.Sprint(recentSize+9) {
		t.Errorf("recent: %d events, %s … %s", len(r), r[0].Subject, r[len(r)-1].Subject)
	}
	if r := b.Recent(3); len(r) != 3 || r[2].Subject != fmt.Sprint(recentSize+9) {
		t.Errorf("Recent(3): %+v", r)
	}
}

func TestLevels(t *testing.T) {
	tests := []struct {
		in   string
		want Level
		err  bool
	}{
		{"emerg", Emerg, false}, {"alert", Alert, false}, {"crit", Crit, false}, {"err", Err, false},
		{"error", Err, false}, {"warning", Warning, false}, {"warn", Warning, false}, {"notice", Notice, false},
		{"info", Info, false}, {"debug", Debug, false}, {"WARNING", 0, true}, {"", 0, true}, {"fatal", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseLevel(%q) = %v, %v", tt.in, got, err)
		}
		if !tt.err && tt.in != "error" && tt.in != "warn" && got.String() != tt.in {
			t.Errorf("%q.String() = %q", tt.in, got)
		}
	}
	if Level(42).String() != "level(42)" {
		t.Errorf("out of range: %s", Level(42))
	}
	if !(Emerg < Warning && Warning < Debug) {
		t.Error("smaller must be more severe")
	}
}

func TestKindsAndScope(t *testing.T) {
	seen := map[Kind]bool{}
	for _, k := range Kinds() {
		if seen[k] {
			t.Errorf("duplicate kind %s", k)
		}
		seen[k] = true
	}
	for _, k := range []Kind{ServerUp, ServerDown, BackendEmpty, VRRPTransition, DCFailover, DCFailback, RaftLeader, QuorumLost, ConfigApplied, CertExpiring, LuaErrors} {
		if !seen[k] {
			t.Errorf("%s missing from Kinds()", k)
		}
	}
	tests := []struct {
		e    Event
		want Scope
	}{
		{Event{Kind: ServerDown}, Local},
		{Event{Kind: VRRPTransition, Scope: Local}, Local},
		{Event{Kind: DCFailover}, Cluster},
		{Event{Kind: ConfigApplied, Scope: Local}, Cluster},
		{Event{Kind: QuorumLost}, Local},
		{Event{Kind: CertExpiring, Scope: Cluster}, Cluster},
	}
	for _, tt := range tests {
		if got := tt.e.EffectiveScope(); got != tt.want {
			t.Errorf("%s scope %s: effective %s, want %s", tt.e.Kind, tt.e.Scope, got, tt.want)
		}
	}
}

func TestConcurrentPublishAndSubscribe(t *testing.T) {
	b := New("gw1", "dc1")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 1000 {
				b.Publish(Event{Kind: ServerUp})
			}
		}()
		go func() {
			defer wg.Done()
			s := b.Subscribe(fmt.Sprint("s", i), 16, nil)
			for range 100 {
				select {
				case <-s.C:
				default:
				}
			}
			s.Close()
			_ = b.Recent(10)
		}()
	}
	wg.Wait()
	if b.seq.Load() != 4000 {
		t.Errorf("seq %d", b.seq.Load())
	}
}

// BenchmarkPublish is the cost a health check or the VRRP state machine
// pays per event, with a few subscribers.
func BenchmarkPublish(b *testing.B) {
	bus := New("gw1", "dc1")
	for i := range 4 {
		s := bus.Subscribe(fmt.Sprint("s", i), 1024, nil)
		go func() {
			for range s.C {
			}
		}()
	}
	ev := Event{Kind: ServerDown, Level: Warning, Subject: "be/a", Attrs: map[string]string{"reason": "x"}}
	b.ReportAllocs()
	for b.Loop() {
		bus.Publish(ev)
	}
}
