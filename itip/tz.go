package itip

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrUnknownZone is returned by LoadLocation for a TZID it cannot resolve.
var ErrUnknownZone = errors.New("itip: unknown time zone")

// windowsZoneFold is windowsZones keyed by lower-case ID.
var windowsZoneFold = sync.OnceValue(func() map[string]string {
	m := make(map[string]string, len(windowsZones))
	for k, v := range windowsZones {
		m[strings.ToLower(k)] = v
	}
	return m
})

// LoadLocation resolves a TZID as calendar clients write it:
//   - IANA names ("Europe/Berlin", "US/Pacific", "UTC");
//   - Windows IDs from CLDR windowsZones ("Romance Standard Time" is
//     Europe/Paris), case-insensitive;
//   - Lotus Notes short forms ("W. Europe", tried with " Standard Time");
//   - prefixed forms ("/mozilla.org/20050126_1/Europe/Berlin",
//     "/softwarestudio.org/Olson_20011030_5/America/New_York"): the
//     trailing Area/City.
//
// Quotes around the TZID are ignored. "Local" and names with control
// characters are refused, so the answer never depends on the host.
func LoadLocation(tzid string) (*time.Location, error) {
	name := strings.TrimSpace(strings.Trim(strings.TrimSpace(tzid), `"`))
	if name == "" || len(name) > 200 || name == "Local" || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownZone, Truncate(tzid, 64))
	}
	if loc, ok := loadIANA(name); ok {
		return loc, nil
	}
	lower := strings.ToLower(name)
	if iana, ok := windowsZoneFold()[lower]; ok {
		if loc, ok := loadIANA(iana); ok {
			return loc, nil
		}
	}
	if iana, ok := windowsZoneFold()[lower+" standard time"]; ok {
		if loc, ok := loadIANA(iana); ok {
			return loc, nil
		}
	}
	if strings.Contains(name, "/") {
		parts := strings.Split(strings.Trim(name, "/"), "/")
		// Longest suffix first, so America/Argentina/Buenos_Aires wins over
		// Argentina/Buenos_Aires; a suffix needs at least Area/City.
		for i := 1; i+2 <= len(parts) && i < 8; i++ {
			if loc, ok := loadIANA(strings.Join(parts[i:], "/")); ok {
				return loc, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownZone, Truncate(tzid, 64))
}

// loadIANA loads a name from Go's zone database, refusing the names that
// time.LoadLocation treats specially or that cannot be zone names.
func loadIANA(name string) (*time.Location, bool) {
	if name == "" || name == "Local" || strings.ContainsAny(name, " \\:") || strings.Contains(name, "..") || name[0] == '/' {
		return nil, false
	}
	if loc, ok := ianaCache.Load(name); ok {
		return loc.(*time.Location), true
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, false
	}
	ianaCache.Store(name, loc)
	return loc, true
}

// ianaCache keeps the zones loaded (time.LoadLocation parses the zone data
// on every call). Only names found are kept: the zone database bounds it.
var ianaCache sync.Map

// transition is one change of UTC offset.
type transition struct {
	at       time.Time // instant
	from, to int       // offsets in seconds
	name     string    // abbreviation after the change
	dst      bool      // daylight saving time after the change
}

// transitions lists the offset changes of loc in [start, end).
func transitions(loc *time.Location, start, end time.Time) []transition {
	var out []transition
	t := start
	for len(out) < 100 {
		_, next := t.In(loc).ZoneBounds()
		if next.IsZero() || !next.Before(end) || !next.After(t) {
			break
		}
		_, from := next.Add(-time.Second).In(loc).Zone()
		after := next.In(loc)
		name, to := after.Zone()
		if from != to {
			out = append(out, transition{at: next, from: from, to: to, name: name, dst: after.IsDST()})
		}
		t = next
	}
	return out
}

// VTimezone generates a VTIMEZONE component (folded CRLF text,
// BEGIN:VTIMEZONE…END:VTIMEZONE\r\n) with TZID exactly tzid, derived from
// Go's zone database for LoadLocation(tzid). For a zone with daylight saving
// time in year whose rules repeat in the neighbouring years it writes a
// STANDARD and a DAYLIGHT sub-component, each with a 1970-based DTSTART (the
// wall clock of the change in the old offset) and an
// RRULE:FREQ=YEARLY;BYMONTH=m;BYDAY=nDD (n is 1 to 4, or -1 for the last such
// weekday). A zone whose changes follow no such rule gets one sub-component
// per change in year (and the one before it) without RRULE; a zone without
// changes in year gets one STANDARD with its fixed offset. ok is false if the
// zone is unknown or tzid cannot be written.
func VTimezone(tzid string, year int) (text string, ok bool) {
	loc, err := LoadLocation(tzid)
	if err != nil || year < 1 || year > 9999 || strings.ContainsAny(tzid, "\r\n") {
		return "", false
	}
	tzid = cleanTZID(tzid)
	start := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(1, 0, 0)
	trans := transitions(loc, start.Add(-14*time.Hour), end.Add(14*time.Hour))

	lines := []string{"BEGIN:VTIMEZONE", "TZID:" + escapeText(tzid)}
	sub := func(kind string, dtstart time.Time, from, to int, name, rrule string) {
		lines = append(lines,
			"BEGIN:"+kind,
			"DTSTART:"+dtstart.Format(layoutLocal),
			"TZOFFSETFROM:"+formatOffset(from),
			"TZOFFSETTO:"+formatOffset(to),
		)
		if name != "" {
			lines = append(lines, "TZNAME:"+escapeText(name))
		}
		if rrule != "" {
			lines = append(lines, "RRULE:"+rrule)
		}
		lines = append(lines, "END:"+kind)
	}

	switch rules, ok := yearlyRules(loc, year, trans); {
	case len(trans) == 0:
		name, off := start.Add(12 * time.Hour).In(loc).Zone()
		sub("STANDARD", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), off, off, name, "")
	case ok:
		for _, r := range rules {
			sub(r.kind, r.dtstart, r.t.from, r.t.to, r.t.name, r.rrule)
		}
	default:
		// One-off changes: the one in force on January 1st, then each in year.
		prev, _ := start.In(loc).ZoneBounds()
		if !prev.IsZero() && prev.Before(start) && (len(trans) == 0 || prev.Before(trans[0].at)) {
			if p := transitions(loc, prev.Add(-time.Second), prev.Add(time.Second)); len(p) == 1 {
				trans = append([]transition{p[0]}, trans...)
			}
		}
		if len(trans) == 0 || trans[0].at.After(start) {
			// Nothing before January 1st: start with the offset then in force.
			name, off := start.In(loc).Zone()
			sub("STANDARD", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), off, off, name, "")
		}
		for _, t := range trans {
			kind := "STANDARD"
			if t.dst {
				kind = "DAYLIGHT"
			}
			sub(kind, wallAt(t.at, t.from), t.from, t.to, t.name, "")
		}
	}
	lines = append(lines, "END:VTIMEZONE")
	// The lines are ours rather than go-ical's: go-ical would sort each
	// observance's properties, and this order (DTSTART, offsets, name,
	// rule) is the one clients write. Encode reads them (decodeCalendar).
	var b strings.Builder
	w := newFoldWriter(&b)
	for _, l := range lines {
		_ = w.line(l) // a strings.Builder does not fail
	}
	return b.String(), true
}

// wallAt is the wall clock at instant t in a zone with offset off (seconds).
func wallAt(t time.Time, off int) time.Time {
	return t.UTC().Add(time.Duration(off) * time.Second)
}

type ruleSub struct {
	kind    string
	dtstart time.Time
	rrule   string
	t       transition
}

// yearlyRules describes the two changes of a DST zone in year as yearly
// nth-weekday rules, checked against the neighbouring years. ok is false if
// year does not have exactly one change each way or no rule fits.
func yearlyRules(loc *time.Location, year int, trans []transition) ([]ruleSub, bool) {
	if len(trans) != 2 || trans[0].to == trans[1].to {
		return nil, false
	}
	var out []ruleSub
	for _, t := range trans {
		wall := wallAt(t.at, t.from)
		up := t.to > t.from // the change into the larger offset is DAYLIGHT
		var fits []int      // candidate ordinals that also match year-1 and year+1
		for _, n := range ordinals(wall) {
			good := true
			for _, y := range []int{year - 1, year + 1} {
				ys := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
				other := transitions(loc, ys.Add(-14*time.Hour), ys.AddDate(1, 0, 0).Add(14*time.Hour))
				match := false
				for _, o := range other {
					if (o.to > o.from) != up || o.from != t.from || o.to != t.to {
						continue
					}
					w := wallAt(o.at, o.from)
					if w.Month() == wall.Month() && w.Hour() == wall.Hour() && w.Minute() == wall.Minute() &&
						nthWeekday(y, wall.Month(), wall.Weekday(), n) == w.Day() {
						match = true
					}
				}
				if !match {
					good = false
				}
			}
			if good {
				fits = append(fits, n)
			}
		}
		if len(fits) == 0 {
			return nil, false
		}
		n := fits[0]
		kind := "STANDARD"
		if up {
			kind = "DAYLIGHT"
		}
		day := nthWeekday(1970, wall.Month(), wall.Weekday(), n)
		out = append(out, ruleSub{
			kind:    kind,
			dtstart: time.Date(1970, wall.Month(), day, wall.Hour(), wall.Minute(), wall.Second(), 0, time.UTC),
			rrule:   fmt.Sprintf("FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s", int(wall.Month()), n, weekdayCode(wall.Weekday())),
			t:       t,
		})
	}
	if out[0].kind == out[1].kind {
		return nil, false
	}
	return out, true
}

// ordinals lists the BYDAY ordinals that describe the day of w in its month:
// -1 first when it is the last such weekday, then 1..4.
func ordinals(w time.Time) []int {
	var out []int
	last := time.Date(w.Year(), w.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if w.Day()+7 > last {
		out = append(out, -1)
	}
	if n := (w.Day()-1)/7 + 1; n <= 4 {
		out = append(out, n)
	}
	return out
}

// nthWeekday returns the day of month of the nth (or, for -1, last) wd.
func nthWeekday(year int, m time.Month, wd time.Weekday, n int) int {
	first := time.Date(year, m, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	days := weekdayDays(first, last, weekdayNum{n: n, wd: wd})
	if len(days) == 0 {
		return 0
	}
	return days[0]
}

func weekdayCode(wd time.Weekday) string {
	return [...]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}[wd]
}
