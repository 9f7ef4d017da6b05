package itip

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-ical"

	"github.com/invited/invited/internal/memo"
)

// DefaultProdID is the PRODID Encode writes when Calendar.ProdID is empty.
const DefaultProdID = "-//invited//invited//EN"

// stampFallback is the DTSTAMP of an event that has no DTSTAMP,
// LAST-MODIFIED, CREATED or DTSTART instant: go-ical writes no VEVENT
// without one, and Encode must give the same bytes for the same input.
var stampFallback = time.Unix(0, 0).UTC()

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
// quoted and '"' replaced by an apostrophe, no CR or LF inside any value.
// Within a component, properties and parameters are in alphabetical order.
// A Time is written from its Value when that is well-formed, else from its
// UTC instant. DTSTAMP falls back to LAST-MODIFIED, CREATED, DTSTART, then
// 1970-01-01T00:00:00Z; an event without UID is an error.
func Encode(c *Calendar) ([]byte, error) {
	if c == nil {
		return nil, errors.New("itip: encode: nil calendar")
	}
	method := token(c.Method)
	if method != "" && !isToken(method) {
		return nil, fmt.Errorf("itip: encode: invalid METHOD %q", Truncate(method, 40))
	}
	for i := range c.Events {
		if strings.TrimSpace(stripControls(c.Events[i].UID)) == "" {
			return nil, fmt.Errorf("itip: encode: event %d has no UID", i)
		}
	}
	e := &encoder{zones: map[string]*zoneOut{}}
	e.collectZones(c)

	// go-ical writes the components. The VCALENDAR lines around them are
	// ours: go-ical writes no VCALENDAR without a component and would put
	// CALSCALE, METHOD, PRODID and VERSION in alphabetical order.
	var b bytes.Buffer
	w := newFoldWriter(&b)
	prodID := strings.TrimSpace(c.ProdID)
	if prodID == "" {
		prodID = DefaultProdID
	}
	head := []string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:" + escapeText(prodID), "CALSCALE:GREGORIAN"}
	if method != "" {
		head = append(head, "METHOD:"+method)
	}
	for _, l := range head {
		if err := w.line(l); err != nil {
			return nil, err
		}
	}
	for _, tzid := range e.order {
		b.WriteString(e.zones[tzid].text) // encoded by collectZones
	}
	enc := ical.NewEncoder(w)
	for i := range c.Events {
		// Encode checks and writes the component it is given: here a VEVENT.
		if err := enc.Encode(&ical.Calendar{Component: e.event(&c.Events[i])}); err != nil {
			return nil, fmt.Errorf("itip: encode: event %d: %w", i, err)
		}
	}
	if err := w.line("END:VCALENDAR"); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeComponent writes one component with go-ical's encoder, which checks
// it (a VTIMEZONE needs a TZID and observances with DTSTART, TZOFFSETFROM
// and TZOFFSETTO), as folded CRLF text.
func encodeComponent(c *ical.Component) (string, error) {
	var b strings.Builder
	if err := ical.NewEncoder(newFoldWriter(&b)).Encode(&ical.Calendar{Component: c}); err != nil {
		return "", err
	}
	return b.String(), nil
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
			if s, ok := reencodeVTimezone(text, tzid); ok {
				z.text = s
				continue
			}
		}
		z.text, _ = generatedVTimezone(tzid, z.year)
	}
}

// generatedVTimezone is VTimezone(tzid, year) as go-ical encodes it, kept:
// when organizers send no VTIMEZONE, every attendee of a fan-out needs the
// same one.
func generatedVTimezone(tzid string, year int) (string, bool) {
	key := zoneKey{tzid, year}
	if r, ok := vtzGenerated.Get(key); ok {
		return r.text, r.ok
	}
	var r vtzResult
	if text, ok := VTimezone(tzid, year); ok {
		r.text, r.ok = reencodeVTimezoneNow(text, tzid)
	}
	vtzGenerated.Put(key, r)
	return r.text, r.ok
}

type zoneKey struct {
	tzid string
	year int
}

// reencodeVTimezone reads the first VTIMEZONE in text (decodeCalendar) and
// encodes it again, if it has TZID tzid and go-ical accepts it. A fan-out
// encodes the same few zones for every attendee, so results are kept.
func reencodeVTimezone(text, tzid string) (string, bool) {
	if len(text) > maxVTZCacheText {
		return reencodeVTimezoneNow(text, tzid)
	}
	key := tzid + "\x00" + text
	if r, ok := vtzSent.Get(key); ok {
		return r.text, r.ok
	}
	s, ok := reencodeVTimezoneNow(text, tzid)
	vtzSent.Put(key, vtzResult{s, ok})
	return s, ok
}

type vtzResult struct {
	text string
	ok   bool
}

// vtzSent maps tzid NUL text, a zone an organizer sent, to its vtzResult,
// and vtzGenerated a zone we generate. Apart, so that organizers sending
// many zones cannot push out the generated ones every fan-out uses.
var (
	vtzSent      = memo.Cache[string, vtzResult]{Max: 512}
	vtzGenerated = memo.Cache[zoneKey, vtzResult]{Max: 512}
)

// maxVTZCacheText bounds the text of a zone kept (real zones are a few
// hundred bytes to a few KiB).
const maxVTZCacheText = 16 << 10

func reencodeVTimezoneNow(text, tzid string) (string, bool) {
	cal, err := decodeCalendar(strings.ToValidUTF8(text, "\uFFFD"), ical.CompTimezone)
	if err != nil || len(cal.Children) != 1 || vtimezoneID(cal.Children[0]) != tzid {
		return "", false
	}
	s, err := encodeComponent(cal.Children[0])
	return s, err == nil
}

// event builds one VEVENT.
func (e *encoder) event(ev *Event) *ical.Component {
	c := ical.NewComponent(ical.CompEvent)
	add := func(name, value string, params ...string) {
		p := ical.NewProp(name)
		p.Value = value
		for i := 0; i+1 < len(params); i += 2 {
			if params[i+1] != "" {
				p.Params.Set(params[i], params[i+1])
			}
		}
		c.Props.Add(p)
	}
	text := func(name, v string) {
		if v != "" {
			add(name, escapeText(v))
		}
	}
	tok := func(name, v string) {
		if v = token(v); v != "" && isToken(v) {
			add(name, v)
		}
	}
	addTime := func(name string, t Time) {
		if p := e.timeProp(name, t); p != nil {
			c.Props.Add(p)
		}
	}
	add(ical.PropUID, escapeText(strings.TrimSpace(stripControls(ev.UID))))
	stamp := ev.DTStamp
	for _, t := range []time.Time{ev.LastModified, ev.Created, ev.Start.UTC, stampFallback} {
		if utcValue(stamp) == "" {
			stamp = t
		}
	}
	add(ical.PropDateTimeStamp, utcValue(stamp))
	add(ical.PropSequence, strconv.Itoa(max(ev.Sequence, 0)))
	if ev.RecurrenceID != nil {
		addTime(ical.PropRecurrenceID, *ev.RecurrenceID)
	}
	addTime(ical.PropDateTimeStart, ev.Start)
	// DTEND must be later than DTSTART (RFC 5545 section 3.8.2.2); an End
	// equal to Start reads back the same without it.
	if ev.Start.UTC.IsZero() || ev.End.UTC.After(ev.Start.UTC) {
		addTime(ical.PropDateTimeEnd, ev.End)
	}
	if v := utcValue(ev.Created); v != "" {
		add(ical.PropCreated, v)
	}
	if v := utcValue(ev.LastModified); v != "" {
		add(ical.PropLastModified, v)
	}
	if email := addrValue(ev.Organizer.Email); email != "" {
		add(ical.PropOrganizer, "mailto:"+email, "CN", paramText(ev.Organizer.Name))
	}
	for _, a := range ev.Attendees {
		email := addrValue(a.Email)
		if email == "" {
			continue
		}
		params := []string{"CN", paramText(a.Name)}
		for _, p := range [...]struct{ name, v string }{{"CUTYPE", a.CUType}, {"ROLE", a.Role}, {"PARTSTAT", a.PartStat}} {
			if v := token(p.v); isToken(v) {
				params = append(params, p.name, v)
			}
		}
		if a.RSVP {
			params = append(params, "RSVP", "TRUE")
		}
		if d := addrValue(a.DelegatedTo); d != "" {
			params = append(params, "DELEGATED-TO", "mailto:"+strings.ReplaceAll(d, `"`, ""))
		}
		add(ical.PropAttendee, "mailto:"+email, params...)
	}
	text(ical.PropSummary, ev.Summary)
	text(ical.PropDescription, ev.Description)
	text(ical.PropLocation, ev.Location)
	text(ical.PropComment, ev.Comment)
	if u := strings.TrimSpace(stripControls(ev.URL)); u != "" {
		add(ical.PropURL, u)
	}
	tok(ical.PropStatus, ev.Status)
	tok(ical.PropTransparency, ev.Transp)
	tok(ical.PropClass, ev.Class)
	if r := strings.TrimSpace(stripControls(ev.RRule)); r != "" {
		add(ical.PropRecurrenceRule, r)
	}
	for _, t := range ev.ExDates {
		addTime(ical.PropExceptionDates, t)
	}
	for _, t := range ev.RDates {
		addTime(ical.PropRecurrenceDates, t)
	}
	return c
}

// timeProp builds a DATE or DATE-TIME property; nil for a zero Time.
func (e *encoder) timeProp(name string, t Time) *ical.Prop {
	p := ical.NewProp(name)
	v := strings.ToUpper(strings.TrimSpace(t.Value))
	wall, kind, ok := parseWall(v)
	switch {
	case t.AllDay || ok && kind == kindDate:
		if !ok {
			if utcValue(t.UTC) == "" {
				return nil
			}
			wall = t.UTC.UTC()
		}
		p.Params.Set(ical.ParamValue, string(ical.ValueDate))
		p.Value = wall.Format(layoutDate)
		return p
	case !ok:
		if p.Value = utcValue(t.UTC); p.Value == "" {
			return nil
		}
		return p
	case kind == kindUTC:
		p.Value = wall.Format(layoutUTC)
		return p
	}
	tzid := cleanTZID(t.TZID)
	if tzid == "" { // floating
		p.Value = wall.Format(layoutLocal)
		return p
	}
	if z := e.zones[tzid]; z == nil || z.text == "" {
		// Unresolvable zone: the resolved instant, in UTC.
		u := t.UTC
		if u.IsZero() {
			u = wall
		}
		if p.Value = utcValue(u); p.Value == "" {
			return nil
		}
		return p
	}
	p.Params.Set(ical.ParamTimezoneID, paramText(tzid))
	p.Value = wall.Format(layoutLocal)
	return p
}

// addrValue cleans an e-mail for a mailto: value: what calAddress reads,
// without white space or angle brackets anywhere, nor a "mailto:" left at
// its start ("MAILTO :x" once spaces go, or "mailto:mailto:x"), which the
// next read would strip: the value must read back as what it was made of.
func addrValue(s string) string {
	for {
		s = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) || r == '<' || r == '>' {
				return -1
			}
			return r
		}, calAddress(s))
		if len(s) < 7 || !strings.EqualFold(s[:7], "mailto:") {
			return s
		}
	}
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
