package itip

import (
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-ical"
)

// go-ical's types hold the calendars this package reads, but its decoder is
// made for well-formed input: one malformed content line fails the whole
// calendar, some panic (a parameter value at the end of a line), parameter
// values are parsed in quadratic time, every nesting level is a recursion
// and every property is kept. So the pre-pass (prepare) reads what clients
// send itself: it splits and unfolds the text into logical lines, drops the
// lines that are not content lines, checks the nesting, and builds go-ical's
// component tree from the components, properties and parameters this
// package reads, within the limits below, copying what it keeps. Of go-ical
// this package uses the types and the encoder.

// Limits of the pre-pass that are not in the package doc.
const (
	// maxParamValue is the longest parameter value kept. A longer value
	// is dropped with its parameter.
	maxParamValue = 16 << 10
	// maxParamBytes bounds the parameters kept for one calendar. A
	// calendar with more is refused.
	maxParamBytes = 2 << 20
	// maxLineParams is the number of parameters kept per property, and
	// maxParamValues the number of values of one; a parameter with more
	// is dropped.
	maxLineParams  = 32
	maxParamValues = 64
	// maxTZLines bounds the properties kept per VTIMEZONE besides the ones
	// its evaluation reads.
	maxTZLines = maxTZRules * 20
)

// keptProps lists, per component, the properties ParseCalendar reads and how
// many of each it keeps; the pre-pass drops the others so that memory stays
// bounded.
var keptProps = map[string]map[string]int{
	"VCALENDAR": {"METHOD": 1, "PRODID": 1},
	"VEVENT": {
		"UID": 1, "RECURRENCE-ID": 1, "SEQUENCE": 1, "DTSTAMP": 1, "CREATED": 1,
		"LAST-MODIFIED": 1, "ORGANIZER": 1, "ATTENDEE": MaxAttendees, "SUMMARY": 1,
		"DESCRIPTION": 1, "LOCATION": 1, "COMMENT": 100, "URL": 1, "STATUS": 1,
		"TRANSP": 1, "CLASS": 1, "DTSTART": 1, "DTEND": 1, "DURATION": 1, "RRULE": 1,
		"EXDATE": maxDates, "RDATE": maxDates,
	},
}

// tzProps lists, per VTIMEZONE component, the properties kept at most so many
// times. A VTIMEZONE keeps its other properties too (maxTZLines in all), so
// that Calendar.Timezones holds the whole component.
var tzProps = map[string]map[string]int{
	"VTIMEZONE": {"TZID": 1, "LAST-MODIFIED": 1, "TZURL": 1},
	"STANDARD":  {"DTSTART": 1, "TZOFFSETFROM": 1, "TZOFFSETTO": 1, "RRULE": 1, "RDATE": maxTZDates},
	"DAYLIGHT":  {"DTSTART": 1, "TZOFFSETFROM": 1, "TZOFFSETTO": 1, "RRULE": 1, "RDATE": maxTZDates},
}

// keptChildren lists which child components are kept under which parent.
var keptChildren = map[string]map[string]bool{
	"VCALENDAR": {"VEVENT": true, "VTIMEZONE": true},
	"VTIMEZONE": {"STANDARD": true, "DAYLIGHT": true},
}

// readParams are the parameters ParseCalendar reads outside VTIMEZONE.
var readParams = map[string]bool{
	"CN": true, "EMAIL": true, "PARTSTAT": true, "ROLE": true, "CUTYPE": true,
	"RSVP": true, "DELEGATED-TO": true, "TZID": true,
}

// decodeCalendar runs the pre-pass over s for the first component named
// root ("VCALENDAR" or "VTIMEZONE"). For a VTIMEZONE the VCALENDAR returned
// wraps it.
func decodeCalendar(s, root string) (*ical.Calendar, error) {
	c, err := prepare(s, root)
	if err != nil {
		return nil, err
	}
	if root != ical.CompCalendar {
		c = &ical.Component{Name: ical.CompCalendar, Props: ical.Props{}, Children: []*ical.Component{c}}
	}
	return &ical.Calendar{Component: c}, nil
}

// prepare returns the first component named root in s, with what it keeps
// of its properties and children (a property's Params is nil when none is
// kept). It fails when s has more than maxLines
// lines, no such component, components nested deeper than maxDepth, a
// mismatched or missing END, or parameters over maxParamBytes.
func prepare(s, root string) (*ical.Component, error) {
	lines, truncated := unfold(s, maxLines)
	if truncated {
		return nil, fmt.Errorf("itip: calendar has more than %d lines", maxLines)
	}
	p := &prepass{root: root}
	for _, raw := range lines {
		done, err := p.line(raw)
		if err != nil {
			return nil, err
		}
		if done {
			return p.done, nil
		}
	}
	if len(p.stack) == 0 {
		return nil, fmt.Errorf("itip: no BEGIN:%s", root)
	}
	return nil, fmt.Errorf("itip: malformed calendar: missing END:%s", p.stack[len(p.stack)-1].name)
}

// prepass is the state of prepare.
type prepass struct {
	root  string
	done  *ical.Component // the root, once ended
	stack []frame
	// Kept so far in the calendar, or (tzLines) in the current VTIMEZONE.
	events, timezones, attendees, dates, paramBytes, tzLines int
	// Scratch space of cleanLine, reused from line to line.
	values []string
}

// A frame is one open component.
type frame struct {
	name     string
	keep     bool // kept, in comp
	comp     *ical.Component
	inTZ     bool           // in a kept VTIMEZONE
	limits   map[string]int // how many of each property to keep
	counts   []propCount    // how many were kept
	children int            // child components kept
}

type propCount struct {
	name string
	n    int
}

// count returns the counter of property name.
func (f *frame) count(name string) *int {
	for i := range f.counts {
		if f.counts[i].name == name {
			return &f.counts[i].n
		}
	}
	f.counts = append(f.counts, propCount{name: name})
	return &f.counts[len(f.counts)-1].n
}

// line handles one logical line; done is true after the root's END.
func (p *prepass) line(raw string) (done bool, err error) {
	var top *frame
	if len(p.stack) > 0 {
		top = &p.stack[len(p.stack)-1]
	}
	// A cheap look at the name first: most lines of a big calendar are
	// dropped, and only BEGIN and END matter outside kept components.
	switch n := lineName(raw); {
	case n == "BEGIN" || n == "END":
	case top == nil || !top.keep:
		return false, nil
	case !top.inTZ && top.limits[n] == 0:
		return false, nil
	}
	name, params, size, value, ok := p.cleanLine(raw, top != nil && top.inTZ)
	if !ok {
		return false, nil
	}
	switch name {
	case "BEGIN":
		return false, p.begin(top, strings.ToUpper(strings.TrimSpace(value)))
	case "END":
		if top == nil {
			return false, nil
		}
		comp := strings.ToUpper(strings.TrimSpace(value))
		if comp != top.name {
			return false, fmt.Errorf("itip: malformed calendar: END:%s inside %s", Truncate(comp, 40), Truncate(top.name, 40))
		}
		p.stack = p.stack[:len(p.stack)-1]
		if len(p.stack) == 0 {
			p.done = top.comp
			return true, nil
		}
		return false, nil
	}
	var n *int // count of this property, if limited
	switch max, ok := top.limits[name]; {
	case ok:
		if n = top.count(name); *n >= max {
			return false, nil
		}
	case top.inTZ && p.tzLines > 0: // other properties of a VTIMEZONE
		p.tzLines--
	default:
		return false, nil
	}
	switch {
	case top.inTZ:
	case name == "ATTENDEE":
		if p.attendees >= maxTotalAttendees {
			return false, nil
		}
		p.attendees++
	case name == "EXDATE" || name == "RDATE":
		if p.dates >= maxTotalDates {
			return false, nil
		}
		p.dates++
	}
	if p.paramBytes += size; p.paramBytes > maxParamBytes {
		return false, fmt.Errorf("itip: calendar has more than %d bytes of property parameters", maxParamBytes)
	}
	if n != nil {
		*n++
	}
	value = copyProp(value, params)
	top.comp.Props[name] = append(top.comp.Props[name], ical.Prop{Name: name, Params: params, Value: value})
	return false, nil
}

// copyProp returns a copy of value, and replaces the values of params with
// copies, all in one allocation: the lines are slices of the whole text,
// which a kept UID or name must not keep in memory.
func copyProp(value string, params ical.Params) string {
	n := len(value)
	vals := make([][]string, 0, len(params)) // one order for both loops below
	for _, vs := range params {
		vals = append(vals, vs)
		for _, v := range vs {
			n += len(v)
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(value)
	for _, vs := range vals {
		for _, v := range vs {
			b.WriteString(v)
		}
	}
	all := b.String()
	value, all = all[:len(value)], all[len(value):]
	for _, vs := range vals {
		for i, v := range vs {
			vs[i], all = all[:len(v)], all[len(v):]
		}
	}
	return value
}

// begin opens component comp inside top (nil for none yet).
func (p *prepass) begin(top *frame, comp string) error {
	if top == nil {
		if comp == p.root { // else junk before the component
			p.push(frame{name: comp, keep: true}, comp == ical.CompTimezone)
		}
		return nil
	}
	if len(p.stack) >= maxDepth {
		return fmt.Errorf("itip: components nested deeper than %d", maxDepth)
	}
	f := frame{name: comp, inTZ: top.inTZ}
	if top.keep && keptChildren[top.name][comp] {
		switch comp {
		case ical.CompEvent:
			f.keep = p.events < MaxEvents
			p.events++
		case ical.CompTimezone:
			f.keep = p.timezones < maxTimezones
			p.timezones++
		default: // STANDARD, DAYLIGHT
			f.keep = top.children < maxTZRules
		}
		if f.keep {
			top.children++
		}
	}
	p.push(f, f.keep && comp == ical.CompTimezone)
	return nil
}

func (p *prepass) push(f frame, vtimezone bool) {
	if vtimezone {
		f.inTZ = true
		p.tzLines = maxTZLines
	}
	if f.keep {
		if f.inTZ {
			f.limits = tzProps[f.name]
		} else {
			f.limits = keptProps[f.name]
		}
		f.counts = make([]propCount, 0, len(f.limits)+4)
		f.comp = &ical.Component{Name: f.name, Props: make(ical.Props, len(f.limits))}
		if n := len(p.stack); n > 0 {
			parent := p.stack[n-1].comp
			parent.Children = append(parent.Children, f.comp)
		}
	}
	p.stack = append(p.stack, f)
}

// cleanLine reads one unfolded line as a content line, NAME *(";" param)
// ":" value, and returns its name trimmed and upper-cased, the parameters
// ParseCalendar reads (all when all is set) with their names upper-cased,
// how many bytes those parameters took, and the value as sent. It never
// fails loudly: ok is false for a line that is not a content line (no
// valid name, no colon, an unterminated quoted value), which the caller
// skips.
//
// Client errors are read as they always were: a parameter without "=" is
// dropped, and so is junk between a quoted value and the next delimiter; a
// '"' inside an unquoted value is kept as RFC 6868 "^'", as an encoder
// writes it back (decodeCaret reads it as '"'); a repeated parameter keeps
// its first value list; a parameter value longer than maxParamValue is
// dropped with its parameter, and so are parameters past the first
// maxLineParams.
func (p *prepass) cleanLine(s string, all bool) (name string, params ical.Params, size int, value string, ok bool) {
	i := indexByte3(s, ';', ':', ':')
	if i <= 0 {
		return "", nil, 0, "", false
	}
	name = strings.TrimSpace(s[:i])
	if !validName(name) {
		return "", nil, 0, "", false
	}
	name = strings.ToUpper(name)
	s = s[i:]
	if s[0] == ':' {
		return name, nil, 0, s[1:], true
	}
	for len(s) > 0 && s[0] == ';' {
		s = s[1:]
		j := indexByte3(s, '=', ';', ':')
		if j < 0 {
			return "", nil, 0, "", false
		}
		if s[j] != '=' { // a parameter without value
			s = s[j:]
			continue
		}
		pname := strings.ToUpper(strings.TrimSpace(s[:j]))
		s = s[j+1:]
		_, seen := params[pname]
		drop := seen || !isToken(pname) || !all && !readParams[pname] || len(params) >= maxLineParams
		values := p.values[:0]
		for {
			var v string
			if len(s) > 0 && s[0] == '"' {
				k := strings.IndexByte(s[1:], '"')
				if k < 0 {
					return "", nil, 0, "", false
				}
				v, s = s[1:1+k], s[2+k:]
			} else {
				k := indexByte3(s, ';', ',', ':')
				if k < 0 {
					return "", nil, 0, "", false
				}
				v, s = strings.ReplaceAll(s[:k], `"`, `^'`), s[k:]
			}
			if drop = drop || len(v) > maxParamValue || len(values) == maxParamValues; !drop {
				values = append(values, v)
			}
			if len(s) > 0 && s[0] == ',' {
				s = s[1:]
				continue
			}
			break
		}
		p.values = values
		// Junk between a quoted value and the next delimiter: skip it.
		if len(s) > 0 && s[0] != ';' && s[0] != ':' {
			k := indexByte3(s, ';', ':', ':')
			if k < 0 {
				return "", nil, 0, "", false
			}
			s = s[k:]
		}
		if drop {
			continue
		}
		if params == nil {
			params = make(ical.Params, 2)
		}
		params[pname] = slices.Clone(values)
		size += len(pname) + 2
		for _, v := range values {
			size += len(v) + 1
		}
	}
	if len(s) == 0 || s[0] != ':' {
		return "", nil, 0, "", false
	}
	return name, params, size, s[1:], true
}

// lineName returns the upper-case name of a line that may be a content
// line, else "".
func lineName(s string) string {
	i := indexByte3(s, ';', ':', ':')
	if i <= 0 {
		return ""
	}
	return strings.ToUpper(strings.TrimSpace(s[:i]))
}

// indexByte3 is strings.IndexAny(s, string([]byte{a, b, c})) without the
// set IndexAny builds on every call.
func indexByte3(s string, a, b, c byte) int {
	for i := 0; i < len(s); i++ {
		if x := s[i]; x == a || x == b || x == c {
			return i
		}
	}
	return -1
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isToken reports whether s is an iana-token or x-name: letters, digits, '-'.
func isToken(s string) bool {
	return s != "" && validName(s) && !strings.Contains(s, "_")
}

// unfold splits s into logical lines: CRLF, LF and lone CR all end a line, a
// line starting with a space or tab continues the previous one (RFC 5545
// section 3.1), control characters other than tab are dropped. It stops after
// maxLines logical lines and reports whether it did.
func unfold(s string, maxLines int) (lines []string, truncated bool) {
	lines = make([]string, 0, min(strings.Count(s, "\n")+1, maxLines+1))
	var (
		cur     string
		b       strings.Builder
		folding bool // cur has been copied into b
		have    bool
	)
	flush := func() {
		if !have {
			return
		}
		if folding {
			cur = b.String()
			b.Reset()
			folding = false
		}
		lines = append(lines, cleanLineControls(cur))
		have = false
	}
	lf := -1 // index in s of the next LF; len(s) when there is none
	for len(s) > 0 {
		// IndexByte is much faster than IndexAny. The next LF is looked
		// up again only once passed, so that CR-only text stays linear.
		if lf < 0 {
			if lf = strings.IndexByte(s, '\n'); lf < 0 {
				lf = len(s)
			}
		}
		i := lf
		if j := strings.IndexByte(s[:lf], '\r'); j >= 0 {
			i = j
		}
		line := s[:i]
		switch {
		case i == len(s):
			s = ""
		case s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n':
			s, lf = s[i+2:], -1
		case s[i] == '\n':
			s, lf = s[i+1:], -1
		default: // lone CR
			s, lf = s[i+1:], lf-i-1
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if !have {
				cur, have = line[1:], true
				continue
			}
			if !folding {
				b.WriteString(cur)
				folding = true
			}
			b.WriteString(line[1:])
			continue
		}
		flush()
		if len(lines) >= maxLines {
			return lines, true
		}
		if line == "" {
			continue
		}
		cur, have = line, true
	}
	flush()
	return lines, false
}

// cleanLineControls drops ASCII control characters other than tab.
func cleanLineControls(s string) string { return dropControls(s, "\t") }
