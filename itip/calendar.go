// Package itip reads and builds iTIP (RFC 5546) scheduling messages carried
// in iCalendar (RFC 5545) objects, and their iMIP (RFC 6047) e-mail form.
//
// Reading is tolerant of what real clients send (Outlook replies without an
// ORGANIZER, Windows and Lotus TZIDs, upper-case MAILTO:, LF line ends, QP or
// base64 parts without a method= parameter) and bounded: it never panics and
// caps the work any input can cause. Writing is strict: Encode and
// BuildMessage produce folded, escaped, injection-free output.
//
// Calendars are read into github.com/emersion/go-ical's types, and written
// by its encoder. Input is read into those types by a pre-pass of our own
// that repairs or drops what real clients get wrong and bounds what it
// keeps; output goes through a writer that folds its lines.
//
// The package embeds Go's time zone database (time/tzdata), so time zones
// resolve the same way on every machine.
package itip

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	// Zone lookups must not depend on the host having /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-message/charset"
)

// Limits of ParseCalendar. Input beyond them is dropped (attendees, dates,
// events, time zones) or refused (size, nesting), so that any input costs
// bounded time and memory.
const (
	// MaxCalendarBytes is the largest iCalendar object ParseCalendar reads.
	MaxCalendarBytes = 16 << 20
	// MaxAttendees is the number of ATTENDEE properties kept per event;
	// the rest are ignored.
	MaxAttendees = 10000
	// MaxEvents is the number of VEVENTs kept per calendar.
	MaxEvents = 10000

	maxTotalAttendees = 100000 // per calendar
	maxDates          = 10000  // EXDATE or RDATE values kept per event
	maxTotalDates     = 100000 // EXDATE and RDATE values kept per calendar
	maxTimezones      = 100
	maxDepth          = 16 // component nesting
	maxLines          = 2000000
	maxTZRules        = 100  // observances kept per VTIMEZONE
	maxTZDates        = 1000 // RDATEs kept per observance
)

// Address is a calendar user address: e-mail lower-cased with "mailto:" (any
// case) stripped, plus display name (CN or From name).
type Address struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
	// EmailParam is the RFC 6638 EMAIL parameter when it differs from
	// Email, lower-cased. iCloud writes its imip.me.com relay address as the
	// ORGANIZER value and the organizer's real address here.
	EmailParam string `json:"email_param,omitempty"`
}

// Time is a DATE or DATE-TIME value as written plus its resolved instant.
type Time struct {
	Value  string    `json:"value"`             // "20250220T190000", "20250220T180000Z" or "20250220"
	TZID   string    `json:"tzid,omitempty"`    // TZID parameter, quotes removed; "" for UTC, floating or DATE
	AllDay bool      `json:"all_day,omitempty"` // VALUE=DATE
	UTC    time.Time `json:"utc"`               // resolved instant in UTC (floating or unresolvable zone: read as UTC)
}

// IsZero reports whether t holds no value.
func (t Time) IsZero() bool { return t.Value == "" && t.UTC.IsZero() }

// NewTime returns the Time for t: a UTC DATE-TIME ("…Z") when t is in UTC,
// else the wall clock in t's location with that location's name as TZID.
func NewTime(t time.Time) Time {
	t = t.Truncate(time.Second)
	if loc := t.Location(); loc == time.UTC || loc.String() == "UTC" || loc == time.Local {
		u := t.UTC()
		return Time{Value: u.Format(layoutUTC), UTC: u}
	}
	return Time{Value: t.Format(layoutLocal), TZID: t.Location().String(), UTC: t.UTC()}
}

// NewDate returns the all-day DATE Time for the calendar date of t.
func NewDate(t time.Time) Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return Time{Value: d.Format(layoutDate), AllDay: true, UTC: d}
}

// Attendee is one ATTENDEE property.
type Attendee struct {
	Address
	PartStat    string `json:"partstat,omitempty"` // upper-case: NEEDS-ACTION, ACCEPTED, DECLINED, TENTATIVE, DELEGATED ("" if absent)
	Role        string `json:"role,omitempty"`
	CUType      string `json:"cutype,omitempty"`
	RSVP        bool   `json:"rsvp,omitempty"`
	DelegatedTo string `json:"delegated_to,omitempty"` // e-mail
}

// Event is one VEVENT.
type Event struct {
	UID          string     `json:"uid"`
	RecurrenceID *Time      `json:"recurrence_id,omitempty"`
	Sequence     int        `json:"sequence"`
	DTStamp      time.Time  `json:"dtstamp"`
	Created      time.Time  `json:"created,omitzero"`
	LastModified time.Time  `json:"last_modified,omitzero"`
	Organizer    Address    `json:"organizer"`
	Attendees    []Attendee `json:"attendees,omitempty"`
	Summary      string     `json:"summary,omitempty"`
	Description  string     `json:"description,omitempty"`
	Location     string     `json:"location,omitempty"`
	Comment      string     `json:"comment,omitempty"` // several COMMENTs are joined by newlines
	URL          string     `json:"url,omitempty"`
	Status       string     `json:"status,omitempty"` // upper-case; "" when absent
	Transp       string     `json:"transp,omitempty"`
	Class        string     `json:"class,omitempty"`
	Start        Time       `json:"start"`
	End          Time       `json:"end"`               // DTEND; else DTSTART+DURATION (same TZID); else +1 day for all-day; else = Start (an end not after Start is ignored)
	RRule        string     `json:"rrule,omitempty"`   // raw RRULE value
	ExDates      []Time     `json:"exdates,omitempty"` // EXDATE may hold comma lists: one Time each
	RDates       []Time     `json:"rdates,omitempty"`
}

// Calendar is one VCALENDAR object with its events.
type Calendar struct {
	Method string  `json:"method"` // upper-case; METHOD property, else the MIME method= parameter when read from a message
	ProdID string  `json:"prodid,omitempty"`
	Events []Event `json:"events"`
	// Timezones maps each TZID the calendar defines to its whole VTIMEZONE
	// component as folded CRLF iCalendar text (BEGIN:VTIMEZONE…END:VTIMEZONE\r\n),
	// written by go-ical (properties in alphabetical order). A VTIMEZONE
	// go-ical refuses to write, such as one without observances, is left out.
	Timezones map[string]string `json:"timezones,omitempty"`
}

const (
	layoutDate  = "20060102"
	layoutLocal = "20060102T150405"
	layoutUTC   = "20060102T150405Z"
)

// ParseCalendar reads one iCalendar object (the first VCALENDAR in r; text
// after its END is ignored). It accepts CRLF, LF or CR line ends, folded lines,
// a missing final newline, quoted or unquoted parameters, and text that is not
// UTF-8 (read as Windows-1252 when it holds no UTF-8 at all). Lines that are
// not content lines are skipped; a missing or mismatched END is an error.
//
// It never panics and bounds its work: input over MaxCalendarBytes is
// refused, components nest at most 16 deep, and at most MaxAttendees
// attendees per event and MaxEvents events are kept (the rest are dropped
// without notice). A parameter value over 16 KiB is dropped with its
// parameter, and a calendar whose parameters (of the properties read) add
// up to more than 2 MiB is refused.
func ParseCalendar(r io.Reader) (cal *Calendar, err error) {
	defer func() {
		if p := recover(); p != nil {
			cal, err = nil, fmt.Errorf("itip: parse calendar: internal error: %v", p)
		}
	}()
	data, err := io.ReadAll(io.LimitReader(r, MaxCalendarBytes+1))
	if err != nil {
		return nil, fmt.Errorf("itip: read calendar: %w", err)
	}
	if len(data) > MaxCalendarBytes {
		return nil, fmt.Errorf("itip: calendar larger than %d bytes", MaxCalendarBytes)
	}
	root, err := decodeCalendar(decodeBytes(data), ical.CompCalendar)
	if err != nil {
		return nil, err
	}
	return buildCalendar(root.Component), nil
}

// decodeBytes turns data into valid UTF-8: UTF-8 with a few bad bytes keeps
// its text (bad bytes become U+FFFD); data without any multi-byte UTF-8 but
// with high bytes is decoded as Windows-1252, which is what old clients that
// omit the charset send.
func decodeBytes(data []byte) string {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if utf8.Valid(data) {
		return string(data)
	}
	// Some clients fold lines inside a multi-byte character, which RFC
	// 5545 (section 3.1) asks readers to put back together: only the
	// unfolded bytes read as UTF-8.
	data = unfoldBytes(data)
	if utf8.Valid(data) {
		return string(data)
	}
	if !hasUTF8Sequence(data) {
		if rd, err := charset.Reader("windows-1252", bytes.NewReader(data)); err == nil {
			if b, err := io.ReadAll(rd); err == nil && utf8.Valid(b) {
				return string(b)
			}
		}
	}
	return strings.ToValidUTF8(string(data), "\uFFFD")
}

// unfoldBytes removes each line break (CRLF or LF) followed by a space or
// a tab, with that one space or tab: the unfolding of RFC 5545 section
// 3.1, done on bytes.
func unfoldBytes(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 || i+1 == len(b) {
			return append(out, b...)
		}
		if c := b[i+1]; c != ' ' && c != '\t' {
			out, b = append(out, b[:i+1]...), b[i+1:]
			continue
		}
		out = append(out, bytes.TrimSuffix(b[:i], []byte("\r"))...)
		b = b[i+2:]
	}
}

func hasUTF8Sequence(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError && n > 1 {
			return true
		}
		b = b[n:]
	}
	return false
}

// Truncate cuts s to at most n bytes on a rune boundary, ending in "…"
// when cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// buildCalendar maps the VCALENDAR the pre-pass read to a Calendar.
func buildCalendar(root *ical.Component) *Calendar {
	cal := &Calendar{Events: []Event{}}
	if p := root.Props.Get(ical.PropMethod); p != nil {
		cal.Method = token(p.Value)
	}
	if p := root.Props.Get(ical.PropProductID); p != nil {
		cal.ProdID = strings.TrimSpace(cleanText(unescapeText(p.Value)))
	}
	vtz := map[string]*ical.Component{}
	for _, c := range root.Children {
		if c.Name != ical.CompTimezone {
			continue
		}
		tzid := vtimezoneID(c)
		if tzid == "" {
			continue
		}
		if _, dup := vtz[tzid]; dup {
			continue
		}
		vtz[tzid] = c
		// A VTIMEZONE go-ical cannot write (an observance without
		// TZOFFSETFROM, say) is still evaluated but not kept as text.
		if text, err := encodeComponent(c); err == nil {
			if cal.Timezones == nil {
				cal.Timezones = map[string]string{}
			}
			cal.Timezones[tzid] = text
		}
	}
	res := newResolver(vtz)
	for _, c := range root.Children {
		if c.Name == ical.CompEvent {
			cal.Events = append(cal.Events, res.event(c))
		}
	}
	return cal
}

// vtimezoneID returns the cleaned TZID of a VTIMEZONE, "" if none.
func vtimezoneID(c *ical.Component) string {
	if p := c.Props.Get(ical.PropTimezoneID); p != nil {
		return cleanTZID(unescapeText(p.Value)) // TEXT: "\," in Outlook display names
	}
	return ""
}

// cleanTZID normalizes a TZID property or parameter value.
func cleanTZID(s string) string {
	s = strings.TrimSpace(stripControls(s))
	s = strings.Trim(s, `"`)
	return strings.TrimSpace(s)
}

// token normalizes an enumerated value such as METHOD or PARTSTAT.
func token(s string) string {
	return strings.ToUpper(strings.TrimSpace(stripControls(s)))
}

func (r *resolver) event(c *ical.Component) Event {
	var ev Event
	text := func(name string) string {
		if p := c.Props.Get(name); p != nil {
			return strings.TrimSpace(cleanText(unescapeText(p.Value)))
		}
		return ""
	}
	ev.UID = strings.TrimSpace(stripControls(unescapeText(propValue(c, ical.PropUID))))
	if p := c.Props.Get(ical.PropRecurrenceID); p != nil {
		if t, ok := r.timeProp(p); ok || t.Value != "" {
			ev.RecurrenceID = &t
		}
	}
	if p := c.Props.Get(ical.PropSequence); p != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(p.Value)); err == nil && n > 0 {
			ev.Sequence = min(n, 1<<31-1)
		}
	}
	ev.DTStamp = r.instant(c.Props.Get(ical.PropDateTimeStamp))
	ev.Created = r.instant(c.Props.Get(ical.PropCreated))
	ev.LastModified = r.instant(c.Props.Get(ical.PropLastModified))
	if p := c.Props.Get(ical.PropOrganizer); p != nil {
		ev.Organizer = address(p)
	}
	for i := range c.Props[ical.PropAttendee] {
		if a, ok := attendee(&c.Props[ical.PropAttendee][i]); ok {
			ev.Attendees = append(ev.Attendees, a)
		}
	}
	for _, p := range c.Props[ical.PropComment] {
		if s := strings.TrimSpace(cleanText(unescapeText(p.Value))); s != "" {
			if ev.Comment != "" {
				ev.Comment += "\n"
			}
			ev.Comment += s
		}
	}
	for i := range c.Props[ical.PropExceptionDates] {
		ev.ExDates = append(ev.ExDates, r.timeList(&c.Props[ical.PropExceptionDates][i], min(maxDates-len(ev.ExDates), r.dates))...)
	}
	for i := range c.Props[ical.PropRecurrenceDates] {
		ev.RDates = append(ev.RDates, r.timeList(&c.Props[ical.PropRecurrenceDates][i], min(maxDates-len(ev.RDates), r.dates))...)
	}
	ev.Summary = text(ical.PropSummary)
	ev.Description = text(ical.PropDescription)
	ev.Location = text(ical.PropLocation)
	ev.URL = strings.TrimSpace(stripControls(propValue(c, ical.PropURL)))
	ev.Status = token(propValue(c, ical.PropStatus))
	ev.Transp = token(propValue(c, ical.PropTransparency))
	ev.Class = token(propValue(c, ical.PropClass))
	ev.RRule = strings.TrimSpace(stripControls(propValue(c, ical.PropRecurrenceRule)))

	if p := c.Props.Get(ical.PropDateTimeStart); p != nil {
		ev.Start, _ = r.timeProp(p)
	}
	// An unreadable DTEND or DURATION counts as absent, and so does an end
	// not after DTSTART (RFC 5545 forbids it; clients that write an all-day
	// DTEND equal to DTSTART mean one day).
	end, ok := Time{}, false
	if p := c.Props.Get(ical.PropDateTimeEnd); p != nil {
		end, ok = r.timeProp(p)
		if ok && !ev.Start.UTC.IsZero() && !end.UTC.After(ev.Start.UTC) {
			ok = false
		}
	}
	if p := c.Props.Get(ical.PropDuration); !ok && p != nil && !ev.Start.UTC.IsZero() {
		if d, dok := parseDuration(p.Value); dok && !d.neg {
			end, ok = r.addDuration(ev.Start, d)
			ok = ok && end.UTC.After(ev.Start.UTC)
		}
	}
	if !ok && ev.Start.AllDay && !ev.Start.UTC.IsZero() {
		end, ok = r.addDuration(ev.Start, duration{days: 1})
	}
	if !ok {
		end = ev.Start
	}
	ev.End = end
	return ev
}

func propValue(c *ical.Component, name string) string {
	if p := c.Props.Get(name); p != nil {
		return p.Value
	}
	return ""
}

// param returns the first value of a parameter, RFC 6868 decoded.
func param(p *ical.Prop, name string) string {
	return decodeCaret(p.Params.Get(name))
}

// address reads a cal-address property (ORGANIZER, ATTENDEE).
func address(p *ical.Prop) Address {
	// All values joined by ",": that restores an unquoted value such as
	// CN=Doe, John that a client forgot to quote.
	var cn []string
	for _, v := range p.Params.Values("CN") {
		cn = append(cn, decodeCaret(v))
	}
	a := Address{
		Email: calAddress(p.Value),
		Name:  strings.TrimSpace(stripControls(strings.Join(cn, ","))),
	}
	if e := calAddress(param(p, "EMAIL")); e != "" && e != a.Email {
		a.EmailParam = e
	}
	return a
}

// calAddress lower-cases a cal-address and strips a "mailto:" of any case.
func calAddress(s string) string {
	s = strings.TrimSpace(stripControls(s))
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		s = strings.TrimSpace(s[7:])
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	return strings.ToLower(s)
}

func attendee(p *ical.Prop) (Attendee, bool) {
	a := Attendee{
		Address:  address(p),
		PartStat: token(param(p, "PARTSTAT")),
		Role:     token(param(p, "ROLE")),
		CUType:   token(param(p, "CUTYPE")),
		RSVP:     strings.EqualFold(strings.TrimSpace(param(p, "RSVP")), "TRUE"),
	}
	a.DelegatedTo = calAddress(param(p, "DELEGATED-TO"))
	return a, a.Email != ""
}

// duration is an RFC 5545 DURATION split into its nominal days (added to
// the wall clock) and its exact seconds.
type duration struct {
	days int
	secs int64
	neg  bool
}

// parseDuration reads [+-]P[nW][nD][T[nH][nM][nS]] tolerantly (weeks may
// combine with days). Values beyond 100 000 days are refused.
func parseDuration(s string) (duration, bool) {
	var d duration
	s = strings.ToUpper(strings.TrimSpace(s))
	if s != "" && (s[0] == '+' || s[0] == '-') {
		d.neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] != 'P' {
		return d, false
	}
	s = s[1:]
	inTime, any := false, false
	for s != "" {
		if s[0] == 'T' {
			inTime = true
			s = s[1:]
			continue
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 9 {
			return d, false
		}
		n, _ := strconv.ParseInt(s[:i], 10, 64)
		unit := s[i]
		s = s[i+1:]
		any = true
		switch {
		case !inTime && unit == 'W':
			d.days += int(n) * 7
		case !inTime && unit == 'D':
			d.days += int(n)
		case inTime && unit == 'H':
			d.secs += n * 3600
		case inTime && unit == 'M':
			d.secs += n * 60
		case inTime && unit == 'S':
			d.secs += n
		default:
			return d, false
		}
		if d.days > 100000 || d.secs > 100000*86400 {
			return d, false
		}
	}
	return d, any
}
