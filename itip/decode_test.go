package itip

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

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
		"BEGIN:VALARM\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\ntrailing"
	want := "BEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\n" +
		"ATTENDEE;CN=[John ^'J^' Doe];PARTSTAT=[ACCEPTED]:mailto:j@x\n" +
		"DTSTART;TZID=[W. Europe]:20250101T100000\n" +
		"ORGANIZER;CN=[Doe, Jane]:mailto:jane@x\n" +
		"END:VEVENT\nEND:VCALENDAR\n"
	got, err := prepare(in, "VCALENDAR")
	if err != nil || dump(got) != want {
		t.Errorf("prepare = %v\n%s\nwant\n%s", err, dump(got), want)
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
