package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/store"
)

// hostileICS is a REQUEST from alice@example.org with the given VEVENT
// lines added.
func hostileICS(uid, extra string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260301T100000Z\r\nDTEND:20260301T110000Z\r\n" +
		"ORGANIZER;CN=Alice:mailto:alice@example.org\r\nSUMMARY:Hostile\r\n" + extra + "END:VEVENT\r\nEND:VCALENDAR\r\n"
}

func nested(depth int, inner string) string {
	s := inner
	for i := range depth {
		b := fmt.Sprintf("b%d", i)
		s = "Content-Type: multipart/mixed; boundary=" + b + "\r\n\r\n--" + b + "\r\n" + s + "\r\n--" + b + "--\r\n"
	}
	return s
}

// TestHostile_BoundedOutcomesDaemonKeepsServing sends messages built to
// hurt: each gets a recorded outcome (registered or rejected with a
// reason), nothing injects a header into what we send, and afterwards the
// daemon still does its job.
func TestHostile_BoundedOutcomesDaemonKeepsServing(t *testing.T) {
	relay := smtptest.NewServer(t, smtptest.Options{})
	app := startApp(t, func(c *Config) { c.Relay = "smtp://" + relay.Addr; c.EventLimit = -1 })
	hdr := "From: alice@example.org\r\nTo: create@" + testDomain + "\r\nSubject: hostile\r\nMIME-Version: 1.0\r\n"
	cal := func(ics string) string {
		return "Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n\r\n" + ics
	}
	var many strings.Builder
	many.WriteString("Content-Type: multipart/mixed; boundary=zz\r\n\r\n")
	for range 10000 {
		many.WriteString("--zz\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	many.WriteString("--zz--\r\n")
	var attendees strings.Builder
	for i := range 100000 {
		fmt.Fprintf(&attendees, "ATTENDEE:mailto:p%d@e.example\r\n", i)
	}
	bomb := wrap76(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0}, 6<<20)))
	cases := []struct {
		name, body string
		status     string
	}{
		{"nested 50 deep", nested(50, cal(hostileICS("n50", ""))), store.MessageRejected},
		{"10 000 tiny parts", many.String(), store.MessageRejected},
		{"base64 bomb (6 MiB decoded)", "Content-Type: text/calendar; method=REQUEST\r\nContent-Transfer-Encoding: base64\r\n\r\n" + bomb + "\r\n", store.MessageRejected},
		{"1 MB line (folded)", cal(hostileICS("longline", fold("DESCRIPTION:"+strings.Repeat("a", 1<<20))+"\r\n")), store.MessageProcessed},
		{"invalid UTF-8", cal(hostileICS("utf8", "LOCATION:caf\xe9 \xff\xfe\r\n")), store.MessageProcessed},
		{"NUL bytes", cal(hostileICS("nul", "LOCATION:a\x00b\r\n")), store.MessageProcessed},
		{"100 000 ATTENDEEs", cal(hostileICS("crowd", attendees.String())), store.MessageProcessed},
		{"RRULE without end", cal(hostileICS("forever", "RRULE:FREQ=MINUTELY\r\n")), store.MessageProcessed},
		{"a century of minutes", cal(hostileICS("century", "RRULE:FREQ=MINUTELY;UNTIL=21260101T000000Z\r\n")), store.MessageProcessed},
		{"CRLF in SUMMARY", cal(strings.Replace(hostileICS("inject", ""), "SUMMARY:Hostile", `SUMMARY:Hi\r\nBcc: victim@evil.example\r\n`, 1)), store.MessageProcessed},
		{"no calendar at all", "Content-Type: text/plain\r\n\r\nhello\r\n", store.MessageRejected},
	}
	for _, c := range cases {
		id, err := sendMail(t, app.SMTPAddr(), "alice@example.org", []string{"create@" + testDomain}, []byte(hdr+c.body))
		if err != nil {
			t.Errorf("%s: SMTP %v", c.name, err)
			continue
		}
		m := messageRecord(t, app, id)
		if m.Status != c.status || len(m.Notes) == 0 {
			t.Errorf("%s: %s %+v, want %s with a reason", c.name, m.Status, m.Notes, c.status)
		}
	}
	// A name and a summary with CRLF reach our outgoing headers: invite
	// someone with such a name to the event whose SUMMARY has one.
	uid := eventUID(t, app, "alice@example.org", "inject")
	code, err := httpGet("http://" + app.HTTPAddr() + "/event/" + uid + "/invite?email=bob%40example.com&name=" +
		url.QueryEscape("Bob\r\nBcc: victim@evil.example\r\nX-Evil: 1"))
	if err != nil || code != 202 {
		t.Fatalf("invite: %d %v", code, err)
	}
	sent := toAttendees(t, relay, 1)[0].Data
	head := string(sent[:bytes.Index(sent, []byte("\r\n\r\n"))])
	for _, line := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "bcc:") || strings.HasPrefix(strings.ToLower(line), "x-evil:") {
			t.Errorf("injected header %q in:\n%s", line, head)
		}
	}
	// And the daemon still works: a real Gmail invitation registers.
	mustSend(t, app.SMTPAddr(), "alice@example.org", []string{"create@" + testDomain}, []byte(readTestdata(t, "google-request-inline-textcalendar.eml")))
	eventUID(t, app, "alice@example.org", "69d4c40b4a274636bf23517938df9673@example.org")
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

// fold folds an iCalendar content line at 74 octets.
func fold(line string) string {
	var b strings.Builder
	for len(line) > 74 {
		b.WriteString(line[:74] + "\r\n ")
		line = line[74:]
	}
	b.WriteString(line)
	return b.String()
}
