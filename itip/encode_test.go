package itip

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkWire verifies RFC 5545 wire rules on Encode output.
func checkWire(t *testing.T, out []byte) {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Errorf("output does not end in CRLF")
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n") {
		if len(l) > 75 {
			t.Errorf("line %d is %d octets: %q", i+1, len(l), l)
		}
		if !utf8.ValidString(l) {
			t.Errorf("line %d splits a UTF-8 sequence: %q", i+1, l)
		}
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("line %d has a bare CR or LF: %q", i+1, l)
		}
		for _, c := range []byte(l) {
			if c < 0x20 && c != '\t' || c == 0x7f {
				t.Errorf("line %d has control byte %#x: %q", i+1, c, l)
			}
		}
	}
}

func trickyCalendar() *Calendar {
	// 300 characters (more octets) of text that needs escaping and folding.
	long := string([]rune(strings.Repeat("Long summary, with; commas\\ and é 日本語 🎉 ", 10))[:299]) + "!"
	return &Calendar{
		Method: "REQUEST",
		ProdID: "-//invited//test, with comma//EN",
		Events: []Event{{
			UID:          "uid-1@invited.example",
			Sequence:     4,
			DTStamp:      utc("2025-02-06T16:21:41Z"),
			Created:      utc("2025-02-01T10:00:00Z"),
			LastModified: utc("2025-02-05T10:00:00Z"),
			Organizer:    Address{Email: "rsvp+abc@invited.example", Name: `Org "The Boss"; Inc, Ltd: événement`},
			Attendees: []Attendee{
				{Address: Address{Email: "ann@example.org", Name: "Ann 日本語 🎉"}, PartStat: "NEEDS-ACTION", Role: "REQ-PARTICIPANT", CUType: "INDIVIDUAL", RSVP: true},
				{Address: Address{Email: "bob@example.org"}, PartStat: "DELEGATED", DelegatedTo: "carol@example.org"},
			},
			Summary:     "événement 日本語 🎉, a; b\\c",
			Description: "Line one\nLine two, with comma; semicolon \\ backslash\n\n" + long,
			Location:    "Room 1, Building \"A\"; floor 2",
			Comment:     "see you",
			URL:         "https://invited.example/e/1?a=1&b=2",
			Status:      "CONFIRMED",
			Transp:      "OPAQUE",
			Class:       "PUBLIC",
			Start:       Time{Value: "20250220T190000", TZID: "Europe/Berlin", UTC: utc("2025-02-20T18:00:00Z")},
			End:         Time{Value: "20250220T200000", TZID: "Europe/Berlin", UTC: utc("2025-02-20T19:00:00Z")},
			RRule:       "FREQ=WEEKLY;COUNT=10",
			ExDates: []Time{
				{Value: "20250227T190000", TZID: "Europe/Berlin", UTC: utc("2025-02-27T18:00:00Z")},
				{Value: "20250306T180000Z", UTC: utc("2025-03-06T18:00:00Z")},
			},
			RDates: []Time{{Value: "20250401", AllDay: true, UTC: utc("2025-04-01T00:00:00Z")}},
		}, {
			UID:          "uid-1@invited.example",
			RecurrenceID: &Time{Value: "20250313T190000", TZID: "Europe/Berlin", UTC: utc("2025-03-13T18:00:00Z")},
			DTStamp:      utc("2025-02-06T16:21:41Z"),
			Organizer:    Address{Email: "rsvp+abc@invited.example"},
			Summary:      long,
			Start:        Time{Value: "20250313T200000", TZID: "Europe/Berlin", UTC: utc("2025-03-13T19:00:00Z")},
			End:          Time{Value: "20250313T210000", TZID: "Europe/Berlin", UTC: utc("2025-03-13T20:00:00Z")},
		}},
	}
}

func TestEncode_RoundTrip(t *testing.T) {
	in := trickyCalendar()
	out, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, out)
	s := string(out)
	for _, want := range []string{
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//invited//test\\, with comma//EN\r\nCALSCALE:GREGORIAN\r\nMETHOD:REQUEST\r\n",
		"BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n",
		"DTSTART;TZID=Europe/Berlin:20250220T190000\r\n",
		"SEQUENCE:4\r\n",
		"DTSTAMP:20250206T162141Z\r\n",
		"RECURRENCE-ID;TZID=Europe/Berlin:20250313T190000\r\n",
		"EXDATE:20250306T180000Z\r\n",
		"RDATE;VALUE=DATE:20250401\r\n",
		"RRULE:FREQ=WEEKLY;COUNT=10\r\n",
		`DELEGATED-TO="mailto:carol@example.org"`,
		"END:VCALENDAR\r\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Count(s, "BEGIN:VTIMEZONE") != 1 {
		t.Errorf("want exactly one VTIMEZONE:\n%s", s)
	}
	unfolded := strings.ReplaceAll(s, "\r\n ", "")
	if !strings.Contains(unfolded, `ORGANIZER;CN="Org 'The Boss'; Inc, Ltd: événement":mailto:rsvp+abc@invited.example`) {
		t.Errorf("organizer line not quoted/sanitized:\n%s", unfolded)
	}

	got := mustParse(t, s)
	if got.Method != "REQUEST" || got.ProdID != in.ProdID {
		t.Errorf("method %q prodid %q", got.Method, got.ProdID)
	}
	if _, ok := got.Timezones["Europe/Berlin"]; !ok {
		t.Errorf("timezones = %v", got.Timezones)
	}
	want := *in
	want.Events = append([]Event(nil), in.Events...)
	want.Events[0].Organizer.Name = `Org 'The Boss'; Inc, Ltd: événement`
	want.Events[1].Organizer.Name = ""
	for i := range want.Events {
		if !reflect.DeepEqual(got.Events[i], want.Events[i]) {
			t.Errorf("event %d round trip:\n got %+v\nwant %+v", i, got.Events[i], want.Events[i])
		}
	}
}

func TestEncode_Timezones(t *testing.T) {
	ev := func(tzid, value string, u time.Time) Event {
		return Event{UID: "u", DTStamp: utc("2025-01-01T00:00:00Z"), Start: Time{Value: value, TZID: tzid, UTC: u}}
	}
	t.Run("generated for a TZID without entry", func(t *testing.T) {
		out, err := Encode(&Calendar{Method: "REQUEST", Events: []Event{ev("America/Los_Angeles", "20250704T090000", utc("2025-07-04T16:00:00Z"))}})
		if err != nil {
			t.Fatal(err)
		}
		c := mustParse(t, string(out))
		if !strings.Contains(c.Timezones["America/Los_Angeles"], "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU") {
			t.Errorf("no generated VTIMEZONE:\n%s", out)
		}
		if !c.Events[0].Start.UTC.Equal(utc("2025-07-04T16:00:00Z")) {
			t.Errorf("start = %+v", c.Events[0].Start)
		}
	})
	t.Run("Windows TZID keeps its name", func(t *testing.T) {
		out, _ := Encode(&Calendar{Method: "REQUEST", Events: []Event{ev("Romance Standard Time", "20250704T090000", utc("2025-07-04T07:00:00Z"))}})
		if !strings.Contains(string(out), "TZID:Romance Standard Time\r\n") || !strings.Contains(string(out), "DTSTART;TZID=Romance Standard Time:20250704T090000\r\n") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("calendar's own VTIMEZONE kept verbatim", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(testdataDir, "exchange2010-request-uppercase-MAILTO-windows-tzid.ics"))
		if err != nil {
			t.Fatal(err)
		}
		c := mustParse(t, string(data))
		out, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, out)
		if !strings.Contains(string(out), c.Timezones["Romance Standard Time"]) || !strings.Contains(string(out), "DTSTART:16010101T030000") {
			t.Errorf("client VTIMEZONE not reused:\n%s", out)
		}
		back := mustParse(t, string(out))
		if !reflect.DeepEqual(back.Events, c.Events) {
			t.Errorf("events changed:\n got %+v\nwant %+v", back.Events, c.Events)
		}
	})
	t.Run("unresolvable TZID written in UTC", func(t *testing.T) {
		out, _ := Encode(&Calendar{Method: "REQUEST", Events: []Event{ev("Mars/Olympus", "20250704T090000", utc("2025-07-04T09:00:00Z"))}})
		if strings.Contains(string(out), "VTIMEZONE") || strings.Contains(string(out), "Mars") || !strings.Contains(string(out), "DTSTART:20250704T090000Z\r\n") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("custom TZID resolvable through Timezones", func(t *testing.T) {
		tz := "BEGIN:VTIMEZONE\r\nTZID:My Zone\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0300\r\nTZOFFSETTO:+0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
		c := &Calendar{Method: "REQUEST", Timezones: map[string]string{"My Zone": tz, "Unused/Zone": "BEGIN:VTIMEZONE\r\nTZID:Unused/Zone\r\nEND:VTIMEZONE\r\n"},
			Events: []Event{ev("My Zone", "20250704T090000", utc("2025-07-04T06:00:00Z"))}}
		out, _ := Encode(c)
		if !strings.Contains(string(out), tz) || strings.Contains(string(out), "Unused") {
			t.Errorf("output:\n%s", out)
		}
		if got := mustParse(t, string(out)).Events[0].Start.UTC; !got.Equal(utc("2025-07-04T06:00:00Z")) {
			t.Errorf("start = %v", got)
		}
	})
	t.Run("hostile Timezones entry replaced", func(t *testing.T) {
		for _, bad := range []string{
			"BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:evil\r\nEND:VEVENT\r\n",
			"BEGIN:VTIMEZONE\r\nTZID:Europe/London\r\nEND:VTIMEZONE\r\n",
			"garbage",
			"BEGIN:VEVENT\r\nTZID:Europe/Paris\r\nEND:VEVENT\r\n",
			"BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n",
		} {
			c := &Calendar{Method: "REQUEST", Timezones: map[string]string{"Europe/Paris": bad}, Events: []Event{ev("Europe/Paris", "20250704T090000", utc("2025-07-04T07:00:00Z"))}}
			out, err := Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), "evil") || strings.Contains(string(out), "London") || !strings.Contains(string(out), "TZNAME:CEST") {
				t.Errorf("bad entry %q used:\n%s", bad, out)
			}
		}
	})
}

func TestEncode_Sanitizing(t *testing.T) {
	c := &Calendar{
		Method: "reply",
		Events: []Event{{
			UID:       "u\r\nX-INJECT:1",
			Start:     Time{UTC: utc("2025-07-04T09:00:00Z")}, // no Value: written from UTC
			End:       Time{UTC: utc("2025-07-04T09:00:00Z")}, // not after start: no DTEND
			Organizer: Address{Email: "MAILTO:Boss@X.org\r\n", Name: "Boss\r\nX-INJECT:2"},
			Attendees: []Attendee{{Address: Address{Email: "ann@x.org", Name: "Ann\x00\x1b"}, PartStat: "ACCEPTED\r\nX", Role: "bad role"}},
			Summary:   "two\r\nlines\rand\x00nul",
			URL:       "https://x.org/\r\nX-INJECT:3",
			RRule:     "FREQ=DAILY\r\nX-INJECT:4",
			Status:    "CONFIRMED;X=1",
		}},
	}
	out, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, out)
	s := string(out)
	if strings.Contains(s, "\r\nX-INJECT") {
		t.Errorf("property injected:\n%s", s)
	}
	for _, want := range []string{
		"METHOD:REPLY\r\n", "DTSTART:20250704T090000Z\r\n", "DTSTAMP:20250704T090000Z\r\n",
		`ORGANIZER;CN="BossX-INJECT:2":mailto:boss@x.org` + "\r\n", "SUMMARY:two\\nlines\\nandnul\r\n",
		"ATTENDEE;CN=Ann;PARTSTAT=ACCEPTEDX:mailto:ann@x.org\r\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "DTEND") || strings.Contains(s, "STATUS") || strings.Contains(s, "ROLE") {
		t.Errorf("invalid values written:\n%s", s)
	}
	back := mustParse(t, s)
	if ev := back.Events[0]; ev.UID != "uX-INJECT:1" || ev.Summary != "two\nlines\nandnul" || !ev.End.UTC.Equal(ev.Start.UTC) {
		t.Errorf("read back %+v", ev)
	}

	if _, err := Encode(&Calendar{Method: "REQUEST", Events: []Event{{UID: " \r\n"}}}); err == nil {
		t.Errorf("event without UID encoded")
	}
	if _, err := Encode(&Calendar{Method: "REQ UEST", Events: []Event{{UID: "u"}}}); err == nil {
		t.Errorf("invalid METHOD encoded")
	}
	if _, err := Encode(nil); err == nil {
		t.Errorf("nil calendar encoded")
	}
	out, err = Encode(&Calendar{Events: []Event{{UID: "u"}}})
	if err != nil || strings.Contains(string(out), "METHOD") || !strings.Contains(string(out), "PRODID:"+DefaultProdID+"\r\n") {
		t.Errorf("no-method calendar: %v\n%s", err, out)
	}
}

func TestFoldLine(t *testing.T) {
	for _, s := range []string{
		"", "short", strings.Repeat("a", 75), strings.Repeat("a", 76), strings.Repeat("é", 100),
		strings.Repeat("🎉", 40), "X:" + strings.Repeat("日本語", 50), strings.Repeat("a", 74) + "é",
	} {
		var b strings.Builder
		if _, err := newFoldWriter(&b).Write([]byte(s + "\r\n")); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		checkWire(t, []byte(out))
		lines, _ := unfold(out, 1000)
		if s == "" {
			if out != "\r\n" {
				t.Errorf("fold of empty = %q", out)
			}
			continue
		}
		if len(lines) != 1 || lines[0] != s {
			t.Errorf("fold/unfold of %q = %q", s, lines)
		}
	}
}

func TestEscapeText(t *testing.T) {
	tests := map[string]string{
		"a,b;c\\d":     `a\,b\;c\\d`,
		"x\r\ny\rz\n":  `x\ny\nz\n`,
		"tab\tnul\x00": "tab\tnul",
		"bad\xffutf8":  "bad\uFFFDutf8",
	}
	for in, want := range tests {
		if got := escapeText(in); got != want {
			t.Errorf("escapeText(%q) = %q, want %q", in, got, want)
		}
		if in != "bad\xffutf8" && in != "tab\tnul\x00" && in != "x\r\ny\rz\n" {
			if back := unescapeText(escapeText(in)); back != in {
				t.Errorf("round trip %q = %q", in, back)
			}
		}
	}
}

// TestAddrValue: the mailto: value reads back as the address it was made
// of, even from an address that still looked like a mailto: value.
func TestAddrValue(t *testing.T) {
	for in, want := range map[string]string{
		"Ann@Example.org":        "ann@example.org",
		" <ann@example.org> ":    "ann@example.org",
		"mailto:ann@example.org": "ann@example.org",
		"mailto :":               "", // found by FuzzParseCalendar
		"mailto:MAILTO:a@b":      "a@b",
		"a b@c":                  "ab@c",
	} {
		got := addrValue(in)
		if got != want {
			t.Errorf("addrValue(%q) = %q, want %q", in, got, want)
		}
		if again := calAddress("mailto:" + got); again != got {
			t.Errorf("mailto:%s reads back as %q", got, again)
		}
	}
}
