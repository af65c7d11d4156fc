package email

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vipgate/vipgate/core/config"
	"github.com/vipgate/vipgate/core/events"
	"github.com/vipgate/vipgate/core/health"
	"github.com/vipgate/vipgate/core/upstream"
	"github.com/vipgate/vipgate/internal/testcert"
	"github.com/vipgate/vipgate/internal/testenv"
	"github.com/vipgate/vipgate/plugins/check/builtin"
)

// The end-to-end tests run Debian's exim (exim4-daemon-light) as the MTA:
// its own config in a temp dir, in the foreground on loopback ports,
// delivering into a maildir the test reads. Nothing in /etc is used.

type eximOpts struct {
	tls  bool // STARTTLS on the plain port, implicit TLS on tlsPort
	auth bool // PLAIN and LOGIN; RCPT refused unless authenticated
	// refuse: RCPT TO nobody@ gets 550; later@ gets 450 while the file
	// deferFlag() exists.
	refuse bool
}

type eximMTA struct {
	t        *testing.T
	dir      string
	bin      string
	port     int
	tlsPort  int
	opts     eximOpts
	cmd      *exec.Cmd
	done     chan struct{}
	certFile string
}

const (
	eximUser = "vgtest"
	eximPass = "s3cret pass"
)

func newExim(t *testing.T, opts eximOpts) *eximMTA {
	t.Helper()
	testenv.RequireRoot(t)
	bin := testenv.RequireTool(t, "exim4")
	// exim's delivery processes run as Debian-exim, not as root: the
	// directory must be reachable by that user, which t.TempDir's is not.
	// Not $TMPDIR: it may sit under a 0700 home the exim user cannot enter.
	dir, err := os.MkdirTemp("/tmp", "vipgate-exim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	for _, d := range []string{"spool", "log", "Maildir"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, d), 0o777)
	}
	e := &eximMTA{t: t, dir: dir, bin: bin, opts: opts, port: testenv.FreePort(t)}
	if opts.tls {
		e.tlsPort = testenv.FreePort(t)
		e.certFile = filepath.Join(dir, "cert.pem")
		// Readable by exim's unprivileged processes; a throwaway test key.
		testcert.Write(t, testcert.Cert{CN: "mx.vipgate.test", DNS: []string{"mx.vipgate.test", "localhost"},
			IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, CA: true}, e.certFile, filepath.Join(dir, "key.pem"))
	}
	if err := os.WriteFile(filepath.Join(dir, "exim.conf"), []byte(e.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "log", "*"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), b)
			}
		}
	})
	return e
}

func (e *eximMTA) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `primary_hostname = mx.vipgate.test
exim_user = Debian-exim
exim_group = Debian-exim
spool_directory = %[1]s/spool
log_file_path = %[1]s/log/%%slog
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
keep_environment =
acl_smtp_rcpt = acl_check_rcpt
`, e.dir)
	if e.opts.tls {
		fmt.Fprintf(&b, "tls_certificate = %[1]s/cert.pem\ntls_privatekey = %[1]s/key.pem\ntls_advertise_hosts = *\ntls_on_connect_ports = %[2]d\n", e.dir, e.tlsPort)
	} else {
		b.WriteString("tls_advertise_hosts =\n")
	}
	if e.opts.auth {
		b.WriteString("auth_advertise_hosts = *\n")
	}
	b.WriteString("begin acl\nacl_check_rcpt:\n")
	if e.opts.auth {
		b.WriteString("  deny message = authentication required\n       !authenticated = *\n")
	}
	if e.opts.refuse {
		fmt.Fprintf(&b, `  deny message = no such user here
       local_parts = nobody
  defer message = mailbox busy, try again later
       local_parts = later
       condition = ${if exists{%s}}
`, e.deferFlag())
	}
	fmt.Fprintf(&b, `  accept
begin routers
all:
  driver = accept
  transport = maildir
begin transports
maildir:
  driver = appendfile
  directory = %s/Maildir
  maildir_format
  create_directory
  user = Debian-exim
  group = Debian-exim
  envelope_to_add
  return_path_add
`, e.dir)
	if e.opts.auth {
		fmt.Fprintf(&b, `begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and {{eq{$auth2}{%[1]s}}{eq{$auth3}{%[2]s}}}}
  server_set_id = $auth2
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${if and {{eq{$auth1}{%[1]s}}{eq{$auth2}{%[2]s}}}}
  server_set_id = $auth1
`, eximUser, eximPass)
	}
	return b.String()
}

// start runs exim in the foreground and waits until it accepts connections.
func (e *eximMTA) start() {
	e.t.Helper()
	ports := fmt.Sprint(e.port)
	if e.tlsPort != 0 {
		ports += fmt.Sprintf(" : %d", e.tlsPort)
	}
	e.cmd = exec.Command(e.bin, "-C", filepath.Join(e.dir, "exim.conf"), "-bdf", "-oX", ports)
	var out bytes.Buffer
	e.cmd.Stdout, e.cmd.Stderr = &out, &out
	if err := e.cmd.Start(); err != nil {
		e.t.Fatalf("exim: %v", err)
	}
	e.done = make(chan struct{})
	go func() { e.cmd.Wait(); close(e.done) }()
	testenv.Eventually(e.t, 10*time.Second, "exim listening", func() bool {
		select {
		case <-e.done:
			e.t.Fatalf("exim exited: %s", out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", e.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (e *eximMTA) stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		e.cmd.Process.Kill()
		<-e.done
	}
	e.cmd = nil
}

func (e *eximMTA) deferFlag() string { return filepath.Join(e.dir, "defer-later") }

func (e *eximMTA) addr() string    { return fmt.Sprintf("127.0.0.1:%d", e.port) }
func (e *eximMTA) tlsAddr() string { return fmt.Sprintf("127.0.0.1:%d", e.tlsPort) }

// messages reads the maildir, in delivery order.
func (e *eximMTA) messages() []received {
	var files []string
	for _, sub := range []string{"new", "cur"} {
		l, _ := filepath.Glob(filepath.Join(e.dir, "Maildir", sub, "*"))
		files = append(files, l...)
	}
	// Maildir names start with the delivery time in seconds and then
	// microseconds (M<usec>): sort on the file's mtime, then name.
	sort.Slice(files, func(i, j int) bool {
		a, _ := os.Stat(files[i])
		b, _ := os.Stat(files[j])
		if a == nil || b == nil || a.ModTime().Equal(b.ModTime()) {
			return files[i] < files[j]
		}
		return a.ModTime().Before(b.ModTime())
	})
	var out []received
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		m, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			e.t.Errorf("%s: %v", f, err)
			continue
		}
		body, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
		to := strings.Split(m.Header.Get("Envelope-To"), ",")
		for i := range to {
			to[i] = strings.TrimSpace(to[i])
		}
		out = append(out, received{From: strings.Trim(m.Header.Get("Return-Path"), "<>"), To: to,
			Subject: decodeHeader(m.Header.Get("Subject")), Header: m.Header, Body: strings.ReplaceAll(string(body), "\r\n", "\n")})
	}
	return out
}

// TestEximServerDownAndUp: a real backend behind a real TCP health check
// goes down and comes back; exim receives the two mails.
func TestEximServerDownAndUp(t *testing.T) {
	mta := newExim(t, eximOpts{})
	mta.start()

	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	baddr := backend.Addr().String()
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go serve(backend)

	bus := events.New("gw1", "dc1")
	srv := upstream.NewServer("exchange", "ex1", baddr, 1)
	other := upstream.NewServer("exchange", "ex2", "127.0.0.1:1", 1)
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir(), State: fakeState{"exchange": {srv, other}}}, clusterDoc(t, mta.addr(), `
  rules:
    - name: exchange-ops
      events: [server.up, server.down]
      min_level: notice
      to: [ops@example.test]
      coalesce: 0
`))

	reg := health.NewRegistry()
	builtin.Register(reg)
	hm := health.NewManager(reg, bus, nil)
	check := &config.Check{Kind: "tcp", Inter: config.Duration(50 * time.Millisecond), Rise: 1, Fall: 1, Timeout: config.Duration(500 * time.Millisecond)}
	hm.Reconcile([]health.Item{{Server: srv, Check: check, InitState: "up"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hm.Run(ctx)
	testenv.Eventually(t, 5*time.Second, "first check passed", func() bool { return srv.Checked() && srv.Health() == upstream.Up })

	backend.Close()
	testenv.Eventually(t, 10*time.Second, "DOWN mail in the maildir", func() bool { return len(mta.messages()) == 1 })
	backend, err = net.Listen("tcp", baddr)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", baddr, err)
	}
	defer backend.Close()
	go serve(backend)
	testenv.Eventually(t, 10*time.Second, "UP mail in the maildir", func() bool { return len(mta.messages()) == 2 })

	var down, up received
	for _, m := range mta.messages() {
		if strings.Contains(m.Subject, "is DOWN") {
			down = m
		} else {
			up = m
		}
	}
	if !strings.HasPrefix(down.Subject, "[vipgate] WARNING: server exchange/ex1 is DOWN") {
		t.Errorf("down subject %q", down.Subject)
	}
	if !strings.HasPrefix(up.Subject, "[vipgate] NOTICE: server exchange/ex1 is UP") {
		t.Errorf("up subject %q", up.Subject)
	}
	for _, want := range []string{"Event:         server.down (warning)", "Where:         node gw1, datacenter dc1", "address: " + baddr, "backend: exchange", "reason: "} {
		if !strings.Contains(down.Body, want) {
			t.Errorf("down body lacks %q:\n%s", want, down.Body)
		}
	}
	if !strings.Contains(up.Body, "Event:         server.up (notice)") || !strings.Contains(up.Body, "backend exchange: ") {
		t.Errorf("up body:\n%s", up.Body)
	}
	if down.From != "vipgate@example.test" || down.To[0] != "ops@example.test" {
		t.Errorf("envelope %q -> %q", down.From, down.To)
	}
	testenv.Eventually(t, 5*time.Second, "both counted as sent", func() bool { return r.a.Stats().Sent == 2 })
	if s := r.a.Stats(); s.Failed != 0 || s.Queued != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestEximOutageRestartThenDelivery: with the MTA down, alerts queue; the
// alerter restarts (same data dir); when the MTA returns every alert
// arrives.
func TestEximOutageRestartThenDelivery(t *testing.T) {
	mta := newExim(t, eximOpts{})
	dir := t.TempDir()
	rules := `
  rules:
    - to: ops@example.test
      coalesce: 0
`
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: dir}, clusterDoc(t, mta.addr(), rules))
	for i := range 5 {
		bus.Publish(downEvent("web", fmt.Sprintf("w%d", i), "connection refused"))
	}
	testenv.Eventually(t, 5*time.Second, "five mails queued and attempts failing", func() bool {
		s := r.a.Stats()
		return s.Queued == 5 && s.Failed > 0
	})
	r.stop()

	bus2 := events.New("gw1", "dc1")
	r2 := startAlerter(t, Options{Bus: bus2, DataDir: dir}, clusterDoc(t, mta.addr(), rules))
	bus2.Publish(downEvent("web", "w5", "after the restart"))
	testenv.Eventually(t, 5*time.Second, "six queued", func() bool { return r2.a.Stats().Queued == 6 })

	mta.start()
	testenv.Eventually(t, 15*time.Second, "all six delivered", func() bool { return len(mta.messages()) == 6 })
	testenv.Eventually(t, 5*time.Second, "queue empty", func() bool { return r2.a.Stats().Queued == 0 })
	var got []string
	for _, m := range mta.messages() {
		got = append(got, m.Subject)
	}
	sort.Strings(got)
	for i, s := range got {
		if want := fmt.Sprintf("server web/w%d is DOWN", i); !strings.Contains(s, want) {
			t.Errorf("mail %d: %q lacks %q", i, s, want)
		}
	}
}

// TestEximStartTLSAndAuth covers STARTTLS and implicit TLS, AUTH PLAIN and
// LOGIN against exim's plaintext authenticator, and a refused password.
func TestEximStartTLSAndAuth(t *testing.T) {
	mta := newExim(t, eximOpts{tls: true, auth: true})
	mta.start()
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(eximPass+"\n"), 0o600)

	tests := []struct {
		name, tls, addr, auth, password string
		wantOK                          bool
		wantSteps, wantErr              string
	}{
		{"starttls plain", "starttls", mta.addr(), "plain", "", true, "connect,tls,auth,mail,rcpt,data,quit", ""},
		{"starttls login", "starttls", mta.addr(), "login", "", true, "connect,tls,auth,mail,rcpt,data,quit", ""},
		{"implicit auto", "implicit", mta.tlsAddr(), "", "", true, "connect,tls,ehlo,auth,mail,rcpt,data,quit", ""},
		{"wrong password", "starttls", mta.addr(), "plain", "nope", false, "connect,tls,auth", "535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := config.Mailer{Name: "exim", Address: tt.addr, TLS: tt.tls, CA: mta.certFile, Username: eximUser, Auth: tt.auth,
				ConnectTimeout: config.Duration(5 * time.Second), SendTimeout: config.Duration(10 * time.Second)}
			if tt.password != "" {
				m.Password = tt.password
			} else {
				m.PasswordFile = pwFile
			}
			ac := &config.Alerts{From: "vipgate@example.test", Mailers: []config.Mailer{m}}
			before := len(mta.messages())
			rep := TestMailers(context.Background(), ac, "gw1", "dc1", []string{"ops@example.test"})
			var steps []string
			for _, s := range rep.Mailers[0].Steps {
				steps = append(steps, s.Step)
			}
			if got := strings.Join(steps, ","); got != tt.wantSteps || rep.OK != tt.wantOK {
				t.Fatalf("ok %v steps %s, want %v %s: %+v", rep.OK, got, tt.wantOK, tt.wantSteps, rep.Mailers[0])
			}
			if !tt.wantOK {
				if !strings.Contains(rep.Mailers[0].Error, tt.wantErr) {
					t.Errorf("error %q lacks %q", rep.Mailers[0].Error, tt.wantErr)
				}
				return
			}
			if tls := rep.Mailers[0].Steps[1]; !strings.Contains(tls.Detail, "TLS 1.") {
				t.Errorf("tls step detail %q", tls.Detail)
			}
			testenv.Eventually(t, 10*time.Second, "the test mail", func() bool { return len(mta.messages()) == before+1 })
			got := mta.messages()[before]
			if !strings.Contains(got.Body, "test mail from vipgate alerts test") {
				t.Errorf("body %q", got.Body)
			}
			// exim records TLS and the authenticated id in Received.
			if rcv := got.Header.Get("Received"); !strings.Contains(rcv, "TLS") || !strings.Contains(rcv, "esmtpsa") {
				t.Errorf("Received %q: want TLS and authenticated esmtpsa", rcv)
			}
		})
	}

	// Without TLS the server does not advertise AUTH to us, and without
	// authentication it refuses the recipient: the alerter must not send
	// the password in clear and must report why.
	ac := &config.Alerts{From: "vipgate@example.test", Mailers: []config.Mailer{{Name: "plain", Address: mta.addr(), TLS: "none"}}}
	rep := TestMailers(context.Background(), ac, "gw1", "dc1", []string{"ops@example.test"})
	if rep.OK || !strings.Contains(rep.Mailers[0].Error, "rcpt") || !strings.Contains(rep.Mailers[0].Error, "authentication required") {
		t.Errorf("unauthenticated: %+v", rep.Mailers[0])
	}
}

// TestEximFlapDigest: 50 transitions of one server produce the first mail
// and one digest with the counts.
func TestEximFlapDigest(t *testing.T) {
	mta := newExim(t, eximOpts{})
	mta.start()
	bus := events.New("gw1", "dc1")
	startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDoc(t, mta.addr(), `
  rules:
    - events: [server.*]
      min_level: notice
      to: ops@example.test
      coalesce: 2s
`))
	for i := range 50 {
		if i%2 == 0 {
			bus.Publish(downEvent("exchange", "ex1", "Layer4 connection problem"))
		} else {
			bus.Publish(upEvent("exchange", "ex1", "Layer4 check passed"))
		}
	}
	testenv.Eventually(t, 15*time.Second, "first mail and digest", func() bool { return len(mta.messages()) >= 2 })
	msgs := mta.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d mails, want 2", len(msgs))
	}
	var digest received
	for _, m := range msgs {
		if strings.Contains(m.Subject, "events about") {
			digest = m
		}
	}
	if !strings.Contains(digest.Subject, "49 events about exchange/ex1: 25x server.up, 24x server.down") {
		t.Errorf("digest subject %q", digest.Subject)
	}
	if !strings.Contains(digest.Body, "   25 x server.up") || !strings.Contains(digest.Body, "   24 x server.down") {
		t.Errorf("digest body:\n%s", digest.Body)
	}
}

// TestEximRefusals: exim refuses one recipient for good (550) and defers
// another (450). The others get the alert at once; the 550 becomes a dead
// letter reported to the others; the deferred one is retried until exim
// takes it, without copies to those who have it.
func TestEximRefusals(t *testing.T) {
	mta := newExim(t, eximOpts{refuse: true})
	if err := os.WriteFile(mta.deferFlag(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mta.start()
	bus := events.New("gw1", "dc1")
	r := startAlerter(t, Options{Bus: bus, DataDir: t.TempDir()}, clusterDoc(t, mta.addr(), `
  rules:
    - to: [ops@example.test, nobody@example.test, later@example.test]
      coalesce: 0
`))
	bus.Publish(downEvent("exchange", "ex1", "Layer4 connection problem"))
	delivered := func(to string) (subjects []string) {
		for _, m := range mta.messages() {
			if slices.Contains(m.To, to) {
				subjects = append(subjects, m.Subject)
			}
		}
		return subjects
	}
	// ops gets the alert and the notice; both wait for later@.
	testenv.Eventually(t, 10*time.Second, "ops served, nobody@ dead, later@ waiting", func() bool {
		s := r.a.Stats()
		return len(delivered("ops@example.test")) == 2 && s.DeadLetters == 1 && s.Queued == 2
	})
	s := r.a.Stats()
	if s.Rejected != 1 || !strings.Contains(s.Dead[0].Rejected["nobody@example.test"], "550") || s.RetryAt != nil {
		t.Errorf("rejected %d, dead %+v, retry_at %v", s.Rejected, s.Dead, s.RetryAt)
	}
	ops := strings.Join(delivered("ops@example.test"), "\n")
	if !strings.Contains(ops, "exchange/ex1 is DOWN") || !strings.Contains(ops, "refused") {
		t.Errorf("ops got %q", ops)
	}
	if err := os.Remove(mta.deferFlag()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "later@ served once exim takes it", func() bool {
		return len(delivered("later@example.test")) == 2 && r.a.Stats().Queued == 0
	})
	if n, d := len(delivered("ops@example.test")), delivered("nobody@example.test"); n != 2 || len(d) != 0 {
		t.Errorf("ops got %d mails (want 2), nobody@ got %q", n, d)
	}
}
