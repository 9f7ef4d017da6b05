package mailer

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
)

// ErrClosed is returned by Relay.Send after Relay.Close. It is temporary: the
// message was not handed over and can be sent again by a new Relay.
var ErrClosed = errors.New("mailer: relay closed")

// PermanentError means the relay refused the message for good (a 5xx
// reply): sending it again will not help. Every other error from Send is
// temporary (4xx replies, connection errors, timeouts, a cancelled context).
//
// A 5xx reply to the connection itself (greeting, EHLO, AUTH: for example
// 535 for a wrong relay password) is not permanent: it is the relay
// configuration that is wrong, not the message.
type PermanentError struct {
	Code    int    // the SMTP reply code, 0 when the error was found before talking to the relay
	Message string // the reply text, with the enhanced status code when the relay sent one
	// Recipients lists the recipients the relay refused at RCPT. When it is
	// shorter than the recipient list passed to Send, the message went to the
	// others. It is nil when the whole message was refused.
	Recipients []string
	Err        error // the underlying error, if any
}

func (e *PermanentError) Error() string {
	var b strings.Builder
	b.WriteString("mailer: ")
	if len(e.Recipients) > 0 {
		fmt.Fprintf(&b, "relay refused %s", strings.Join(e.Recipients, ", "))
	} else if e.Code != 0 {
		b.WriteString("relay refused message")
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Code, e.Message)
	} else {
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or an error it wraps, is a
// *PermanentError: the message must not be retried.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

// replyCode returns the SMTP reply code carried by err, or 0.
func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// permanent turns err into a *PermanentError when it carries a 5xx reply and
// returns nil otherwise.
func permanent(err error, rcpts []string) *PermanentError {
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code < 500 || te.Code > 599 {
		return nil
	}
	return &PermanentError{Code: te.Code, Message: te.Msg, Recipients: rcpts, Err: err}
}
