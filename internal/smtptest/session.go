package smtptest

import (
	"crypto/subtle"
	"io"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var (
	_ smtp.Backend     = (*backend)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

// backend hands each client connection a session that records into s.
type backend struct {
	s *Server
}

// NewSession is called after EHLO, and again after STARTTLS.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{s: b.s, tls: isTLS}, nil
}

// session is one SMTP session; go-smtp calls it from one goroutine.
type session struct {
	s    *Server
	tls  bool
	user string // set by a successful AUTH

	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Auth == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.Auth == nil || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		want, ok := ss.s.opts.Auth[username]
		if !ok || (identity != "" && identity != username) ||
			subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Auth != nil && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if reject := ss.s.opts.RejectMail; reject != nil {
		if err := reject(from); err != nil {
			return err
		}
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if reject := ss.s.opts.Reject; reject != nil {
		if err := reject(ss.from, to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if reject := ss.s.opts.Reject; reject != nil {
		if err := reject(ss.from, ""); err != nil {
			return err // go-smtp drains r
		}
	}
	var data []byte
	var err error
	if ss.s.opts.Discard {
		_, err = io.Copy(io.Discard, r)
	} else {
		data, err = io.ReadAll(r)
	}
	if err != nil {
		return err
	}
	ss.s.accept(Message{
		From:     ss.from,
		To:       ss.to,
		Data:     data,
		Received: time.Now(),
		TLS:      ss.tls,
		User:     ss.user,
	})
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }
