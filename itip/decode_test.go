package itip

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/emersion/go-ical"
)

// TestPrepare_ParamAtLineEnd checks a line go-ical's own decoder panics on
// (a parameter value at the end of the line): it is dropped, and the rest
// reads.
func TestPrepare_ParamAtLineEnd(t *testing.T) {
	c := mustParse(t, "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nATTENDEE;CN=x\nATTENDEE:mailto:b@x\nEND:VEVENT\nEND:VCALENDAR\n")
	if a := c.Events[0].Attendees; len(a) != 1 || a[0].Email != "b@x" {
		t.Errorf("attendees = %+v", a)
	}
}

// TestPrepare shows what the pre-pass keeps of lines clients get wrong.
func TestPrepare(t *testing.T) {
	in := "junk\r\nBEGIN:VCALENDAR\r\nX-DROPPED:1\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n" +
		"attendee;x-num-guests=0;CN=John \"J\" Doe;RSVP;PARTSTAT=\"ACCEPTED\"junk:mailto:j@x\r\n" +
		"DTSTART;TZID=\"W. Europe\";VALUE=DATE-TIME:20250101T100000\r\n" +
		"ORGANIZER;CN=\"Doe, Jane\";CN=Other:mailto:\r\n jane@x\r\n" +
		"ATTENDEE;DELEGATED-TO=\"mailto:a@x\",\"mailto:b@x\";ROLE=" + strings.Repeat("x,", maxParamValues) + "x:mailto:d@x\r\n" +
		"BEGIN:VALARM\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\ntrailing"
	want := "BEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\n" +
		"ATTENDEE;CN=[John ^'J^' Doe];PARTSTAT=[ACCEPTED]:mailto:j@x\n" +
		"ATTENDEE;DELEGATED-TO=[mailto:a@x|mailto:b@x]:mailto:d@x\n" +
		"DTSTART;TZID=[W. Europe]:20250101T100000\n" +
		"ORGANIZER;CN=[Doe, Jane]:mailto:jane@x\n" +
		"END:VEVENT\nEND:VCALENDAR\n"
	got, err := prepare(in, "VCALENDAR")
	if err != nil || dump(got) != want {
		t.Errorf("prepare = %v\n%s\nwant\n%s", err, dump(got), want)
	}
	// What is kept is copied: no string of the tree points into the text.
	var inText func(c *ical.Component) bool
	inText = func(c *ical.Component) bool {
		within := func(v string) bool {
			d, start := uintptr(unsafe.Pointer(unsafe.StringData(v))), uintptr(unsafe.Pointer(unsafe.StringData(in)))
			return v != "" && d >= start && d < start+uintptr(len(in))
		}
		for _, ps := range c.Props {
			for _, p := range ps {
				if within(p.Value) {
					return true
				}
				for _, vs := range p.Params {
					if slices.ContainsFunc(vs, within) {
						return true
					}
				}
			}
		}
		return slices.ContainsFunc(c.Children, inText)
	}
	if got != nil && inText(got) {
		t.Error("the tree holds strings of the text it was read from")
	}

	// A VTIMEZONE is read on its own (a time zone sent with an event,
	// written again for a fan-out), and wrapped in a VCALENDAR.
	tz := "BEGIN:VTIMEZONE\r\nTZID:Z\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
	cal, err := decodeCalendar("BEGIN:VCALENDAR\r\n"+tz+"END:VCALENDAR\r\n", "VTIMEZONE")
	want = "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:Z\nBEGIN:STANDARD\nDTSTART:19700101T000000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0100\nEND:STANDARD\nEND:VTIMEZONE\nEND:VCALENDAR\n"
	if err != nil {
		t.Fatalf("decodeCalendar(VTIMEZONE): %v", err)
	}
	if got := dump(cal.Component); got != want {
		t.Errorf("decodeCalendar(VTIMEZONE) =\n%s\nwant\n%s", got, want)
	}
}

// dump writes c as lines of NAME;PARAM=[values…]:value, properties and
// parameters in alphabetical order.
func dump(c *ical.Component) string {
	if c == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString("BEGIN:" + c.Name + "\n")
	for _, name := range slices.Sorted(maps.Keys(c.Props)) {
		for _, p := range c.Props[name] {
			b.WriteString(p.Name)
			for _, pn := range slices.Sorted(maps.Keys(p.Params)) {
				fmt.Fprintf(&b, ";%s=[%s]", pn, strings.Join(p.Params[pn], "|"))
			}
			b.WriteString(":" + p.Value + "\n")
		}
	}
	for _, child := range c.Children {
		b.WriteString(dump(child))
	}
	b.WriteString("END:" + c.Name + "\n")
	return b.String()
}

// TestParseCalendar_ParamBudget checks that a calendar whose parameters
// (of the properties read) add up to more than maxParamBytes is refused, and
// one just under it is read.
func TestParseCalendar_ParamBudget(t *testing.T) {
	v := strings.Repeat("a", 50)
	many := "ATTENDEE;CN=" + v + ";EMAIL=" + v + ";ROLE=" + v + ";PARTSTAT=" + v + ";CUTYPE=" + v + ":mailto:a@b"
	calendar := func(n int) string {
		lines := append([]string{"BEGIN:VEVENT", "UID:a"}, strings.Split(strings.Repeat(many+"\n", n), "\n")...)
		return ics(append(lines, "END:VEVENT")...)
	}
	// Each line's parameters take about 300 bytes.
	if _, err := ParseCalendar(strings.NewReader(calendar(MaxAttendees))); err == nil || !strings.Contains(err.Error(), "bytes of property parameters") {
		t.Errorf("%d attendees: err = %v, want too many bytes of parameters", MaxAttendees, err)
	}
	if c, err := ParseCalendar(strings.NewReader(calendar(maxParamBytes / 400))); err != nil || len(c.Events[0].Attendees) != maxParamBytes/400 {
		t.Errorf("%d attendees: err = %v", maxParamBytes/400, err)
	}
}
