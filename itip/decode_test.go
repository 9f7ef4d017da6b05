package itip

import (
	"strings"
	"testing"
)

// TestDecodeICal_Panic checks the guard around go-ical: a line it panics on
// (a parameter value at the end of the line), which the pre-pass never hands
// it, is an error, not a crash.
func TestDecodeICal_Panic(t *testing.T) {
	const bad = "BEGIN:VCALENDAR\nATTENDEE;CN=x\nEND:VCALENDAR\n"
	if _, err := decodeICal(bad); err == nil || !strings.HasPrefix(err.Error(), "itip: ") {
		t.Errorf("decodeICal = %v, want an itip error", err)
	}
	// The same line through the pre-pass is dropped, and the rest reads.
	c := mustParse(t, "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nATTENDEE;CN=x\nATTENDEE:mailto:b@x\nEND:VEVENT\nEND:VCALENDAR\n")
	if a := c.Events[0].Attendees; len(a) != 1 || a[0].Email != "b@x" {
		t.Errorf("attendees = %+v", a)
	}
}

// TestPrepare shows what go-ical is given for lines it cannot read as sent.
func TestPrepare(t *testing.T) {
	in := "junk\r\nBEGIN:VCALENDAR\r\nX-DROPPED:1\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n" +
		"attendee;x-num-guests=0;CN=John \"J\" Doe;RSVP;PARTSTAT=\"ACCEPTED\"junk:mailto:j@x\r\n" +
		"DTSTART;TZID=\"W. Europe\";VALUE=DATE-TIME:20250101T100000\r\n" +
		"ORGANIZER;CN=\"Doe, Jane\";CN=Other:mailto:\r\n jane@x\r\n" +
		"BEGIN:VALARM\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\ntrailing"
	want := "BEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\n" +
		"ATTENDEE;CN=John ^'J^' Doe;PARTSTAT=ACCEPTED:mailto:j@x\n" +
		"DTSTART;TZID=W. Europe:20250101T100000\n" +
		"ORGANIZER;CN=\"Doe, Jane\":mailto:jane@x\n" +
		"END:VEVENT\nEND:VCALENDAR\n"
	got, err := prepare(in, "VCALENDAR")
	if err != nil || got != want {
		t.Errorf("prepare = %v\n%s\nwant\n%s", err, got, want)
	}
}

// TestParseCalendar_ParamBudget checks that a calendar is refused before
// go-ical would spend long on its parameters.
func TestParseCalendar_ParamBudget(t *testing.T) {
	long := "ATTENDEE;CN=" + strings.Repeat("a", maxParamValue) + ":mailto:a@b"
	v := strings.Repeat("a", 50)
	many := "ATTENDEE;CN=" + v + ";EMAIL=" + v + ";ROLE=" + v + ";PARTSTAT=" + v + ";CUTYPE=" + v + ":mailto:a@b"
	for name, tt := range map[string]struct {
		lines []string
		err   string
	}{
		"long values": {[]string{long, long, long}, "long property parameter values"},
		"many bytes":  {strings.Split(strings.Repeat(many+"\n", MaxAttendees), "\n"), "bytes of property parameters"},
	} {
		lines := append([]string{"BEGIN:VEVENT", "UID:a"}, tt.lines...)
		_, err := ParseCalendar(strings.NewReader(ics(append(lines, "END:VEVENT")...)))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", name, err, tt.err)
		}
	}
}
