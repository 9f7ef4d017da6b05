package itip

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// ics wraps VEVENT (and optional VTIMEZONE) lines into a calendar with CRLF.
func ics(lines ...string) string {
	all := append([]string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"}, lines...)
	all = append(all, "END:VCALENDAR")
	return strings.Join(all, "\r\n") + "\r\n"
}

func mustParse(t *testing.T, s string) *Calendar {
	t.Helper()
	c, err := ParseCalendar(strings.NewReader(s))
	if err != nil {
		t.Fatalf("ParseCalendar: %v\n%s", err, s)
	}
	return c
}

func oneEvent(t *testing.T, lines ...string) Event {
	t.Helper()
	c := mustParse(t, ics(append(append([]string{"BEGIN:VEVENT", "UID:u1", "DTSTAMP:20250101T000000Z"}, lines...), "END:VEVENT")...))
	if len(c.Events) != 1 {
		t.Fatalf("%d events", len(c.Events))
	}
	return c.Events[0]
}

func TestUnfold(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"A:1\r\nB:2\r\n", []string{"A:1", "B:2"}},
		{"A:1\nB:2", []string{"A:1", "B:2"}},
		{"A:1\rB:2\r", []string{"A:1", "B:2"}},
		{"A:1\r\n 2\r\n\t3\r\nB:x", []string{"A:123", "B:x"}},
		{"A:ab\n  c", []string{"A:ab c"}},
		{"\r\n\r\nA:1\r\n\r\n", []string{"A:1"}},
		{" lead:1\nB:2", []string{"lead:1", "B:2"}},
		{"A:x\x00y\x1bz\tw", []string{"A:xyz\tw"}},
	}
	for _, tt := range tests {
		got, trunc := unfold(tt.in, 100)
		if trunc || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("unfold(%q) = %q, %v; want %q", tt.in, got, trunc, tt.want)
		}
	}
	if _, trunc := unfold("A:1\nB:2\nC:3\n", 2); !trunc {
		t.Errorf("unfold past maxLines not reported")
	}
}

// TestParseCalendar_ContentLines checks how content lines are read: names
// in any case, quoted and unquoted parameter values, RFC 6868 carets, and
// the broken lines clients write, which are repaired or skipped without
// failing the calendar.
func TestParseCalendar_ContentLines(t *testing.T) {
	ev := oneEvent(t,
		"SUMMARY:Hello: world",
		"location;language=en:x",
		`DTSTART;TZID="W. Europe":20111208T130000`,
		`DESCRIPTION;ALTREP="CID:<a@b>":text`,
		`ATTENDEE;MEMBER="mailto:a@x","mailto:b@x";CN=Doe, John:mailto:j@x`,
		`ATTENDEE;CN=Caret ^'Q^' ^^ ^n:mailto:c@x`,
		`ATTENDEE;RSVP;CN=No value;PARTSTAT=ACCEPTED:mailto:d@x`,
		`ATTENDEE;CN=John "Johnny" Doe:mailto:e@x`,
		`ATTENDEE;CN="Quoted"junk;ROLE=CHAIR:mailto:f@x`,
		`ATTENDEE;CN=First;CN=Second:mailto:g@x`,
		"NOCOLON",
		":novalue",
		"ATTENDEE;CN=foo",
		`ATTENDEE;CN="unterminated:mailto:x`,
		"BAD NAME:x",
		"ATTENDEE;=x:mailto:y",
		"URL:",
	)
	if ev.Summary != "Hello: world" || ev.Location != "x" || ev.Description != "text" || ev.URL != "" {
		t.Errorf("summary %q location %q description %q url %q", ev.Summary, ev.Location, ev.Description, ev.URL)
	}
	if ev.Start.TZID != "W. Europe" || !ev.Start.UTC.Equal(utc("2011-12-08T12:00:00Z")) {
		t.Errorf("start = %+v", ev.Start)
	}
	want := []Attendee{
		{Address: Address{Email: "j@x", Name: "Doe, John"}},
		{Address: Address{Email: "c@x", Name: `Caret "Q" ^`}},
		{Address: Address{Email: "d@x", Name: "No value"}, PartStat: "ACCEPTED"},
		{Address: Address{Email: "e@x", Name: `John "Johnny" Doe`}},
		{Address: Address{Email: "f@x", Name: "Quoted"}, Role: "CHAIR"},
		{Address: Address{Email: "g@x", Name: "First"}},
		{Address: Address{Email: "y"}},
	}
	if !reflect.DeepEqual(ev.Attendees, want) {
		t.Errorf("attendees:\n got %+v\nwant %+v", ev.Attendees, want)
	}
}

func TestUnescapeText(t *testing.T) {
	tests := map[string]string{
		`plain`:                 "plain",
		`a\,b\;c\\d\ne\Nf`:      "a,b;c\\d\ne\nf",
		`WTF rules:\r\n\r\n* x`: "WTF rules:\n\n* x",
		`odd\:colon`:            "odd:colon",
		`trailing\`:             `trailing\`,
		`\r alone`:              "\n alone",
	}
	for in, want := range tests {
		if got := unescapeText(in); got != want {
			t.Errorf("unescapeText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want duration
		ok   bool
	}{
		{"PT1H30M", duration{secs: 5400}, true},
		{"P1D", duration{days: 1}, true},
		{"P2W", duration{days: 14}, true},
		{"P1DT12H", duration{days: 1, secs: 43200}, true},
		{"-PT15M", duration{secs: 900, neg: true}, true},
		{"+P0DT0H30M0S", duration{secs: 1800}, true},
		{"pt45s", duration{secs: 45}, true},
		{"P", duration{}, false},
		{"PT", duration{}, false},
		{"1H", duration{}, false},
		{"PT1X", duration{}, false},
		{"P1H", duration{}, false},
		{"P99999999999D", duration{}, false},
	}
	for _, tt := range tests {
		got, ok := parseDuration(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseDuration(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseCalendar_Times(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		start Time
		end   Time
	}{
		{"utc", []string{"DTSTART:20250220T180000Z", "DTEND:20250220T190000Z"},
			Time{Value: "20250220T180000Z", UTC: utc("2025-02-20T18:00:00Z")},
			Time{Value: "20250220T190000Z", UTC: utc("2025-02-20T19:00:00Z")}},
		{"floating read as UTC", []string{"DTSTART:20250220T180000"},
			Time{Value: "20250220T180000", UTC: utc("2025-02-20T18:00:00Z")},
			Time{Value: "20250220T180000", UTC: utc("2025-02-20T18:00:00Z")}},
		{"iana without VTIMEZONE", []string{"DTSTART;TZID=America/New_York:20250704T090000", "DURATION:PT1H"},
			Time{Value: "20250704T090000", TZID: "America/New_York", UTC: utc("2025-07-04T13:00:00Z")},
			Time{Value: "20250704T100000", TZID: "America/New_York", UTC: utc("2025-07-04T14:00:00Z")}},
		{"windows without VTIMEZONE", []string{"DTSTART;TZID=Pacific Standard Time:20250704T090000", "DTEND;TZID=Pacific Standard Time:20250704T093000"},
			Time{Value: "20250704T090000", TZID: "Pacific Standard Time", UTC: utc("2025-07-04T16:00:00Z")},
			Time{Value: "20250704T093000", TZID: "Pacific Standard Time", UTC: utc("2025-07-04T16:30:00Z")}},
		{"mozilla prefix", []string{"DTSTART;TZID=/mozilla.org/20050126_1/Europe/Berlin:20250704T090000"},
			Time{Value: "20250704T090000", TZID: "/mozilla.org/20050126_1/Europe/Berlin", UTC: utc("2025-07-04T07:00:00Z")},
			Time{Value: "20250704T090000", TZID: "/mozilla.org/20050126_1/Europe/Berlin", UTC: utc("2025-07-04T07:00:00Z")}},
		{"unknown zone read as UTC", []string{"DTSTART;TZID=Mars/Olympus:20250704T090000"},
			Time{Value: "20250704T090000", TZID: "Mars/Olympus", UTC: utc("2025-07-04T09:00:00Z")},
			Time{Value: "20250704T090000", TZID: "Mars/Olympus", UTC: utc("2025-07-04T09:00:00Z")}},
		{"Z wins over TZID", []string{"DTSTART;TZID=Europe/Berlin:20250704T090000Z"},
			Time{Value: "20250704T090000Z", UTC: utc("2025-07-04T09:00:00Z")},
			Time{Value: "20250704T090000Z", UTC: utc("2025-07-04T09:00:00Z")}},
		{"all-day without end", []string{"DTSTART;VALUE=DATE:20250228"},
			Time{Value: "20250228", AllDay: true, UTC: utc("2025-02-28T00:00:00Z")},
			Time{Value: "20250301", AllDay: true, UTC: utc("2025-03-01T00:00:00Z")}},
		{"all-day with P2D", []string{"DTSTART;VALUE=DATE:20251231", "DURATION:P2D"},
			Time{Value: "20251231", AllDay: true, UTC: utc("2025-12-31T00:00:00Z")},
			Time{Value: "20260102", AllDay: true, UTC: utc("2026-01-02T00:00:00Z")}},
		{"nominal day across DST", []string{"DTSTART;TZID=Europe/Berlin:20250329T120000", "DURATION:P1D"},
			Time{Value: "20250329T120000", TZID: "Europe/Berlin", UTC: utc("2025-03-29T11:00:00Z")},
			Time{Value: "20250330T120000", TZID: "Europe/Berlin", UTC: utc("2025-03-30T10:00:00Z")}},
		{"exact hours across DST", []string{"DTSTART;TZID=Europe/Berlin:20250330T010000", "DURATION:PT3H"},
			Time{Value: "20250330T010000", TZID: "Europe/Berlin", UTC: utc("2025-03-30T00:00:00Z")},
			Time{Value: "20250330T050000", TZID: "Europe/Berlin", UTC: utc("2025-03-30T03:00:00Z")}},
		{"lower-case t and z, no seconds", []string{"DTSTART:20250220t1800z"},
			Time{Value: "20250220T1800Z", UTC: utc("2025-02-20T18:00:00Z")},
			Time{Value: "20250220T1800Z", UTC: utc("2025-02-20T18:00:00Z")}},
		{"negative duration ignored", []string{"DTSTART:20250220T180000Z", "DURATION:-PT1H"},
			Time{Value: "20250220T180000Z", UTC: utc("2025-02-20T18:00:00Z")},
			Time{Value: "20250220T180000Z", UTC: utc("2025-02-20T18:00:00Z")}},
		{"all-day DTEND equal to DTSTART means one day", []string{"DTSTART;VALUE=DATE:20250228", "DTEND;VALUE=DATE:20250228"},
			Time{Value: "20250228", AllDay: true, UTC: utc("2025-02-28T00:00:00Z")},
			Time{Value: "20250301", AllDay: true, UTC: utc("2025-03-01T00:00:00Z")}},
		{"DTEND before DTSTART ignored for DURATION", []string{"DTSTART:20250220T180000Z", "DTEND:20250220T170000Z", "DURATION:PT15M"},
			Time{Value: "20250220T180000Z", UTC: utc("2025-02-20T18:00:00Z")},
			Time{Value: "20250220T181500Z", UTC: utc("2025-02-20T18:15:00Z")}},
		{"year 0000 unreadable", []string{"DTSTART;TZID=Europe/Paris:00000101T000000"},
			Time{Value: "00000101T000000", TZID: "Europe/Paris"}, Time{Value: "00000101T000000", TZID: "Europe/Paris"}},
		{"end past year 9999", []string{"DTSTART;VALUE=DATE:99991231", "DURATION:P2D"},
			Time{Value: "99991231", AllDay: true, UTC: utc("9999-12-31T00:00:00Z")},
			Time{Value: "99991231", AllDay: true, UTC: utc("9999-12-31T00:00:00Z")}},
		{"garbage start", []string{"DTSTART:tomorrow"},
			Time{Value: "TOMORROW"}, Time{Value: "TOMORROW"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := oneEvent(t, tt.lines...)
			if !reflect.DeepEqual(ev.Start, tt.start) {
				t.Errorf("start = %+v, want %+v", ev.Start, tt.start)
			}
			if !reflect.DeepEqual(ev.End, tt.end) {
				t.Errorf("end = %+v, want %+v", ev.End, tt.end)
			}
		})
	}
}

func TestParseCalendar_VTimezoneFallback(t *testing.T) {
	// A TZID Go does not know, defined with rules: the VTIMEZONE is evaluated.
	rules := ics(
		"BEGIN:VTIMEZONE", "TZID:Customized Time Zone",
		"BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
		"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
		"BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
		"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3", "END:DAYLIGHT",
		"END:VTIMEZONE",
		"BEGIN:VEVENT", "UID:x", "DTSTART;TZID=Customized Time Zone:20250704T090000",
		"DTEND;TZID=Customized Time Zone:20250704T100000", "RDATE;TZID=Customized Time Zone:20250104T090000", "EXDATE;TZID=Customized Time Zone:20250330T013000,20250330T033000", "END:VEVENT")
	ev := mustParse(t, rules).Events[0]
	if !ev.Start.UTC.Equal(utc("2025-07-04T07:00:00Z")) || !ev.End.UTC.Equal(utc("2025-07-04T08:00:00Z")) || !ev.RDates[0].UTC.Equal(utc("2025-01-04T08:00:00Z")) {
		t.Errorf("start %v end %v winter rdate %v", ev.Start.UTC, ev.End.UTC, ev.RDates)
	}
	if ev.Start.TZID != "Customized Time Zone" || ev.Start.Value != "20250704T090000" {
		t.Errorf("start = %+v, want TZID and value as written", ev.Start)
	}
	if len(ev.ExDates) != 2 || !ev.ExDates[0].UTC.Equal(utc("2025-03-30T00:30:00Z")) || !ev.ExDates[1].UTC.Equal(utc("2025-03-30T01:30:00Z")) {
		t.Errorf("exdates around the change = %+v", ev.ExDates)
	}

	// Only a STANDARD: its TZOFFSETTO as a fixed offset.
	fixed := ics(
		"BEGIN:VTIMEZONE", "TZID:(UTC+05:30) Chennai", "BEGIN:STANDARD", "DTSTART:16010101T000000",
		"TZOFFSETFROM:+0530", "TZOFFSETTO:+0530", "END:STANDARD", "END:VTIMEZONE",
		"BEGIN:VEVENT", "UID:y", `DTSTART;TZID="(UTC+05:30) Chennai":20250704T090000`, "END:VEVENT")
	c := mustParse(t, fixed)
	if got := c.Events[0].Start.UTC; !got.Equal(utc("2025-07-04T03:30:00Z")) {
		t.Errorf("fixed zone start = %v", got)
	}
	if _, ok := c.Timezones["(UTC+05:30) Chennai"]; !ok {
		t.Errorf("timezones = %v", c.Timezones)
	}

	// Outlook display names as TZID: commas escaped in the TEXT value,
	// quoted in the parameter.
	display := ics(
		"BEGIN:VTIMEZONE", `TZID:(UTC+01:00) Amsterdam\, Berlin\, Bern\, Rome\, Stockholm\, Vienna`,
		"BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
		"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
		"BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
		"RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3", "END:DAYLIGHT", "END:VTIMEZONE",
		"BEGIN:VEVENT", "UID:d", "DTSTAMP:20250101T000000Z", `DTSTART;TZID="(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna":20250704T090000`, "END:VEVENT")
	dc := mustParse(t, display)
	const displayID = "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"
	if got := dc.Events[0].Start; !got.UTC.Equal(utc("2025-07-04T07:00:00Z")) || got.TZID != displayID {
		t.Errorf("display-name zone start = %+v", got)
	}
	if _, ok := dc.Timezones[displayID]; !ok {
		t.Errorf("timezones = %v", dc.Timezones)
	}
	out, err := Encode(dc)
	if err != nil {
		t.Fatal(err)
	}
	if back := mustParse(t, string(out)); !reflect.DeepEqual(back.Events, dc.Events) || !strings.Contains(string(out), "BYMONTH=10") {
		t.Errorf("display-name zone round trip:\n%s", out)
	}

	// An IANA TZID resolves through Go's database even when the calendar's
	// VTIMEZONE is truncated (Kolab sends only the current year's changes).
	trunc := ics(
		"BEGIN:VTIMEZONE", "TZID:Europe/Berlin", "BEGIN:STANDARD", "DTSTART:20241027T010000",
		"TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "END:STANDARD", "END:VTIMEZONE",
		"BEGIN:VEVENT", "UID:z", "DTSTART;TZID=Europe/Berlin:20300704T090000", "END:VEVENT")
	if got := mustParse(t, trunc).Events[0].Start.UTC; !got.Equal(utc("2030-07-04T07:00:00Z")) {
		t.Errorf("IANA start = %v", got)
	}
}

func TestParseCalendar_Fields(t *testing.T) {
	ev := oneEvent(t,
		"SEQUENCE: 3 ",
		"ORGANIZER;CN=\"Boss, The\";SENT-BY=\"mailto:sec@x.org\":MAILTO:Boss@X.org",
		"ATTENDEE;CN=Ann;PARTSTAT=tentative;ROLE=opt-participant;CUTYPE=individual;RSVP=true:mailto:Ann@X.org",
		"ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO=\"MAILTO:Deputy@X.org\":mailto:chief@x.org",
		"ATTENDEE;CN=No address:",
		"ATTENDEE:urn:uuid:1234",
		"COMMENT:first",
		"COMMENT:second",
		"STATUS:tentative",
		"CLASS:private",
		"URL:https://example.org/e?a=1",
		"RRULE:FREQ=WEEKLY;COUNT=3",
		"EXDATE;VALUE=DATE:20250101,20250108",
		"EXDATE:20250115T100000Z",
		"RDATE;VALUE=PERIOD:20250120T100000Z/20250120T110000Z",
		"RECURRENCE-ID;VALUE=DATE:20250122",
		"X-UNKNOWN;X-P=1:ignored",
		"BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "DESCRIPTION:not the event's", "END:VALARM",
		"DESCRIPTION:the event's",
	)
	if ev.Sequence != 3 {
		t.Errorf("sequence = %d", ev.Sequence)
	}
	if ev.Organizer != (Address{Email: "boss@x.org", Name: "Boss, The"}) {
		t.Errorf("organizer = %+v", ev.Organizer)
	}
	wantAtt := []Attendee{
		{Address: Address{Email: "ann@x.org", Name: "Ann"}, PartStat: "TENTATIVE", Role: "OPT-PARTICIPANT", CUType: "INDIVIDUAL", RSVP: true},
		{Address: Address{Email: "chief@x.org"}, PartStat: "DELEGATED", DelegatedTo: "deputy@x.org"},
		{Address: Address{Email: "urn:uuid:1234"}},
	}
	if !reflect.DeepEqual(ev.Attendees, wantAtt) {
		t.Errorf("attendees = %+v", ev.Attendees)
	}
	if ev.Comment != "first\nsecond" || ev.Status != "TENTATIVE" || ev.Class != "PRIVATE" || ev.URL != "https://example.org/e?a=1" {
		t.Errorf("comment %q status %q class %q url %q", ev.Comment, ev.Status, ev.Class, ev.URL)
	}
	if ev.Description != "the event's" {
		t.Errorf("description = %q (VALARM leaked?)", ev.Description)
	}
	if ev.RRule != "FREQ=WEEKLY;COUNT=3" {
		t.Errorf("rrule = %q", ev.RRule)
	}
	wantEx := []Time{
		{Value: "20250101", AllDay: true, UTC: utc("2025-01-01T00:00:00Z")},
		{Value: "20250108", AllDay: true, UTC: utc("2025-01-08T00:00:00Z")},
		{Value: "20250115T100000Z", UTC: utc("2025-01-15T10:00:00Z")},
	}
	if !reflect.DeepEqual(ev.ExDates, wantEx) {
		t.Errorf("exdates = %+v", ev.ExDates)
	}
	if len(ev.RDates) != 1 || ev.RDates[0].Value != "20250120T100000Z" {
		t.Errorf("rdates = %+v", ev.RDates)
	}
	if ev.RecurrenceID == nil || ev.RecurrenceID.Value != "20250122" || !ev.RecurrenceID.AllDay {
		t.Errorf("recurrence-id = %+v", ev.RecurrenceID)
	}
}

func TestParseCalendar_Structure(t *testing.T) {
	t.Run("method absent", func(t *testing.T) {
		c := mustParse(t, "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nEND:VEVENT\nEND:VCALENDAR")
		if c.Method != "" || len(c.Events) != 1 {
			t.Errorf("method %q events %d", c.Method, len(c.Events))
		}
	})
	t.Run("lower-case names, BOM, junk before and after", func(t *testing.T) {
		c := mustParse(t, "\ufeffjunk line\r\nbegin:vcalendar\r\nmethod:request\r\nbegin:vevent\r\nuid:a\r\nend:vevent\r\nend:vcalendar\r\nBEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\n")
		if c.Method != "REQUEST" || len(c.Events) != 1 || c.Events[0].UID != "a" {
			t.Errorf("method %q events %+v", c.Method, c.Events)
		}
	})
	t.Run("several events and an X- component", func(t *testing.T) {
		c := mustParse(t, ics("BEGIN:X-THING", "BEGIN:VEVENT", "UID:hidden", "END:VEVENT", "END:X-THING",
			"BEGIN:VEVENT", "UID:1", "END:VEVENT", "BEGIN:VTODO", "UID:todo", "END:VTODO", "BEGIN:VEVENT", "UID:2", "END:VEVENT"))
		if len(c.Events) != 2 || c.Events[0].UID != "1" || c.Events[1].UID != "2" {
			t.Errorf("events = %+v", c.Events)
		}
	})
	t.Run("windows-1252 without charset", func(t *testing.T) {
		c := mustParse(t, "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nSUMMARY:R\xe9union \x80\nEND:VEVENT\nEND:VCALENDAR\n")
		if got := c.Events[0].Summary; got != "Réunion €" {
			t.Errorf("summary = %q", got)
		}
	})
	t.Run("folded inside a UTF-8 character", func(t *testing.T) {
		// "Réunion à 東京" folded between the two bytes of é, after the
		// first two of 東, and (LF only, then a tab) between those of à.
		c := mustParse(t, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:R\xc3\r\n \xa9union \xc3\n\t\xa0 \xe6\x9d\r\n \xb1\xe4\xba\xac\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
		if got := c.Events[0].Summary; got != "Réunion à 東京" {
			t.Errorf("summary = %q", got)
		}
	})
	t.Run("UTF-8 with a stray byte", func(t *testing.T) {
		c := mustParse(t, "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nSUMMARY:événement \xff\nEND:VEVENT\nEND:VCALENDAR\n")
		if got := c.Events[0].Summary; got != "événement \uFFFD" {
			t.Errorf("summary = %q", got)
		}
	})
	t.Run("timezone only for defined TZIDs", func(t *testing.T) {
		c := mustParse(t, ics("BEGIN:VEVENT", "UID:a", "DTSTART;TZID=Europe/Paris:20250101T100000", "END:VEVENT"))
		if c.Timezones != nil {
			t.Errorf("timezones = %v", c.Timezones)
		}
	})
	errs := map[string]string{
		"empty":         "",
		"no calendar":   "hello\r\nworld\r\n",
		"bare event":    "BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n",
		"no END":        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n",
		"mismatched":    "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
		"too deep":      "BEGIN:VCALENDAR\r\n" + strings.Repeat("BEGIN:X\r\n", 40) + strings.Repeat("END:X\r\n", 40) + "END:VCALENDAR\r\n",
		"event not end": "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",
	}
	for name, in := range errs {
		if _, err := ParseCalendar(strings.NewReader(in)); err == nil || !strings.HasPrefix(err.Error(), "itip: ") {
			t.Errorf("%s: err = %v, want an itip error", name, err)
		}
	}
}

func TestParseCalendar_Caps(t *testing.T) {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:big\r\n")
	for i := 0; i < MaxAttendees+50; i++ {
		b.WriteString("ATTENDEE:mailto:a@x.org\r\n")
	}
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	c := mustParse(t, b.String())
	if n := len(c.Events[0].Attendees); n != MaxAttendees {
		t.Errorf("%d attendees kept, want %d", n, MaxAttendees)
	}
	if _, err := ParseCalendar(strings.NewReader(strings.Repeat("x", MaxCalendarBytes+1))); err == nil {
		t.Errorf("oversized calendar accepted")
	}
}

func TestNewTime(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	in := time.Date(2025, 7, 4, 9, 0, 0, 500, berlin)
	if got, want := NewTime(in), (Time{Value: "20250704T090000", TZID: "Europe/Berlin", UTC: utc("2025-07-04T07:00:00Z")}); got != want {
		t.Errorf("NewTime = %+v, want %+v", got, want)
	}
	if got := NewTime(in.UTC()); got.Value != "20250704T070000Z" || got.TZID != "" {
		t.Errorf("NewTime(UTC) = %+v", got)
	}
	if got := NewDate(in); got != (Time{Value: "20250704", AllDay: true, UTC: utc("2025-07-04T00:00:00Z")}) {
		t.Errorf("NewDate = %+v", got)
	}
	if !(Time{}).IsZero() || (Time{Value: "20250101"}).IsZero() {
		t.Errorf("IsZero wrong")
	}
}
