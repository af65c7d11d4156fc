package email

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vipgate/vipgate/core/events"
)

// The queue is a directory of small files, one per record, each written to
// a temporary name, fsynced, renamed into place and the directory fsynced:
// a crash leaves either the old state or the new one, never half a record.
// Two kinds of record:
//
//   - ev-<seq>: an event a rule selected, waiting in its coalescing window;
//   - mail-<seq>: a rendered mail waiting for delivery (with the ev-
//     records it was built from, so that a crash between writing the mail
//     and removing them does not mail those events twice);
//   - dead-<seq>: the dead letters of mail <seq>: the recipients that
//     refused it for good (5xx) and why. They are kept until an operator
//     retries or discards them, never dropped on their own.
//
// Each file starts with a header line "VGQ1 <crc32> <length>" so that a
// damaged record (disk, manual edit) is detected, reported, moved aside as
// *.corrupt and skipped instead of stopping the alerter.

const recordMagic = "VGQ1"

// eventRecord is an event selected by a rule.
type eventRecord struct {
	Seq    uint64        `json:"seq"`
	Rule   string        `json:"rule"`
	To     []string      `json:"to"`
	Key    string        `json:"key"` // the coalescing key: rule + subject
	Window time.Duration `json:"window"`
	Event  events.Event  `json:"event"`
}

// mailRecord is a rendered mail waiting for delivery.
type mailRecord struct {
	Seq     uint64    `json:"seq"`
	Created time.Time `json:"created"`
	// MessageID is fixed when the mail is queued: a copy sent again (the
	// relay accepted it, a crash came before the queue recorded that)
	// keeps it, so that mail clients and the soak see one mail.
	MessageID string    `json:"message_id,omitempty"`
	Rule      string    `json:"rule"`
	To        []string  `json:"to"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	Kinds     []string  `json:"kinds,omitempty"`
	Events    int       `json:"events"`
	Records   []uint64  `json:"records,omitempty"`
	Attempts  int       `json:"attempts"`
	NextTry   time.Time `json:"next_try,omitzero"`
	LastErr   string    `json:"last_error,omitempty"`
	// Notice marks the "alerts were dropped" mail: it is exempt from the
	// cap (or the cap would drop its own report).
	Notice  bool `json:"notice,omitempty"`
	Dropped int  `json:"dropped,omitempty"`
	Refused int  `json:"refused,omitempty"` // recipients that refused mails, in a notice
	// Delivered lists the recipients that already have the mail; To keeps
	// only those still to try.
	Delivered []string `json:"delivered,omitempty"`
	// Rejected (dead letters only): recipient → the permanent refusal.
	Rejected map[string]string `json:"rejected,omitempty"`
	DeadAt   time.Time         `json:"dead_at,omitzero"`
}

// queue is the on-disk store with an in-memory index of it.
type queue struct {
	dir string

	mu    sync.Mutex
	seq   uint64
	evs   map[uint64]*eventRecord
	mails map[uint64]*mailRecord
	dead  map[uint64]*mailRecord
	// inflight is the mail being delivered: the cap never drops it and the
	// drop notice is not updated under it (the update would be lost).
	inflight uint64
	// batch defers directory fsyncs to endBatch: a burst of events costs
	// one directory sync instead of one per record.
	batch, dirty bool
	corrupt      []string // names moved aside at open, for reporting
}

func openQueue(dir string) (*queue, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("alert queue: %w", err)
	}
	q := &queue{dir: dir, evs: map[uint64]*eventRecord{}, mails: map[uint64]*mailRecord{}, dead: map[uint64]*mailRecord{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("alert queue: %w", err)
	}
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, ".tmp-") {
			// An interrupted write: the rename never happened, so the
			// record was never acknowledged.
			os.Remove(filepath.Join(dir, name))
			continue
		}
		var kind string
		switch {
		case strings.HasSuffix(name, ".corrupt"):
			continue
		case strings.HasPrefix(name, "ev-"):
			kind = "ev"
		case strings.HasPrefix(name, "mail-"):
			kind = "mail"
		case strings.HasPrefix(name, "dead-"):
			kind = "dead"
		default:
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimPrefix(name, kind+"-"), 10, 64)
		if err == nil && seq > q.seq {
			q.seq = seq
		}
		data, rerr := os.ReadFile(filepath.Join(dir, name))
		if rerr != nil {
			return nil, fmt.Errorf("alert queue: %w", rerr)
		}
		payload, derr := decodeRecord(data)
		if derr == nil && err != nil {
			derr = errors.New("bad file name")
		}
		if derr == nil {
			if kind == "ev" {
				var r eventRecord
				if derr = json.Unmarshal(payload, &r); derr == nil {
					r.Seq = seq
					q.evs[seq] = &r
				}
			} else {
				var r mailRecord
				if derr = json.Unmarshal(payload, &r); derr == nil {
					r.Seq = seq
					if kind == "dead" {
						q.dead[seq] = &r
					} else {
						q.mails[seq] = &r
					}
				}
			}
		}
		if derr != nil {
			q.corrupt = append(q.corrupt, fmt.Sprintf("%s: %v", name, derr))
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+".corrupt")); err != nil {
				return nil, fmt.Errorf("alert queue: moving aside corrupt %s: %w", name, err)
			}
		}
	}
	// Events already folded into a queued mail are done with.
	for _, m := range q.mails {
		for _, s := range m.Records {
			if _, ok := q.evs[s]; ok {
				delete(q.evs, s)
				os.Remove(q.path("ev", s))
			}
		}
	}
	return q, nil
}

func encodeRecord(payload []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %08x %d\n", recordMagic, crc32.ChecksumIEEE(payload), len(payload))
	b.Write(payload)
	return b.Bytes()
}

func decodeRecord(data []byte) ([]byte, error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, errors.New("no header line")
	}
	f := strings.Fields(string(data[:nl]))
	if len(f) != 3 || f[0] != recordMagic {
		return nil, fmt.Errorf("bad header %q", truncate(string(data[:nl]), 40))
	}
	sum, err1 := strconv.ParseUint(f[1], 16, 32)
	n, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("bad header %q", truncate(string(data[:nl]), 40))
	}
	payload := data[nl+1:]
	if len(payload) != n {
		return nil, fmt.Errorf("length %d, header says %d (truncated write?)", len(payload), n)
	}
	if crc32.ChecksumIEEE(payload) != uint32(sum) {
		return nil, errors.New("checksum mismatch")
	}
	return payload, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (q *queue) path(kind string, seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%s-%020d", kind, seq))
}

// write stores v durably under kind-seq.
func (q *queue) write(kind string, seq uint64, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return err
	}
	final := q.path(kind, seq)
	tmp := filepath.Join(q.dir, ".tmp-"+filepath.Base(final))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(encodeRecord(payload))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("alert queue: writing %s: %w", filepath.Base(final), err)
	}
	if q.batch {
		q.dirty = true
		return nil
	}
	return q.syncDir()
}

func (q *queue) beginBatch() {
	q.mu.Lock()
	q.batch = true
	q.mu.Unlock()
}

// endBatch makes the batch's renames durable.
func (q *queue) endBatch() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.batch = false
	if !q.dirty {
		return nil
	}
	q.dirty = false
	return q.syncDir()
}

func (q *queue) syncDir() error {
	d, err := os.Open(q.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("alert queue: fsync %s: %w", q.dir, err)
	}
	return nil
}

func (q *queue) remove(kind string, seq uint64) error {
	if err := os.Remove(q.path(kind, seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("alert queue: %w", err)
	}
	return nil
}

// addEvent persists an event record and assigns its sequence number.
func (q *queue) addEvent(r *eventRecord) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	r.Seq = q.seq
	if err := q.write("ev", r.Seq, r); err != nil {
		return err
	}
	q.evs[r.Seq] = r
	return nil
}

// addMail persists a mail, then forgets the event records it was built from.
func (q *queue) addMail(m *mailRecord) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	m.Seq = q.seq
	if err := q.write("mail", m.Seq, m); err != nil {
		// Still deliver it from memory (a mail without a durable copy
		// beats no mail); the event records stay on disk, so a restart
		// before delivery mails them again rather than never.
		q.mails[m.Seq] = m
		return err
	}
	q.mails[m.Seq] = m
	for _, s := range m.Records {
		delete(q.evs, s)
		q.remove("ev", s)
	}
	return nil
}

// updateMail rewrites a mail after a failed attempt.
func (q *queue) updateMail(m *mailRecord) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.mails[m.Seq]; !ok {
		return nil // dropped meanwhile
	}
	if err := q.write("mail", m.Seq, m); err != nil {
		return err
	}
	c := *m
	q.mails[m.Seq] = &c
	return nil
}

// doneMail removes a delivered (or dropped) mail.
func (q *queue) doneMail(seq uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.mails, seq)
	return q.remove("mail", seq)
}

// settle records the outcome of an attempt at mail m in one step under the
// lock: delivered recipients leave it, refused ones move to its dead
// letters (merged with earlier ones), and the mail is rewritten with the
// recipients still to try, or removed when none is left. The dead letter is
// written first: a crash in between tries the refused recipients once
// more, which refuse again, and the merge keeps one dead letter.
func (q *queue) settle(m *mailRecord, delivered []string, rejected map[string]string, now time.Time) (done bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(rejected) > 0 {
		d := q.dead[m.Seq]
		if d == nil {
			c := *m
			c.To, c.Delivered, c.Rejected = nil, nil, map[string]string{}
			d = &c
		} else {
			c := *d
			c.Rejected = maps.Clone(d.Rejected)
			d = &c
		}
		for to, why := range rejected {
			if _, ok := d.Rejected[to]; !ok {
				d.To = append(d.To, to)
			}
			d.Rejected[to] = why
		}
		d.Attempts, d.LastErr, d.DeadAt = m.Attempts, m.LastErr, now
		if err := q.write("dead", m.Seq, d); err != nil {
			return false, err
		}
		q.dead[m.Seq] = d
	}
	cur, ok := q.mails[m.Seq]
	if !ok {
		return true, nil // dropped meanwhile
	}
	// The stored recipients, not m's: a dead letter requeued while m was
	// in flight added its recipients there.
	var left []string
	for _, to := range cur.To {
		if !slices.Contains(delivered, to) && rejected[to] == "" {
			left = append(left, to)
		}
	}
	if len(left) == 0 {
		delete(q.mails, m.Seq)
		return true, q.remove("mail", m.Seq)
	}
	c := *m
	c.To = left
	c.Delivered = append(slices.Clone(m.Delivered), delivered...)
	if err := q.write("mail", m.Seq, &c); err != nil {
		return false, err
	}
	q.mails[m.Seq] = &c
	return false, nil
}

// deadList returns copies of the dead letters, oldest first.
func (q *queue) deadList() []mailRecord {
	q.mu.Lock()
	defer q.mu.Unlock()
	return sortedCopies(q.dead)
}

// requeueDead puts dead letters back into the queue for their refused
// recipients (an operator fixed the address or the relay), or, with
// discard, deletes them. seqs selects some; none means all. It returns how
// many it handled.
func (q *queue) requeueDead(seqs []uint64, discard bool) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for seq, d := range q.dead {
		if len(seqs) > 0 && !slices.Contains(seqs, seq) {
			continue
		}
		if !discard {
			m := *d
			m.Rejected, m.DeadAt, m.Attempts, m.NextTry, m.Delivered = nil, time.Time{}, 0, time.Time{}, nil
			if cur := q.mails[seq]; cur != nil {
				// Still queued for other recipients: add these back.
				m = *cur
				for _, to := range d.To {
					if !slices.Contains(m.To, to) {
						m.To = append(m.To, to)
					}
				}
			}
			if err := q.write("mail", seq, &m); err != nil {
				return n, err
			}
			q.mails[seq] = &m
		}
		delete(q.dead, seq)
		if err := q.remove("dead", seq); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 && !q.batch {
		return n, q.syncDir()
	}
	return n, nil
}

// pendingEvents returns the event records not yet in a mail, oldest first.
func (q *queue) pendingEvents() []*eventRecord {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*eventRecord, 0, len(q.evs))
	for _, r := range q.evs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// mailList returns copies of the queued mails, oldest first.
func (q *queue) mailList() []mailRecord {
	q.mu.Lock()
	defer q.mu.Unlock()
	return sortedCopies(q.mails)
}

func sortedCopies(m map[uint64]*mailRecord) []mailRecord {
	out := make([]mailRecord, 0, len(m))
	for _, r := range m {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

func (q *queue) lens() (mails, evs, dead int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.mails), len(q.evs), len(q.dead)
}

// claim marks a mail as being delivered and returns its current content;
// false if it is gone (dropped by the cap meanwhile).
func (q *queue) claim(seq uint64) (mailRecord, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.mails[seq]
	if !ok {
		return mailRecord{}, false
	}
	q.inflight = seq
	return *m, true
}

func (q *queue) release() {
	q.mu.Lock()
	q.inflight = 0
	q.mu.Unlock()
}

// enforceCap drops the oldest ordinary mails beyond max (never the one being
// sent, never the drop notice) and returns them.
func (q *queue) enforceCap(max int) []mailRecord {
	if max <= 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var ordinary []*mailRecord
	for _, m := range q.mails {
		if !m.Notice {
			ordinary = append(ordinary, m)
		}
	}
	if len(ordinary) <= max {
		return nil
	}
	sort.Slice(ordinary, func(i, j int) bool { return ordinary[i].Seq < ordinary[j].Seq })
	var dropped []mailRecord
	for _, m := range ordinary {
		if len(ordinary)-len(dropped) <= max {
			break
		}
		if m.Seq == q.inflight {
			continue
		}
		dropped = append(dropped, *m)
		delete(q.mails, m.Seq)
		q.remove("mail", m.Seq)
	}
	return dropped
}

// updateNotice applies f to the queued notice mail, or to a new one from
// fresh() when there is none or it is being sent (an update under a mail in
// flight would be lost when its delivery removes it), and stores it, all
// under the lock so that a send cannot claim the notice in between.
func (q *queue) updateNotice(fresh func() *mailRecord, f func(m *mailRecord)) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	var m *mailRecord
	for _, cur := range q.mails {
		if cur.Notice && cur.Seq != q.inflight {
			c := *cur
			m = &c
			break
		}
	}
	if m == nil {
		m = fresh()
		q.seq++
		m.Seq = q.seq
	}
	f(m)
	// Stored in memory even when the write fails: the notice is still sent.
	q.mails[m.Seq] = m
	return q.write("mail", m.Seq, m)
}
