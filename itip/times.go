package itip

import (
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// A zone converts between wall clocks and instants. Wall clocks are carried
// as time.Time values in time.UTC whose fields are the local reading.
type zone interface {
	toUTC(wall time.Time) time.Time
	toWall(utc time.Time) time.Time
}

// locZone is a zone from Go's database (or a fixed offset).
type locZone struct{ loc *time.Location }

func (z locZone) toUTC(w time.Time) time.Time {
	return time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, z.loc).UTC()
}

func (z locZone) toWall(u time.Time) time.Time {
	t := u.In(z.loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// vtzZone is a zone evaluated from a calendar's own VTIMEZONE.
type vtzZone struct{ tz *vtimezone }

func (z vtzZone) toUTC(w time.Time) time.Time {
	off := z.tz.offsetAt(w)
	off = z.tz.offsetAt(w.Add(-time.Duration(off) * time.Second))
	return w.Add(-time.Duration(off) * time.Second)
}

func (z vtzZone) toWall(u time.Time) time.Time {
	return u.Add(time.Duration(z.tz.offsetAt(u)) * time.Second)
}

// resolver resolves TZIDs for one calendar, caching each answer.
type resolver struct {
	vtz    map[string]*ical.Component
	cache  map[string]zone
	budget int // onsets all evaluated VTIMEZONEs may still expand to
	dates  int // EXDATE and RDATE values the calendar may still keep
}

// maxOnsets bounds the work of evaluating a calendar's VTIMEZONEs: two
// changes a year from 1900 to 2100 for a hundred zones.
const maxOnsets = 40000

func newResolver(vtz map[string]*ical.Component) *resolver {
	return &resolver{vtz: vtz, cache: map[string]zone{}, budget: maxOnsets, dates: maxTotalDates}
}

// zone resolves tzid: Go's database via LoadLocation first, then the
// calendar's VTIMEZONE (its rules, or failing that its STANDARD offset). nil
// means unresolvable: the time is read as UTC.
func (r *resolver) zone(tzid string) zone {
	if z, ok := r.cache[tzid]; ok {
		return z
	}
	var z zone
	if loc, err := LoadLocation(tzid); err == nil {
		z = locZone{loc}
	} else if c := r.vtimezone(tzid); c != nil {
		if tz := parseVTimezone(c, &r.budget); len(tz.onsets) > 0 {
			z = vtzZone{tz}
		}
	}
	r.cache[tzid] = z
	return z
}

func (r *resolver) vtimezone(tzid string) *ical.Component {
	if c, ok := r.vtz[tzid]; ok {
		return c
	}
	for k, c := range r.vtz {
		if strings.EqualFold(k, tzid) {
			return c
		}
	}
	return nil
}

// timeProp reads a DATE or DATE-TIME property (its first value). ok is false
// when the value cannot be read; t.Value then still holds what was written.
func (r *resolver) timeProp(p *ical.Prop) (t Time, ok bool) {
	v := p.Value
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return r.parseTime(v, param(p, ical.ParamTimezoneID))
}

// timeList reads every value of a comma-separated EXDATE or RDATE, at most max.
func (r *resolver) timeList(p *ical.Prop, max int) []Time {
	var out []Time
	tzid := param(p, ical.ParamTimezoneID)
	for _, v := range strings.Split(p.Value, ",") {
		if len(out) >= max {
			break
		}
		if strings.TrimSpace(v) == "" {
			continue
		}
		if t, ok := r.parseTime(v, tzid); ok {
			out = append(out, t)
			r.dates--
		}
	}
	return out
}

// instant reads a DATE-TIME meant to be UTC (DTSTAMP, CREATED, LAST-MODIFIED).
func (r *resolver) instant(p *ical.Prop) time.Time {
	if p == nil {
		return time.Time{}
	}
	t, _ := r.timeProp(p)
	return t.UTC
}

// parseTime reads one DATE or DATE-TIME value. A PERIOD keeps its start.
func (r *resolver) parseTime(v, tzid string) (Time, bool) {
	v = strings.ToUpper(strings.TrimSpace(stripControls(v)))
	if i := strings.IndexByte(v, '/'); i >= 0 {
		v = v[:i]
	}
	tzid = cleanTZID(tzid)
	wall, kind, ok := parseWall(v)
	if !ok {
		return Time{Value: v, TZID: tzid}, false
	}
	switch kind {
	case kindDate:
		return Time{Value: v, AllDay: true, UTC: wall}, true
	case kindUTC:
		return Time{Value: v, UTC: wall}, true
	}
	if tzid == "" {
		return Time{Value: v, UTC: wall}, true
	}
	t := Time{Value: v, TZID: tzid, UTC: wall}
	if z := r.zone(tzid); z != nil {
		t.UTC = z.toUTC(wall)
	}
	if !inRange(t.UTC) {
		return Time{Value: v, TZID: tzid}, false
	}
	return t, true
}

// inRange reports whether t can be written as an iCalendar date: years 1 to 9999.
func inRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

type valueKind int

const (
	kindDate valueKind = iota
	kindLocal
	kindUTC
)

// parseWall reads YYYYMMDD, YYYYMMDDTHHMMSS[Z] (seconds optional) as a wall
// clock in time.UTC.
func parseWall(v string) (time.Time, valueKind, bool) {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	kind := kindLocal
	if strings.HasSuffix(v, "Z") {
		kind = kindUTC
		v = v[:len(v)-1]
	}
	var (
		t   time.Time
		err error
	)
	switch {
	case len(v) == 8 && kind == kindLocal && digits(v):
		t, err = time.Parse(layoutDate, v)
		kind = kindDate
	case len(v) == 15 && v[8] == 'T' && digits(v[:8]) && digits(v[9:]):
		t, err = time.Parse(layoutLocal, v)
	case len(v) == 13 && v[8] == 'T' && digits(v[:8]) && digits(v[9:]):
		t, err = time.Parse("20060102T1504", v)
	default:
		return time.Time{}, kind, false
	}
	if err != nil || t.Year() < 1 {
		return time.Time{}, kind, false
	}
	return t, kind, true
}

// addDuration returns start+d as RFC 5545 defines it: days move the wall
// clock in start's zone, seconds are exact. The result keeps start's form
// (DATE, UTC, TZID or floating); ok is false if it cannot be computed or
// falls after year 9999.
func (r *resolver) addDuration(start Time, d duration) (Time, bool) {
	end := r.plus(start, d)
	_, _, ok := parseWall(end.Value) // a year past 9999 does not parse
	return end, ok && inRange(end.UTC)
}

func (r *resolver) plus(start Time, d duration) Time {
	wall, kind, ok := parseWall(start.Value)
	if !ok {
		return start
	}
	if kind == kindDate {
		end := wall.AddDate(0, 0, d.days+int(d.secs/86400))
		return Time{Value: end.Format(layoutDate), AllDay: true, UTC: end}
	}
	if kind == kindUTC {
		u := wall.AddDate(0, 0, d.days).Add(time.Duration(d.secs) * time.Second)
		return Time{Value: u.Format(layoutUTC), UTC: u}
	}
	var z zone
	if start.TZID != "" {
		z = r.zone(start.TZID)
	}
	wall = wall.AddDate(0, 0, d.days)
	if z == nil { // floating or unresolvable: wall clock is read as UTC
		w := wall.Add(time.Duration(d.secs) * time.Second)
		return Time{Value: w.Format(layoutLocal), TZID: start.TZID, UTC: w}
	}
	u := z.toUTC(wall).Add(time.Duration(d.secs) * time.Second)
	return Time{Value: z.toWall(u).Format(layoutLocal), TZID: start.TZID, UTC: u}
}
