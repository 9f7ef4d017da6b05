package itip

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/emersion/go-message"
	// Decodes iso-8859-1, windows-1252 and other charsets of text parts.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
)

// ErrNoCalendar is returned by ReadMessage when a message holds no calendar.
var ErrNoCalendar = errors.New("itip: no calendar in message")

// ErrLimit is returned (wrapped, with the detail) by ReadMessage when a
// message exceeds its Limits.
var ErrLimit = errors.New("itip: message exceeds limits")

// Attachment is a non-calendar attachment kept for later processing (CSV).
type Attachment struct {
	Filename    string
	ContentType string // lower-case media type, no params
	Data        []byte
}

// Message is what ReadMessage finds in an e-mail.
type Message struct {
	From        Address
	Subject     string // decoded (RFC 2047)
	MessageID   string // without <>
	Date        time.Time
	Calendars   []*Calendar  // every calendar found, MIME order, a calendar present twice (inline part + identical .ics attachment) only once
	Attachments []Attachment // CSV attachments (text/csv, application/csv, application/vnd.ms-excel or *.csv name)
}

// Limits bound ReadMessage. Zero fields take defaults.
type Limits struct {
	MaxDepth        int   // multipart nesting; default 10
	MaxParts        int   // MIME parts (multipart containers included); default 200
	MaxPartBytes    int64 // decoded size of a calendar or CSV part; default 5 MiB
	MaxMessageBytes int64 // the whole raw message; default 32 MiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 10
	}
	if l.MaxParts <= 0 {
		l.MaxParts = 200
	}
	if l.MaxPartBytes <= 0 {
		l.MaxPartBytes = 5 << 20
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 32 << 20
	}
	return l
}

// ReadMessage reads a whole RFC 5322 message and finds the calendars in it:
// inline text/calendar parts and attachments (text/calendar,
// application/ics, application/octet-stream that is named *.ics or starts
// with BEGIN:VCALENDAR, or any part named *.ics), with or without method=, in
// any transfer encoding and charset, nested in multipart/mixed, alternative
// or related, or as the top-level body. A calendar without METHOD takes the
// part's method= parameter. Attached messages (message/rfc822) are not
// searched: a forwarded invitation is not a command from the forwarder.
//
// It returns ErrNoCalendar, with the message's headers and attachments,
// when there is no calendar; an error wrapping ErrLimit
// for nesting deeper than MaxDepth, more than MaxParts parts, a calendar or
// CSV part over MaxPartBytes or a message over MaxMessageBytes; an error for
// malformed MIME found before any calendar (after one, the walk stops and
// what was found is returned). Parts that fail to parse as iCalendar are
// skipped if another calendar parses; if none does, the first parse error
// is returned.
func ReadMessage(r io.Reader, lim Limits) (msg *Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("itip: read message: internal error: %v", p)
		}
	}()
	lim = lim.withDefaults()
	lr := &limitReader{r: r, n: lim.MaxMessageBytes}
	ent, err := message.Read(lr)
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		if lr.exceeded {
			return nil, fmt.Errorf("%w: message over %d bytes", ErrLimit, lim.MaxMessageBytes)
		}
		return nil, fmt.Errorf("itip: read message header: %w", err)
	}
	w := &walker{lim: lim, lr: lr, msg: &Message{}, seen: map[[32]byte]int{}}
	w.header(mail.Header{Header: ent.Header})
	err = w.walk(ent, 0)
	if err == nil {
		// Whatever the walk did not need still counts against the limit.
		_, _ = io.Copy(io.Discard, lr)
	}
	if lr.exceeded {
		return nil, fmt.Errorf("%w: message over %d bytes", ErrLimit, lim.MaxMessageBytes)
	}
	if err != nil && (errors.Is(err, ErrLimit) || len(w.msg.Calendars) == 0) {
		return nil, err
	}
	if len(w.msg.Calendars) == 0 {
		if w.parseErr != nil {
			return nil, w.parseErr
		}
		// The rest of the message (a CSV for bulk@, say) is still useful.
		return w.msg, ErrNoCalendar
	}
	return w.msg, nil
}

// limitReader fails reads past n bytes and remembers that it did.
type limitReader struct {
	r        io.Reader
	n        int64
	exceeded bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe one byte: input that ends exactly at the limit is fine.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.exceeded = true
			return 0, ErrLimit
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

type walker struct {
	lim      Limits
	lr       *limitReader
	msg      *Message
	parts    int
	seen     map[[32]byte]int // calendar content hash → index in msg.Calendars
	parseErr error
}

// header reads From, Subject, Message-ID and Date, tolerating bad values.
func (w *walker) header(h mail.Header) {
	if list, err := h.AddressList("From"); err == nil && len(list) > 0 {
		w.msg.From = Address{Email: strings.ToLower(strings.TrimSpace(stripControls(list[0].Address))), Name: decodeWords(list[0].Name)}
	} else {
		w.msg.From = looseAddress(h.Get("From"))
	}
	subj, _ := h.Subject()
	w.msg.Subject = strings.TrimSpace(stripControls(strings.ReplaceAll(subj, "\t", " ")))
	if id, err := h.MessageID(); err == nil && id != "" {
		w.msg.MessageID = stripControls(id)
	} else {
		w.msg.MessageID = strings.TrimSpace(strings.Trim(strings.TrimSpace(stripControls(h.Get("Message-Id"))), "<>"))
	}
	// The form nearly every client writes is read directly: net/mail tries
	// dozens of layouts before it (2% of the CPU of a reply's handling).
	if d, err := time.Parse(time.RFC1123Z, strings.Trim(h.Get("Date"), " \t")); err == nil {
		w.msg.Date = d
	} else if d, err := h.Date(); err == nil {
		w.msg.Date = d
	}
}

// decodeWords decodes RFC 2047 encoded-words that net/mail leaves alone,
// such as those inside a quoted display name (Outlook writes them).
func decodeWords(s string) string {
	if strings.Contains(s, "=?") {
		dec := mime.WordDecoder{CharsetReader: message.CharsetReader}
		if d, err := dec.DecodeHeader(s); err == nil {
			s = d
		}
	}
	return strings.TrimSpace(stripControls(s))
}

// looseAddress extracts an address from a From value net/mail refuses, such
// as one with an unquoted special character in the display name.
func looseAddress(v string) Address {
	v = decodeWords(v)
	if i := strings.LastIndexByte(v, '<'); i >= 0 {
		email, _, _ := strings.Cut(v[i+1:], ">")
		return Address{
			Email: strings.ToLower(strings.TrimSpace(email)),
			Name:  strings.TrimSpace(strings.Trim(strings.TrimSpace(v[:i]), `"`)),
		}
	}
	if strings.Contains(v, "@") && !strings.ContainsAny(v, " \t") {
		return Address{Email: strings.ToLower(v)}
	}
	return Address{}
}

// walk visits e and its parts depth-first in MIME order.
func (w *walker) walk(e *message.Entity, depth int) error {
	w.parts++
	if w.parts > w.lim.MaxParts {
		return fmt.Errorf("%w: more than %d MIME parts", ErrLimit, w.lim.MaxParts)
	}
	if depth > w.lim.MaxDepth {
		return fmt.Errorf("%w: multipart nested deeper than %d", ErrLimit, w.lim.MaxDepth)
	}
	mediaType, params := contentType(e.Header)
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := e.MultipartReader()
		if mr == nil {
			return fmt.Errorf("itip: malformed MIME: %s without boundary", mediaType)
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
				if w.lr.exceeded {
					return fmt.Errorf("%w: message over %d bytes", ErrLimit, w.lim.MaxMessageBytes)
				}
				return fmt.Errorf("itip: malformed MIME: %w", err)
			}
			if err := w.walk(p, depth+1); err != nil {
				return err
			}
		}
	}
	filename := partFilename(e.Header, params)
	ext := strings.ToLower(path.Ext(filename))
	body := e.Body
	isCal := false
	switch {
	case mediaType == "message/rfc822", mediaType == "message/global":
		return nil
	case mediaType == "text/calendar", mediaType == "application/ics", mediaType == "application/x-ics",
		mediaType == "text/x-vcalendar", ext == ".ics", ext == ".ical", ext == ".icalendar", ext == ".ifb":
		isCal = true
	case mediaType == "application/octet-stream":
		// Only a part of unknown content is peeked at (and buffered for it).
		br := bufio.NewReader(e.Body)
		isCal, body = looksLikeCalendar(br), br
	}
	isCSV := !isCal && (mediaType == "text/csv" || mediaType == "application/csv" || mediaType == "text/comma-separated-values" ||
		mediaType == "application/vnd.ms-excel" || ext == ".csv")
	if !isCal && !isCSV {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(body, w.lim.MaxPartBytes+1))
	if w.lr.exceeded {
		return fmt.Errorf("%w: message over %d bytes", ErrLimit, w.lim.MaxMessageBytes)
	}
	if int64(len(data)) > w.lim.MaxPartBytes {
		return fmt.Errorf("%w: part %q (%s) over %d bytes", ErrLimit, Truncate(filename, 64), mediaType, w.lim.MaxPartBytes)
	}
	if err == io.ErrUnexpectedEOF && len(data) > 0 {
		// The last part of a multipart without its closing boundary: read
		// what is there, the parser decides whether it is whole.
		err = nil
	}
	if err != nil {
		// A broken transfer encoding: note it and go on with other parts.
		if w.parseErr == nil {
			w.parseErr = fmt.Errorf("itip: decode %s part: %w", mediaType, err)
		}
		return nil
	}
	if isCSV {
		w.msg.Attachments = append(w.msg.Attachments, Attachment{Filename: filename, ContentType: mediaType, Data: data})
		return nil
	}
	w.calendar(data, params["method"])
	return nil
}

// calendar parses one calendar part and keeps it unless it repeats one
// already found.
func (w *walker) calendar(data []byte, method string) {
	sum := sha256.Sum256(normalizeCalendar(data))
	method = token(method)
	if !isToken(method) {
		method = ""
	}
	if i, dup := w.seen[sum]; dup {
		if c := w.msg.Calendars[i]; c.Method == "" {
			c.Method = method
		}
		return
	}
	cal, err := ParseCalendar(bytes.NewReader(data))
	if err != nil {
		if w.parseErr == nil {
			w.parseErr = err
		}
		return
	}
	if cal.Method == "" {
		cal.Method = method
	}
	w.seen[sum] = len(w.msg.Calendars)
	w.msg.Calendars = append(w.msg.Calendars, cal)
}

// normalizeCalendar drops what differs between an inline calendar and the
// same calendar attached: line ends and surrounding space.
func normalizeCalendar(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.TrimSpace(b)
}

// looksLikeCalendar peeks at a body for BEGIN:VCALENDAR.
func looksLikeCalendar(br *bufio.Reader) bool {
	head, _ := br.Peek(512)
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	head = bytes.TrimLeft(head, " \t\r\n")
	const magic = "BEGIN:VCALENDAR"
	return len(head) >= len(magic) && strings.EqualFold(string(head[:len(magic)]), magic)
}

// contentType returns the lower-case media type and its parameters; a
// header go-message cannot parse is read leniently.
func contentType(h message.Header) (string, map[string]string) {
	t, params, err := h.ContentType()
	if err == nil {
		return strings.ToLower(t), params
	}
	raw := h.Get("Content-Type")
	t, _, _ = strings.Cut(raw, ";")
	return strings.ToLower(strings.TrimSpace(t)), map[string]string{}
}

// partFilename returns the part's file name (Content-Disposition filename,
// else the name in typeParams, the part's Content-Type parameters as
// contentType read them), reduced to a base name without control
// characters. (go-message's AttachmentHeader.Filename does the same, but
// reads the Content-Type again, and an absent Content-Disposition costs it
// a parse error.)
func partFilename(h message.Header, typeParams map[string]string) string {
	name, ok := "", false
	if h.Has("Content-Disposition") {
		_, params, _ := h.ContentDisposition()
		name, ok = params["filename"]
	}
	if !ok {
		name = typeParams["name"]
	}
	name = stripControls(name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return strings.TrimSpace(name)
}
