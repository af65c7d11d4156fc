package soakcheck

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func node(proc string, inc int, idx uint64, active string, ver uint64, doc string) NodeSample {
	return NodeSample{Proc: proc, Incarnation: inc, OK: proc == Running, Term: 2, Index: idx, Active: active, Version: ver, DocHash: doc}
}

// good is a history where every promise holds: a master killed (its
// address left behind while dead), a failover window with failed
// requests inside it, an apply, a mail to two recipients (one dead
// letter), a mail repeated after its sender was killed.
func good() *History {
	return &History{
		Seed: 42, Start: at(0), End: at(30),
		Samples: []Sample{
			{At: at(1), VIPs: map[int][]string{51: {"a1"}, 52: {"b1"}}, Nodes: map[string]NodeSample{
				"a1": node(Running, 1, 10, "dc1", 1, "doc1"), "a2": node(Running, 1, 10, "dc1", 1, "doc1"), "b1": node(Running, 1, 9, "dc1", 1, "doc1")}},
			{At: at(6), VIPs: map[int][]string{51: {"a1", "a2"}, 52: {"b1"}}, Nodes: map[string]NodeSample{
				"a1": node(Dead, 1, 0, "", 0, ""), "a2": node(Running, 1, 12, "dc1", 1, "doc1"), "b1": node(Running, 1, 12, "dc1", 1, "doc1")}},
			{At: at(12), VIPs: map[int][]string{51: {"a1"}, 52: {"b1"}}, Nodes: map[string]NodeSample{
				"a1": node(Running, 2, 12, "dc1", 1, "doc1"), "a2": node(Running, 1, 14, "dc2", 2, "doc2"), "b1": node(Running, 1, 14, "dc2", 2, "doc2")}},
			{At: at(20), VIPs: map[int][]string{51: {"a1"}, 52: {"b1"}}, Nodes: map[string]NodeSample{
				"a1": node(Running, 2, 14, "dc2", 2, "doc2"), "a2": node(Running, 1, 14, "dc2", 2, "doc2"), "b1": node(Running, 1, 14, "dc2", 2, "doc2")}},
		},
		Faults: []Fault{{Kind: "kill", Target: "a1", Start: at(5), End: at(10), Disruptive: true, LosesSends: true},
			{Kind: "mta-down", Target: "relay", Start: at(14), End: at(16)}},
		Ops: []Op{{Kind: "apply", Node: "b1", At: at(0.5), OK: true, DocHash: "doc1"},
			{Kind: "apply", Node: "a2", At: at(13), OK: true, DocHash: "doc2"},
			{Kind: "dc failover", Node: "b1", At: at(13.5), OK: true}},
		Requests: []Request{
			{Client: "vdi", Start: at(2), End: at(2.1), Server: "ex-a1"},
			{Client: "vdi", Start: at(5.5), End: at(6.5), Err: "connection refused"},
			{Client: "vdi", Start: at(9), End: at(10.5), Err: "timeout"},
			{Client: "vdi", Start: at(11), End: at(11.1), Server: "ex-a2"},
			{Client: "vdi", Start: at(15), End: at(15.1), Server: "ex-a2"},
			{Client: "vdi", Start: at(21), End: at(21.1), Server: "ex-a2"},
			{Client: "vdi", Start: at(24), End: at(24.1), Server: "ex-a1"},
		},
		Queued: []Queued{{Node: "a1", ID: "<m1@a1>", Subject: "dc1 down", To: []string{"ops@x"}, At: at(4)},
			{Node: "a1", ID: "<m1@a1>", Subject: "dc1 down", To: []string{"boss@x"}, At: at(4.5)},
			{Node: "b1", ID: "<m2@b1>", Subject: "failover", To: []string{"ops@x", "gone@x"}, At: at(14)}},
		Mails: []Mail{{ID: "<m1@a1>", Recipient: "ops@x", Node: "a1", At: at(4.8)},
			{ID: "<m1@a1>", Recipient: "boss@x", Node: "a1", At: at(4.8)},
			{ID: "<m1@a1>", Recipient: "ops@x", Node: "a1", At: at(11)}, // again after the kill at 5
			{ID: "<m2@b1>", Recipient: "ops@x", Node: "b1", At: at(17)}},
		DeadLetter: []Queued{{Node: "b1", ID: "<m2@b1>", To: []string{"gone@x"}}},
	}
}

func TestGoodHistory(t *testing.T) {
	h := good()
	r := Check(h)
	if !r.OK() {
		t.Fatalf("violations on a good history: %v", r.Violations)
	}
	if r.StaleVIPs != 1 || r.Duplicates != 1 || r.Queued != 2 || r.Delivered != 3 || r.DeadLetters != 1 {
		t.Errorf("figures: stale %d dup %d queued %d delivered %d dead %d", r.StaleVIPs, r.Duplicates, r.Queued, r.Delivered, r.DeadLetters)
	}
	// The kill's window, and one per failover the samples show: the VIP
	// moving to a2 and back, the active datacenter moving (seen on a2 and
	// b1 at 12s, on a1 once it caught up at 20s).
	want := map[string]time.Time{"kill a1": at(11.1), `VRID 51 "a1"→"a2"`: at(11.1), `VRID 51 "a2"→"a1"`: at(15.1),
		"active dc1→dc2 from 6s": at(15.1), "active dc1→dc2 from 12s": at(21.1)}
	for _, w := range r.Windows {
		name := w.Fault
		if strings.HasPrefix(name, "active") {
			name += fmt.Sprintf(" from %.0fs", w.From.Sub(t0).Seconds())
		}
		if end, ok := want[name]; !ok || !w.Closed || !w.To.Equal(end) {
			t.Errorf("window %s from %s to %s (closed %v), want %v", name, w.From, w.To, w.Closed, end)
		}
	}
	if len(r.Windows) != 5 {
		t.Errorf("%d windows, want 5", len(r.Windows))
	}
	var b bytes.Buffer
	r.Print(&b, h)
	for _, want := range []string{"seed 42", "SEED=42", "kill 1", "mta-down 1", "vdi", "5 ok, 2 failed", "all invariants hold"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// Each bad history is the good one with one thing broken; the checker
// must name the broken invariant.
func TestBadHistories(t *testing.T) {
	tests := []struct {
		name   string
		breaks func(h *History)
		want   string // invariant
		detail string // in the violation
	}{
		{"two live VIP holders", func(h *History) {
			h.Samples[2].VIPs[51] = []string{"a1", "a2"}
		}, OneVIPHolder, "VRID 51 held by a1 and a2"},
		{"a resumed node keeps its address beside the new master", func(h *History) {
			h.Samples[1].VIPs[52] = []string{"b1", "a2"}
		}, OneVIPHolder, "VRID 52"},
		{"two active datacenters at one index", func(h *History) {
			n := h.Samples[2].Nodes["b1"]
			n.Active = "dc1"
			h.Samples[2].Nodes["b1"] = n
		}, OneActiveDC, "index 14"},
		{"version goes back on a node", func(h *History) {
			n := h.Samples[3].Nodes["b1"]
			n.Version, n.DocHash = 1, "doc1"
			h.Samples[3].Nodes["b1"] = n
		}, VersionsForward, "b1 went from version 2 back to 1"},
		{"one version, two documents", func(h *History) {
			n := h.Samples[3].Nodes["a1"]
			n.DocHash = "doc1"
			h.Samples[3].Nodes["a1"] = n
		}, VersionsForward, "version 2 is document doc1"},
		{"re-seed: an old document committed as a new version", func(h *History) {
			for _, s := range h.Samples[3:] {
				for k, n := range s.Nodes {
					n.Version, n.DocHash = 3, "doc1"
					s.Nodes[k] = n
				}
			}
		}, VersionsForward, "version 3 commits document doc1 again"},
		{"a document nobody applied", func(h *History) {
			n := h.Samples[3].Nodes["a1"]
			n.Version, n.DocHash = 3, "seed"
			h.Samples[3].Nodes["a1"] = n
		}, VersionsForward, "that no apply committed"},
		{"a node ends on an older document", func(h *History) {
			h.Samples = h.Samples[:3]
		}, VersionsForward, "a1 ends with document doc1"},
		{"a queued mail lost", func(h *History) {
			h.Mails = h.Mails[:3]
		}, AlertsOnce, "never reached ops@x"},
		{"a recipient neither served nor dead-lettered", func(h *History) {
			h.DeadLetter = nil
		}, AlertsOnce, "never reached gone@x"},
		{"a mail delivered twice without a crash", func(h *History) {
			h.Faults[0].LosesSends = false
		}, AlertsOnce, "delivered to ops@x again"},
		{"a duplicate from another node's crash is no excuse", func(h *History) {
			h.Faults[0].Target = "a2"
		}, AlertsOnce, "again"},
		{"a mail without Message-ID", func(h *History) {
			h.Mails = append(h.Mails, Mail{Recipient: "ops@x", Node: "b1", Subject: "x", At: at(18)})
		}, AlertsOnce, "no Message-ID"},
		{"a failure outside any window", func(h *History) {
			h.Requests = append(h.Requests, Request{Client: "vdi", Start: at(22), End: at(22.2), Err: "reset"})
		}, FailInWindows, "failed outside any failover window"},
		{"MTA down is not a failover", func(h *History) {
			h.Faults = append(h.Faults, Fault{Kind: "mta-down", Target: "relay", Start: at(22), End: at(23)})
			h.Requests = append(h.Requests, Request{Client: "vdi", Start: at(22.5), End: at(22.6), Err: "reset"})
		}, FailInWindows, "outside"},
		{"never served again after healing", func(h *History) {
			h.Requests = h.Requests[:3]
		}, FailInWindows, "was not served again after kill a1"},
		{"never served again after a VIP moved", func(h *History) {
			h.Requests = h.Requests[:5]
		}, FailInWindows, "was not served again after active dc1→dc2"},
		{"a restarted node keeps its leftover beside the master", func(h *History) {
			h.Samples[2].VIPs[51] = []string{"a1", "a2"}
		}, OneVIPHolder, "VRID 51 held by a1 and a2"},
		{"a node still starting may hold a leftover", func(h *History) {
			n := h.Samples[2].Nodes["a1"]
			n.Proc = Starting
			h.Samples[2].Nodes["a1"] = n
			h.Samples[2].VIPs[51] = []string{"a1", "a2"}
			h.Samples[2].VIPs[52] = []string{"b1", "a2"} // but a live double is still caught
		}, OneVIPHolder, "VRID 52 held by b1 and a2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			tc.breaks(h)
			r := Check(h)
			for _, v := range r.Violations {
				if v.Invariant == tc.want && strings.Contains(v.Detail, tc.detail) {
					return
				}
			}
			t.Errorf("want a %q violation with %q, got %v", tc.want, tc.detail, r.Violations)
		})
	}
}

func TestSaveLoad(t *testing.T) {
	h := good()
	p := filepath.Join(t.TempDir(), "history.json")
	if err := h.Save(p); err != nil {
		t.Fatal(err)
	}
	back, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := len(Check(h).Violations), len(Check(back).Violations); a != b || back.Seed != 42 || len(back.Samples) != 4 {
		t.Errorf("reloaded history differs: %d vs %d violations, seed %d, %d samples", a, b, back.Seed, len(back.Samples))
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("loading a missing file: no error")
	}
}
