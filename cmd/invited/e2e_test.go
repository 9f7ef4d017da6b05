package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

// TestEndToEnd runs the daemon with a real SMTP server as its relay: an
// organizer registers an event by mail, three attendees are invited over
// HTTP, their real Gmail, Outlook and Apple replies come back and are
// counted, then an update and a cancel reach all three.
func TestEndToEnd(t *testing.T) {
	relay := smtptest.NewServer(t, smtptest.Options{})
	app := startApp(t, func(c *Config) { c.Relay = "smtp://" + relay.Addr })
	smtpAddr := app.SMTPAddr()

	// 1. The organizer's Gmail invitation, sent to create@.
	request := readTestdata(t, "google-request-inline-textcalendar.eml")
	const orig = "69d4c40b4a274636bf23517938df9673@example.org"
	mustSend(t, smtpAddr, "alice@example.org", []string{"create@" + testDomain}, []byte(request))
	uid := eventUID(t, app, "alice@example.org", orig)
	if uid == orig {
		t.Fatal("event kept the organizer's UID; want a server UID")
	}

	// 2. Three invites: a landing page (public GET), JSON and CSV.
	const (
		gmail   = "karim@example.com"
		outlook = "extc@exchange.lyn.lng"
		apple   = "xyzzy@example.com"
	)
	resp, err := httpGet("http://" + app.HTTPAddr() + "/event/" + uid + "/invite?email=" + url.QueryEscape(gmail) + "&name=Karim&origin=landingpage")
	if err != nil || resp != 202 {
		t.Fatalf("public invite: %d %v", resp, err)
	}
	var res struct {
		Queued int `json:"queued"`
	}
	if code := api(t, app, "POST", "/event/"+uid+"/invites", strings.NewReader(`[{"email":"`+outlook+`","name":"Ext C"}]`), &res); code != 202 || res.Queued != 1 {
		t.Fatalf("JSON invite: HTTP %d, %+v", code, res)
	}
	if code := apiCSV(t, app, uid, "email,name\r\n"+apple+",Plugh Xyzzy\r\n"); code != 202 {
		t.Fatalf("CSV invite: HTTP %d", code)
	}
	// A second invite to the same address is not sent.
	api(t, app, "POST", "/event/"+uid+"/invites", strings.NewReader(`[{"email":"`+strings.ToUpper(gmail)+`"}]`), nil)

	invites := toAttendees(t, relay, 3)
	tags := map[string]string{}
	for _, m := range invites {
		p := checkOutbound(t, m, "REQUEST", uid, 0)
		att := p.cal.Events[0].Attendees[0]
		if att.PartStat != "NEEDS-ACTION" || !att.RSVP {
			t.Errorf("invite to %s: ATTENDEE %+v, want PARTSTAT=NEEDS-ACTION;RSVP=TRUE", att.Email, att)
		}
		if p.msg.Subject != "Invitation: Imip Testing" {
			t.Errorf("subject %q", p.msg.Subject)
		}
		tags[att.Email] = p.cal.Events[0].Organizer.Email
	}
	for _, who := range []string{gmail, outlook, apple} {
		if tags[who] == "" {
			t.Fatalf("no invite reached %s (got %v)", who, tags)
		}
	}
	var s statsResp
	eventually(t, "three invites counted", func() bool {
		s = stats(t, app, uid)
		return s.InvitesSent == 3
	})
	if s.AttendeeCount != 3 || s.Pending != 3 {
		t.Fatalf("after invites: %+v", s)
	}

	// 3. Replies, built from what the real clients sent: Gmail declines,
	// Outlook (no ORGANIZER, Windows TZID) says maybe, Apple iCal accepts
	// (quoted-printable attachment without method=).
	google := readTestdata(t, "google-reply-accepted-to-exchange-organizer.ics")
	google = setProp(setProp(google, "UID", uid), "ORGANIZER", "mailto:"+tags[gmail])
	google = strings.Replace(google, "PARTSTAT=ACCEPTED", "PARTSTAT=DECLINED", 1)
	outl := readTestdata(t, "exchange2010-reply-accepted-no-organizer-no-vtimezone-utf8-summary.ics")
	outl = strings.Replace(setProp(outl, "UID", uid), "PARTSTAT=ACCEPTED", "PARTSTAT=TENTATIVE", 1)
	ical := readTestdata(t, "apple-ical3-mail-reply-accepted-qp-attachment-no-method-param.eml")
	ical = strings.Replace(ical, "1E71F9C8-AEDA-48EB-98D0-76E898F6BB5C", uid, 1)

	// Forged and misdirected replies first: they must change nothing.
	forged := mustSend(t, smtpAddr, "mallory@evil.example", []string{"rsvp@" + testDomain},
		wrapICS("Mallory <mallory@evil.example>", "rsvp@"+testDomain, "Accepted", "REPLY",
			strings.Replace(google, "PARTSTAT=DECLINED", "PARTSTAT=ACCEPTED", 1)))
	wrongTag := mustSend(t, smtpAddr, outlook, []string{tags[gmail]},
		wrapICS(outlook, tags[gmail], "Tentative", "REPLY", outl))
	for _, id := range []string{forged, wrongTag} {
		if m := messageRecord(t, app, id); m.Status != store.MessageRejected {
			t.Errorf("message %s: status %s, notes %+v; want rejected", id, m.Status, m.Notes)
		}
	}
	// The admin API shows what became of a message, by its queue id.
	var rec struct {
		Status string `json:"status"`
		Notes  []struct{ Text string }
	}
	if code := api(t, app, "GET", "/admin/messages/"+forged, nil, &rec); code != 200 || rec.Status != "rejected" ||
		len(rec.Notes) == 0 || !strings.Contains(rec.Notes[0].Text, "not authenticated") {
		t.Errorf("GET /admin/messages/%s: %d %+v", forged, code, rec)
	}

	mustSend(t, smtpAddr, gmail, []string{tags[gmail]}, wrapICS("Karim Hamidou <"+gmail+">", tags[gmail], "Declined: Imip Testing", "REPLY", google))
	mustSend(t, smtpAddr, outlook, []string{tags[outlook]}, wrapICS("extc extc <"+outlook+">", tags[outlook], "Tentative", "REPLY", outl))
	mustSend(t, smtpAddr, apple, []string{tags[apple]}, []byte(ical))
	eventually(t, "three replies counted", func() bool {
		s = stats(t, app, uid)
		return s.Confirmed == 1 && s.Declined == 1 && s.Tentative == 1 && s.Pending == 0
	})
	// A stale reply (older DTSTAMP) is ignored.
	stale := setProp(strings.Replace(outl, "PARTSTAT=TENTATIVE", "PARTSTAT=DECLINED", 1), "DTSTAMP", "20130101T000000Z")
	id := mustSend(t, smtpAddr, outlook, []string{tags[outlook]}, wrapICS(outlook, tags[outlook], "Declined", "REPLY", stale))
	if m := messageRecord(t, app, id); !strings.Contains(m.Notes[len(m.Notes)-1].Text, "not newer") {
		t.Errorf("stale reply: notes %+v", m.Notes)
	}
	if s2 := stats(t, app, uid); s2 != s {
		t.Errorf("stale reply changed statistics: %+v → %+v", s, s2)
	}
	var hist []store.RSVP
	app.DB().View(func(tx *store.Tx) error {
		a, err := tx.Attendee(uid, apple)
		if err == nil {
			hist = a.History
		}
		return err
	})
	if len(hist) != 1 || hist[0].Status != store.PartAccepted || !strings.Contains(hist[0].ProdID, "iCal 3.0") ||
		!hist[0].DTStamp.Equal(time.Date(2008, 8, 12, 20, 19, 11, 0, time.UTC)) {
		t.Errorf("Apple attendee history = %+v", hist)
	}

	// 4. The organizer moves the meeting an hour later: SEQUENCE 1.
	update := setProp(setProp(setProp(setProp(request, "SEQUENCE", "1"),
		"DTSTART;TZID=Europe/Berlin", "20250220T200000"), "DTEND;TZID=Europe/Berlin", "20250220T210000"),
		"DTSTAMP", "20250207T090000Z")
	mustSend(t, smtpAddr, "alice@example.org", []string{"create@" + testDomain}, []byte(update))
	all := toAttendees(t, relay, 6)
	for _, m := range all[3:] {
		p := checkOutbound(t, m, "REQUEST", uid, 1)
		ev := p.cal.Events[0]
		if p.msg.Subject != "Event Updated: Imip Testing" || ev.Start.Value != "20250220T200000" {
			t.Errorf("update: subject %q, DTSTART %+v", p.msg.Subject, ev.Start)
		}
		if ev.Attendees[0].PartStat != "NEEDS-ACTION" {
			t.Errorf("update after a time change: PARTSTAT %s, want NEEDS-ACTION", ev.Attendees[0].PartStat)
		}
	}
	eventually(t, "statuses reset by the time change", func() bool {
		s = stats(t, app, uid)
		return s.Pending == 3 && s.Confirmed == 0 && s.UpdatesSent == 3
	})
	// The same REQUEST again changes nothing and sends nothing.
	id = mustSend(t, smtpAddr, "alice@example.org", []string{"create@" + testDomain}, []byte(update))
	if m := messageRecord(t, app, id); !strings.Contains(m.Notes[len(m.Notes)-1].Text, "nothing sent") {
		t.Errorf("repeated REQUEST: notes %+v", m.Notes)
	}

	// 5. The organizer cancels: SEQUENCE 2, METHOD:CANCEL to all three.
	cancelMsg := strings.ReplaceAll(update, "METHOD:REQUEST", "METHOD:CANCEL")
	cancelMsg = strings.ReplaceAll(cancelMsg, "method=REQUEST", "method=CANCEL")
	cancelMsg = setProp(setProp(setProp(cancelMsg, "SEQUENCE", "2"), "STATUS", "CANCELLED"), "DTSTAMP", "20250208T090000Z")
	mustSend(t, smtpAddr, "alice@example.org", []string{"create@" + testDomain}, []byte(cancelMsg))
	all = toAttendees(t, relay, 9)
	var to []string
	for _, m := range all[6:] {
		p := checkOutbound(t, m, "CANCEL", uid, 2)
		if p.msg.Subject != "Event Cancelled: Imip Testing" || p.cal.Events[0].Status != "CANCELLED" {
			t.Errorf("cancel: subject %q status %q", p.msg.Subject, p.cal.Events[0].Status)
		}
		to = append(to, m.To...)
	}
	slices.Sort(to)
	if want := sorted(gmail, outlook, apple); fmt.Sprint(to) != fmt.Sprint(want) {
		t.Errorf("cancels went to %v, want %v", to, want)
	}
	var ev struct {
		Status   string `json:"status"`
		Sequence int    `json:"sequence"`
	}
	api(t, app, "GET", "/event/"+uid, nil, &ev)
	if ev.Status != "cancelled" || ev.Sequence != 2 {
		t.Errorf("event after cancel: %+v", ev)
	}
	eventually(t, "cancels counted", func() bool { return stats(t, app, uid).CancelsSent == 3 })
	if n := len(relayed(relay, false)); n != 9 {
		t.Errorf("relay received %d messages for attendees, want 9 (3 invites, 3 updates, 3 cancels)", n)
	}
	// The organizer heard once, when the event was registered: with its id
	// and the link to invite people.
	notices := relayed(relay, true)
	if len(notices) != 1 || notices[0].To[0] != "alice@example.org" {
		t.Fatalf("notices %d, want 1 to alice@example.org", len(notices))
	}
	n, err := itip.ReadMessage(bytes.NewReader(notices[0].Data), itip.Limits{})
	if !errors.Is(err, itip.ErrNoCalendar) || !strings.Contains(n.Subject, "Imip Testing") {
		t.Errorf("notice subject %q, err %v", n.Subject, err)
	}
	if body := qpDecoded(t, notices[0].Data); !strings.Contains(body, uid) || !strings.Contains(body, "/event/"+uid+"/invite") {
		t.Errorf("event created notice lacks the event id or the invite link:\n%s", body)
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// relayed returns the messages the relay got: notices to organizers, or
// the rest (to attendees).
func relayed(relay *smtptest.Server, notices bool) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range relay.Messages() {
		if strings.Contains(string(m.Data), "Message-Id: <notice.") == notices {
			out = append(out, m)
		}
	}
	return out
}

// toAttendees waits until the relay has n messages for attendees.
func toAttendees(t *testing.T, relay *smtptest.Server, n int) []smtptest.Message {
	t.Helper()
	var msgs []smtptest.Message
	eventually(t, fmt.Sprintf("%d messages to attendees", n), func() bool {
		msgs = relayed(relay, false)
		return len(msgs) >= n
	})
	return msgs
}

// qpDecoded returns the decoded text parts of a message.
func qpDecoded(t *testing.T, raw []byte) string {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	e.Walk(func(_ []int, part *message.Entity, err error) error {
		if mt, _, _ := part.Header.ContentType(); strings.HasPrefix(mt, "text/") {
			io.Copy(&b, part.Body)
		}
		return nil
	})
	return b.String()
}

// checkOutbound checks one message we sent: the Gmail MIME layout and the
// calendar in it.
func checkOutbound(t *testing.T, m smtptest.Message, method, uid string, seq int) parsed {
	t.Helper()
	p := parseOutbound(t, m.Data)
	checkLayout(t, m.Data, method)
	if p.cal.Method != method || len(p.cal.Events) != 1 {
		t.Fatalf("message to %v: METHOD %q with %d events, want %s with 1", m.To, p.cal.Method, len(p.cal.Events), method)
	}
	ev := p.cal.Events[0]
	if ev.UID != uid || ev.Sequence != seq {
		t.Errorf("message to %v: UID %q SEQUENCE %d, want %q %d", m.To, ev.UID, ev.Sequence, uid, seq)
	}
	if !strings.HasPrefix(ev.Organizer.Email, "rsvp+") || !strings.HasSuffix(ev.Organizer.Email, "@"+testDomain) {
		t.Errorf("ORGANIZER %q, want rsvp+TAG@%s", ev.Organizer.Email, testDomain)
	}
	if ev.Organizer.Name != "alice@example.org" {
		t.Errorf("ORGANIZER CN %q, want the organizer's name", ev.Organizer.Name)
	}
	if len(ev.Attendees) != 1 || len(m.To) != 1 || ev.Attendees[0].Email != m.To[0] {
		t.Errorf("ATTENDEEs %+v for a message to %v", ev.Attendees, m.To)
	}
	if _, ok := p.cal.Timezones["Europe/Berlin"]; !ok {
		t.Errorf("no VTIMEZONE for Europe/Berlin")
	}
	if time.Since(ev.DTStamp) > time.Minute {
		t.Errorf("DTSTAMP %v is not fresh", ev.DTStamp)
	}
	return p
}

// checkLayout checks the MIME tree: multipart/mixed holding
// multipart/alternative (text/plain, text/html, text/calendar with
// method= and charset=UTF-8) and an invite.ics attachment.
func checkLayout(t *testing.T, raw []byte, method string) {
	t.Helper()
	e, err := message.Read(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(e *message.Entity, depth int)
	walk = func(e *message.Entity, depth int) {
		mt, params, _ := e.Header.ContentType()
		desc := strings.Repeat(">", depth) + mt
		if mt == "text/calendar" {
			desc += ";method=" + params["method"] + ";charset=" + params["charset"]
		}
		if _, dp, err := e.Header.ContentDisposition(); err == nil && dp["filename"] != "" {
			desc += ";filename=" + dp["filename"]
		}
		got = append(got, desc)
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				walk(p, depth+1)
			}
		}
	}
	walk(e, 0)
	want := []string{"multipart/mixed", ">multipart/alternative", ">>text/plain", ">>text/html",
		">>text/calendar;method=" + method + ";charset=UTF-8", ">application/ics;filename=invite.ics"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("MIME layout\n got %v\nwant %v", got, want)
	}
}
