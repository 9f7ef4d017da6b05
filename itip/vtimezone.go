package itip

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// vtimezone is an evaluable VTIMEZONE: the UTC offset at any instant follows
// from its STANDARD and DAYLIGHT observances (RFC 5545 section 3.6.5).
//
// The observances are expanded once into a sorted table of onsets: every
// DTSTART and RDATE, and RRULE occurrences in the years tzFirstYear to
// tzLastYear, at most the budget given to parseVTimezone. An instant after
// the table takes the last onset's offset; one before it the first onset's
// TZOFFSETFROM.
type vtimezone struct {
	onsets []onset
}

// onset is the instant an observance takes effect.
type onset struct {
	at       time.Time
	from, to int
}

const (
	tzFirstYear = 1900
	tzLastYear  = 2100
)

// observance is one STANDARD or DAYLIGHT sub-component.
type observance struct {
	start    time.Time // DTSTART wall clock (time.UTC fields)
	from, to int       // TZOFFSETFROM, TZOFFSETTO in seconds
	rule     *yearlyRule
	rdates   []time.Time // wall clocks
}

// yearlyRule is the RRULE subset time zones use: FREQ=YEARLY with BYMONTH,
// BYDAY (with or without ordinal), BYMONTHDAY, BYHOUR/BYMINUTE/BYSECOND,
// INTERVAL, UNTIL and COUNT.
type yearlyRule struct {
	interval   int
	months     []time.Month
	days       []weekdayNum
	monthDays  []int
	hour, min  int
	sec        int
	until      time.Time // onset limit; zero when none
	untilIsUTC bool
}

type weekdayNum struct {
	n  int // 0: every such weekday; 1..5 or -1..-5
	wd time.Weekday
}

var weekdays = map[string]time.Weekday{
	"SU": time.Sunday, "MO": time.Monday, "TU": time.Tuesday, "WE": time.Wednesday,
	"TH": time.Thursday, "FR": time.Friday, "SA": time.Saturday,
}

// parseVTimezone reads a VTIMEZONE component into at most budget onsets
// (and subtracts what it used from budget); observances it cannot read are
// left out. The result has no onsets if none could be read.
func parseVTimezone(c *ical.Component, budget *int) *vtimezone {
	var obs []observance
	for _, sub := range c.Children {
		if sub.Name != ical.CompTimezoneStandard && sub.Name != ical.CompTimezoneDaylight {
			continue
		}
		var o observance
		var ok1, ok2, ok3 bool
		if p := sub.Props.Get(ical.PropDateTimeStart); p != nil {
			var kind valueKind
			o.start, kind, ok1 = parseWall(strings.ToUpper(strings.TrimSpace(p.Value)))
			ok1 = ok1 && kind != kindDate
		}
		if p := sub.Props.Get(ical.PropTimezoneOffsetFrom); p != nil {
			o.from, ok2 = parseOffset(p.Value)
		}
		if p := sub.Props.Get(ical.PropTimezoneOffsetTo); p != nil {
			o.to, ok3 = parseOffset(p.Value)
		}
		if !ok2 && ok3 {
			o.from, ok2 = o.to, true
		}
		if !ok3 || !ok2 {
			continue
		}
		if !ok1 {
			// No usable DTSTART: make it a rule in force since forever.
			o.start = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		if p := sub.Props.Get(ical.PropRecurrenceRule); p != nil {
			o.rule = parseYearlyRule(p.Value, o)
		}
		for _, p := range sub.Props[ical.PropRecurrenceDates] {
			for _, v := range strings.Split(p.Value, ",") {
				v = strings.ToUpper(strings.TrimSpace(v))
				if j := strings.IndexByte(v, '/'); j >= 0 {
					v = v[:j]
				}
				w, kind, ok := parseWall(v)
				if !ok || kind == kindDate {
					continue
				}
				if kind == kindUTC {
					w = w.Add(time.Duration(o.from) * time.Second)
				}
				if len(o.rdates) < maxTZDates {
					o.rdates = append(o.rdates, w)
				}
			}
		}
		obs = append(obs, o)
	}
	return expand(obs, budget)
}

// expand builds the onset table of obs.
func expand(obs []observance, budget *int) *vtimezone {
	tz := &vtimezone{}
	add := func(o *observance, wall time.Time) bool {
		if *budget <= 0 {
			return false
		}
		*budget--
		tz.onsets = append(tz.onsets, onset{at: wall.Add(-time.Duration(o.from) * time.Second), from: o.from, to: o.to})
		return true
	}
	for i := range obs {
		o := &obs[i]
		add(o, o.start)
		for _, w := range o.rdates {
			add(o, w)
		}
		r := o.rule
		if r == nil {
			continue
		}
		first := max(o.start.Year(), tzFirstYear)
		last := tzLastYear
		if !r.until.IsZero() {
			last = min(last, r.until.Year())
		}
	years:
		for y := first; y <= last; y++ {
			if (y-o.start.Year())%r.interval != 0 {
				continue
			}
			for _, w := range r.inYear(y) {
				if !w.After(o.start) {
					continue // DTSTART is in already
				}
				if !r.until.IsZero() && (r.untilIsUTC && w.Add(-time.Duration(o.from)*time.Second).After(r.until) || !r.untilIsUTC && w.After(r.until)) {
					continue
				}
				if !add(o, w) {
					break years
				}
			}
		}
	}
	slices.SortStableFunc(tz.onsets, func(a, b onset) int { return a.at.Compare(b.at) })
	return tz
}

// parseOffset reads ±HHMM[SS].
func parseOffset(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 5 && len(s) != 7 {
		return 0, false
	}
	sign := 1
	switch s[0] {
	case '+':
	case '-':
		sign = -1
	default:
		return 0, false
	}
	n := func(t string) (int, bool) {
		v, err := strconv.Atoi(t)
		return v, err == nil && t[0] != '+' && t[0] != '-'
	}
	h, ok1 := n(s[1:3])
	m, ok2 := n(s[3:5])
	sec, ok3 := 0, true
	if len(s) == 7 {
		sec, ok3 = n(s[5:7])
	}
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60 + sec), true
}

// formatOffset writes ±HHMM, or ±HHMMSS when seconds are not zero.
func formatOffset(off int) string {
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	b := []byte{sign}
	b = append(b, twoDigits(off/3600)...)
	b = append(b, twoDigits(off/60%60)...)
	if off%60 != 0 {
		b = append(b, twoDigits(off%60)...)
	}
	return string(b)
}

func twoDigits(n int) string {
	return string([]byte{byte('0' + n/10%10), byte('0' + n%10)})
}

// parseYearlyRule reads the RRULE subset of yearlyRule; nil for anything
// else, in which case only DTSTART counts as an onset.
func parseYearlyRule(s string, o observance) *yearlyRule {
	r := &yearlyRule{interval: 1, hour: o.start.Hour(), min: o.start.Minute(), sec: o.start.Second()}
	freq, count := "", 0
	for _, part := range strings.Split(strings.ToUpper(stripControls(s)), ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "FREQ":
			freq = v
		case "INTERVAL":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return nil
			}
			r.interval = n
		case "COUNT":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil
			}
			count = min(n, 1000)
		case "UNTIL":
			w, kind, ok := parseWall(v)
			if !ok {
				return nil
			}
			if kind == kindDate {
				w = w.Add(24*time.Hour - time.Second)
			}
			r.until, r.untilIsUTC = w, kind == kindUTC
		case "BYMONTH":
			if strings.Count(v, ",") >= 12 {
				return nil
			}
			for _, x := range strings.Split(v, ",") {
				n, err := strconv.Atoi(x)
				if err != nil || n < 1 || n > 12 {
					return nil
				}
				r.months = append(r.months, time.Month(n))
			}
		case "BYDAY":
			if strings.Count(v, ",") >= 70 {
				return nil
			}
			for _, x := range strings.Split(v, ",") {
				x = strings.TrimSpace(x)
				if len(x) < 2 {
					return nil
				}
				wd, ok := weekdays[x[len(x)-2:]]
				if !ok {
					return nil
				}
				n := 0
				if num := x[:len(x)-2]; num != "" {
					var err error
					n, err = strconv.Atoi(num)
					if err != nil || n == 0 || n > 5 || n < -5 {
						return nil
					}
				}
				r.days = append(r.days, weekdayNum{n, wd})
			}
		case "BYMONTHDAY":
			if strings.Count(v, ",") >= 62 {
				return nil
			}
			for _, x := range strings.Split(v, ",") {
				n, err := strconv.Atoi(x)
				if err != nil || n == 0 || n > 31 || n < -31 {
					return nil
				}
				r.monthDays = append(r.monthDays, n)
			}
		case "BYHOUR", "BYMINUTE", "BYSECOND":
			x, _, _ := strings.Cut(v, ",")
			n, err := strconv.Atoi(x)
			if err != nil || n < 0 || n > 59 {
				return nil
			}
			switch k {
			case "BYHOUR":
				r.hour = n
			case "BYMINUTE":
				r.min = n
			default:
				r.sec = n
			}
		case "WKST", "":
		default:
			return nil // BYSETPOS, BYWEEKNO, BYYEARDAY: not used by real zones
		}
	}
	if freq != "YEARLY" {
		return nil
	}
	if len(r.months) == 0 {
		r.months = []time.Month{o.start.Month()}
	}
	if count > 0 {
		// Turn COUNT into an UNTIL on the last allowed occurrence.
		n := 0
		for y := o.start.Year(); y < o.start.Year()+count*r.interval+1 && n < count; y += r.interval {
			for _, w := range r.inYear(y) {
				if w.Before(o.start) {
					continue
				}
				n++
				if n == count {
					r.until, r.untilIsUTC = w, false
					break
				}
			}
		}
	}
	return r
}

// inYear lists the rule's occurrences in year y, ascending, as wall clocks.
func (r *yearlyRule) inYear(y int) []time.Time {
	var out []time.Time
	for _, m := range r.months {
		first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		last := first.AddDate(0, 1, -1).Day()
		var days []int
		switch {
		case len(r.days) > 0:
			for _, d := range r.days {
				days = append(days, weekdayDays(first, last, d)...)
			}
			if len(r.monthDays) > 0 {
				days = slices.DeleteFunc(days, func(day int) bool {
					return !slices.ContainsFunc(r.monthDays, func(md int) bool {
						return md == day || (md < 0 && last+1+md == day)
					})
				})
			}
		case len(r.monthDays) > 0:
			for _, md := range r.monthDays {
				if md < 0 {
					md = last + 1 + md
				}
				if md >= 1 && md <= last {
					days = append(days, md)
				}
			}
		}
		for _, d := range days {
			out = append(out, time.Date(y, m, d, r.hour, r.min, r.sec, 0, time.UTC))
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.Compact(out)
}

// weekdayDays lists the days of the month (first is its 1st, last its last
// day number) that match d.
func weekdayDays(first time.Time, last int, d weekdayNum) []int {
	firstMatch := 1 + (int(d.wd)-int(first.Weekday())+7)%7
	var all []int
	for day := firstMatch; day <= last; day += 7 {
		all = append(all, day)
	}
	switch {
	case d.n == 0:
		return all
	case d.n > 0 && d.n <= len(all):
		return []int{all[d.n-1]}
	case d.n < 0 && -d.n <= len(all):
		return []int{all[len(all)+d.n]}
	}
	return nil
}

// offsetAt returns the UTC offset in seconds in force at utc: the
// TZOFFSETTO of the latest onset at or before utc, or before any onset the
// TZOFFSETFROM of the first. Of onsets at the same instant the one written
// last wins.
func (tz *vtimezone) offsetAt(utc time.Time) int {
	if len(tz.onsets) == 0 {
		return 0
	}
	// First onset after utc; the one before it is in force.
	i := sort.Search(len(tz.onsets), func(i int) bool { return tz.onsets[i].at.After(utc) })
	if i == 0 {
		return tz.onsets[0].from
	}
	return tz.onsets[i-1].to
}
