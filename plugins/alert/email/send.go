package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"slices"
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
	OK      bool   `json:"ok"` // every recipient accepted the mail
	Error   string `json:"error,omitempty"`
	Steps   []Step `json:"steps"`
	// Per recipient: who has the mail, who refused it for good (a 5xx
	// answer to MAIL, RCPT or DATA) and who may take it later (4xx). A
	// recipient in none of them was not reached (connection, TLS, AUTH).
	Delivered []string          `json:"delivered,omitempty"`
	Rejected  map[string]string `json:"rejected,omitempty"`
	Deferred  map[string]string `json:"deferred,omitempty"`
}

// envelope is one message to deliver.
type envelope struct {
	From string   // address only
	To   []string // addresses only
	Data []byte   // the whole RFC 5322 message, CRLF line ends
	// Accepted, when set, is told the recipients a server took the message
	// for (its 250 after the final dot), before QUIT: the delivery is
	// recorded then, so a crash before QUIT does not send it again.
	Accepted func(to []string)
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
		pool, err := config.LoadCA(m.CA)
		if err != nil {
			return nil, err
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
	if err := c.Mail(env.From, opts); !step("mail", err, "FROM:<"+env.From+">") {
		if permanentError(err) {
			rep.refuse(env.To, "MAIL FROM: "+err.Error())
		}
		return rep
	}
	var accepted []string
	for _, to := range env.To {
		begin()
		err := c.Rcpt(to, nil)
		step("rcpt", err, "TO:<"+to+">")
		var se *smtp.SMTPError
		switch {
		case err == nil:
			accepted = append(accepted, to)
		case permanentError(err):
			rep.refuse([]string{to}, err.Error())
		case errors.As(err, &se) && se.Code != 421:
			// A 4xx about this recipient (mailbox busy, greylisting): the
			// others may still take the mail.
			rep.defer_([]string{to}, err.Error())
		default:
			// 421 or a broken connection: the session is over.
			return rep
		}
	}
	if len(accepted) == 0 {
		begin()
		qerr := c.Quit()
		rep.Steps = append(rep.Steps, Step{Step: "quit", OK: qerr == nil, Detail: errString(qerr), Took: time.Since(last)})
		return rep
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
		var se *smtp.SMTPError
		switch {
		case permanentError(err):
			rep.refuse(accepted, "DATA: "+err.Error())
		case errors.As(err, &se):
			rep.defer_(accepted, "DATA: "+err.Error())
		}
		return rep
	}
	rep.Delivered = accepted
	if env.Accepted != nil {
		env.Accepted(accepted)
	}
	rep.OK = len(accepted) == len(env.To)
	if !rep.OK {
		rep.Error = fmt.Sprintf("delivered to %d of %d recipients; %s", len(accepted), len(env.To), rep.Error)
	}
	begin()
	// The message is accepted; a failing QUIT does not undo that.
	qerr := c.Quit()
	rep.Steps = append(rep.Steps, Step{Step: "quit", OK: qerr == nil, Detail: errString(qerr), Took: time.Since(last)})
	return rep
}

// refuse records recipients the server refused for good.
func (r *MailerReport) refuse(to []string, why string) {
	if r.Rejected == nil {
		r.Rejected = map[string]string{}
	}
	for _, t := range to {
		r.Rejected[t] = why
	}
}

// defer_ records recipients the server may take later.
func (r *MailerReport) defer_(to []string, why string) {
	if r.Deferred == nil {
		r.Deferred = map[string]string{}
	}
	for _, t := range to {
		r.Deferred[t] = why
	}
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

// outcome is what one delivery attempt through the mailers achieved, per
// recipient.
type outcome struct {
	reps      []MailerReport
	delivered []string
	// rejected: refused with a 5xx by every mailer that answered about
	// the recipient (and none of the others could be reached or deferred
	// it): retrying cannot help.
	rejected map[string]string
	// pending: not delivered, may succeed later.
	pending []string
	// unreached: no mailer got as far as the recipients (connect, TLS,
	// EHLO, AUTH, a 4xx to MAIL): every mail would fail the same way now.
	unreached bool
	err       error // a summary when not everything was delivered
}

// sendVia tries the mailers in order; each takes the recipients the ones
// before it did not (a relay that refuses a recipient may not be the only
// way to it).
func sendVia(ctx context.Context, mailers []config.Mailer, helo string, env envelope) outcome {
	var o outcome
	if len(mailers) == 0 {
		o.pending, o.unreached, o.err = env.To, true, errors.New("no mailer configured")
		return o
	}
	left := env.To
	refused := map[string][]string{} // recipient → each mailer's refusal
	retry := map[string]bool{}       // a mailer could not settle it
	var errs []string
	reached := false
	for i := range mailers {
		if ctx.Err() != nil || len(left) == 0 {
			break
		}
		e := env
		e.To = left
		r := deliver(ctx, &mailers[i], helo, e)
		o.reps = append(o.reps, r)
		if r.Error != "" {
			errs = append(errs, fmt.Sprintf("%s: %s", mailers[i].Name, r.Error))
		}
		o.delivered = append(o.delivered, r.Delivered...)
		reached = reached || len(r.Delivered)+len(r.Rejected)+len(r.Deferred) > 0
		var next []string
		for _, to := range left {
			switch {
			case slices.Contains(r.Delivered, to):
			case r.Rejected[to] != "":
				refused[to] = append(refused[to], mailers[i].Name+": "+r.Rejected[to])
				next = append(next, to)
			default:
				retry[to] = true
				next = append(next, to)
			}
		}
		left = next
	}
	for _, to := range left {
		if len(refused[to]) > 0 && !retry[to] && ctx.Err() == nil {
			if o.rejected == nil {
				o.rejected = map[string]string{}
			}
			o.rejected[to] = strings.Join(refused[to], "; ")
		} else {
			o.pending = append(o.pending, to)
		}
	}
	o.unreached = !reached
	if len(left) > 0 {
		o.err = fmt.Errorf("not delivered to %s: %s", strings.Join(left, ", "), strings.Join(errs, "; "))
		if ctx.Err() != nil {
			o.err = fmt.Errorf("%w (%v)", o.err, ctx.Err())
		}
	}
	return o
}
