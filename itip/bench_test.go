package itip

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// testdataCalendars returns the bytes of every .ics file under testdata/imip.
func testdataCalendars(b *testing.B) [][]byte {
	b.Helper()
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.ics"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no testdata: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// BenchmarkParseCalendar parses every testdata .ics file once per iteration.
func BenchmarkParseCalendar(b *testing.B) {
	cals := testdataCalendars(b)
	var n int64
	for _, c := range cals {
		n += int64(len(c))
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range cals {
			if _, err := ParseCalendar(bytes.NewReader(c)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEncode encodes every parsed testdata .ics file and the tricky
// calendar of the encode tests once per iteration.
func BenchmarkEncode(b *testing.B) {
	var cals []*Calendar
	for _, data := range testdataCalendars(b) {
		c, err := ParseCalendar(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		cals = append(cals, c)
	}
	cals = append(cals, trickyCalendar())
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range cals {
			if _, err := Encode(c); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReadMessage reads a real Gmail invitation: MIME, then the
// calendar in it. This is the parse stage's work per message.
func BenchmarkReadMessage(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(testdataDir, "google-request-inline-textcalendar.eml"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadMessage(bytes.NewReader(raw), Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildMessage renders one outbound invite: the send stage's
// work per attendee.
func BenchmarkBuildMessage(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(testdataDir, "google-request-inline-textcalendar.eml"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := ReadMessage(bytes.NewReader(raw), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	cal := m.Calendars[0]
	cal.Events[0].Attendees = []Attendee{{Address: Address{Email: "bob@example.com", Name: "Bob"}, PartStat: "NEEDS-ACTION", RSVP: true}}
	o := Outbound{
		From: Address{Email: "rsvp+abc@invite.test", Name: "Alice"}, To: Address{Email: "bob@example.com", Name: "Bob"},
		Subject: "Invitation: Imip Testing", MessageID: "invite.0.x@invite.test", Date: cal.Events[0].DTStamp,
		Text: "You have been invited.", HTML: "<p>You have been invited.</p>", Calendar: cal,
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildMessage(o); err != nil {
			b.Fatal(err)
		}
	}
}
