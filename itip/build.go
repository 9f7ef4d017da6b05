package itip

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// Outbound is one iMIP message we send.
type Outbound struct {
	From      Address  // header From (e.g. organizer name + rsvp address)
	To        Address  // the one recipient
	ReplyTo   *Address // optional
	Subject   string
	MessageID string // without <>; deterministic, given by the caller; no header when empty
	Date      time.Time
	Text      string    // text/plain body
	HTML      string    // text/html body (already safe HTML from the caller); no part when empty
	Calendar  *Calendar // Method REQUEST, CANCEL or REPLY
	// Headers are extra header fields (name, value), e.g. Auto-Submitted or
	// List-Unsubscribe. Names must be RFC 5322 field names and must not be
	// one BuildMessage writes itself; values are sanitized like all others.
	Headers [][2]string
}

// builtHeaders are the fields BuildMessage owns; Outbound.Headers may not
// set them.
var builtHeaders = map[string]bool{
	"mime-version": true, "date": true, "message-id": true, "from": true, "to": true,
	"reply-to": true, "subject": true, "content-type": true,
	"content-transfer-encoding": true, "content-disposition": true,
	"cc": true, "bcc": true, "sender": true,
}

// BuildMessage renders o the way Gmail sends invitations:
//
//	multipart/mixed
//	├─ multipart/alternative
//	│  ├─ text/plain; charset=UTF-8            (quoted-printable)
//	│  ├─ text/html; charset=UTF-8             (quoted-printable; only when o.HTML is set)
//	│  └─ text/calendar; method=M; charset=UTF-8 (base64, the Encode output)
//	└─ application/ics; name="invite.ics"      (base64, attachment; filename="invite.ics")
//
// Headers are MIME-Version, Date, Message-ID, From, To, Reply-To, Subject
// and o.Headers; non-ASCII text is RFC 2047-encoded, and control characters
// (CR and LF included) are stripped from every value so no value can start
// a new header field. Boundaries derive from the content, so the same
// Outbound always gives the same bytes. Lines end in CRLF and stay under
// 998 octets.
func BuildMessage(o Outbound) ([]byte, error) {
	if o.Calendar == nil {
		return nil, errors.New("itip: build message: no calendar")
	}
	method := token(o.Calendar.Method)
	if !isToken(method) {
		return nil, fmt.Errorf("itip: build message: calendar needs a METHOD, have %q", Truncate(method, 40))
	}
	ics, err := Encode(o.Calendar)
	if err != nil {
		return nil, err
	}
	from, err := headerAddress("From", o.From)
	if err != nil {
		return nil, err
	}
	to, err := headerAddress("To", o.To)
	if err != nil {
		return nil, err
	}

	var replyTo *mail.Address
	if o.ReplyTo != nil {
		if replyTo, err = headerAddress("Reply-To", *o.ReplyTo); err != nil {
			return nil, err
		}
	}
	for _, kv := range o.Headers {
		name := strings.TrimSpace(kv[0])
		if !validFieldName(name) {
			return nil, fmt.Errorf("itip: build message: invalid header name %q", Truncate(name, 40))
		}
		if builtHeaders[strings.ToLower(name)] {
			return nil, fmt.Errorf("itip: build message: header %s is set by BuildMessage", name)
		}
	}
	seed := sha256.New()
	fmt.Fprintf(seed, "%s\x00%s\x00%s\x00%s\x00", o.MessageID, o.Subject, o.Text, o.HTML)
	seed.Write(ics)
	sum := hex.EncodeToString(seed.Sum(nil))

	// go-message writes header fields in the reverse order of insertion, so
	// they go in last to first.
	var h mail.Header
	// "=_" cannot occur in quoted-printable or base64 output, so these
	// boundaries never collide with a body.
	h.SetContentType("multipart/mixed", map[string]string{"boundary": "=_m" + sum[:30]})
	h.Set("MIME-Version", "1.0")
	for i := len(o.Headers) - 1; i >= 0; i-- {
		h.Add(strings.TrimSpace(o.Headers[i][0]), mime.QEncoding.Encode("utf-8", headerText(o.Headers[i][1])))
	}
	h.SetSubject(headerText(o.Subject))
	if replyTo != nil {
		h.SetAddressList("Reply-To", []*mail.Address{replyTo})
	}
	h.SetAddressList("To", []*mail.Address{to})
	h.SetAddressList("From", []*mail.Address{from})
	if id := messageID(o.MessageID); id != "" {
		h.SetMessageID(id)
	}
	if !o.Date.IsZero() {
		h.SetDate(o.Date)
	}

	var buf bytes.Buffer
	mw, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, fmt.Errorf("itip: build message: %w", err)
	}
	var ah message.Header
	ah.SetContentType("multipart/alternative", map[string]string{"boundary": "=_a" + sum[30:60]})
	aw, err := mw.CreatePart(ah)
	if err != nil {
		return nil, fmt.Errorf("itip: build message: %w", err)
	}
	if err := writePart(aw, "text/plain", map[string]string{"charset": "UTF-8"}, "quoted-printable", "", []byte(normalizeNewlines(o.Text))); err != nil {
		return nil, err
	}
	if o.HTML != "" {
		if err := writePart(aw, "text/html", map[string]string{"charset": "UTF-8"}, "quoted-printable", "", []byte(normalizeNewlines(o.HTML))); err != nil {
			return nil, err
		}
	}
	if err := writePart(aw, "text/calendar", map[string]string{"method": method, "charset": "UTF-8"}, "base64", "", ics); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("itip: build message: %w", err)
	}
	if err := writePart(mw, "application/ics", nil, "base64", "invite.ics", ics); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("itip: build message: %w", err)
	}
	return buf.Bytes(), nil
}

// writePart adds one leaf part to a multipart writer; a non-empty filename
// (a constant token) makes it an attachment named so in both headers.
func writePart(w *message.Writer, mediaType string, params map[string]string, cte, filename string, body []byte) error {
	var h message.Header // fields in reverse order, as above
	if filename != "" {
		// Quoted like Gmail writes it; some clients look for the quotes.
		h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	}
	h.Set("Content-Transfer-Encoding", cte)
	if filename != "" {
		h.Set("Content-Type", mediaType+`; name="`+filename+`"`)
	} else {
		h.SetContentType(mediaType, params)
	}
	pw, err := w.CreatePart(h)
	if err != nil {
		return fmt.Errorf("itip: build message: %s part: %w", mediaType, err)
	}
	if _, err := io.Copy(pw, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("itip: build message: %s part: %w", mediaType, err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("itip: build message: %s part: %w", mediaType, err)
	}
	return nil
}

// headerAddress validates and sanitizes an address for a header field.
func headerAddress(field string, a Address) (*mail.Address, error) {
	email := strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`<>,;"()[]\`, r) {
			return -1
		}
		return r
	}, calAddress(a.Email))
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return nil, fmt.Errorf("itip: build message: invalid %s address %q", field, Truncate(a.Email, 64))
	}
	return &mail.Address{Name: headerText(a.Name), Address: email}, nil
}

// headerText makes s safe for a header value: valid UTF-8, every control
// character (CR, LF, tab included) replaced by a space, spaces collapsed.
func headerText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// messageID sanitizes a Message-ID given without angle brackets.
func messageID(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r >= 0x80 {
			return -1
		}
		return r
	}, s)
}

// validFieldName reports whether s is an RFC 5322 field name.
func validFieldName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// normalizeNewlines turns CRLF and lone CR into LF; the quoted-printable
// writer then ends every line in CRLF.
func normalizeNewlines(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}
