// Package testsmtp is an in-process SMTP server for tests (go-smtp's server
// side): it records what it receives and answers RCPT as a test tells it,
// per recipient or per client (by its EHLO name). End-to-end tests that
// need a real MTA use exim instead.
package testsmtp

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// Message is one mail received (one per DATA).
type Message struct {
	From    string
	To      []string // the accepted recipients
	Helo    string   // the client's EHLO name
	Subject string   // decoded
	Header  mail.Header
	Body    string // quoted-printable decoded
	Raw     string
}

// Server is a running sink; Start makes one.
type Server struct {
	Addr string

	mu     sync.Mutex
	msgs   []Message
	rcpt   map[string]int // per recipient answer code
	all    int            // answer for every recipient (0: accept)
	defers string         // EHLO name whose RCPTs get 451
	asked  map[string]int
}

// Start listens on a loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	k := &Server{rcpt: map[string]int{}, asked: map[string]int{}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{k: k, c: c}, nil }))
	s.Domain = "sink.test"
	s.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.Addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return k
}

// Answer sets the RCPT answer for one recipient: an SMTP code such as 550
// or 451, or 0 to accept.
func (k *Server) Answer(rcpt string, code int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rcpt[rcpt] = code
}

// AnswerAll sets the RCPT answer for every recipient without its own.
func (k *Server) AnswerAll(code int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.all = code
}

// DeferHelo answers 451 to every RCPT of clients greeting as helo ("":
// none).
func (k *Server) DeferHelo(helo string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.defers = helo
}

// Messages returns what was received, in order.
func (k *Server) Messages() []Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.msgs)
}

// To returns the messages delivered to rcpt.
func (k *Server) To(rcpt string) []Message {
	var out []Message
	for _, m := range k.Messages() {
		if slices.Contains(m.To, rcpt) {
			out = append(out, m)
		}
	}
	return out
}

// With returns the messages whose subject contains s.
func (k *Server) With(s string) []Message {
	var out []Message
	for _, m := range k.Messages() {
		if strings.Contains(m.Subject, s) {
			out = append(out, m)
		}
	}
	return out
}

// RcptCount is how many RCPT commands named rcpt.
func (k *Server) RcptCount(rcpt string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.asked[rcpt]
}

type session struct {
	k    *Server
	c    *smtp.Conn
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	k := s.k
	k.mu.Lock()
	k.asked[to]++
	code, ok := k.rcpt[to]
	if !ok || code == 0 {
		code = k.all
	}
	if k.defers != "" && s.c.Hostname() == k.defers {
		code = 451
	}
	k.mu.Unlock()
	if code != 0 {
		return &smtp.SMTPError{Code: code, Message: fmt.Sprintf("answer %d for %s", code, to)}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		return err
	}
	s.k.mu.Lock()
	s.k.msgs = append(s.k.msgs, Message{From: s.from, To: s.to, Helo: s.c.Hostname(), Subject: DecodeHeader(m.Header.Get("Subject")),
		Header: m.Header, Body: string(body), Raw: string(raw)})
	s.k.mu.Unlock()
	return nil
}

// DecodeHeader decodes RFC 2047 encoded words.
func DecodeHeader(s string) string {
	out, err := new(mime.WordDecoder).DecodeHeader(s)
	if err != nil {
		return s
	}
	return strings.TrimSpace(out)
}
