package email

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
)

func benchConfig(b *testing.B) *config.Cluster {
	c, err := config.Parse("bench.yaml", []byte(`
alerts:
  from: vipgate@example.test
  mailers: [{name: m, address: "127.0.0.1:25"}]
  rules:
    - {events: [dc.*, raft.*], to: boss@example.test}
    - {events: [server.*, backend.*], min_level: warning, to: ops@example.test}
`))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkHandleUnmatched is the common case: an event no rule wants
// (info-level, or a kind nobody mails) must cost next to nothing.
func BenchmarkHandleUnmatched(b *testing.B) {
	a, err := New(Options{DataDir: b.TempDir(), Node: "gw1"})
	if err != nil {
		b.Fatal(err)
	}
	a.Apply(benchConfig(b))
	ev := upEvent("exchange", "ex1", "ok")
	ev.Level = events.Info
	b.ReportAllocs()
	for b.Loop() {
		a.handle(ev)
	}
}

// BenchmarkHandleMatched persists (fsync) and renders each event: the
// cost of one alert, dominated by the disk.
func BenchmarkHandleMatched(b *testing.B) {
	a, err := New(Options{DataDir: b.TempDir(), Node: "gw1"})
	if err != nil {
		b.Fatal(err)
	}
	a.Apply(benchConfig(b))
	ev := downEvent("exchange", "ex1", "Layer4 connection problem")
	b.ReportAllocs()
	for b.Loop() {
		a.handle(ev) // first one mails, the rest are held in the window
	}
}

// BenchmarkHandleBurst is 100 events of an outage arriving together: one
// directory fsync for the batch.
func BenchmarkHandleBurst(b *testing.B) {
	a, err := New(Options{DataDir: b.TempDir(), Node: "gw1"})
	if err != nil {
		b.Fatal(err)
	}
	a.Apply(benchConfig(b))
	evs := make([]events.Event, 100)
	for i := range evs {
		evs[i] = downEvent("exchange", fmt.Sprintf("s%d", i), "down")
	}
	b.ReportAllocs()
	for b.Loop() {
		a.q.beginBatch()
		for _, ev := range evs {
			a.handle(ev)
		}
		a.q.endBatch()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

func BenchmarkRender(b *testing.B) {
	r, _ := newRenderer(&config.Alerts{})
	evs := make([]events.Event, 50)
	for i := range evs {
		evs[i] = downEvent("exchange", "ex1", "flap")
		evs[i].Time = time.Now()
	}
	b.ReportAllocs()
	for b.Loop() {
		s, body := r.render(mailData("r", evs, time.Minute, "gw1", "dc1", time.Now(), nil))
		_ = message("vipgate@example.test", []string{"ops@example.test"}, s, body, time.Now(), "", "gw1", nil)
	}
}

func BenchmarkDecodeRecord(b *testing.B) {
	data := encodeRecord(bytes.Repeat([]byte(`{"seq":1,"rule":"r","to":["a@b"]}`), 20))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(data); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeRecord: any bytes in a queue file are either a record or an
// error, never a panic; encoded records always decode to their payload.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord([]byte(`{"seq":1}`)))
	f.Add([]byte("VGQ1 00000000 0\n"))
	f.Add([]byte("VGQ1 zz 5\nabcde"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeRecord(data)
		p, err := decodeRecord(encodeRecord(data))
		if err != nil || !bytes.Equal(p, data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
