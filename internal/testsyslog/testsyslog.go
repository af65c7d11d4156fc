// Package testsyslog is a syslog receiver for tests: it listens on a real
// socket (unixgram, udp, tcp with octet counting or newline framing) and
// parses what arrives as RFC 3164 or RFC 5424.
package testsyslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Msg is one received message.
type Msg struct {
	Raw                string // as received, without the framing
	Facility, Severity int
	RFC5424            bool
	Time               time.Time
	Host               string // "" when the sender left it out (3164 over a unix socket)
	App, PID, MsgID    string
	Text               string
}

// Receiver collects messages.
type Receiver struct {
	// Addr is what a log target's address should say.
	Addr string
	mu   sync.Mutex
	msgs []Msg
	errs []error
	// conns are the accepted tcp connections (CloseConns drops them).
	conns []net.Conn
	close func()
}

// Listen starts a receiver on network: "unixgram" (a socket file in a
// temporary directory), "udp" or "tcp" (127.0.0.1, a free port). It stops
// with the test.
func Listen(t testing.TB, network string) *Receiver {
	t.Helper()
	r := &Receiver{}
	switch network {
	case "unixgram", "udp":
		addr := "127.0.0.1:0"
		if network == "unixgram" {
			// A short directory: a socket path has at most 107 bytes, and
			// t.TempDir() carries the (sub)test's name.
			dir, err := os.MkdirTemp("", "syslog")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			addr = filepath.Join(dir, "log.sock")
		}
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		r.Addr, r.close = pc.LocalAddr().String(), func() { _ = pc.Close() }
		if network == "udp" {
			r.Addr = "udp://" + r.Addr
		}
		go func() {
			buf := make([]byte, 65536)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				r.add(string(buf[:n]))
			}
		}()
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.Addr, r.close = "tcp://"+ln.Addr().String(), func() { _ = ln.Close(); r.CloseConns() }
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				r.mu.Lock()
				r.conns = append(r.conns, c)
				r.mu.Unlock()
				go r.readStream(c)
			}
		}()
	default:
		t.Fatalf("testsyslog: network %q", network)
	}
	t.Cleanup(r.close)
	return r
}

// readStream reads RFC 6587 frames: octet counting ("LEN MSG") when a
// frame starts with a digit, else up to a newline.
func (r *Receiver) readStream(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		b, err := br.Peek(1)
		if err != nil {
			return
		}
		if b[0] >= '0' && b[0] <= '9' {
			ls, err := br.ReadString(' ')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSpace(ls))
			if err != nil {
				r.fail(fmt.Errorf("octet count %q: %v", ls, err))
				return
			}
			m := make([]byte, n)
			if _, err := io.ReadFull(br, m); err != nil {
				return
			}
			r.add(string(m))
			continue
		}
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		r.add(strings.TrimSuffix(l, "\n"))
	}
}

// CloseConns drops the accepted tcp connections (a receiver restart).
func (r *Receiver) CloseConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		_ = c.Close()
	}
	r.conns = nil
}

func (r *Receiver) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *Receiver) add(raw string) {
	m, err := Parse(raw)
	if err != nil {
		r.fail(err)
		return
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

// Msgs are the messages so far; Errs the ones that did not parse.
func (r *Receiver) Msgs() []Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Msg(nil), r.msgs...)
}

func (r *Receiver) Errs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

var (
	rx3164 = regexp.MustCompile(`^<(\d{1,3})>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) (?:([^ \[:]+) )?([^ \[:]+)\[(\d+)\]: (.*)$`)
	rx5424 = regexp.MustCompile(`^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) ?(.*)$`)
)

// Parse reads one message as RFC 5424 (version 1 after the PRI) or RFC
// 3164 (with or without the host name).
func Parse(raw string) (Msg, error) {
	m := Msg{Raw: raw}
	if s := rx5424.FindStringSubmatch(raw); s != nil {
		pri, _ := strconv.Atoi(s[1])
		ts, err := time.Parse(time.RFC3339Nano, s[2])
		if err != nil {
			return m, fmt.Errorf("rfc5424 timestamp %q: %v", s[2], err)
		}
		m.Facility, m.Severity, m.RFC5424, m.Time = pri/8, pri%8, true, ts
		m.Host, m.App, m.PID, m.MsgID, m.Text = s[3], s[4], s[5], s[6], s[8]
		return m, nil
	}
	if s := rx3164.FindStringSubmatch(raw); s != nil {
		pri, _ := strconv.Atoi(s[1])
		ts, err := time.ParseInLocation(time.Stamp, s[2], time.Local)
		if err != nil {
			return m, fmt.Errorf("rfc3164 timestamp %q: %v", s[2], err)
		}
		m.Facility, m.Severity, m.Time = pri/8, pri%8, ts
		m.Host, m.App, m.PID, m.Text = s[3], s[4], s[5], s[6]
		return m, nil
	}
	return m, errors.New("neither RFC 5424 nor RFC 3164: " + strconv.Quote(raw))
}

// FileLine is the message as rsyslog writes it to a file in its
// traditional format ("Mmm dd hh:mm:ss host tag[pid]: text"), what halog
// reads.
func (m Msg) FileLine() string {
	host := m.Host
	if host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%s %s %s[%s]: %s", m.Time.Format(time.Stamp), host, m.App, m.PID, m.Text)
}
