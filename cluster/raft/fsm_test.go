package raft

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	hraft "github.com/hashicorp/raft"
)

type memSink struct{ bytes.Buffer }

func (memSink) ID() string    { return "mem" }
func (memSink) Cancel() error { return nil }
func (memSink) Close() error  { return nil }

func applyCmd(t *testing.T, f *FSM, idx uint64, cmd Command) any {
	t.Helper()
	data, err := Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&hraft.Log{Index: idx, Type: hraft.LogCommand, Data: data})
}

// The seed is a compare-and-set decided when applied: it commits on an
// empty state only, so a seed entry that lands after (or is replayed
// after) any committed version changes nothing, on every node alike.
func TestSeedCommitsOnlyOnAnEmptyState(t *testing.T) {
	seed := &SeedConfig{Source: doc(1), Author: "seed:n1", Time: time.Unix(1700000000, 0).UTC(), Comment: "initial configuration"}
	f := NewFSM(slog.New(slog.DiscardHandler))
	if res := applyCmd(t, f, 1, seed); res != (Applied{Index: 1, Version: 1}) {
		t.Fatalf("first seed: %v", res)
	}
	applyCmd(t, f, 2, putDoc(5))
	for i, cmd := range []Command{seed, &SeedConfig{Source: doc(7), Author: "seed:n2"}} {
		before := f.State()
		res := applyCmd(t, f, uint64(3+i), cmd)
		if err, ok := res.(error); !ok || !errors.Is(err, ErrConfigured) {
			t.Fatalf("seed after version 2: %v", res)
		}
		if f.State() != before || weightOf(f.State()) != 5 {
			t.Fatalf("a refused seed changed the state: version %d weight %d", f.State().Version, weightOf(f.State()))
		}
	}
	h := f.State().History
	if len(h) != 2 || h[0].Author != "seed:n1" || h[0].Index != 1 || h[1].Author != "test" {
		t.Fatalf("history: %+v", h)
	}
	// A snapshot keeps the version, so a restored node refuses the seed too.
	var sink memSink
	snap, _ := f.Snapshot()
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM(slog.New(slog.DiscardHandler))
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if res := applyCmd(t, g, 5, seed); !errors.Is(res.(error), ErrConfigured) {
		t.Fatalf("seed after restore: %v", res)
	}
}

// An operator's failover with a hold is kept: an automatic decision dated
// before its end is refused on every node (the leader's view of the
// datacenters' health does not matter), one dated after it commits; and an
// automatic decision made against an older decision is refused.
func TestFailoverHoldIsDecidedByTheFSM(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	f := NewFSM(slog.New(slog.DiscardHandler))
	applyCmd(t, f, 1, putDoc(1))
	applyCmd(t, f, 2, &SetDCHealth{DC: "dc1", Reason: "gone", Time: t0})
	applyCmd(t, f, 3, &SetActiveDC{DC: "dc2", Author: "alice", Time: t0, Hold: time.Minute, IfHealthy: true})
	if h := f.State().Active.HoldUntil; !h.Equal(t0.Add(time.Minute)) {
		t.Fatalf("hold until %s", h)
	}
	tests := []struct {
		name    string
		cmd     *SetActiveDC
		wantErr string
	}{
		{"auto inside the hold", &SetActiveDC{DC: "dc1", Author: AutoAuthor, Time: t0.Add(59 * time.Second), IfActive: "dc2"}, "held active by alice's decision until"},
		{"auto against an older decision", &SetActiveDC{DC: "dc1", Author: AutoAuthor, Time: t0.Add(2 * time.Minute), IfActive: "dc2", IfDecision: 1}, "changed meanwhile"},
		{"negative hold", &SetActiveDC{DC: "dc1", Author: "bob", Time: t0, Hold: -time.Second}, "negative"},
		{"not forced to an unhealthy datacenter", &SetActiveDC{DC: "dc1", Author: "bob", Time: t0, IfHealthy: true}, "datacenter dc1 is unhealthy (gone); force"},
		{"auto after the hold", &SetActiveDC{DC: "dc1", Author: AutoAuthor, Time: t0.Add(time.Minute), IfActive: "dc2", IfDecision: 3}, ""},
		{"forced to an unhealthy datacenter", &SetActiveDC{DC: "dc1", Author: "bob", Time: t0.Add(2 * time.Minute)}, ""},
	}
	for i, tt := range tests {
		before := f.State()
		res := applyCmd(t, f, uint64(4+i), tt.cmd)
		if tt.wantErr == "" {
			if _, ok := res.(Applied); !ok || f.State().ActiveDatacenter() != "dc1" {
				t.Fatalf("%s: %v, active %s", tt.name, res, f.State().ActiveDatacenter())
			}
			continue
		}
		if err, ok := res.(error); !ok || !strings.Contains(err.Error(), tt.wantErr) || f.State() != before {
			t.Fatalf("%s: %v, want a refusal containing %q", tt.name, res, tt.wantErr)
		}
	}
	// A decision with a hold or an if_decision has its own type byte: a node
	// too old to honour them stops at it instead of diverging.
	for _, c := range []*SetActiveDC{{DC: "dc2", Hold: time.Second}, {DC: "dc2", IfDecision: 3}, {DC: "dc2"}} {
		data, _ := Encode(c)
		want := MsgSetActiveDCHeld
		if c.Hold == 0 && c.IfDecision == 0 {
			want = MsgSetActiveDC
		}
		back, err := Decode(data)
		if MsgType(data[0]) != want || err != nil || *back.(*SetActiveDC) != *c {
			t.Errorf("%+v: type %d (want %d), decoded %+v, %v", c, data[0], want, back, err)
		}
	}
	// An operator may always decide again, hold or not.
	if res := applyCmd(t, f, 10, &SetActiveDC{DC: "dc2", Author: "bob", Time: t0.Add(61 * time.Second)}); res != (Applied{Index: 10, Version: 1}) {
		t.Fatalf("manual decision: %v", res)
	}
}

// A roll-up's Since is when it changed: the same value proposed again (by
// a leader whose state lagged) keeps it, a change moves it.
func TestDCHealthSinceIsDecidedByTheFSM(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	f := NewFSM(slog.New(slog.DiscardHandler))
	applyCmd(t, f, 1, putDoc(1))
	steps := []struct {
		healthy bool
		at      time.Duration
		since   time.Duration
	}{
		{false, 0, 0},
		{false, time.Minute, 0},
		{true, 2 * time.Minute, 2 * time.Minute},
		{true, 3 * time.Minute, 2 * time.Minute},
	}
	for i, st := range steps {
		applyCmd(t, f, uint64(2+i), &SetDCHealth{DC: "dc2", Healthy: st.healthy, Reason: fmt.Sprint("step ", i), Time: t0.Add(st.at)})
		h := f.State().Health["dc2"]
		if h.Healthy != st.healthy || !h.Since.Equal(t0.Add(st.since)) || h.Reason != fmt.Sprint("step ", i) {
			t.Fatalf("step %d: %+v, want healthy %v since +%s", i, h, st.healthy, st.since)
		}
	}
}

func TestFSMApply(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	tests := []struct {
		name    string
		cmd     Command
		wantErr string
		check   func(*State) bool
	}{
		{"config", putDoc(3), "", func(s *State) bool { return s.Version == 2 && weightOf(s) == 3 }},
		{"config with stale if_version", &PutConfig{Source: doc(4), IfVersion: 7}, "changed meanwhile", nil},
		{"bad yaml", &PutConfig{Source: []byte("frontends: [")}, "cluster.yaml", nil},
		{"unknown key", &PutConfig{Source: []byte("backendz: []")}, "backendz", nil},
		{"active dc", &SetActiveDC{DC: "dc2", Author: "ops", Time: now}, "", func(s *State) bool { return s.ActiveDatacenter() == "dc2" && s.Active.Author == "ops" }},
		{"active dc stale", &SetActiveDC{DC: "dc1", IfActive: "dc1"}, "active datacenter is now", nil},
		{"unknown dc", &SetActiveDC{DC: "dc9"}, `datacenter "dc9" is not defined`, nil},
		{"dc health", &SetDCHealth{DC: "dc1", Healthy: false, Reason: "no master", Time: now}, "", func(s *State) bool { return !s.Health["dc1"].Healthy && s.Health["dc1"].Reason == "no master" }},
		{"drain", &SetServerAdmin{Backend: "web", Server: "s1", State: "drain"}, "", func(s *State) bool { return s.Servers["web/s1"].State == "drain" }},
		{"ready clears", &SetServerAdmin{Backend: "web", Server: "s1", State: "ready"}, "", func(s *State) bool { _, ok := s.Servers["web/s1"]; return !ok }},
		{"unknown server", &SetServerAdmin{Backend: "web", Server: "zz", State: "drain"}, `no server "zz"`, nil},
		{"bad admin state", &SetServerAdmin{Backend: "web", Server: "s1", State: "off"}, "want ready, drain or maint", nil},
		{"member", &SetMember{ID: "n1", Datacenter: "dc1", Admin: "a:1"}, "", func(s *State) bool { return s.Members["n1"].Admin == "a:1" }},
		{"member without id", &SetMember{}, "no id", nil},
		{"seed once configured", &SeedConfig{Source: doc(9), Author: "seed:n1"}, "already committed", nil},
	}
	f := NewFSM(slog.New(slog.DiscardHandler))
	applyCmd(t, f, 1, putDoc(1))
	// The active DC test needs dc1 active first.
	idx := uint64(2)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.State()
			idx++
			res := applyCmd(t, f, idx, tt.cmd)
			if tt.wantErr != "" {
				err, ok := res.(error)
				if !ok || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error containing %q, got %v", tt.wantErr, res)
				}
				if f.State() != before {
					t.Fatal("a refused command changed the state")
				}
				return
			}
			if _, ok := res.(Applied); !ok {
				t.Fatalf("apply: %v", res)
			}
			if !tt.check(f.State()) {
				t.Fatalf("state not as expected: %+v", f.State())
			}
		})
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	f := NewFSM(slog.New(slog.DiscardHandler))
	for i := 1; i <= 60; i++ {
		applyCmd(t, f, uint64(i), putDoc(i))
	}
	applyCmd(t, f, 61, &SetActiveDC{DC: "dc2", Author: "auto", Reason: "dc1 down"})
	g := snapshotRoundTrip(t, f)
	a, b := f.State(), g.State()
	if a.Version != b.Version || weightOf(b) != 60 || b.ActiveDatacenter() != "dc2" || len(a.History) != len(b.History) {
		t.Fatalf("restored state differs: version %d/%d weight %d active %s", a.Version, b.Version, weightOf(b), b.ActiveDatacenter())
	}
	// Only the newest revisions keep their source.
	if b.History[0].Source != nil || b.History[len(b.History)-1].Source == nil {
		t.Error("history sources not trimmed to the newest revisions")
	}
	if err := g.Restore(readCloser{bytes.NewBufferString(`{"format":99}` + "\n{}")}); err == nil {
		t.Error("restore accepted an unknown snapshot format")
	}
}

// snapshotRoundTrip persists f's snapshot and restores it into a new FSM.
func snapshotRoundTrip(t *testing.T, f *FSM) *FSM {
	t.Helper()
	snap, _ := f.Snapshot()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := NewFSM(slog.New(slog.DiscardHandler))
	if err := g.Restore(readCloser{&sink.Buffer}); err != nil {
		t.Fatal(err)
	}
	return g
}

type readCloser struct{ *bytes.Buffer }

func (readCloser) Close() error { return nil }

func TestFSMUnknownCommands(t *testing.T) {
	f := NewFSM(slog.New(slog.DiscardHandler))
	if r := f.Apply(&hraft.Log{Index: 1, Type: hraft.LogCommand, Data: []byte{byte(IgnoreUnknown | 0x33), '{', '}'}}); r != nil {
		t.Errorf("ignorable unknown command: %v", r)
	}
	defer func() {
		if recover() == nil {
			t.Error("an unknown command without the ignore flag did not panic")
		}
	}()
	f.Apply(&hraft.Log{Index: 2, Type: hraft.LogCommand, Data: []byte{0x33, '{', '}'}})
}

// TestFSMZoneSerials: the automatic SOA serial of a DNS zone is decided in
// the replicated state — the commit time of the change that last touched
// the zone, strictly increasing — so every node (and a restarted one, from
// a snapshot) serves the same serial.
func TestFSMZoneSerials(t *testing.T) {
	zoneDoc := func(weight int, www string, pinned bool) []byte {
		serial := ""
		if pinned {
			serial = "\n      soa: {serial: 2026010101}"
		}
		return []byte(fmt.Sprintf("%s\ndns:\n  zones:\n    - name: example.com\n      ns: [ns1.example.com]%s\n      records:\n        - {name: www, type: A, data: %s}\n    - name: example.org\n      ns: [ns1.example.com]\n", doc(weight), serial, www))
	}
	t0 := time.Unix(1700000000, 0).UTC()
	put := func(src []byte, at time.Time) *PutConfig {
		return &PutConfig{Source: src, Author: "test", Time: at}
	}
	steps := []struct {
		name     string
		cmd      Command
		com, org uint32 // 0: no automatic serial
	}{
		{"first document", put(zoneDoc(1, "198.18.0.1", false), t0), 1700000000, 1700000000},
		{"zones unchanged (a backend weight)", put(zoneDoc(2, "198.18.0.1", false), t0.Add(time.Hour)), 1700000000, 1700000000},
		{"active datacenter", &SetActiveDC{DC: "dc2", Author: "t", Time: t0.Add(2 * time.Hour)}, 1700000000, 1700000000},
		{"one zone changed", put(zoneDoc(2, "198.18.0.2", false), t0.Add(3*time.Hour)), 1700010800, 1700000000},
		{"changed again in the same second", put(zoneDoc(2, "198.18.0.3", false), t0.Add(3*time.Hour)), 1700010801, 1700000000},
		{"clock behind the serial", put(zoneDoc(2, "198.18.0.4", false), t0), 1700010802, 1700000000},
		{"pinned by the operator", put(zoneDoc(2, "198.18.0.4", true), t0.Add(4*time.Hour)), 0, 1700000000},
	}
	f := NewFSM(slog.New(slog.DiscardHandler))
	for i, st := range steps {
		if res := applyCmd(t, f, uint64(i+1), st.cmd); res != nil {
			if err, ok := res.(error); ok {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		got := f.State().Config.ZoneSerials
		if got["example.com."] != st.com || got["example.org."] != st.org {
			t.Fatalf("%s: serials %v, want example.com. %d, example.org. %d", st.name, got, st.com, st.org)
		}
	}
	// A node restored from a snapshot serves the same serials.
	g := snapshotRoundTrip(t, f)
	if a, b := f.State().Config.ZoneSerials, g.State().Config.ZoneSerials; !maps.Equal(a, b) {
		t.Fatalf("restored serials %v, want %v", b, a)
	}
}
