package email

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/internal/testenv"
)

// TestPermanentRefusalIsDeadLettered: a recipient that answers 550 is not
// retried: the others get the mail, the refusal is kept as a dead letter
// (across a restart), counted, published and listed in a notice to the
// other recipients; an operator's retry delivers it once the address works.
func TestPermanentRefusalIsDeadLettered(t *testing.T) {
	mta := newFakeMTA(t)
	mta.Answer("nobody@example.test", 550)
	bus := events.New("gw1", "dc1")
	sub := bus.Subscribe("t", 64, func(e events.Event) bool { return e.Kind == events.AlertRejected })
	dir := t.TempDir()
	c := clusterDoc(t, mta.addr, `
  rules:
    - to: [ops@example.test, "Nobody <nobody@example.test>"]
      coalesce: 0
`)
	r := startAlerter(t, Options{Bus: bus, DataDir: dir}, c)
	bus.Publish(downEvent("exchange", "ex1", "Layer4 connection problem"))
	testenv.Eventually(t, 5*time.Second, "the alert and the notice delivered, nothing left queued", func() bool {
		// Sent is counted just after the queue lets go of the mail.
		st := r.a.Stats()
		return len(mta.To("ops@example.test")) == 2 && st.Queued == 0 && st.Sent == 2
	})
	s := r.a.Stats()
	if s.DeadLetters != 1 || s.Rejected != 1 || s.Failed < 1 || s.RetryAt != nil || s.Sent != 2 {
		t.Errorf("stats: dead %d rejected %d failed %d retry_at %v sent %d", s.DeadLetters, s.Rejected, s.Failed, s.RetryAt, s.Sent)
	}
	if len(s.Dead) != 1 || !strings.Contains(s.Dead[0].Subject, "exchange/ex1") || !strings.Contains(s.Dead[0].Rejected["Nobody <nobody@example.test>"], "550") {
		t.Errorf("dead letters %+v", s.Dead)
	}
	if n := mta.RcptCount("nobody@example.test"); n != 1 {
		t.Errorf("RCPT TO:<nobody@> %d times, want 1 (a 5xx is not retried)", n)
	}
	var notice received
	for _, m := range mta.To("ops@example.test") {
		if strings.Contains(m.Subject, "refused") {
			notice = m
		}
	}
	if !strings.Contains(notice.Subject, "1 recipient(s) refused alerts") || !strings.Contains(notice.Body, "nobody@example.test") ||
		!strings.Contains(notice.Body, "550") || len(notice.To) != 1 {
		t.Errorf("notice to %q: %q\n%s", notice.To, notice.Subject, notice.Body)
	}
	select {
	case e := <-sub.C:
		if e.Attr("to") != "Nobody <nobody@example.test>" || !strings.Contains(e.Attr("reason"), "550") || e.Level != events.Err {
			t.Errorf("event %+v", e)
		}
	default:
		t.Error("no alert.rejected event")
	}

	// The dead letter survives a restart and is not retried by it.
	r.stop()
	r = startAlerter(t, Options{Bus: bus, DataDir: dir}, c)
	if s := r.a.Stats(); s.DeadLetters != 1 || s.Queued != 0 {
		t.Fatalf("after restart: dead %d queued %d", s.DeadLetters, s.Queued)
	}
	// The operator fixes the mailbox and retries: only nobody@ gets it.
	mta.Answer("nobody@example.test", 0)
	if n, err := r.a.RetryDead(nil, false); n != 1 || err != nil {
		t.Fatalf("RetryDead: %d, %v", n, err)
	}
	testenv.Eventually(t, 5*time.Second, "the dead letter delivered", func() bool {
		return len(mta.To("nobody@example.test")) == 1 && r.a.Stats().Queued == 0
	})
	if n := len(mta.To("ops@example.test")); n != 2 || r.a.Stats().DeadLetters != 0 {
		t.Errorf("ops got %d mails (want 2: no copy on retry), dead letters %d", n, r.a.Stats().DeadLetters)
	}
}

// TestTemporaryRefusalRetriesOnlyThatRecipient: a 451 for one recipient
// delivers to the others at once and retries that one with backoff,
// without sending the others a second copy or holding the queue.
func TestTemporaryRefusalRetriesOnlyThatRecipient(t *testing.T) {
	mta := newFakeMTA(t)
	mta.Answer("later@example.test", 451)
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDoc(t, mta.addr, `
  rules:
    - to: [ops@example.test, later@example.test]
      coalesce: 0
`))
	bus.Publish(downEvent("b", "s1", "x"))
	testenv.Eventually(t, 5*time.Second, "several tries for later@", func() bool { return mta.RcptCount("later@example.test") >= 3 })
	s := r.a.Stats()
	if s.Queued != 1 || s.DeadLetters != 0 || s.RetryAt != nil || len(mta.To("ops@example.test")) != 1 {
		t.Errorf("queued %d dead %d retry_at %v, ops got %d", s.Queued, s.DeadLetters, s.RetryAt, len(mta.To("ops@example.test")))
	}
	// Another alert is not held back by the waiting one.
	bus.Publish(downEvent("b", "s2", "x"))
	testenv.Eventually(t, 5*time.Second, "the second alert to ops", func() bool { return len(mta.To("ops@example.test")) == 2 })
	mta.Answer("later@example.test", 0)
	testenv.Eventually(t, 5*time.Second, "both delivered to later@", func() bool {
		return len(mta.To("later@example.test")) == 2 && r.a.Stats().Queued == 0
	})
	if n := len(mta.To("ops@example.test")); n != 2 {
		t.Errorf("ops got %d mails, want 2", n)
	}
	if s := r.a.Stats(); s.Sent != 2 || s.Rejected != 0 {
		t.Errorf("sent %d rejected %d", s.Sent, s.Rejected)
	}
}

// TestRefusalAcrossMailers: a recipient one relay refuses is tried through
// the next; it is dead only when every relay refused it, and pending while
// a relay could not be asked.
func TestRefusalAcrossMailers(t *testing.T) {
	for _, tt := range []struct {
		name       string
		second     func(t *testing.T) (addr string, mta *fakeMTA)
		dead, left int
	}{
		{"second relay takes it", func(t *testing.T) (string, *fakeMTA) { m := newFakeMTA(t); return m.addr, m }, 0, 0},
		{"second relay refuses too", func(t *testing.T) (string, *fakeMTA) {
			m := newFakeMTA(t)
			m.Answer("nobody@example.test", 554)
			return m.addr, m
		}, 1, 0},
		{"second relay unreachable", func(t *testing.T) (string, *fakeMTA) { return deadAddr(t), nil }, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first := newFakeMTA(t)
			first.Answer("nobody@example.test", 550)
			addr2, second := tt.second(t)
			bus := events.New("gw1", "dc1")
			r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDocMailers(t, first.addr, fmt.Sprintf("    - {name: relay2, address: %s}\n", addr2), `
  rules:
    - to: [ops@example.test, nobody@example.test]
      coalesce: 0
`))
			bus.Publish(downEvent("b", "s1", "x"))
			testenv.Eventually(t, 5*time.Second, "ops served by the first relay, the attempt settled", func() bool {
				s := r.a.Stats()
				return len(first.To("ops@example.test")) >= 1 && s.DeadLetters == tt.dead && s.Failed+s.Sent > 0 &&
					(tt.left == 0 && s.Queued == 0 || tt.left > 0 && s.Queued >= 1)
			})
			if second != nil && tt.dead == 0 && len(second.To("nobody@example.test")) != 1 {
				t.Errorf("relay2 delivered %d to nobody@", len(second.To("nobody@example.test")))
			}
			if tt.left > 0 {
				for _, m := range r.a.q.mailList() {
					if !m.Notice && (len(m.To) != 1 || m.To[0] != "nobody@example.test") {
						t.Errorf("still queued for %q, want only nobody@", m.To)
					}
				}
			}
		})
	}
}

// TestMailerChangeRequeuesDeadLetters: a new relay configuration gives the
// dead letters one more try (the refusal may have been the relay's).
func TestMailerChangeRequeuesDeadLetters(t *testing.T) {
	strict, good := newFakeMTA(t), newFakeMTA(t)
	strict.Answer("ops@example.test", 550)
	bus := events.New("gw1", "dc1")
	rules := `
  rules:
    - to: ops@example.test
      coalesce: 0
`
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDoc(t, strict.addr, rules))
	bus.Publish(downEvent("b", "s1", "x"))
	testenv.Eventually(t, 5*time.Second, "a dead letter", func() bool { s := r.a.Stats(); return s.DeadLetters == 1 && s.Queued == 0 })
	if err := r.a.Apply(clusterDoc(t, strict.addr, rules)); err != nil {
		t.Fatal(err)
	}
	if s := r.a.Stats(); s.DeadLetters != 1 {
		t.Errorf("an unchanged config requeued the dead letter")
	}
	if err := r.a.Apply(clusterDoc(t, good.addr, rules)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "delivered through the new relay", func() bool {
		return len(good.To("ops@example.test")) == 1 && r.a.Stats().DeadLetters == 0 && r.a.Stats().Queued == 0
	})
}

// TestRequeueWhileInFlight: a dead letter requeued while its mail is being
// sent to its other recipients is not lost when that attempt settles.
func TestRequeueWhileInFlight(t *testing.T) {
	q, err := openQueue(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m := &mailRecord{Created: now, Rule: "r", To: []string{"a@x.test", "b@x.test", "c@x.test"}, Subject: "s"}
	if err := q.addMail(m); err != nil {
		t.Fatal(err)
	}
	cur, _ := q.claim(m.Seq)
	// First attempt: a delivered, b refused for good, c deferred.
	if done, err := q.settle(&cur, []string{"a@x.test"}, map[string]string{"b@x.test": "550"}, now); done || err != nil {
		t.Fatalf("settle: %v %v", done, err)
	}
	q.release()
	cur, _ = q.claim(m.Seq) // the retry for c is in flight...
	if n, err := q.requeueDead(nil, false); n != 1 || err != nil {
		t.Fatalf("requeue: %d %v", n, err) // ...when the operator retries b
	}
	if done, _ := q.settle(&cur, []string{"c@x.test"}, nil, now); done {
		t.Fatal("the mail was settled with b still to try")
	}
	q.release()
	l := q.mailList()
	if len(l) != 1 || strings.Join(l[0].To, ",") != "b@x.test" {
		t.Fatalf("queued: %+v", l)
	}
	// And it is all on disk.
	q2, err := openQueue(q.dir)
	if err != nil {
		t.Fatal(err)
	}
	if l := q2.mailList(); len(l) != 1 || strings.Join(l[0].To, ",") != "b@x.test" || len(q2.deadList()) != 0 {
		t.Fatalf("after reopen: %+v, dead %d", l, len(q2.deadList()))
	}
}

// TestStalledRelayTimesOut: a relay that accepts the connection and never
// answers costs send_timeout, then the next relay delivers.
func TestStalledRelayTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // held open, silent
		}
	}()
	mta := newFakeMTA(t)
	bus := events.New("gw1", "dc1")
	c := clusterDocMailers(t, ln.Addr().String(), fmt.Sprintf("    - {name: relay2, address: %s}\n", mta.addr), `
  rules:
    - to: ops@example.test
      coalesce: 0
`)
	c.Alerts.Mailers[0].SendTimeout = config.Duration(200 * time.Millisecond)
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, c)
	bus.Publish(downEvent("b", "s1", "x"))
	// Within the default send_timeout (30s): relay1's own 200ms applied.
	testenv.Eventually(t, 20*time.Second, "delivered through relay2", func() bool { return len(mta.Messages()) == 1 })
	// The attempt's per-relay counts are recorded once it settles, just
	// after relay2 has the mail.
	testenv.Eventually(t, 5*time.Second, "relay1 counted as failed by timeout", func() bool {
		ms := r.a.Stats().Mailers
		return len(ms) > 0 && ms[0].Failed == 1 && strings.Contains(ms[0].LastError, "timeout")
	})
}
