// Package itip reads and builds iTIP (RFC 5546) scheduling messages carried
// in iCalendar (RFC 5545) objects, and their iMIP (RFC 6047) e-mail form.
//
// Reading is tolerant of what real clients send (Outlook replies without an
// ORGANIZER, Windows and Lotus TZIDs, upper-case MAILTO:, LF line ends, QP or
// base64 parts without a method= parameter) and bounded: it never panics and
// caps the work any input can cause. Writing is strict: Encode and
// BuildMessage produce folded, escaped, injection-free output.
//
// The package embeds Go's time zone database (time/tzdata), so time zones
// resolve the same way on every machine.
package itip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	// Zone lookups must not depend on the host having /usr/share/zoneinfo.
	_ "time/tzdata"

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
	// component as folded CRLF iCalendar text (BEGIN:VTIMEZONE…END:VTIMEZONE\r\n).
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
// without notice).
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
	root, err := parseTree(decodeBytes(data))
	if err != nil {
		return nil, err
	}
	return buildCalendar(root), nil
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
	if !hasUTF8Sequence(data) {
		if rd, err := charset.Reader("windows-1252", bytes.NewReader(data)); err == nil {
			if b, err := io.ReadAll(rd); err == nil && utf8.Valid(b) {
				return string(b)
			}
		}
	}
	return strings.ToValidUTF8(string(data), "\uFFFD")
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

// component is a parsed iCalendar component with the properties we use.
type component struct {
	name     string
	props    []contentLine
	children []*component
	raw      []string // VTIMEZONE only: its content lines, unfolded
}

func (c *component) prop(name string) *contentLine {
	for i := range c.props {
		if c.props[i].name == name {
			return &c.props[i]
		}
	}
	return nil
}

// keptProps lists, per component, the properties buildCalendar reads; others
// are dropped while parsing so that memory stays bounded.
var keptProps = map[string]map[string]int{ // name → how many to keep
	"VCALENDAR": {"METHOD": 1, "PRODID": 1},
	"VEVENT": {
		"UID": 1, "RECURRENCE-ID": 1, "SEQUENCE": 1, "DTSTAMP": 1, "CREATED": 1,
		"LAST-MODIFIED": 1, "ORGANIZER": 1, "ATTENDEE": MaxAttendees, "SUMMARY": 1,
		"DESCRIPTION": 1, "LOCATION": 1, "COMMENT": 100, "URL": 1, "STATUS": 1,
		"TRANSP": 1, "CLASS": 1, "DTSTART": 1, "DTEND": 1, "DURATION": 1, "RRULE": 1,
		"EXDATE": maxDates, "RDATE": maxDates,
	},
	"VTIMEZONE": {"TZID": 1},
	"STANDARD":  {"DTSTART": 1, "TZOFFSETFROM": 1, "TZOFFSETTO": 1, "RRULE": 1, "RDATE": maxTZDates},
	"DAYLIGHT":  {"DTSTART": 1, "TZOFFSETFROM": 1, "TZOFFSETTO": 1, "RRULE": 1, "RDATE": maxTZDates},
}

// keptChildren lists which child components are kept under which parent.
var keptChildren = map[string]map[string]bool{
	"VCALENDAR": {"VEVENT": true, "VTIMEZONE": true},
	"VTIMEZONE": {"STANDARD": true, "DAYLIGHT": true},
}

// parseTree reads the first VCALENDAR of s into a component tree.
func parseTree(s string) (*component, error) {
	lines, truncated := unfold(s, maxLines)
	if truncated {
		return nil, fmt.Errorf("itip: calendar has more than %d lines", maxLines)
	}
	type frame struct {
		c      *component // nil when the component is skipped
		name   string
		counts map[string]int
	}
	var (
		stack     []frame
		root      *component
		rawOwner  *component // innermost VTIMEZONE being read
		attendees int
		events    int
		timezones int
	)
	for _, line := range lines {
		l, ok := parseContentLine(line)
		if !ok {
			continue
		}
		switch l.name {
		case "BEGIN":
			name := strings.ToUpper(strings.TrimSpace(l.value))
			if len(stack) == 0 {
				if name != "VCALENDAR" {
					continue // junk before the calendar
				}
				root = &component{name: name}
				stack = append(stack, frame{c: root, name: name, counts: map[string]int{}})
				continue
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("itip: components nested deeper than %d", maxDepth)
			}
			parent := stack[len(stack)-1]
			var c *component
			if parent.c != nil && keptChildren[parent.name][name] {
				switch {
				case name == "VEVENT" && events >= MaxEvents:
				case name == "VTIMEZONE" && timezones >= maxTimezones:
				case name == "STANDARD" || name == "DAYLIGHT":
					if len(parent.c.children) < maxTZRules {
						c = &component{name: name}
					}
				default:
					c = &component{name: name}
				}
				if c != nil {
					parent.c.children = append(parent.c.children, c)
					switch name {
					case "VEVENT":
						events++
					case "VTIMEZONE":
						timezones++
						rawOwner = c
					}
				}
			}
			stack = append(stack, frame{c: c, name: name, counts: map[string]int{}})
			if rawOwner != nil && c != nil {
				rawOwner.raw = append(rawOwner.raw, line)
			}
		case "END":
			if len(stack) == 0 {
				continue
			}
			name := strings.ToUpper(strings.TrimSpace(l.value))
			top := stack[len(stack)-1]
			if name != top.name {
				return nil, fmt.Errorf("itip: malformed calendar: END:%s inside %s", truncate(name, 40), truncate(top.name, 40))
			}
			if rawOwner != nil && top.c != nil {
				rawOwner.raw = append(rawOwner.raw, line)
				if top.c == rawOwner {
					rawOwner = nil
				}
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return root, nil
			}
		default:
			if len(stack) == 0 {
				continue
			}
			top := &stack[len(stack)-1]
			if top.c == nil {
				continue
			}
			max := keptProps[top.name][l.name]
			if rawOwner != nil && max == 0 && len(rawOwner.raw) < maxTZRules*20 {
				rawOwner.raw = append(rawOwner.raw, line)
				continue
			}
			if top.counts[l.name] >= max {
				continue
			}
			if l.name == "ATTENDEE" {
				if attendees >= maxTotalAttendees {
					continue
				}
				attendees++
			}
			top.counts[l.name]++
			top.c.props = append(top.c.props, l)
			if rawOwner != nil {
				rawOwner.raw = append(rawOwner.raw, line)
			}
		}
	}
	if root == nil {
		return nil, errors.New("itip: no BEGIN:VCALENDAR")
	}
	return nil, fmt.Errorf("itip: malformed calendar: missing END:%s", stack[len(stack)-1].name)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// foldRaw renders unfolded content lines as folded CRLF text.
func foldRaw(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		foldLine(&b, l)
	}
	return b.String()
}

// buildCalendar turns the tree into a Calendar.
func buildCalendar(root *component) *Calendar {
	cal := &Calendar{Events: []Event{}}
	if p := root.prop("METHOD"); p != nil {
		cal.Method = token(p.value)
	}
	if p := root.prop("PRODID"); p != nil {
		cal.ProdID = strings.TrimSpace(cleanText(unescapeText(p.value)))
	}
	vtz := map[string]*component{}
	for _, c := range root.children {
		if c.name != "VTIMEZONE" {
			continue
		}
		p := c.prop("TZID")
		if p == nil {
			continue
		}
		tzid := cleanTZID(unescapeText(p.value)) // TEXT: "\," in Outlook display names
		if tzid == "" {
			continue
		}
		if _, dup := vtz[tzid]; dup {
			continue
		}
		vtz[tzid] = c
		if cal.Timezones == nil {
			cal.Timezones = map[string]string{}
		}
		cal.Timezones[tzid] = foldRaw(c.raw)
	}
	res := newResolver(vtz)
	for _, c := range root.children {
		if c.name == "VEVENT" {
			cal.Events = append(cal.Events, res.event(c))
		}
	}
	return cal
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

func (r *resolver) event(c *component) Event {
	var ev Event
	text := func(name string) string {
		if p := c.prop(name); p != nil {
			return strings.TrimSpace(cleanText(unescapeText(p.value)))
		}
		return ""
	}
	ev.UID = strings.TrimSpace(stripControls(unescapeText(propValue(c, "UID"))))
	if p := c.prop("RECURRENCE-ID"); p != nil {
		if t, ok := r.timeProp(p); ok || t.Value != "" {
			ev.RecurrenceID = &t
		}
	}
	if p := c.prop("SEQUENCE"); p != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(p.value)); err == nil && n > 0 {
			ev.Sequence = min(n, 1<<31-1)
		}
	}
	ev.DTStamp = r.instant(c.prop("DTSTAMP"))
	ev.Created = r.instant(c.prop("CREATED"))
	ev.LastModified = r.instant(c.prop("LAST-MODIFIED"))
	if p := c.prop("ORGANIZER"); p != nil {
		ev.Organizer = address(p)
	}
	for i := range c.props {
		p := &c.props[i]
		switch p.name {
		case "ATTENDEE":
			if a, ok := attendee(p); ok {
				ev.Attendees = append(ev.Attendees, a)
			}
		case "COMMENT":
			if s := strings.TrimSpace(cleanText(unescapeText(p.value))); s != "" {
				if ev.Comment != "" {
					ev.Comment += "\n"
				}
				ev.Comment += s
			}
		case "EXDATE":
			ev.ExDates = append(ev.ExDates, r.timeList(p, min(maxDates-len(ev.ExDates), r.dates))...)
		case "RDATE":
			ev.RDates = append(ev.RDates, r.timeList(p, min(maxDates-len(ev.RDates), r.dates))...)
		}
	}
	ev.Summary = text("SUMMARY")
	ev.Description = text("DESCRIPTION")
	ev.Location = text("LOCATION")
	ev.URL = strings.TrimSpace(stripControls(propValue(c, "URL")))
	ev.Status = token(propValue(c, "STATUS"))
	ev.Transp = token(propValue(c, "TRANSP"))
	ev.Class = token(propValue(c, "CLASS"))
	ev.RRule = strings.TrimSpace(stripControls(propValue(c, "RRULE")))

	if p := c.prop("DTSTART"); p != nil {
		ev.Start, _ = r.timeProp(p)
	}
	// An unreadable DTEND or DURATION counts as absent, and so does an end
	// not after DTSTART (RFC 5545 forbids it; clients that write an all-day
	// DTEND equal to DTSTART mean one day).
	end, ok := Time{}, false
	if p := c.prop("DTEND"); p != nil {
		end, ok = r.timeProp(p)
		if ok && !ev.Start.UTC.IsZero() && !end.UTC.After(ev.Start.UTC) {
			ok = false
		}
	}
	if !ok && c.prop("DURATION") != nil && !ev.Start.UTC.IsZero() {
		if d, dok := parseDuration(c.prop("DURATION").value); dok && !d.neg {
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

func propValue(c *component, name string) string {
	if p := c.prop(name); p != nil {
		return p.value
	}
	return ""
}

// address reads a cal-address property (ORGANIZER, ATTENDEE).
func address(p *contentLine) Address {
	a := Address{
		Email: calAddress(p.value),
		Name:  strings.TrimSpace(stripControls(p.paramJoined("CN"))),
	}
	if e := calAddress(p.param("EMAIL")); e != "" && e != a.Email {
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

func attendee(p *contentLine) (Attendee, bool) {
	a := Attendee{
		Address:  address(p),
		PartStat: token(p.param("PARTSTAT")),
		Role:     token(p.param("ROLE")),
		CUType:   token(p.param("CUTYPE")),
		RSVP:     strings.EqualFold(strings.TrimSpace(p.param("RSVP")), "TRUE"),
	}
	a.DelegatedTo = calAddress(p.param("DELEGATED-TO"))
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
