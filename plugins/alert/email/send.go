package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/vipgate/vipgate/core/config"
)

// Step is one stage of an SMTP delivery, as `vipgate alerts test` reports
// it: connect, tls, ehlo, auth, mail, rcpt, data, quit.
type Step struct {
	Step   string        `json:"step"`
	OK     bool          `json:"ok"`
	Detail string        `json:"detail,omitempty"`
	Took   time.Duration `json:"took_ns"`
}

// MailerReport is the outcome of one delivery attempt through one mailer.
type MailerReport struct {
	Mailer  string `json:"mailer"`
	Address string `json:"address"`
	TLS     string `json:"tls"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Steps   []Step `json:"steps"`

	perm bool // the failure was a 5xx answer to MAIL, RCPT or DATA
}

// envelope is one message to deliver.
type envelope struct {
	From string   // address only
	To   []string // addresses only
	Data []byte   // the whole RFC 5322 message, CRLF line ends
}

// permanentError is a 5xx answer: this server will not take this message,
// retrying it unchanged through the same server is pointless.
func permanentError(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500 && se.Code < 600
}

// mailerPassword returns the password of m, reading password_file on this
// node.
func mailerPassword(m *config.Mailer) (string, error) {
	if m.PasswordFile == "" {
		return m.Password, nil
	}
	b, err := os.ReadFile(m.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func mailerTLSConfig(m *config.Mailer) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(m.Address)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: m.InsecureSkipVerify}
	if m.ServerName != "" {
		cfg.ServerName = m.ServerName
	}
	if m.CA != "" {
		pem, err := os.ReadFile(m.CA)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s: no PEM certificate found", m.CA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// deliver sends env through one mailer, recording each step. It never
// blocks longer than the mailer's timeouts allow.
func deliver(ctx context.Context, m *config.Mailer, helo string, env envelope) (rep MailerReport) {
	rep = MailerReport{Mailer: m.Name, Address: m.Address, TLS: m.TLS}
	helo = orDefault(m.Helo, helo)
	connectTO := m.ConnectTimeout.D()
	if connectTO <= 0 {
		connectTO = config.DefaultMailerConnectTimeout
	}
	sendTO := m.SendTimeout.D()
	if sendTO <= 0 {
		sendTO = config.DefaultMailerSendTimeout
	}
	// A hard bound on the whole session: go-smtp has per-command deadlines
	// only, and the data transfer itself has none.
	ctx, cancel := context.WithTimeout(ctx, connectTO+sendTO*time.Duration(8+len(env.To)))
	defer cancel()

	var last time.Time
	begin := func() { last = time.Now() }
	step := func(name string, err error, detail string) bool {
		s := Step{Step: name, OK: err == nil, Detail: detail, Took: time.Since(last)}
		if err != nil {
			s.Detail = err.Error()
			if ctx.Err() != nil && !strings.Contains(s.Detail, "context") {
				s.Detail += " (" + ctx.Err().Error() + ")"
			}
			rep.Error = fmt.Sprintf("%s: %s", name, s.Detail)
			rep.perm = (name == "mail" || name == "rcpt" || name == "data") && permanentError(err)
		}
		rep.Steps = append(rep.Steps, s)
		return err == nil
	}

	password, err := mailerPassword(m)
	if err != nil {
		begin()
		step("auth", err, "")
		return rep
	}
	var tlsCfg *tls.Config
	if m.TLS != config.MailerTLSNone && m.TLS != "" {
		if tlsCfg, err = mailerTLSConfig(m); err != nil {
			begin()
			step("tls", err, "")
			return rep
		}
	}

	begin()
	d := net.Dialer{Timeout: connectTO}
	conn, err := d.DialContext(ctx, "tcp", m.Address)
	if !step("connect", err, m.Address) {
		return rep
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	if m.TLS == config.MailerTLSImplicit {
		begin()
		tc := tls.Client(conn, tlsCfg)
		hctx, hcancel := context.WithTimeout(ctx, connectTO)
		err = tc.HandshakeContext(hctx)
		hcancel()
		if !step("tls", err, tlsDetail(tc)) {
			return rep
		}
		conn = tc
	}

	var c *smtp.Client
	if m.TLS == config.MailerTLSStartTLS {
		begin()
		c, err = smtp.NewClientStartTLS(conn, tlsCfg)
		if err == nil && helo != "" {
			// go-smtp greets as "localhost" before STARTTLS; the EHLO
			// that matters (after it) carries our name.
			err = c.Hello(helo)
		}
		if err == nil {
			c.CommandTimeout, c.SubmissionTimeout = sendTO, sendTO
			// STARTTLS only wraps the connection; the handshake happens on
			// the next command, so make it happen here to report it as tls.
			err = c.Noop()
		}
		detail := ""
		if err == nil {
			if st, ok := c.TLSConnectionState(); ok {
				detail = fmt.Sprintf("STARTTLS %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
			}
		}
		if !step("tls", err, detail) {
			return rep
		}
	} else {
		c = smtp.NewClient(conn)
		c.CommandTimeout, c.SubmissionTimeout = sendTO, sendTO
		if helo != "" {
			if err := c.Hello(helo); err != nil {
				begin()
				step("ehlo", err, "")
				return rep
			}
		}
		begin()
		if !step("ehlo", c.Noop(), "as "+orDefault(helo, "localhost")) {
			return rep
		}
	}
	defer c.Close()

	if m.Username != "" {
		begin()
		mech := strings.ToUpper(m.Auth)
		if mech == "" {
			switch {
			case c.SupportsAuth("PLAIN"):
				mech = "PLAIN"
			case c.SupportsAuth("LOGIN"):
				mech = "LOGIN"
			default:
				_, offered := c.Extension("AUTH")
				step("auth", fmt.Errorf("server offers no PLAIN or LOGIN authentication (AUTH %q)", offered), "")
				return rep
			}
		}
		var sc sasl.Client
		if mech == "LOGIN" {
			sc = sasl.NewLoginClient(m.Username, password)
		} else {
			sc = sasl.NewPlainClient("", m.Username, password)
		}
		if !step("auth", c.Auth(sc), mech+" as "+m.Username) {
			return rep
		}
	}

	begin()
	var opts *smtp.MailOptions
	if !isASCII(env.From) || !allASCII(env.To) {
		opts = &smtp.MailOptions{UTF8: true}
	}
	if !step("mail", c.Mail(env.From, opts), "FROM:<"+env.From+">") {
		return rep
	}
	for _, to := range env.To {
		begin()
		if !step("rcpt", c.Rcpt(to, nil), "TO:<"+to+">") {
			return rep
		}
	}
	begin()
	w, err := c.Data()
	if err == nil {
		_, err = w.Write(env.Data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if !step("data", err, fmt.Sprintf("%d bytes", len(env.Data))) {
		return rep
	}
	rep.OK = true
	begin()
	// The message is accepted; a failing QUIT does not undo that.
	qerr := c.Quit()
	rep.Steps = append(rep.Steps, Step{Step: "quit", OK: qerr == nil, Detail: errString(qerr), Took: time.Since(last)})
	return rep
}

func tlsDetail(tc *tls.Conn) string {
	st := tc.ConnectionState()
	if !st.HandshakeComplete {
		return ""
	}
	return fmt.Sprintf("%s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(l []string) bool {
	for _, s := range l {
		if !isASCII(s) {
			return false
		}
	}
	return true
}

// addrOnly strips display names: "Ops <ops@example.com>" → ops@example.com.
func addrOnly(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return strings.TrimSpace(s)
}

// sendVia tries each mailer in order until one accepts the message; the
// reports say what happened on each one tried.
func sendVia(ctx context.Context, mailers []config.Mailer, helo string, env envelope) ([]MailerReport, error) {
	if len(mailers) == 0 {
		return nil, errors.New("no mailer configured")
	}
	var reps []MailerReport
	var errs []string
	permanent := true
	for i := range mailers {
		if ctx.Err() != nil {
			break
		}
		r := deliver(ctx, &mailers[i], helo, env)
		reps = append(reps, r)
		if r.OK {
			return reps, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %s", mailers[i].Name, r.Error))
		if !r.perm {
			permanent = false
		}
	}
	err := fmt.Errorf("no mailer accepted the message: %s", strings.Join(errs, "; "))
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
		permanent = false
	}
	if permanent {
		return reps, &rejectedError{err}
	}
	return reps, err
}

// rejectedError means every mailer was reachable and refused this message
// with a permanent (5xx) answer.
type rejectedError struct{ err error }

func (e *rejectedError) Error() string { return e.err.Error() }
func (e *rejectedError) Unwrap() error { return e.err }
