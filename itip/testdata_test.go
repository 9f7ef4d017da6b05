package itip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testdataDir = "../testdata/imip"

// clientCase is what the user of one real client expects us to read.
type clientCase struct {
	method    string
	uid       string
	seq       int
	organizer string // "" when the client sends none
	attendees int
	// replier is the attendee whose answer a REPLY or COUNTER carries.
	replier, partstat string
	summary           string
	start, end        time.Time
	check             func(t *testing.T, m *Message, c *Calendar)
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var clientCases = map[string]clientCase{
	"apple-ical3-mail-reply-accepted-qp-attachment-no-method-param.eml": {
		method: "REPLY", uid: "1E71F9C8-AEDA-48EB-98D0-76E898F6BB5C", seq: 7,
		organizer: "ical-living-on+d7cdf68d-8b73-4df1-ad3b-f08002fb285f@example.com", attendees: 1,
		replier: "xyzzy@example.com", partstat: "ACCEPTED", summary: "New Event",
		start: utc("2008-08-12T17:00:00Z"), end: utc("2008-08-12T18:00:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			// QP soft break inside ROLE, fold inside the plus-addressed organizer.
			if got := c.Events[0].Attendees[0].Role; got != "REQ-PARTICIPANT" {
				t.Errorf("role = %q", got)
			}
			if m.From != (Address{Email: "xyzzy@example.com", Name: "plugh xyzzy"}) {
				t.Errorf("From = %+v", m.From)
			}
			if m.Subject != "Event accepted: New Event" || m.MessageID != "1983F777-BE86-4B98-881E-06D938E60920@example.com" {
				t.Errorf("subject %q id %q", m.Subject, m.MessageID)
			}
			if c.Events[0].Start.TZID != "US/Pacific" || c.Timezones["US/Pacific"] == "" {
				t.Errorf("tzid %q, timezones %v", c.Events[0].Start.TZID, c.Timezones)
			}
		},
	},
	"exchange-online-request-base64-multipart-alternative.eml": {
		method: "REQUEST", uid: "030000008200E00074C5B7101A82E0080000000060B608D090DDD7010000000000000000100000004BE0CFFA54BCF64E956E34143362C3C0",
		organizer: "marge@example.org", attendees: 1, summary: "Testaus",
		start: utc("2021-11-27T07:00:00Z"), end: utc("2021-11-27T07:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			a := c.Events[0].Attendees[0]
			if a.Name != "Homer" || a.Email != "homer@example.org" || !a.RSVP || a.PartStat != "NEEDS-ACTION" {
				t.Errorf("attendee = %+v (CN folded mid-word)", a)
			}
			if c.Events[0].Start.TZID != "FLE Standard Time" || c.Events[0].Start.Value != "20211127T090000" {
				t.Errorf("start = %+v", c.Events[0].Start)
			}
			if c.Events[0].Description != "" {
				t.Errorf("description = %q, want empty (Outlook writes \\n)", c.Events[0].Description)
			}
			if !m.Date.Equal(utc("2021-11-19T20:00:31Z")) {
				t.Errorf("date = %v", m.Date)
			}
		},
	},
	"exchange2010-reply-accepted-no-organizer-no-vtimezone-utf8-summary.ics": {
		method: "REPLY", uid: "f3958b8b-475b-43be-a829-1f26b995df01",
		organizer: "", attendees: 1, replier: "extc@exchange.lyn.lng", partstat: "ACCEPTED",
		summary: "Accepted: Nouvel événement de usera : 2715m1",
		start:   utc("2013-05-02T13:15:00Z"), end: utc("2013-05-02T14:15:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			if len(c.Timezones) != 0 {
				t.Errorf("timezones = %v, want none (Windows TZID without VTIMEZONE)", c.Timezones)
			}
			if c.Events[0].Start.TZID != "Romance Standard Time" {
				t.Errorf("tzid = %q", c.Events[0].Start.TZID)
			}
		},
	},
	"exchange2010-request-uppercase-MAILTO-windows-tzid.ics": {
		method: "REQUEST", uid: "040000008200E00074C5B7101A82E00800000000F9125A30B06BD0010000000000000000100000009D791C7548BFD144BFA54F14213CAD25",
		organizer: "test2@example.com", attendees: 2, summary: "Spot le chien",
		start: utc("2015-04-01T14:00:00Z"), end: utc("2015-04-01T14:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			if got := c.Events[0].Attendees[0].Name; got != "Karim Hamidou" {
				t.Errorf("CN = %q", got)
			}
			if !strings.HasPrefix(c.Timezones["Romance Standard Time"], "BEGIN:VTIMEZONE\r\nTZID:Romance Standard Time\r\n") {
				t.Errorf("timezone = %q", c.Timezones["Romance Standard Time"])
			}
		},
	},
	"google-cancel-whole-event-seq1.ics": {
		method: "CANCEL", uid: "c74p2nmutcd0kt69ku7rs8vu2g@google.com", seq: 1,
		organizer: "inboxapptest.french@gmail.com", attendees: 2, summary: "Buffalo Buffalo",
		start: utc("2015-04-01T14:00:00Z"), end: utc("2015-04-01T15:00:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			ev := c.Events[0]
			if ev.Status != "CANCELLED" || ev.Attendees[1].Name != "karim@nilas.com" {
				t.Errorf("status %q, second CN %q", ev.Status, ev.Attendees[1].Name)
			}
			if !ev.LastModified.Equal(utc("2015-03-30T13:41:02Z")) || !ev.Created.Equal(utc("2015-03-30T13:39:47Z")) {
				t.Errorf("created %v last-modified %v", ev.Created, ev.LastModified)
			}
		},
	},
	"google-reply-accepted-to-exchange-organizer.ics": {
		method: "REPLY", uid: "040000008200E00074C5B7101A82E00800000000F9125A30B06BD0010000000000000000100000009D791C7548BFD144BFA54F14213CAD25",
		organizer: "test2@example.com", attendees: 1, replier: "karim@example.com", partstat: "ACCEPTED",
		summary: "Spot le chien", start: utc("2015-04-01T14:00:00Z"), end: utc("2015-04-01T14:30:00Z"),
	},
	"google-request-application-ics-invite.eml": {
		method: "REQUEST", uid: "69d4c40b4a274636bf23517938df9673@example.org",
		organizer: "alice@example.org", attendees: 3, summary: "Imip Testing",
		start: utc("2025-02-20T18:00:00Z"), end: utc("2025-02-20T19:00:00Z"),
		check: googleCheck,
	},
	"google-request-inline-textcalendar.eml": {
		method: "REQUEST", uid: "69d4c40b4a274636bf23517938df9673@example.org",
		organizer: "alice@example.org", attendees: 3, summary: "Imip Testing",
		start: utc("2025-02-20T18:00:00Z"), end: utc("2025-02-20T19:00:00Z"),
		check: googleCheck,
	},
	"google-request-recurring-weekly-rrule-vtimezone.ics": {
		method: "REQUEST", uid: "flg2h6nam1cb1uqetgfkslrfrc@google.com",
		organizer: "foobar@nilas.com", attendees: 5, summary: "Weekly Planning Meeting",
		start: utc("2015-01-12T21:30:00Z"), end: utc("2015-01-12T22:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			ev := c.Events[0]
			if ev.RRule != "FREQ=WEEKLY;WKST=SU" || ev.Description != "View your event online!" {
				t.Errorf("rrule %q description %q", ev.RRule, ev.Description)
			}
			if ev.Attendees[1].PartStat != "ACCEPTED" || !ev.Attendees[0].RSVP {
				t.Errorf("attendees = %+v", ev.Attendees[:2])
			}
		},
	},
	"google-request-seq0-before-cancel.ics": {
		method: "REQUEST", uid: "c74p2nmutcd0kt69ku7rs8vu2g@google.com", seq: 0,
		organizer: "inboxapptest.french@gmail.com", attendees: 2, summary: "Buffalo Buffalo",
		start: utc("2015-04-01T14:00:00Z"), end: utc("2015-04-01T15:00:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			if d := c.Events[0].Description; !strings.Contains(d, "action=VIEW&eid=Yzc0") || !strings.HasSuffix(d, "&hl=en.") {
				t.Errorf("description (folded URL) = %q", d)
			}
		},
	},
	"icloud-cancel-whole-event.ics": {
		method: "CANCEL", uid: "5919D444-7C99-4687-A526-FC5D10091318", seq: 1,
		organizer: "invalid@example.com", attendees: 1, summary: "New Era",
		start: utc("2015-03-31T02:30:00Z"), end: utc("2015-03-31T03:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			if c.Events[0].Status != "" {
				t.Errorf("status = %q, want none", c.Events[0].Status)
			}
			if c.Events[0].Attendees[0].Email != "karim@nilas.com" {
				t.Errorf("removed attendee = %+v", c.Events[0].Attendees[0])
			}
			if tz := c.Timezones["Europe/Paris"]; !strings.Contains(tz, "RDATE;VALUE=DATE-TIME:19400225T020000\r\n") || !strings.HasSuffix(tz, "END:VTIMEZONE\r\n") {
				t.Errorf("timezone not kept whole: %q", tz)
			}
		},
	},
	"icloud-request-allday.ics": {
		method: "REQUEST", uid: "8153F823-B9F1-4BE0-ADFB-5FEEB01C08A9",
		organizer: "2_hezdsojzgeztsmjzgi4tsojrgnoifyhpytdqmciaf5u2j7kguydtwmzsmex4qj23absxjo6rjcxda@imip.me.com",
		attendees: 2, summary: "An all-day meeting about meetings",
		start: utc("2015-03-16T00:00:00Z"), end: utc("2015-03-17T00:00:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			ev := c.Events[0]
			if !ev.Start.AllDay || ev.Start.Value != "20150316" || ev.End.Value != "20150317" || ev.Start.TZID != "" {
				t.Errorf("start %+v end %+v", ev.Start, ev.End)
			}
			if ev.Location != "1, Infinite Loop" || ev.Transp != "TRANSPARENT" {
				t.Errorf("location %q transp %q", ev.Location, ev.Transp)
			}
			if ev.Organizer.EmailParam != "benbitdiddle@icloud.com" || ev.Organizer.Name != "Ben Bitdiddle" {
				t.Errorf("organizer = %+v", ev.Organizer)
			}
			if a := ev.Attendees[1]; a.Role != "CHAIR" || a.PartStat != "ACCEPTED" {
				t.Errorf("chair = %+v", a)
			}
		},
	},
	"lotus-notes-8.5-request-broken-fold-colon-quoted-tzid.ics": {
		method: "REQUEST", uid: "B08501845261D673C125794B004D60D8-Lotus_Notes_Generated", seq: 1,
		organizer: "user6@linagora.com", attendees: 8,
		summary: "[Nouveau DS] - COPIL # 3 - ATTENTION CHANGEMENT D'HORAIRE: SEANCE DE 13:00 à 15:00",
		start:   utc("2011-12-08T12:00:00Z"), end: utc("2011-12-08T14:00:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			ev := c.Events[0]
			if ev.Start.TZID != "W. Europe" || ev.Start.Value != "20111208T130000" {
				t.Errorf("start = %+v", ev.Start)
			}
			if _, ok := c.Timezones["W. Europe"]; !ok {
				t.Errorf("timezones = %v", c.Timezones)
			}
			if ev.Description != "C'est le message !" {
				t.Errorf("description = %q", ev.Description)
			}
			room := ev.Attendees[7]
			if room.CUType != "ROOM" || room.Email != "univac_ii/dsi_longemalle@pbc-mail03.etat-de-vaud.ch" || room.Name != "Univac II/DSI_Longemalle" {
				t.Errorf("room = %+v", room)
			}
			if ev.Attendees[4].Name != "Frédéric Genoud/DSI/admin-VD" {
				t.Errorf("CN = %q", ev.Attendees[4].Name)
			}
			if ev.Organizer.Name != "Firstname Lastname/DSI/admin-VD" {
				t.Errorf("organizer = %+v", ev.Organizer)
			}
		},
	},
	"obm-request-duration-resource-attendee-uppercase-MAILTO.ics": {
		method: "REQUEST", uid: "f1514f44bf39311568d640727cff54e819573448d09d2e5677987ff29caa01a9e047feb2aab16e43439a608f28671ab7c10e754ce92be513f8e04ae9ff15e65a9819cf285a6962bc",
		organizer: "ouazana@linagora.com", attendees: 8, summary: "Sprint planning #23",
		start: utc("2017-01-11T09:00:00Z"), end: utc("2017-01-11T10:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			ev := c.Events[0]
			if ev.End.Value != "20170111T103000Z" {
				t.Errorf("end from DURATION = %+v", ev.End)
			}
			if a := ev.Attendees[4]; a.CUType != "RESOURCE" || a.Email != "noreply@linagora.com" {
				t.Errorf("resource = %+v", a)
			}
			if a := ev.Attendees[6]; a.Name != "Benoît TELLIER" || a.PartStat != "NEEDS-ACTION" {
				t.Errorf("attendee = %+v", a)
			}
		},
	},
	"openpaas-sabre-counter-with-comment.ics": {
		method: "COUNTER", uid: "f1514f44bf39311568d640721cbc555071ca90e08d3349ccae43e1787553988ae047feb2aab16e43439a608f28671ab7c10e754cec5324c4e4cd93f443dc3934f6c5d2e592a8112c",
		seq: 1, organizer: "organizer@open-paas.org", attendees: 2,
		replier: "attendee1@open-paas.org", partstat: "NEEDS-ACTION", summary: "Démo OPENPAAS",
		start: utc("2015-06-12T13:00:00Z"), end: utc("2015-06-12T13:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			ev := c.Events[0]
			if ev.Comment != "This demo is going to be awesome!" || ev.Description != "Présentation de OPENPAAS" {
				t.Errorf("comment %q description %q", ev.Comment, ev.Description)
			}
			if ev.Attendees[0].PartStat != "ACCEPTED" {
				t.Errorf("PARTSTAT folded mid-word = %q", ev.Attendees[0].PartStat)
			}
		},
	},
	"proton-bridge-request-textcalendar-no-method-param.eml": {
		method: "REQUEST", uid: "69d4c40b4a274636bf23517938df9673@example.org",
		organizer: "alice@example.org", attendees: 3, summary: "Imip Testing",
		start: utc("2025-02-20T18:00:00Z"), end: utc("2025-02-20T19:00:00Z"),
		check: googleCheck,
	},
	"roundcube-kolab-cancel-single-occurrence-recurrence-id.eml": {
		method: "CANCEL", uid: "5463F1DDF6DA264A3FC70E7924B729A5-222222",
		organizer: "jack@kolab.org", attendees: 2, summary: "Test Meeting",
		start: utc("2024-07-17T10:30:00Z"), end: utc("2024-07-17T11:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			rid := c.Events[0].RecurrenceID
			if rid == nil || rid.Value != "20240717T123000" || rid.TZID != "Europe/Berlin" || !rid.UTC.Equal(utc("2024-07-17T10:30:00Z")) {
				t.Errorf("recurrence-id = %+v", rid)
			}
			if c.Events[0].Status != "CANCELLED" {
				t.Errorf("status = %q", c.Events[0].Status)
			}
		},
	},
	"roundcube-kolab-reply-accepted-with-comment.eml": {
		method: "REPLY", uid: "5463F1DDF6DA264A3FC70E7924B729A5-D9F1889254B163F5",
		organizer: "jack@kolab.org", attendees: 1, replier: "john@kolab.org", partstat: "ACCEPTED",
		summary: "Test Meeting", start: utc("2024-07-10T08:30:00Z"), end: utc("2024-07-10T09:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			if c.Events[0].Comment != "a reply from John" {
				t.Errorf("comment = %q", c.Events[0].Comment)
			}
			if m.From.Email != "john@kolab.org" || c.ProdID != "-//Roundcube 1.5-git//Sabre VObject 4.5.4//EN" {
				t.Errorf("from %+v prodid %q", m.From, c.ProdID)
			}
		},
	},
	"roundcube-kolab-request-single-occurrence-recurrence-id.eml": {
		method: "REQUEST", uid: "5463F1DDF6DA264A3FC70E7924B729A5-222222",
		organizer: "jack@kolab.org", attendees: 2, summary: "Test Meeting",
		start: utc("2024-07-17T10:30:00Z"), end: utc("2024-07-17T11:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			if c.Events[0].RecurrenceID == nil || c.Events[0].RRule != "" {
				t.Errorf("want a lone instance: recurrence-id %+v rrule %q", c.Events[0].RecurrenceID, c.Events[0].RRule)
			}
		},
	},
	"thunderbird17-forwarded-ics-attachment-no-method-param.eml": {
		method: "REQUEST", uid: "f1514f44bf39311568d640729245d8f86fd1229b00a56ae9bcb2af2c332c95e0e047feb2aab16e43439a608f28671ab7c10e754cdcdc862d32246f3d725e6a4800474f2b97c970d8",
		seq: 1, organizer: "mlevinson@linagora.com", attendees: 1, summary: "Weekly Team Feedback",
		start: utc("2013-10-04T12:00:00Z"), end: utc("2013-10-04T12:30:00Z"),
		check: func(t *testing.T, m *Message, c *Calendar) {
			d := c.Events[0].Description
			if !strings.HasPrefix(d, "WTF rules:\n\n* WTF starts on time, whatever is happening in whatever location") || strings.Contains(d, `\`) {
				t.Errorf("description = %q", d)
			}
		},
	},
}

func googleCheck(t *testing.T, m *Message, c *Calendar) {
	ev := c.Events[0]
	if ev.Start.TZID != "Europe/Berlin" || ev.Start.Value != "20250220T190000" {
		t.Errorf("start = %+v", ev.Start)
	}
	if ev.Attendees[1].Email != "alice@example.org" || ev.Attendees[1].PartStat != "ACCEPTED" || ev.Attendees[1].CUType != "INDIVIDUAL" {
		t.Errorf("attendee = %+v", ev.Attendees[1])
	}
	if m.Subject != "Invitation: Imip Testing @ Thu Feb 20, 2025 7pm - 8pm (CET) (alice@example.org)" {
		t.Errorf("subject = %q", m.Subject)
	}
	if m.From.Email != "alice@example.org" || m.MessageID != "imip-testing-1234@example.org" {
		t.Errorf("from %+v id %q", m.From, m.MessageID)
	}
}

// TestTestdata reads every real client message the way its user expects.
func TestTestdata(t *testing.T) {
	files, err := os.ReadDir(testdataDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range files {
		name := f.Name()
		if f.IsDir() || name == "PROVENANCE.md" {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := clientCases[name]
			if !ok {
				t.Fatalf("no expectations for %s: add it to clientCases", name)
			}
			fh, err := os.Open(filepath.Join(testdataDir, name))
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			var (
				msg *Message
				cal *Calendar
			)
			switch filepath.Ext(name) {
			case ".ics":
				cal, err = ParseCalendar(fh)
			case ".eml":
				msg, err = ReadMessage(fh, Limits{})
				if err == nil {
					if len(msg.Calendars) != 1 {
						t.Fatalf("%d calendars, want 1", len(msg.Calendars))
					}
					cal = msg.Calendars[0]
				}
			default:
				t.Fatalf("unexpected file type")
			}
			if err != nil {
				t.Fatal(err)
			}
			if cal.Method != want.method {
				t.Errorf("method = %q, want %q", cal.Method, want.method)
			}
			if len(cal.Events) != 1 {
				t.Fatalf("%d events, want 1", len(cal.Events))
			}
			ev := cal.Events[0]
			if ev.UID != want.uid {
				t.Errorf("uid = %q, want %q", ev.UID, want.uid)
			}
			if ev.Sequence != want.seq {
				t.Errorf("sequence = %d, want %d", ev.Sequence, want.seq)
			}
			if ev.Organizer.Email != want.organizer {
				t.Errorf("organizer = %q, want %q", ev.Organizer.Email, want.organizer)
			}
			if len(ev.Attendees) != want.attendees {
				t.Errorf("%d attendees, want %d", len(ev.Attendees), want.attendees)
			}
			if want.replier != "" {
				found := false
				for _, a := range ev.Attendees {
					if a.Email == want.replier {
						found = true
						if a.PartStat != want.partstat {
							t.Errorf("%s partstat = %q, want %q", a.Email, a.PartStat, want.partstat)
						}
					}
				}
				if !found {
					t.Errorf("replying attendee %s missing from %+v", want.replier, ev.Attendees)
				}
			}
			if ev.Summary != want.summary {
				t.Errorf("summary = %q, want %q", ev.Summary, want.summary)
			}
			if !ev.Start.UTC.Equal(want.start) || !ev.End.UTC.Equal(want.end) {
				t.Errorf("start %v end %v, want %v %v", ev.Start.UTC, ev.End.UTC, want.start, want.end)
			}
			if ev.DTStamp.IsZero() {
				t.Errorf("no DTSTAMP")
			}
			for tzid, text := range cal.Timezones {
				if !strings.HasPrefix(text, "BEGIN:VTIMEZONE\r\n") || !strings.HasSuffix(text, "END:VTIMEZONE\r\n") {
					t.Errorf("timezone %q not a whole component: %q", tzid, text)
				}
			}
			if want.check != nil {
				want.check(t, msg, cal)
			}
		})
	}
	if seen != len(clientCases) {
		t.Errorf("%d files, %d cases: a case names a missing file", seen, len(clientCases))
	}
}

// TestTestdataGoogleCancelPair checks that a REQUEST and the later CANCEL of
// the same event are recognisably the same event, the second newer.
func TestTestdataGoogleCancelPair(t *testing.T) {
	read := func(name string) Event {
		fh, err := os.Open(filepath.Join(testdataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		c, err := ParseCalendar(fh)
		if err != nil {
			t.Fatal(err)
		}
		return c.Events[0]
	}
	req, cancel := read("google-request-seq0-before-cancel.ics"), read("google-cancel-whole-event-seq1.ics")
	if req.UID != cancel.UID || cancel.Sequence <= req.Sequence || !cancel.DTStamp.After(req.DTStamp) {
		t.Errorf("request %s/%d/%v, cancel %s/%d/%v", req.UID, req.Sequence, req.DTStamp, cancel.UID, cancel.Sequence, cancel.DTStamp)
	}
}
