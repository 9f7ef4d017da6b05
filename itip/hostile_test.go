package itip

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// hostileBudget is how long any one hostile input may take. It is generous
// so that -race on a slow machine passes; typical runs take milliseconds.
const hostileBudget = 5 * time.Second

func repeatLines(line string, n int) string {
	return strings.Repeat(line+"\r\n", n)
}

func TestParseCalendar_Hostile(t *testing.T) {
	const head = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:h\r\n"
	const tail = "END:VEVENT\r\nEND:VCALENDAR\r\n"
	mb := strings.Repeat("a", 1<<20)
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, c *Calendar)
	}{
		{"no END", head, nil},
		{"garbage", "\x00\x01\x02 garbage ;;;:::\r\n\xff\xfe", nil},
		{"parameter without colon", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nATTENDEE;CN=x\r\nATTENDEE;CN\r\nDTSTART;TZID=\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", nil},
		{"unterminated quote", head + "ATTENDEE;CN=\"abc:mailto:a@b\r\n" + tail, nil},
		{"NUL bytes", head + "SUMMARY:a\x00b\x00c\r\nATTENDEE;CN=\x00:mailto:\x00x@y\r\n" + tail, func(t *testing.T, c *Calendar) {
			if c.Events[0].Summary != "abc" || c.Events[0].Attendees[0].Email != "x@y" {
				t.Errorf("NULs kept: %+v", c.Events[0])
			}
		}},
		{"invalid UTF-8", head + "SUMMARY:\xc3\x28 \xe2\x82 日本 \xf0\x90\x80\r\n" + tail, func(t *testing.T, c *Calendar) {
			if s := c.Events[0].Summary; !strings.Contains(s, "日本") || !isValidUTF8(s) {
				t.Errorf("summary = %q", s)
			}
		}},
		{"1 MB value line", head + "SUMMARY:" + mb + "\r\n" + tail, func(t *testing.T, c *Calendar) {
			if len(c.Events[0].Summary) != 1<<20 {
				t.Errorf("summary length %d", len(c.Events[0].Summary))
			}
		}},
		{"1 MB quoted parameter", head + "ATTENDEE;CN=\"" + mb + "\":mailto:a@b\r\n" + tail, nil},
		{"1 MB unquoted parameter", head + "ATTENDEE;CN=" + mb + ":mailto:a@b\r\n" + tail, nil},
		{"1 MB line without colon", head + mb + "\r\n" + tail, nil},
		{"1 MB of parameters", head + "ATTENDEE" + strings.Repeat(";X=1", 1<<18) + ":mailto:a@b\r\n" + tail, nil},
		{"parameter values at the length limit", head + repeatLines("ATTENDEE;CN="+strings.Repeat("a", maxParamValue)+":mailto:a@b", 2) + tail, func(t *testing.T, c *Calendar) {
			if a := c.Events[0].Attendees; len(a) != 2 || len(a[1].Name) != maxParamValue {
				t.Errorf("attendees %d, name length %d", len(a), len(a[len(a)-1].Name))
			}
		}},
		{"parameter value over the length limit", head + "ATTENDEE;CN=" + strings.Repeat("a", maxParamValue+1) + ";PARTSTAT=ACCEPTED:mailto:a@b\r\n" + tail, func(t *testing.T, c *Calendar) {
			if a := c.Events[0].Attendees; len(a) != 1 || a[0].Name != "" || a[0].PartStat != "ACCEPTED" {
				t.Errorf("attendees = %.100v", a)
			}
		}},
		{"VTIMEZONE line with 100 000 parameters", "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Z\r\nX-P" + func() string {
			var b strings.Builder
			for i := range 100000 {
				fmt.Fprintf(&b, ";X-%d=%d", i, i)
			}
			return b.String()
		}() + ":v\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n" +
			"BEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Z:20250101T000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", func(t *testing.T, c *Calendar) {
			if !c.Events[0].Start.UTC.Equal(utc("2024-12-31T23:00:00Z")) || strings.Count(strings.ReplaceAll(c.Timezones["Z"], "\r\n ", ""), ";X-") != maxLineParams {
				t.Errorf("start = %v, timezone:\n%.300s", c.Events[0].Start.UTC, c.Timezones["Z"])
			}
		}},
		{"100 parameter values at the length limit", head + repeatLines("ATTENDEE;CN=\""+strings.Repeat("a", maxParamValue)+"\":mailto:a@b", 100) + tail, nil},
		{"10 000 attendees with 500-byte names", head + repeatLines("ATTENDEE;CN="+strings.Repeat("a", 500)+";PARTSTAT=ACCEPTED:mailto:a@b", 10000) + tail, nil},
		{"20 000 events with a 100-byte name", "BEGIN:VCALENDAR\r\n" + strings.Repeat("BEGIN:VEVENT\r\nUID:x\r\nORGANIZER;CN="+strings.Repeat("a", 100)+":mailto:a@b\r\nEND:VEVENT\r\n", 20000) + "END:VCALENDAR\r\n", nil},
		{"1 MB of escapes", head + "DESCRIPTION:" + strings.Repeat(`\n\,`, 1<<18) + "\r\n" + tail, nil},
		{"1 MB in 1-byte folds", head + "SUMMARY:x\r\n" + repeatLines(" y", 1<<19) + tail, nil},
		{"100 000 ATTENDEEs", head + repeatLines("ATTENDEE;CN=Someone;PARTSTAT=NEEDS-ACTION:mailto:someone@example.org", 100000) + tail, func(t *testing.T, c *Calendar) {
			if n := len(c.Events[0].Attendees); n != MaxAttendees {
				t.Errorf("%d attendees", n)
			}
		}},
		{"100 000 events with attendees", "BEGIN:VCALENDAR\r\n" + strings.Repeat("BEGIN:VEVENT\r\nUID:x\r\nATTENDEE:mailto:a@b\r\nEXDATE:20250101T000000Z,20250102T000000Z\r\nEND:VEVENT\r\n", 100000) + "END:VCALENDAR\r\n", func(t *testing.T, c *Calendar) {
			if len(c.Events) != MaxEvents {
				t.Errorf("%d events", len(c.Events))
			}
		}},
		{"100 000 EXDATEs in one line", head + "EXDATE:" + strings.Repeat("20250101T000000Z,", 100000) + "\r\n" + tail, func(t *testing.T, c *Calendar) {
			if n := len(c.Events[0].ExDates); n != maxDates {
				t.Errorf("%d exdates", n)
			}
		}},
		{"deep nesting", "BEGIN:VCALENDAR\r\n" + repeatLines("BEGIN:X", 100000) + repeatLines("END:X", 100000) + "END:VCALENDAR\r\n", nil},
		{"1 000 000 unknown properties", head + repeatLines("X-A:1", 1000000) + tail, nil},
		{"1 000 VTIMEZONEs", "BEGIN:VCALENDAR\r\n" + strings.Repeat("BEGIN:VTIMEZONE\r\nTZID:Z\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", 1000) +
			"BEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Z:20250101T000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", func(t *testing.T, c *Calendar) {
			if !c.Events[0].Start.UTC.Equal(utc("2024-12-31T23:00:00Z")) {
				t.Errorf("start = %v", c.Events[0].Start.UTC)
			}
		}},
		{"VTIMEZONE with 10 000 rules and dates", "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Z\r\n" +
			strings.Repeat("BEGIN:DAYLIGHT\r\nDTSTART:16010101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU,1MO,2TU,3WE;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12\r\nRDATE:"+strings.Repeat("20250101T000000,", 50)+"\r\nEND:DAYLIGHT\r\n", 10000) +
			"END:VTIMEZONE\r\n" + strings.Repeat("BEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Z:20250101T000000\r\nDTEND;TZID=Z:20250101T010000\r\nEXDATE;TZID=Z:20250101T000000,20250102T000000,20250103T000000\r\nEND:VEVENT\r\n", 200) + "END:VCALENDAR\r\n", nil},
		{"UNTIL and COUNT extremes", "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Z\r\nBEGIN:STANDARD\r\nDTSTART:00010101T000000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;COUNT=999999999;INTERVAL=1000\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:99991231T235959\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;UNTIL=00010101\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n" +
			"BEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Z:99991231T235959\r\nDURATION:P99999D\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", nil},
		{"only folds", repeatLines(" x", 100000), nil},
		{"CR only line ends", strings.ReplaceAll(head+tail, "\r\n", "\r"), func(t *testing.T, c *Calendar) {
			if c.Events[0].UID != "h" {
				t.Errorf("uid = %q", c.Events[0].UID)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			c, err := ParseCalendar(strings.NewReader(tt.in))
			if d := time.Since(start); d > hostileBudget {
				t.Errorf("took %v", d)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "itip: ") {
					t.Errorf("error without prefix: %v", err)
				}
				if tt.check != nil {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			// Whatever was read must encode.
			if len(c.Events) > 0 && c.Events[0].UID != "" {
				if _, err := Encode(&Calendar{Method: "REQUEST", Events: c.Events[:1], Timezones: c.Timezones}); err != nil {
					t.Errorf("Encode of parsed input: %v", err)
				}
			}
		})
	}
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }

func TestReadMessage_Hostile(t *testing.T) {
	const hdr = "From: a@example.org\r\nSubject: s\r\n"
	cal := "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

	nested := func(depth int) string {
		var b strings.Builder
		b.WriteString(hdr)
		for i := 0; i < depth; i++ {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/calendar\r\n\r\n" + cal)
		for i := depth - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		return b.String()
	}
	tinyParts := func(n int) string {
		return hdr + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
			strings.Repeat("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n", n) +
			"--b\r\nContent-Type: text/calendar\r\n\r\n" + cal + "--b--\r\n"
	}
	tests := []struct {
		name    string
		in      string
		lim     Limits
		wantErr error // nil: any outcome but a panic or timeout
	}{
		{"multipart nested 50 deep", nested(50), Limits{}, ErrLimit},
		{"multipart nested 50 deep, limit raised", nested(50), Limits{MaxDepth: 60}, nil},
		{"10 000 tiny parts", tinyParts(10000), Limits{}, ErrLimit},
		{"10 000 tiny parts, limit raised", tinyParts(10000), Limits{MaxParts: 20000}, nil},
		{"empty", "", Limits{}, nil},
		{"garbage", "\x00\xff\xfe\r\n\r\n\x00", Limits{}, nil},
		{"1 MB header line", "X-Long: " + strings.Repeat("a", 1<<20) + "\r\n" + hdr + "Content-Type: text/calendar\r\n\r\n" + cal, Limits{}, nil},
		{"2 MB header", strings.Repeat("X-A: b\r\n", 300000) + "\r\n", Limits{}, nil},
		{"1 MB part header", hdr + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-Long: " + strings.Repeat("a", 1<<20) + "\r\nContent-Type: text/calendar\r\n\r\n" + cal + "--b--\r\n", Limits{}, nil},
		{"boundary never closed", hdr + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/calendar\r\n\r\n" + cal + strings.Repeat("x\r\n", 100000), Limits{}, nil},
		{"no boundary parameter", hdr + "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\n" + cal, Limits{}, nil},
		{"bad Content-Type", hdr + "Content-Type: multipart/mixed; boundary=\"unterminated\r\n\r\n" + cal, Limits{}, nil},
		{"unknown transfer encoding", hdr + "Content-Type: text/calendar\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n" + cal, Limits{}, nil},
		{"unknown charset", hdr + "Content-Type: text/calendar; charset=x-klingon\r\n\r\n" + cal, Limits{}, nil},
		{"corrupt base64", hdr + "Content-Type: text/calendar\r\nContent-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("!@#$", 1000), Limits{}, nil},
		{"corrupt quoted-printable", hdr + "Content-Type: text/calendar\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nBEGIN:VCALENDAR=ZZ=\r\n=", Limits{}, nil},
		{"oversized calendar", hdr + "Content-Type: text/calendar\r\n\r\n" + strings.Repeat("X-A:"+strings.Repeat("a", 1000)+"\r\n", 6000), Limits{}, ErrLimit},
		{"oversized message", hdr + "Content-Type: text/plain\r\n\r\n" + strings.Repeat("a", 1<<20), Limits{MaxMessageBytes: 1 << 19}, ErrLimit},
		{"huge boundary", hdr + "Content-Type: multipart/mixed; boundary=" + strings.Repeat("b", 5000) + "\r\n\r\n--" + strings.Repeat("b", 5000) + "\r\n\r\n" + cal, Limits{}, nil},
		{"100 000 calendars in one message", hdr + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\nContent-Type: text/calendar\r\n\r\n"+cal, 100000) + "--b--\r\n", Limits{}, ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			m, err := ReadMessage(strings.NewReader(tt.in), tt.lim)
			if d := time.Since(start); d > hostileBudget {
				t.Errorf("took %v", d)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (m == nil || len(m.Calendars) == 0) {
				t.Errorf("nil error without a calendar")
			}
			if err != nil && !strings.HasPrefix(err.Error(), "itip: ") {
				t.Errorf("error without prefix: %v", err)
			}
		})
	}
}
