package itip

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// addTestdataSeeds adds every file under testdata/imip with one of exts.
func addTestdataSeeds(f *testing.F, exts ...string) {
	files, err := os.ReadDir(testdataDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range files {
		for _, ext := range exts {
			if filepath.Ext(e.Name()) == ext {
				b, err := os.ReadFile(filepath.Join(testdataDir, e.Name()))
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
}

func FuzzParseCalendar(f *testing.F) {
	addTestdataSeeds(f, ".ics")
	f.Add([]byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nATTENDEE;CN=x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))
	f.Add([]byte("BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:Z\nBEGIN:STANDARD\nDTSTART:16010101T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10;COUNT=3\nEND:STANDARD\nEND:VTIMEZONE\nBEGIN:VEVENT\nUID:a\nDTSTART;TZID=Z:20250101T000000\nDURATION:P1DT1H\nEND:VEVENT\nEND:VCALENDAR"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCalendar(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, ev := range c.Events {
			if len(ev.Attendees) > MaxAttendees {
				t.Fatalf("%d attendees", len(ev.Attendees))
			}
		}
		// The pipeline passes a calendar between stages in memory or as
		// JSON (after a restart): both must be the same calendar.
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("encode as JSON: %v", err)
		}
		var back *Calendar
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("decode from JSON: %v", err)
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("changed through JSON:\n was %#v\n now %#v", c, back)
		}
		// What we read, we can send: Encode never fails on a parsed
		// calendar whose events have UIDs, and its output reads back and
		// re-encodes to the same bytes.
		keep := c.Events[:0]
		for _, ev := range c.Events {
			if ev.UID != "" {
				keep = append(keep, ev)
			}
		}
		c.Events = keep
		if !isToken(c.Method) {
			c.Method = ""
		}
		out, err := Encode(c)
		if err != nil {
			t.Fatalf("Encode of a parsed calendar: %v", err)
		}
		checkWire(t, out)
		c2, err := ParseCalendar(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Encode output does not parse: %v\n%s", err, out)
		}
		out2, err := Encode(c2)
		if err != nil {
			t.Fatalf("second Encode: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("Encode not stable:\n%s\n---\n%s", out, out2)
		}
	})
}

func FuzzReadMessage(f *testing.F) {
	addTestdataSeeds(f, ".eml")
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/calendar; method=REPLY\r\nContent-Transfer-Encoding: base64\r\n\r\nQkVHSU46VkNBTEVOREFSCkVORDpWQ0FMRU5EQVIK\r\n--c--\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadMessage(bytes.NewReader(data), Limits{MaxParts: 50, MaxPartBytes: 1 << 20})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "itip: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if len(m.Calendars) == 0 {
			t.Fatalf("no error and no calendar")
		}
		for _, a := range m.Attachments {
			if int64(len(a.Data)) > 1<<20 {
				t.Fatalf("attachment over the limit")
			}
		}
	})
}

// FuzzEncodeRoundTrip checks TEXT escaping, parameter quoting and folding:
// whatever strings go in come back as the documented normalization.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add("événement 日本語 🎉", "a,b;c\\d\ne", "Room \"A\"", "Ann ^n^^ \"x\":y;z,w", "Ann@Example.org", "u1")
	f.Add(strings.Repeat("€", 100), "\r\n\r", "\x00\x7f\t", "", "a@b", "x\\,y")
	f.Fuzz(func(t *testing.T, summary, desc, loc, cn, email, uid string) {
		ev := Event{
			UID:         uid,
			DTStamp:     utc("2025-01-01T00:00:00Z"),
			Summary:     summary,
			Description: desc,
			Location:    loc,
			Organizer:   Address{Email: email, Name: cn},
			Attendees:   []Attendee{{Address: Address{Email: email, Name: cn}, PartStat: "ACCEPTED"}},
			Start:       Time{Value: "20250101T100000", TZID: "Europe/Berlin", UTC: utc("2025-01-01T09:00:00Z")},
		}
		out, err := Encode(&Calendar{Method: "REQUEST", Events: []Event{ev}})
		wantUID := strings.TrimSpace(stripControls(uid))
		if wantUID == "" {
			if err == nil {
				t.Fatalf("empty UID encoded")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, out)
		c, err := ParseCalendar(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, out)
		}
		if len(c.Events) != 1 {
			t.Fatalf("%d events\n%s", len(c.Events), out)
		}
		got := c.Events[0]
		text := func(s string) string { return strings.TrimSpace(cleanText(normalizeNewlines(s))) }
		if got.UID != wantUID {
			t.Errorf("uid %q, want %q", got.UID, wantUID)
		}
		if got.Summary != text(summary) || got.Description != text(desc) || got.Location != text(loc) {
			t.Errorf("text: got %q %q %q, want %q %q %q", got.Summary, got.Description, got.Location, text(summary), text(desc), text(loc))
		}
		wantEmail := addrValue(email)
		wantCN := strings.TrimSpace(strings.ReplaceAll(stripControls(cn), `"`, "'"))
		if wantEmail == "" {
			if got.Organizer.Email != "" || len(got.Attendees) != 0 {
				t.Errorf("empty address written: %+v", got)
			}
			return
		}
		if got.Organizer.Email != wantEmail || got.Organizer.Name != wantCN {
			t.Errorf("organizer %+v, want %q %q", got.Organizer, wantEmail, wantCN)
		}
		if len(got.Attendees) != 1 || got.Attendees[0].Name != wantCN || got.Attendees[0].PartStat != "ACCEPTED" {
			t.Errorf("attendees %+v, want CN %q", got.Attendees, wantCN)
		}
		if !got.Start.UTC.Equal(ev.Start.UTC) || got.Start.TZID != "Europe/Berlin" {
			t.Errorf("start %+v", got.Start)
		}
	})
}
