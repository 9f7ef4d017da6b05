package itip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func b64(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Binary = true // keep CRLF as =0D=0A, like Apple Mail does
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// mime builds a message from a header block and a body, CRLF throughout.
func mimeMsg(header, body string) string {
	return strings.ReplaceAll(header, "\n", "\r\n") + "\r\n" + body
}

func TestReadMessage_Wrapped(t *testing.T) {
	google := readTestdata(t, "google-request-seq0-before-cancel.ics")
	reply := readTestdata(t, "exchange2010-reply-accepted-no-organizer-no-vtimezone-utf8-summary.ics")
	noMethod := strings.Replace(google, "METHOD:REQUEST\r\n", "", 1)
	latin1 := "BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nBEGIN:VEVENT\r\nUID:l1\r\nSUMMARY:R\xe9union\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	const hdr = "From: =?utf-8?q?J=C3=B6rg?= <Joerg@Example.ORG>\nTo: create@invited.example\nSubject: =?iso-8859-1?q?R=E9union?=\nMessage-ID: <abc@example.org>\nDate: Tue, 09 Jul 2024 14:43:04 +0200\nMIME-Version: 1.0\n"

	tests := []struct {
		name    string
		msg     string
		method  string
		summary string
	}{
		{"top-level text/calendar", mimeMsg(hdr+"Content-Type: text/calendar; method=REQUEST; charset=UTF-8\n", google), "REQUEST", "Buffalo Buffalo"},
		{"top-level base64 no method", mimeMsg(hdr+"Content-Type: text/calendar\nContent-Transfer-Encoding: base64\n", b64(noMethod)), "", "Buffalo Buffalo"},
		{"method only in MIME", mimeMsg(hdr+"Content-Type: text/calendar; method=request\n", noMethod), "REQUEST", "Buffalo Buffalo"},
		{"METHOD wins over MIME", mimeMsg(hdr+"Content-Type: text/calendar; method=CANCEL\n", google), "REQUEST", "Buffalo Buffalo"},
		{"QP attachment with CRLF escapes", mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b1\n",
			"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\nContent-Type: text/calendar; name=\"r.ics\"\r\nContent-Disposition: attachment; filename=r.ics\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"+
				qp(reply)+"\r\n--b1--\r\n"), "REPLY", "Accepted: Nouvel événement de usera : 2715m1"},
		{"octet-stream named .ics", mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b1\n",
			"--b1\r\nContent-Type: application/octet-stream; name=invite.ICS\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64(google)+"--b1--\r\n"), "REQUEST", "Buffalo Buffalo"},
		{"octet-stream sniffed", mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b1\n",
			"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"+b64("\r\n"+google)+"--b1--\r\n"), "REQUEST", "Buffalo Buffalo"},
		{"text/plain named .ics", mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b1\n",
			"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"=?utf-8?q?r=C3=A9union.ics?=\"\r\n\r\n"+google+"--b1--\r\n"), "REQUEST", "Buffalo Buffalo"},
		{"text/plain named .ics in its Content-Type only", mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b1\n",
			"--b1\r\nContent-Type: text/plain; charset=utf-8; name=\"=?utf-8?q?r=C3=A9union.ics?=\"\r\n\r\n"+google+"--b1--\r\n"), "REQUEST", "Buffalo Buffalo"},
		{"iso-8859-1 charset", mimeMsg(hdr+"Content-Type: text/calendar; charset=iso-8859-1; method=PUBLISH\nContent-Transfer-Encoding: 8bit\n", latin1), "PUBLISH", "Réunion"},
		{"nested related in alternative in mixed", mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b1\n",
			"--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n--b2\r\nContent-Type: text/plain\r\n\r\nx\r\n--b2\r\nContent-Type: multipart/related; boundary=b3\r\n\r\n--b3\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b3\r\nContent-Type: text/calendar; method=REQUEST\r\nContent-Transfer-Encoding: base64\r\n\r\n"+
				b64(google)+"--b3--\r\n--b2--\r\n--b1--\r\n"), "REQUEST", "Buffalo Buffalo"},
		{"LF-only message", strings.ReplaceAll(mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b1\n",
			"--b1\r\nContent-Type: application/ics\r\n\r\n"+google+"--b1--\r\n"), "\r\n", "\n"), "REQUEST", "Buffalo Buffalo"},
		{"missing final boundary after calendar", mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b1\n",
			"--b1\r\nContent-Type: text/calendar\r\n\r\n"+google), "REQUEST", "Buffalo Buffalo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadMessage(strings.NewReader(tt.msg), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Calendars) != 1 {
				t.Fatalf("%d calendars", len(m.Calendars))
			}
			c := m.Calendars[0]
			if c.Method != tt.method || c.Events[0].Summary != tt.summary {
				t.Errorf("method %q summary %q, want %q %q", c.Method, c.Events[0].Summary, tt.method, tt.summary)
			}
			if m.From != (Address{Email: "joerg@example.org", Name: "Jörg"}) || m.Subject != "Réunion" || m.MessageID != "abc@example.org" {
				t.Errorf("header: from %+v subject %q id %q", m.From, m.Subject, m.MessageID)
			}
			if m.Date.IsZero() {
				t.Errorf("no date")
			}
		})
	}
}

func TestReadMessage_CalendarsAndAttachments(t *testing.T) {
	google := readTestdata(t, "google-request-seq0-before-cancel.ics")
	cancel := readTestdata(t, "google-cancel-whole-event-seq1.ics")
	const hdr = "From: a@example.org\nSubject: s\nContent-Type: multipart/mixed; boundary=b1\n"
	body := "--b1\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + google +
		"--b1\r\nContent-Type: application/ics; name=invite.ics\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(strings.ReplaceAll(google, "\r\n", "\n")) +
		"--b1\r\nContent-Type: text/csv; name=list.csv\r\n\r\nuid,email,name\r\nu1,a@x.org,A\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"Invitees.CSV\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64("email\r\nb@x.org\r\n") +
		"--b1\r\nContent-Type: application/vnd.ms-excel\r\n\r\nc@x.org\r\n" +
		"--b1\r\nContent-Type: application/pdf; name=agenda.pdf\r\n\r\n%PDF-1.4 not a calendar\r\n" +
		"--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: fwd\r\nContent-Type: text/calendar\r\n\r\n" + cancel +
		"--b1\r\nContent-Type: text/calendar\r\n\r\n" + cancel +
		"--b1--\r\n"
	m, err := ReadMessage(strings.NewReader(mimeMsg(hdr, body)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Calendars) != 2 || m.Calendars[0].Method != "REQUEST" || m.Calendars[1].Method != "CANCEL" {
		t.Fatalf("calendars = %d (%+v)", len(m.Calendars), m.Calendars)
	}
	if len(m.Attachments) != 3 {
		t.Fatalf("attachments = %+v", m.Attachments)
	}
	want := []Attachment{
		{Filename: "list.csv", ContentType: "text/csv", Data: []byte("uid,email,name\r\nu1,a@x.org,A")},
		{Filename: "Invitees.CSV", ContentType: "application/octet-stream", Data: []byte("email\r\nb@x.org\r\n")},
		{Filename: "", ContentType: "application/vnd.ms-excel", Data: []byte("c@x.org")},
	}
	for i, a := range m.Attachments {
		if a.Filename != want[i].Filename || a.ContentType != want[i].ContentType || !bytes.Equal(a.Data, want[i].Data) {
			t.Errorf("attachment %d = %+v %q, want %+v %q", i, a, a.Data, want[i], want[i].Data)
		}
	}
}

func TestReadMessage_Errors(t *testing.T) {
	const hdr = "From: a@example.org\nSubject: s\n"
	google := readTestdata(t, "google-request-seq0-before-cancel.ics")
	t.Run("no calendar", func(t *testing.T) {
		for _, msg := range []string{
			mimeMsg(hdr+"Content-Type: text/plain\n", "hello\r\n"),
			mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b\n", "--b\r\nContent-Type: text/csv\r\n\r\na,b\r\n--b--\r\n"),
			mimeMsg(hdr, ""),
		} {
			if _, err := ReadMessage(strings.NewReader(msg), Limits{}); !errors.Is(err, ErrNoCalendar) {
				t.Errorf("err = %v, want ErrNoCalendar", err)
			}
		}
	})
	t.Run("unparseable calendar", func(t *testing.T) {
		msg := mimeMsg(hdr+"Content-Type: text/calendar\n", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n")
		_, err := ReadMessage(strings.NewReader(msg), Limits{})
		if err == nil || errors.Is(err, ErrNoCalendar) || !strings.Contains(err.Error(), "missing END") {
			t.Errorf("err = %v, want the parse error", err)
		}
	})
	t.Run("bad part skipped when another parses", func(t *testing.T) {
		msg := mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b\n",
			"--b\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\ngarbage\r\n--b\r\nContent-Type: text/calendar\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64!!!\r\n--b\r\nContent-Type: text/calendar\r\n\r\n"+google+"--b--\r\n")
		m, err := ReadMessage(strings.NewReader(msg), Limits{})
		if err != nil || len(m.Calendars) != 1 {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("malformed MIME", func(t *testing.T) {
		for _, msg := range []string{
			mimeMsg(hdr+"Content-Type: multipart/mixed\n", "--x\r\n\r\n"),
			mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b\n", "--b\r\nContent-Type: text/plain\r\n\r\nno end"),
			" leading space header\r\n\r\n",
		} {
			_, err := ReadMessage(strings.NewReader(msg), Limits{})
			if err == nil || errors.Is(err, ErrNoCalendar) || errors.Is(err, ErrLimit) {
				t.Errorf("err = %v, want a MIME error", err)
			}
		}
	})
	t.Run("limits", func(t *testing.T) {
		part := "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
		many := mimeMsg(hdr+"Content-Type: multipart/mixed; boundary=b\n", strings.Repeat(part, 5)+"--b\r\nContent-Type: text/calendar\r\n\r\n"+google+"--b--\r\n")
		if _, err := ReadMessage(strings.NewReader(many), Limits{MaxParts: 4}); !errors.Is(err, ErrLimit) {
			t.Errorf("parts: err = %v", err)
		}
		if _, err := ReadMessage(strings.NewReader(many), Limits{MaxParts: 7}); err != nil {
			t.Errorf("parts at the limit: err = %v", err)
		}
		big := mimeMsg(hdr+"Content-Type: text/calendar\n", google)
		if _, err := ReadMessage(strings.NewReader(big), Limits{MaxPartBytes: 100}); !errors.Is(err, ErrLimit) {
			t.Errorf("part size: err = %v", err)
		}
		if _, err := ReadMessage(strings.NewReader(big), Limits{MaxMessageBytes: 200}); !errors.Is(err, ErrLimit) {
			t.Errorf("message size: err = %v", err)
		}
		if _, err := ReadMessage(strings.NewReader(big), Limits{MaxMessageBytes: int64(len(big))}); err != nil {
			t.Errorf("message exactly at the limit: err = %v", err)
		}
		nested := hdr + "Content-Type: multipart/mixed; boundary=b0\n\n"
		for i := 1; i <= 3; i++ {
			nested += "--b" + string(rune('0'+i-1)) + "\nContent-Type: multipart/mixed; boundary=b" + string(rune('0'+i)) + "\n\n"
		}
		nested += "--b3\nContent-Type: text/calendar\n\n" + google + "--b3--\n--b2--\n--b1--\n--b0--\n"
		if _, err := ReadMessage(strings.NewReader(nested), Limits{MaxDepth: 3}); !errors.Is(err, ErrLimit) {
			t.Errorf("depth: err = %v", err)
		}
		if _, err := ReadMessage(strings.NewReader(nested), Limits{MaxDepth: 4}); err != nil {
			t.Errorf("depth at the limit: err = %v", err)
		}
	})
}

func TestReadMessage_LooseFrom(t *testing.T) {
	google := readTestdata(t, "google-request-seq0-before-cancel.ics")
	for from, want := range map[string]Address{
		"Doe, John <John@X.org>":                  {Email: "john@x.org", Name: "Doe, John"},
		"John Doe (Work) <john@x.org":             {Email: "john@x.org", Name: "John Doe (Work)"},
		"john@x.org (John)":                       {Email: "john@x.org", Name: "John"},
		"\"=?utf-8?q?J=C3=B6rg?=\" <joerg@x.org>": {Email: "joerg@x.org", Name: "Jörg"},
		"garbage": {},
	} {
		msg := mimeMsg("From: "+from+"\nContent-Type: text/calendar\n", google)
		m, err := ReadMessage(strings.NewReader(msg), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m.From != want {
			t.Errorf("From %q = %+v, want %+v", from, m.From, want)
		}
	}
}

const dateTestBody = "Content-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nBEGIN:VEVENT\r\nUID:d\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

// The Date header reads as net/mail reads it, in the common form (read
// directly) and in the others (left to net/mail).
func TestReadMessage_Date(t *testing.T) {
	for _, date := range []string{
		"Thu, 06 Feb 2025 16:21:41 +0000",
		"Thu, 06 Feb 2025 16:21:41 -0530",
		"  Mon, 23 Nov 2026 07:00:00 +0100  ",
		"Thu, 6 Feb 2025 16:21:41 +0000",
		"6 Feb 2025 16:21:41 +0100",
		"Thu, 06 Feb 2025 16:21:41 -0500 (EST)",
		"Thu, 06 Feb 2025 16:21 GMT",
	} {
		want, err := mail.ParseDate(date)
		if err != nil {
			t.Fatalf("net/mail cannot read %q: %v", date, err)
		}
		m, err := ReadMessage(strings.NewReader("From: a@example.org\r\nDate: "+date+"\r\n"+dateTestBody), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !m.Date.Equal(want) || m.Date.Format(time.RFC3339) != want.Format(time.RFC3339) {
			t.Errorf("Date: %s reads as %v, want %v", date, m.Date, want)
		}
	}
	m, err := ReadMessage(strings.NewReader("From: a@example.org\r\nDate: yesterday\r\n"+dateTestBody), Limits{})
	if err != nil || !m.Date.IsZero() {
		t.Errorf("unreadable Date: %v, %v; want the zero time", m.Date, err)
	}
}
