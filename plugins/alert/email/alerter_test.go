package email

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testenv"
)

// clusterDoc parses an alerts section (extra is YAML appended under
// alerts:) with one mailer at addr.
func clusterDoc(t *testing.T, addr, extra string) *config.Cluster {
	t.Helper()
	return clusterDocMailers(t, addr, "", extra)
}

// clusterDocMailers adds more mailers (YAML list items) after the first.
func clusterDocMailers(t *testing.T, addr, more, extra string) *config.Cluster {
	t.Helper()
	doc := fmt.Sprintf(`alerts:
  from: "vipgate <vipgate@example.test>"
  mailers:
    - name: relay1
      address: %s
      connect_timeout: 2s
      send_timeout: 5s
%s%s`, addr, more, extra)
	if !strings.Contains(extra, "queue:") {
		doc += "  queue: {retry_min: 20ms, retry_max: 100ms}\n"
	}
	c, err := config.Parse("cluster.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	return c
}

type running struct {
	a    *Alerter
	stop func()
}

func startAlerter(t *testing.T, o Options, c *config.Cluster) *running {
	t.Helper()
	if o.Node == "" {
		o.Node, o.DC = "gw1", "dc1"
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	r := &running{a: a}
	var stopped atomic.Bool
	r.stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

func downEvent(backend, server, reason string) events.Event {
	return events.Event{Kind: events.ServerDown, Level: events.Warning, Subject: backend + "/" + server,
		Message: fmt.Sprintf("server %s/%s is DOWN: %s", backend, server, reason),
		Attrs:   map[string]string{"backend": backend, "server": server, "reason": reason}}
}

func upEvent(backend, server, reason string) events.Event {
	return events.Event{Kind: events.ServerUp, Level: events.Notice, Subject: backend + "/" + server,
		Message: fmt.Sprintf("server %s/%s is UP: %s", backend, server, reason),
		Attrs:   map[string]string{"backend": backend, "server": server, "reason": reason}}
}

type fakeState map[string][]*upstream.Server

func (f fakeState) Servers(b string) []*upstream.Server { return f[b] }

func TestSingleEventMail(t *testing.T) {
	mta := newFakeMTA(t)
	bus := events.New("gw1", "dc1")
	ex1 := upstream.NewServer("exchange", "ex1", "198.18.0.11:443", 1)
	ex2 := upstream.NewServer("exchange", "ex2", "198.18.0.12:443", 1)
	ex1.SetHealth(upstream.Down, "Layer4 connection problem")
	startAlerter(t, Options{Bus: bus, DataDir: t.TempDir(), State: fakeState{"exchange": {ex1, ex2}}}, clusterDoc(t, mta.addr, `
  rules:
    - name: ops
      events: [server.*]
      min_level: warning
      to: ["Ops <ops@example.test>", oncall@example.test]
      coalesce: 0
`))
	bus.Publish(downEvent("exchange", "ex1", "Layer4 connection problem"))
	bus.Publish(upEvent("exchange", "ex1", "Layer4 check passed")) // notice < warning: not mailed
	testenv.Eventually(t, 5*time.Second, "one mail", func() bool { return len(mta.Messages()) == 1 })
	m := mta.Messages()[0]
	if m.From != "vipgate@example.test" || strings.Join(m.To, ",") != "ops@example.test,oncall@example.test" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	wantSubject := "[vipgate] WARNING: server exchange/ex1 is DOWN: Layer4 connection problem [gw1/dc1]"
	if m.Subject != wantSubject {
		t.Errorf("subject %q, want %q", m.Subject, wantSubject)
	}
	for _, want := range []string{
		"What happened: server exchange/ex1 is DOWN: Layer4 connection problem",
		"Event:         server.down (warning)",
		"Where:         node gw1, datacenter dc1",
		"reason: Layer4 connection problem",
		"backend exchange: 1 of 2 servers usable",
		"ex1                  198.18.0.11:443        DOWN",
		"vipgate alert rule ops",
	} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	if got := m.Header.Get("X-Vipgate-Events"); got != "server.down" {
		t.Errorf("X-Vipgate-Events %q", got)
	}
}

func TestFlapIsCoalescedIntoDigest(t *testing.T) {
	mta := newFakeMTA(t)
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDoc(t, mta.addr, `
  rules:
    - events: [server.up, server.down]
      min_level: notice
      to: ops@example.test
      coalesce: 1s
`))
	for i := range 50 {
		if i%2 == 0 {
			bus.Publish(downEvent("exchange", "ex1", "flap"))
		} else {
			bus.Publish(upEvent("exchange", "ex1", "flap"))
		}
	}
	// Another server's event is its own subject: not folded in.
	bus.Publish(downEvent("exchange", "ex2", "other"))
	testenv.Eventually(t, 10*time.Second, "first mails and the digest", func() bool { return len(mta.Messages()) == 3 })
	testenv.Eventually(t, 5*time.Second, "queue empty", func() bool {
		s := r.a.Stats()
		return s.Queued == 0 && s.PendingEvents == 0
	})
	var digest *received
	for _, m := range mta.Messages() {
		if strings.Contains(m.Subject, "events about") {
			digest = &m
		}
	}
	if digest == nil {
		t.Fatalf("no digest among %v", mta.Messages())
	}
	if want := "[vipgate] 49 events about exchange/ex1: 25x server.up, 24x server.down (now: server.up) [gw1/dc1]"; digest.Subject != want {
		t.Errorf("digest subject %q, want %q", digest.Subject, want)
	}
	for _, want := range []string{"49 events about exchange/ex1 between", "   25 x server.up", "   24 x server.down", "Latest:        server exchange/ex1 is UP: flap"} {
		if !strings.Contains(digest.Body, want) {
			t.Errorf("digest body lacks %q:\n%s", want, digest.Body)
		}
	}
	// Sent is counted just after the queue lets go of the mail.
	testenv.Eventually(t, 5*time.Second, "3 mails counted as sent", func() bool { return r.a.Stats().Sent == 3 })
}

// TestClusterEventsOnlyFromLeader: a cluster-wide event (by kind, or by
// the producer's Scope) is mailed by the leader only; a node that is not
// the leader holds it for the grace period and mails it if it becomes the
// leader meanwhile (the old leader may have died with it), else leaves it;
// an event the old leader outlived by more than LeaderSettle was in its
// durable queue and is not mailed again. Local events are mailed by the node that saw them, leader or not.
func TestClusterEventsOnlyFromLeader(t *testing.T) {
	failover := events.Event{Kind: events.DCFailover, Level: events.Alert, Subject: "dc1->dc2", Message: "datacenter failover dc1 -> dc2"}
	for _, tt := range []struct {
		name       string
		ev         events.Event
		leader     bool             // at the event
		promote    bool             // becomes the leader after it
		grace      time.Duration    // LeaderGrace
		seen       func() time.Time // LeaderSeen: the old leader's last sign of life
		wantMailed bool
	}{
		{"leader mails dc.failover", failover, true, false, time.Hour, nil, true},
		{"follower leaves dc.failover", failover, false, false, 50 * time.Millisecond, nil, false},
		{"follower promoted within the grace mails it", failover, false, true, time.Hour, nil, true},
		{"follower promoted after the grace does not", failover, false, true, 50 * time.Millisecond, nil, false},
		{"old leader went silent right after the event: mailed", failover, false, true, time.Hour, time.Now, true},
		{"old leader lived on long after the event: its mail, not ours", failover, false, true, time.Hour,
			func() time.Time { return time.Now().Add(time.Minute) }, false},
		{"config.applied is cluster-wide by kind", events.Event{Kind: events.ConfigApplied, Level: events.Notice, Subject: "config", Message: "configuration version 7 applied"}, false, false, 50 * time.Millisecond, nil, false},
		{"raft.leader is cluster-wide by kind", events.Event{Kind: events.RaftLeader, Level: events.Notice, Subject: "n2", Message: "raft leader is n2"}, false, false, 50 * time.Millisecond, nil, false},
		{"a producer's Scope counts", events.Event{Kind: events.BackendEmpty, Level: events.Alert, Scope: events.Cluster, Subject: "web", Message: "backend web has no server"}, false, false, 50 * time.Millisecond, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mta := newFakeMTA(t)
			bus := events.New("gw1", "dc1")
			var leader atomic.Bool
			leader.Store(tt.leader)
			r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir(), IsLeader: leader.Load, LeaderGrace: tt.grace, LeaderSeen: tt.seen}, clusterDoc(t, mta.addr, `
  rules:
    - events: ["*"]
      min_level: notice
      to: ops@example.test
      coalesce: 0
`))
			bus.Publish(tt.ev)
			if !tt.leader {
				testenv.Eventually(t, 5*time.Second, "the event held for the leader", func() bool {
					s := r.a.Stats()
					return s.AwaitingLeader == 1 || s.NotLeader == 1
				})
			}
			if tt.promote && tt.grace < time.Second {
				testenv.Eventually(t, 5*time.Second, "the grace over", func() bool { return r.a.Stats().NotLeader == 1 })
			}
			if tt.promote {
				leader.Store(true)
			}
			// A local event after it: once it is mailed, the cluster
			// event has been dealt with one way or the other.
			bus.Publish(events.Event{Kind: events.VRRPTransition, Level: events.Notice, Scope: events.Local, Subject: "vi1", Message: "vi1 BACKUP -> MASTER"})
			want := 1
			if tt.wantMailed {
				want = 2
			}
			testenv.Eventually(t, 5*time.Second, fmt.Sprintf("%d mail(s)", want), func() bool {
				s := r.a.Stats()
				return len(mta.Messages()) == want && s.AwaitingLeader == 0 && s.Queued == 0
			})
			var subjects []string
			for _, m := range mta.Messages() {
				subjects = append(subjects, m.Subject)
			}
			all := strings.Join(subjects, "\n")
			if strings.Contains(all, tt.ev.Message) != tt.wantMailed || !strings.Contains(all, "vi1 BACKUP -> MASTER") {
				t.Errorf("mails: %q", subjects)
			}
			if s := r.a.Stats(); (s.NotLeader == 1) == tt.wantMailed {
				t.Errorf("skipped_not_leader %d", s.NotLeader)
			}
		})
	}
}

func TestRetryAfterTemporaryFailure(t *testing.T) {
	mta := newFakeMTA(t)
	mta.AnswerAll(451)
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDoc(t, mta.addr, `
  rules:
    - to: ops@example.test
      coalesce: 0
`))
	bus.Publish(downEvent("b", "s1", "x"))
	testenv.Eventually(t, 5*time.Second, "failed attempts", func() bool { return r.a.Stats().Failed >= 2 })
	s := r.a.Stats()
	if s.Queued != 1 || !strings.Contains(s.LastError, "451") {
		t.Errorf("queued %d, last error %q", s.Queued, s.LastError)
	}
	mta.AnswerAll(0)
	testenv.Eventually(t, 5*time.Second, "delivery after the server recovers", func() bool { return len(mta.Messages()) == 1 })
	testenv.Eventually(t, 5*time.Second, "queue empty", func() bool { return r.a.Stats().Queued == 0 })
}

func TestMailersTriedInOrder(t *testing.T) {
	mta := newFakeMTA(t)
	dead := deadAddr(t)
	bus := events.New("gw1", "dc1")
	c := clusterDocMailers(t, dead, fmt.Sprintf("    - {name: relay2, address: %s}\n", mta.addr), `
  rules:
    - to: ops@example.test
      coalesce: 0
`)
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, c)
	bus.Publish(downEvent("b", "s1", "x"))
	testenv.Eventually(t, 5*time.Second, "mail through the second mailer", func() bool { return len(mta.Messages()) == 1 })
	// Sent is counted when the queue lets go of the mail (the relay's 250),
	// the per-relay counts once the attempt is over (after QUIT).
	testenv.Eventually(t, 5*time.Second, "counted as sent", func() bool {
		st := r.a.Stats()
		return st.Sent == 1 && len(st.Mailers) == 2 && st.Mailers[1].Sent == 1
	})
	if s := r.a.Stats(); s.Failed != 0 || s.Sent != 1 {
		t.Errorf("failed %d sent %d: a fallback to the next mailer is not a failed delivery", s.Failed, s.Sent)
	}
	ms := r.a.Stats().Mailers
	if len(ms) != 2 || ms[0].Failed != 1 || ms[0].Sent != 0 || !strings.Contains(ms[0].LastError, "connect") || ms[1].Sent != 1 || ms[1].LastOK == nil {
		t.Errorf("per-mailer stats %+v", ms)
	}
}

// deadAddr is a loopback port with nothing listening.
func deadAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
}

func TestQueueCapDropsOldestAndSaysSo(t *testing.T) {
	mta := newFakeMTA(t)
	bus := events.New("gw1", "dc1")
	dir := t.TempDir()
	rules := `
  rules:
    - to: ops@example.test
      coalesce: 0
`
	r := startAlerter(t, Options{Bus: bus, DataDir: dir}, clusterDoc(t, deadAddr(t), rules+"  queue: {max: 3, retry_min: 20ms, retry_max: 50ms}\n"))
	for i := range 6 {
		bus.Publish(downEvent("b", fmt.Sprintf("s%d", i), "x"))
	}
	testenv.Eventually(t, 5*time.Second, "three dropped", func() bool { return r.a.Stats().Dropped == 3 })
	if s := r.a.Stats(); s.Queued != 4 {
		t.Errorf("queued %d, want 3 mails + the drop notice", s.Queued)
	}
	// The relay comes back (here: the config points at a live one).
	if err := r.a.Apply(clusterDoc(t, mta.addr, rules+"  queue: {max: 3, retry_min: 20ms, retry_max: 50ms}\n")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "everything delivered", func() bool { return len(mta.Messages()) >= 4 && r.a.Stats().Queued == 0 })
	var notice, servers []string
	reported := 0
	for _, m := range mta.Messages() {
		if strings.Contains(m.Subject, "dropped") {
			// Usually one notice; a drop while the notice itself was
			// being attempted starts a second one.
			var n int
			fmt.Sscanf(m.Subject, "[vipgate] ERR: %d alert(s)", &n)
			reported += n
			notice = append(notice, m.Subject+"\n"+m.Body)
		} else {
			servers = append(servers, m.Subject)
		}
	}
	if reported != 3 || len(notice) == 0 || !strings.Contains(notice[0], "queue.max 3") {
		t.Errorf("drop notices report %d drops: %q", reported, notice)
	}
	// The oldest are dropped, except one that was being sent at that
	// moment (the cap never drops a mail in flight): the newest survive.
	if len(servers) != 3 || !strings.Contains(strings.Join(servers, "\n"), "b/s5") || !strings.Contains(strings.Join(servers, "\n"), "b/s4") {
		t.Errorf("surviving mails %q, want three including s4 and s5", servers)
	}
}

func TestQueueSurvivesRestart(t *testing.T) {
	mta := newFakeMTA(t)
	dir := t.TempDir()
	rules := `
  rules:
    - min_level: notice
      to: ops@example.test
      coalesce: 10m
`
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: dir}, clusterDoc(t, deadAddr(t), rules))
	bus.Publish(downEvent("b", "s1", "first"))
	bus.Publish(upEvent("b", "s1", "held in the window"))
	bus.Publish(downEvent("b", "s1", "held in the window too"))
	testenv.Eventually(t, 5*time.Second, "one mail queued, two events held", func() bool {
		s := r.a.Stats()
		return s.Queued == 1 && s.PendingEvents == 2 && s.Failed > 0
	})
	r.stop()

	bus2 := events.New("gw1", "dc1")
	r2 := startAlerter(t, Options{Bus: bus2, DataDir: dir}, clusterDoc(t, mta.addr, rules))
	testenv.Eventually(t, 5*time.Second, "both mails delivered after the restart", func() bool { return len(mta.Messages()) == 2 })
	msgs := mta.Messages()
	if !strings.Contains(msgs[0].Subject, "DOWN: first") {
		t.Errorf("first mail %q", msgs[0].Subject)
	}
	if !strings.Contains(msgs[1].Subject, "2 events about b/s1") {
		t.Errorf("held events mail %q", msgs[1].Subject)
	}
	testenv.Eventually(t, 5*time.Second, "queue empty", func() bool {
		s := r2.a.Stats()
		return s.Queued == 0 && s.PendingEvents == 0
	})
	left, _ := filepath.Glob(filepath.Join(dir, "alerts", "*"))
	if len(left) != 0 {
		t.Errorf("files left in the queue: %v", left)
	}
}

func TestCorruptRecordIsReportedAndSkipped(t *testing.T) {
	mta := newFakeMTA(t)
	dir := t.TempDir()
	qdir := filepath.Join(dir, "alerts")
	q, err := openQueue(qdir)
	if err != nil {
		t.Fatal(err)
	}
	good := &mailRecord{Created: time.Now(), Rule: "r", To: []string{"ops@example.test"}, Subject: "queued before the crash", Body: "b\n"}
	if err := q.addMail(good); err != nil {
		t.Fatal(err)
	}
	bad := &mailRecord{Created: time.Now(), Rule: "r", To: []string{"ops@example.test"}, Subject: "damaged", Body: "b\n"}
	if err := q.addMail(bad); err != nil {
		t.Fatal(err)
	}
	// Flip a byte in the second record's payload, and leave a torn write.
	p := q.path("mail", bad.Seq)
	data, _ := os.ReadFile(p)
	data[len(data)-3] ^= 0x20
	os.WriteFile(p, data, 0o600)
	os.WriteFile(filepath.Join(qdir, ".tmp-mail-00000000000000000009"), []byte("VGQ1 half"), 0o600)
	os.WriteFile(filepath.Join(qdir, "ev-00000000000000000007"), []byte("garbage"), 0o600)

	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: dir}, clusterDoc(t, mta.addr, `
  rules:
    - to: ops@example.test
`))
	testenv.Eventually(t, 5*time.Second, "the good mail and the corruption notice", func() bool { return len(mta.Messages()) == 2 })
	var sawGood, sawNotice bool
	for _, m := range mta.Messages() {
		sawGood = sawGood || m.Subject == "queued before the crash"
		if strings.Contains(m.Subject, "dropped") {
			sawNotice = strings.Contains(m.Body, "2 corrupt alert queue record(s)") && strings.Contains(m.Body, "checksum mismatch")
		}
	}
	if !sawGood || !sawNotice {
		t.Errorf("good %v notice %v: %+v", sawGood, sawNotice, mta.Messages())
	}
	if s := r.a.Stats(); s.Corrupt != 2 || s.Dropped != 2 {
		t.Errorf("corrupt %d dropped %d", s.Corrupt, s.Dropped)
	}
	for _, n := range []string{filepath.Base(p) + ".corrupt", "ev-00000000000000000007.corrupt"} {
		if _, err := os.Stat(filepath.Join(qdir, n)); err != nil {
			t.Errorf("corrupt record not kept aside: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(qdir, ".tmp-mail-00000000000000000009")); !os.IsNotExist(err) {
		t.Errorf("torn write not cleaned: %v", err)
	}
}

func TestCustomTemplates(t *testing.T) {
	mta := newFakeMTA(t)
	bus := events.New("gw1", "dc1")
	startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDoc(t, mta.addr, `
  subject: '{{upper .Event.Kind}} on {{.Node}}: {{.Subject}}'
  template: |
    {{.Count}} event(s); reason={{.Event.Attr "reason"}}; level={{.Level}}
  rules:
    - to: ops@example.test
      coalesce: 0
`))
	bus.Publish(downEvent("b", "s1", "refused"))
	testenv.Eventually(t, 5*time.Second, "mail", func() bool { return len(mta.Messages()) == 1 })
	m := mta.Messages()[0]
	if m.Subject != "SERVER.DOWN on gw1: b/s1" {
		t.Errorf("subject %q", m.Subject)
	}
	if got := strings.TrimSpace(m.Body); got != "1 event(s); reason=refused; level=warning" {
		t.Errorf("body %q", got)
	}
}

func TestRenderTemplateErrorFallsBack(t *testing.T) {
	r, err := newRenderer(&config.Alerts{Template: "{{index .Events 5}}", Subject: "{{index .Events 3}}"})
	if err != nil {
		t.Fatal(err)
	}
	ev := downEvent("b", "s1", "why")
	ev.Time, ev.Node = time.Now(), "gw1"
	subject, body := r.render(mailData("r", []events.Event{ev}, 0, "gw1", "dc1", time.Now(), nil))
	if !strings.Contains(subject, "server b/s1 is DOWN: why") {
		t.Errorf("subject %q", subject)
	}
	if !strings.Contains(body, "What happened: server b/s1 is DOWN: why") || !strings.Contains(body, "the configured template failed") {
		t.Errorf("body %q", body)
	}
}

func TestTestMailersReportsSteps(t *testing.T) {
	mta := newFakeMTA(t)
	c := clusterDocMailers(t, deadAddr(t), fmt.Sprintf("    - {name: relay2, address: %s}\n", mta.addr), `
  rules:
    - to: ops@example.test
`)
	rep := TestMailers(context.Background(), &c.Alerts, "gw1", "dc1", nil)
	if !rep.OK || len(rep.Mailers) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if m := rep.Mailers[0]; m.OK || len(m.Steps) != 1 || m.Steps[0].Step != "connect" || !strings.Contains(m.Error, "refused") {
		t.Errorf("dead mailer: %+v", m)
	}
	var steps []string
	for _, s := range rep.Mailers[1].Steps {
		steps = append(steps, s.Step)
	}
	if got := strings.Join(steps, ","); got != "connect,ehlo,mail,rcpt,data,quit" {
		t.Errorf("steps %s", got)
	}
	if len(mta.Messages()) != 1 || !strings.Contains(mta.Messages()[0].Body, "relay2") {
		t.Errorf("test mail: %+v", mta.Messages())
	}
}

func TestBusOverflowIsReported(t *testing.T) {
	mta := newFakeMTA(t)
	bus := events.New("gw1", "dc1")
	a, err := New(Options{Bus: bus, DataDir: t.TempDir(), Node: "gw1", DC: "dc1", BusBuffer: 4})
	if err != nil {
		t.Fatal(err)
	}
	// Published before Run: the first four wait in the buffer, the rest
	// are lost on the bus.
	for i := range 10 {
		bus.Publish(downEvent("b", fmt.Sprintf("s%d", i), "x"))
	}
	c := clusterDoc(t, mta.addr, `
  rules:
    - to: ops@example.test
      coalesce: 0
`)
	if err := a.Apply(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 5*time.Second, "four mails and the loss notice", func() bool { return len(mta.Messages()) == 5 })
	var notice string
	for _, m := range mta.Messages() {
		if strings.Contains(m.Subject, "dropped") {
			notice = m.Body
		}
	}
	if !strings.Contains(notice, "6 event(s) were lost on the event bus") {
		t.Errorf("notice body %q", notice)
	}
	if s := a.Stats(); s.BusDropped != 6 || s.Dropped != 6 || s.Subscribers["alerts/email"] != 6 {
		t.Errorf("stats %+v", s)
	}
}

// TestDiskFailureStillMails: when the queue cannot be written (here its
// directory is replaced by a file), the alert is still delivered from
// memory and the failure is counted.
func TestDiskFailureStillMails(t *testing.T) {
	mta := newFakeMTA(t)
	dir := t.TempDir()
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: dir}, clusterDoc(t, mta.addr, `
  rules:
    - to: ops@example.test
      coalesce: 0
`))
	qdir := filepath.Join(dir, "alerts")
	if err := os.RemoveAll(qdir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(qdir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	bus.Publish(downEvent("b", "s1", "x"))
	testenv.Eventually(t, 5*time.Second, "mail delivered from memory", func() bool { return len(mta.Messages()) == 1 })
	if s := r.a.Stats(); s.PersistErrors == 0 || !strings.Contains(s.LastError, "not a directory") {
		t.Errorf("persist errors %d, last error %q", s.PersistErrors, s.LastError)
	}
}

// TestBurstBoundsMailsPerRule: a whole farm going down at once gives
// `burst` mails, then one digest of the rest, not one mail per server.
func TestBurstBoundsMailsPerRule(t *testing.T) {
	mta := newFakeMTA(t)
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDoc(t, mta.addr, `
  rules:
    - to: ops@example.test
      coalesce: 1s
      burst: 3
`))
	for i := range 10 {
		bus.Publish(downEvent("farm", fmt.Sprintf("s%d", i), "dc power loss"))
	}
	bus.Publish(downEvent("farm", "s0", "again")) // has its own window: held there
	testenv.Eventually(t, 10*time.Second, "3 mails, the burst digest and s0's digest", func() bool { return len(mta.Messages()) == 5 })
	testenv.Eventually(t, 5*time.Second, "queue empty", func() bool { s := r.a.Stats(); return s.Queued == 0 && s.PendingEvents == 0 })
	var singles, burstDigest []string
	for _, m := range mta.Messages() {
		switch {
		case strings.Contains(m.Subject, "subjects"):
			burstDigest = append(burstDigest, m.Subject+"\n"+m.Body)
		default:
			singles = append(singles, m.Subject)
		}
	}
	if len(singles) != 4 || len(burstDigest) != 1 {
		t.Fatalf("singles %q, burst digests %d", singles, len(burstDigest))
	}
	for _, want := range []string{"7 events about 7 subjects (farm/s3, farm/s4, farm/s5, …): 7x server.down", "farm/s9 is DOWN: dc power loss"} {
		if !strings.Contains(burstDigest[0], want) {
			t.Errorf("burst digest lacks %q:\n%s", want, burstDigest[0])
		}
	}
}

// TestShutdownPersistsBufferedEvents: events the bus handed over but the
// alerter had not processed when it was stopped are kept and mailed by the
// next run.
func TestShutdownPersistsBufferedEvents(t *testing.T) {
	mta := newFakeMTA(t)
	dir := t.TempDir()
	c := clusterDoc(t, mta.addr, `
  rules:
    - to: ops@example.test
      coalesce: 0
`)
	bus := events.New("gw1", "dc1")
	a, err := New(Options{Bus: bus, DataDir: dir, Node: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	a.Apply(c)
	for i := range 3 {
		bus.Publish(downEvent("b", fmt.Sprintf("s%d", i), "x"))
	}
	// Stopped before it ever ran: the three events sit in the buffer.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if q := a.Stats().Queued; q != 3 {
		t.Fatalf("queued %d after shutdown, want 3", q)
	}
	startAlerter(t, Options{Bus: events.New("gw1", "dc1"), DataDir: dir}, c)
	testenv.Eventually(t, 5*time.Second, "the three mails after the restart", func() bool { return len(mta.Messages()) == 3 })
}

// A mail sent again after a restart keeps the Message-ID it was queued
// with: the relay may already have it (the crash came between its
// acceptance and the queue recording that), and a mail client, or the
// soak's checker, must see the second copy as the same mail.
func TestMessageIDSurvivesRestart(t *testing.T) {
	mta := newFakeMTA(t)
	dir := t.TempDir()
	rules := `
  rules:
    - to: ops@example.test
      coalesce: 0
`
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: dir}, clusterDoc(t, deadAddr(t), rules))
	bus.Publish(downEvent("b", "s1", "queued before the restart"))
	testenv.Eventually(t, 5*time.Second, "one mail queued", func() bool { return r.a.Stats().Queued == 1 })
	r.stop()
	files, _ := filepath.Glob(filepath.Join(dir, "alerts", "mail-*"))
	if len(files) != 1 {
		t.Fatalf("queue files %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	payload, err := decodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	var rec mailRecord
	if err := json.Unmarshal(payload, &rec); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.MessageID, "<") || !strings.HasSuffix(rec.MessageID, "@gw1>") {
		t.Fatalf("queued Message-ID %q", rec.MessageID)
	}

	startAlerter(t, Options{Bus: events.New("gw1", "dc1"), DataDir: dir}, clusterDoc(t, mta.addr, rules))
	testenv.Eventually(t, 5*time.Second, "the mail delivered after the restart", func() bool { return len(mta.Messages()) == 1 })
	if got := mta.Messages()[0].Header.Get("Message-Id"); got != rec.MessageID {
		t.Errorf("delivered with Message-ID %q, queued as %q", got, rec.MessageID)
	}
}
