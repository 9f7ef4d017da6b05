package main

import (
	"bytes"
	"testing"

	"github.com/invited/invited/itip"
)

const testdataDir = "../../testdata/imip"

// read reads msg as the daemon's parse stage does and returns its one
// calendar's one event.
func read(t *testing.T, msg []byte) (*itip.Message, *itip.Calendar) {
	t.Helper()
	m, err := itip.ReadMessage(bytes.NewReader(msg), itip.Limits{})
	if err != nil {
		t.Fatalf("message does not read: %v\n%s", err, msg)
	}
	if len(m.Calendars) != 1 || len(m.Calendars[0].Events) != 1 {
		t.Fatalf("%d calendars, want 1 with 1 event\n%s", len(m.Calendars), msg)
	}
	return m, m.Calendars[0]
}

// sized checks that msg is about size bytes, as -size asks.
func sized(t *testing.T, msg []byte, size int) {
	t.Helper()
	if n := len(msg); n < size || n > size+size/10 {
		t.Errorf("message of %d bytes, want about %d", n, size)
	}
}

func TestRequestTemplate(t *testing.T) {
	tmpl, err := loadTemplate(testdataDir, "load@example.org", 4096)
	if err != nil {
		t.Fatal(err)
	}
	uid := newUIDSource("123456", "e2e").next()
	msg := tmpl.message(uid)
	sized(t, msg, 4096)
	m, cal := read(t, msg)
	ev := cal.Events[0]
	if cal.Method != "REQUEST" || ev.UID != uid || m.MessageID != uid+".msg" ||
		m.From.Email != "load@example.org" || ev.Organizer.Email != "load@example.org" {
		t.Errorf("method %s, UID %s, Message-ID %s, From %s, ORGANIZER %s", cal.Method, ev.UID, m.MessageID, m.From.Email, ev.Organizer.Email)
	}
}

func TestReplyTemplate(t *testing.T) {
	tmpl, err := loadReply(testdataDir, "3f2a9c7e1b@bench.test", "fanout@example.org", "rsvp@bench.test", 4096)
	if err != nil {
		t.Fatal(err)
	}
	for i, attendee := range []string{fanoutAddress(fanoutTag, 7), fanoutAddress("a-much-longer-fan-out-tag", 1234567)} {
		msg := tmpl.message("reply-1@example.net", attendee)
		if i == 0 {
			sized(t, msg, 4096)
		}
		m, cal := read(t, msg)
		ev := cal.Events[0]
		if cal.Method != "REPLY" || ev.UID != "3f2a9c7e1b@bench.test" || m.MessageID != "reply-1@example.net" ||
			m.From.Email != attendee || ev.Organizer.Email != "fanout@example.org" {
			t.Errorf("method %s, UID %s, Message-ID %s, From %s, ORGANIZER %s", cal.Method, ev.UID, m.MessageID, m.From.Email, ev.Organizer.Email)
		}
		if len(ev.Attendees) != 1 || ev.Attendees[0].Email != attendee || ev.Attendees[0].PartStat != "ACCEPTED" {
			t.Errorf("attendees %+v, want %s ACCEPTED", ev.Attendees, attendee)
		}
		if !bytes.Contains(msg, []byte("\r\nTo: rsvp@bench.test\r\n")) {
			t.Errorf("not addressed to rsvp@bench.test:\n%s", msg)
		}
	}
}
