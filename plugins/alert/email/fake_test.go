package email

import (
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"
)

// fakeMTA is an in-process SMTP server (go-smtp's server side) for the fast
// unit tests; the end-to-end tests use exim.
type fakeMTA struct {
	addr   string
	reject atomic.Int32 // 0 accept, 4 answer 451, 5 answer 550 to RCPT
	mu     sync.Mutex
	msgs   []received
}

type received struct {
	From    string
	To      []string
	Subject string
	Header  mail.Header
	Body    string
}

func newFakeMTA(t *testing.T) *fakeMTA {
	t.Helper()
	f := &fakeMTA{}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &fakeSession{f: f}, nil }))
	s.Domain = "fake.test"
	s.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return f
}

func (f *fakeMTA) messages() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.msgs...)
}

type fakeSession struct {
	f    *fakeMTA
	from string
	to   []string
}

func (s *fakeSession) Reset()        { s.from, s.to = "", nil }
func (s *fakeSession) Logout() error { return nil }
func (s *fakeSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch s.f.reject.Load() {
	case 4:
		return &smtp.SMTPError{Code: 451, Message: "try again later"}
	case 5:
		return &smtp.SMTPError{Code: 550, Message: "no such user"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *fakeSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		return err
	}
	s.f.mu.Lock()
	s.f.msgs = append(s.f.msgs, received{From: s.from, To: s.to, Subject: decodeHeader(m.Header.Get("Subject")), Header: m.Header, Body: string(body)})
	s.f.mu.Unlock()
	return nil
}

func decodeHeader(s string) string {
	out, err := new(mime.WordDecoder).DecodeHeader(s)
	if err != nil {
		return s
	}
	return strings.TrimSpace(out)
}
