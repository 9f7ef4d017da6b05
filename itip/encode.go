package itip

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultProdID is the PRODID Encode writes when Calendar.ProdID is empty.
const DefaultProdID = "-//invited//invited//EN"

// Encode serializes c as an iCalendar object for sending: VERSION:2.0,
// PRODID (c.ProdID or DefaultProdID), CALSCALE:GREGORIAN, METHOD (left out
// when c.Method is empty), one VTIMEZONE for every TZID used by a DTSTART,
// DTEND, RECURRENCE-ID, EXDATE or RDATE, then the VEVENTs.
//
// A VTIMEZONE comes from c.Timezones when it holds a well-formed component
// for that TZID, else from VTimezone for the earliest year that uses it. A
// TZID neither can resolve is dropped and its times are written in UTC.
//
// Output follows RFC 5545: CRLF line ends, lines folded at 75 octets (never
// inside a UTF-8 sequence), TEXT escaped, parameter values with ':' ';' ','
// quoted and '"' replaced by an apostrophe, no CR or LF inside any value. A Time is
// written from its Value when that is well-formed, else from its UTC instant.
// DTSTAMP falls back to LAST-MODIFIED, CREATED, then DTSTART; an event
// without UID is an error.
func Encode(c *Calendar) ([]byte, error) {
	if c == nil {
		return nil, errors.New("itip: encode: nil calendar")
	}
	method := token(c.Method)
	if method != "" && !isToken(method) {
		return nil, fmt.Errorf("itip: encode: invalid METHOD %q", truncate(method, 40))
	}
	for i := range c.Events {
		if strings.TrimSpace(stripControls(c.Events[i].UID)) == "" {
			return nil, fmt.Errorf("itip: encode: event %d has no UID", i)
		}
	}
	e := &encoder{zones: map[string]*zoneOut{}}
	e.collectZones(c)

	var b strings.Builder
	line := func(s string) { foldLine(&b, s) }
	line("BEGIN:VCALENDAR")
	line("VERSION:2.0")
	prodID := strings.TrimSpace(c.ProdID)
	if prodID == "" {
		prodID = DefaultProdID
	}
	line("PRODID:" + escapeText(prodID))
	line("CALSCALE:GREGORIAN")
	if method != "" {
		line("METHOD:" + method)
	}
	for _, tzid := range e.order {
		if z := e.zones[tzid]; z.text != "" {
			b.WriteString(z.text)
		}
	}
	for i := range c.Events {
		e.event(&b, &c.Events[i])
	}
	line("END:VCALENDAR")
	return []byte(b.String()), nil
}

// zoneOut is how Encode writes the times of one TZID.
type zoneOut struct {
	text string // folded VTIMEZONE; "" when the TZID is dropped for UTC
	year int
}

type encoder struct {
	zones map[string]*zoneOut
	order []string
}

// collectZones decides, for every TZID the events use, which VTIMEZONE to
// write or whether to fall back to UTC.
func (e *encoder) collectZones(c *Calendar) {
	note := func(t *Time) {
		if t == nil || t.AllDay {
			return
		}
		tzid := cleanTZID(t.TZID)
		w, kind, ok := parseWall(strings.ToUpper(strings.TrimSpace(t.Value)))
		if tzid == "" || !ok || kind != kindLocal {
			return
		}
		y := w.Year()
		z, ok := e.zones[tzid]
		if !ok {
			z = &zoneOut{year: y}
			e.zones[tzid] = z
			e.order = append(e.order, tzid)
		}
		z.year = min(z.year, y)
	}
	for i := range c.Events {
		ev := &c.Events[i]
		note(&ev.Start)
		note(&ev.End)
		note(ev.RecurrenceID)
		for j := range ev.ExDates {
			note(&ev.ExDates[j])
		}
		for j := range ev.RDates {
			note(&ev.RDates[j])
		}
	}
	for _, tzid := range e.order {
		z := e.zones[tzid]
		if text, ok := c.Timezones[tzid]; ok {
			if s, ok := cleanVTimezone(text, tzid); ok {
				z.text = s
				continue
			}
		}
		if s, ok := VTimezone(tzid, z.year); ok {
			z.text = s
		}
	}
}

// cleanVTimezone checks that text is one VTIMEZONE with TZID tzid and
// returns it re-folded with every line sanitized.
func cleanVTimezone(text, tzid string) (string, bool) {
	lines, truncated := unfold(strings.ToValidUTF8(text, "\uFFFD"), 100000)
	if truncated || len(lines) < 3 {
		return "", false
	}
	depth, found := 0, false
	var out []string
	for i, raw := range lines {
		l, ok := parseContentLine(raw)
		if !ok {
			continue
		}
		switch l.name {
		case "BEGIN":
			name := strings.ToUpper(strings.TrimSpace(l.value))
			if (i == 0) != (name == "VTIMEZONE") || depth > 3 {
				return "", false
			}
			depth++
		case "END":
			depth--
			if depth < 0 || depth == 0 && i != len(lines)-1 {
				return "", false
			}
		case "TZID":
			if depth == 1 && cleanTZID(unescapeText(l.value)) == tzid {
				found = true
			}
		}
		if i == 0 && l.name != "BEGIN" {
			return "", false
		}
		out = append(out, raw)
	}
	if depth != 0 || !found {
		return "", false
	}
	return foldRaw(out), true
}

// event writes one VEVENT.
func (e *encoder) event(b *strings.Builder, ev *Event) {
	line := func(s string) { foldLine(b, s) }
	text := func(name, v string) {
		if v != "" {
			line(name + ":" + escapeText(v))
		}
	}
	tok := func(name, v string) {
		if v = token(v); v != "" && isToken(v) {
			line(name + ":" + v)
		}
	}
	line("BEGIN:VEVENT")
	line("UID:" + escapeText(strings.TrimSpace(stripControls(ev.UID))))
	stamp := ev.DTStamp
	for _, t := range []time.Time{ev.LastModified, ev.Created, ev.Start.UTC} {
		if utcValue(stamp) == "" {
			stamp = t
		}
	}
	if v := utcValue(stamp); v != "" {
		line("DTSTAMP:" + v)
	}
	line("SEQUENCE:" + strconv.Itoa(max(ev.Sequence, 0)))
	if ev.RecurrenceID != nil {
		e.timeLine(b, "RECURRENCE-ID", *ev.RecurrenceID)
	}
	e.timeLine(b, "DTSTART", ev.Start)
	// DTEND must be later than DTSTART (RFC 5545 section 3.8.2.2); an End
	// equal to Start reads back the same without it.
	if ev.Start.UTC.IsZero() || ev.End.UTC.After(ev.Start.UTC) {
		e.timeLine(b, "DTEND", ev.End)
	}
	if v := utcValue(ev.Created); v != "" {
		line("CREATED:" + v)
	}
	if v := utcValue(ev.LastModified); v != "" {
		line("LAST-MODIFIED:" + v)
	}
	if email := addrValue(ev.Organizer.Email); email != "" {
		s := "ORGANIZER"
		if n := paramValue(ev.Organizer.Name); n != "" {
			s += ";CN=" + n
		}
		line(s + ":mailto:" + email)
	}
	for _, a := range ev.Attendees {
		email := addrValue(a.Email)
		if email == "" {
			continue
		}
		s := "ATTENDEE"
		if n := paramValue(a.Name); n != "" {
			s += ";CN=" + n
		}
		for _, p := range [...]struct{ name, v string }{{"CUTYPE", a.CUType}, {"ROLE", a.Role}, {"PARTSTAT", a.PartStat}} {
			if v := token(p.v); v != "" && isToken(v) {
				s += ";" + p.name + "=" + v
			}
		}
		if a.RSVP {
			s += ";RSVP=TRUE"
		}
		if d := addrValue(a.DelegatedTo); d != "" {
			s += `;DELEGATED-TO="mailto:` + strings.ReplaceAll(d, `"`, "") + `"`
		}
		line(s + ":mailto:" + email)
	}
	text("SUMMARY", ev.Summary)
	text("DESCRIPTION", ev.Description)
	text("LOCATION", ev.Location)
	text("COMMENT", ev.Comment)
	if u := strings.TrimSpace(stripControls(ev.URL)); u != "" {
		line("URL:" + u)
	}
	tok("STATUS", ev.Status)
	tok("TRANSP", ev.Transp)
	tok("CLASS", ev.Class)
	if r := strings.TrimSpace(stripControls(ev.RRule)); r != "" {
		line("RRULE:" + r)
	}
	for _, t := range ev.ExDates {
		e.timeLine(b, "EXDATE", t)
	}
	for _, t := range ev.RDates {
		e.timeLine(b, "RDATE", t)
	}
	line("END:VEVENT")
}

// timeLine writes a DATE or DATE-TIME property; nothing for a zero Time.
func (e *encoder) timeLine(b *strings.Builder, name string, t Time) {
	v := strings.ToUpper(strings.TrimSpace(t.Value))
	wall, kind, ok := parseWall(v)
	switch {
	case t.AllDay || ok && kind == kindDate:
		if !ok {
			if utcValue(t.UTC) == "" {
				return
			}
			wall = t.UTC.UTC()
		}
		foldLine(b, name+";VALUE=DATE:"+wall.Format(layoutDate))
		return
	case !ok:
		if v := utcValue(t.UTC); v != "" {
			foldLine(b, name+":"+v)
		}
		return
	case kind == kindUTC:
		foldLine(b, name+":"+wall.Format(layoutUTC))
		return
	}
	tzid := cleanTZID(t.TZID)
	if tzid == "" { // floating
		foldLine(b, name+":"+wall.Format(layoutLocal))
		return
	}
	if z := e.zones[tzid]; z == nil || z.text == "" {
		// Unresolvable zone: the resolved instant, in UTC.
		u := t.UTC
		if u.IsZero() {
			u = wall
		}
		if v := utcValue(u); v != "" {
			foldLine(b, name+":"+v)
		}
		return
	}
	foldLine(b, name+";TZID="+paramValue(tzid)+":"+wall.Format(layoutLocal))
}

// paramValue makes s safe as a parameter value: no control characters, '"'
// replaced by an apostrophe, a caret that RFC 6868 would read as an escape
// doubled, quoted when it holds ':' ';' or ','.
func paramValue(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(stripControls(s), `"`, "'"))
	if strings.IndexByte(s, '^') >= 0 {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			b.WriteByte(s[i])
			if s[i] == '^' && i+1 < len(s) && strings.IndexByte("nN'^", s[i+1]) >= 0 {
				b.WriteByte('^')
			}
		}
		s = b.String()
	}
	if strings.ContainsAny(s, ":;,") {
		return `"` + s + `"`
	}
	return s
}

// addrValue cleans an e-mail for a mailto: value: what calAddress reads,
// without white space or angle brackets anywhere.
func addrValue(s string) string {
	s = calAddress(s)
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '<' || r == '>' {
			return -1
		}
		return r
	}, s)
}

// utcValue formats t as a UTC DATE-TIME; "" when t is zero or its year
// cannot be written in four digits.
func utcValue(t time.Time) string {
	t = t.UTC()
	if t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return ""
	}
	return t.Format(layoutUTC)
}

// isToken reports whether s is an iana-token or x-name: letters, digits, '-'.
func isToken(s string) bool {
	return s != "" && validName(s) && !strings.Contains(s, "_")
}
