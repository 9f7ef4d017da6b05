package itip

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

func testOutbound() Outbound {
	cal := trickyCalendar()
	return Outbound{
		From:      Address{Email: "rsvp+abc@invited.example", Name: "Orgä Nizer"},
		To:        Address{Email: "Ann@Example.org", Name: "Ann"},
		ReplyTo:   &Address{Email: "rsvp+abc@invited.example"},
		Subject:   "Invitation: événement 日本語 🎉 @ Thu Feb 20, 2025",
		MessageID: "invite.1.ann@invited.example",
		Date:      utc("2025-02-06T16:21:41Z"),
		Text:      "You are invited.\nLine two with a very long line " + strings.Repeat("x", 2000) + "\n",
		HTML:      "<p>You are <b>invited</b>.</p>",
		Calendar:  cal,
		Headers:   [][2]string{{"Auto-Submitted", "auto-generated"}, {"X-Invited-Event", "évent"}},
	}
}

type leaf struct {
	mediaType string
	params    map[string]string
	disp      string
	dispName  string
	cte       string
	body      []byte
}

// walkLeaves parses a built message and returns its structure as a string
// ("mixed(alternative(text/plain,text/html,text/calendar),application/ics)")
// and its leaves.
func walkLeaves(t *testing.T, raw []byte) (*message.Entity, string, []leaf) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("go-message cannot read output: %v", err)
	}
	var leaves []leaf
	var walk func(e *message.Entity) string
	walk = func(e *message.Entity) string {
		mt, params, err := e.Header.ContentType()
		if err != nil {
			t.Fatalf("content type: %v", err)
		}
		if mr := e.MultipartReader(); mr != nil {
			var kids []string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("next part: %v", err)
				}
				kids = append(kids, walk(p))
			}
			return strings.TrimPrefix(mt, "multipart/") + "(" + strings.Join(kids, ",") + ")"
		}
		body, err := io.ReadAll(e.Body)
		if err != nil {
			t.Fatalf("read %s: %v", mt, err)
		}
		disp, dp, _ := e.Header.ContentDisposition()
		leaves = append(leaves, leaf{mt, params, disp, dp["filename"], e.Header.Get("Content-Transfer-Encoding"), body})
		return mt
	}
	return e, walk(e), leaves
}

func TestBuildMessage_Structure(t *testing.T) {
	o := testOutbound()
	raw, err := BuildMessage(o)
	if err != nil {
		t.Fatal(err)
	}
	e, shape, leaves := walkLeaves(t, raw)
	if want := "mixed(alternative(text/plain,text/html,text/calendar),application/ics)"; shape != want {
		t.Fatalf("structure = %s, want %s", shape, want)
	}
	ics, _ := Encode(o.Calendar)
	cal, att := leaves[2], leaves[3]
	if cal.params["method"] != "REQUEST" || !strings.EqualFold(cal.params["charset"], "UTF-8") || !bytes.Equal(cal.body, ics) {
		t.Errorf("text/calendar part: params %v, body equal %v", cal.params, bytes.Equal(cal.body, ics))
	}
	if att.params["name"] != "invite.ics" || att.disp != "attachment" || att.dispName != "invite.ics" || !bytes.Equal(att.body, ics) {
		t.Errorf("attachment: %+v", att)
	}
	for _, l := range leaves[:2] {
		if !strings.EqualFold(l.params["charset"], "UTF-8") || l.cte != "quoted-printable" {
			t.Errorf("%s: params %v cte %q", l.mediaType, l.params, l.cte)
		}
	}
	if got := string(leaves[0].body); got != strings.ReplaceAll(o.Text, "\n", "\r\n") {
		t.Errorf("text body = %q", got)
	}
	if string(leaves[1].body) != o.HTML {
		t.Errorf("html body = %q", leaves[1].body)
	}

	h := mail.Header{Header: e.Header}
	if s, _ := h.Subject(); s != o.Subject {
		t.Errorf("subject = %q, want %q", s, o.Subject)
	}
	from, _ := h.AddressList("From")
	to, _ := h.AddressList("To")
	rt, _ := h.AddressList("Reply-To")
	if len(from) != 1 || from[0].Name != "Orgä Nizer" || from[0].Address != "rsvp+abc@invited.example" ||
		len(to) != 1 || to[0].Address != "ann@example.org" || len(rt) != 1 {
		t.Errorf("from %v to %v reply-to %v", from, to, rt)
	}
	if id, _ := h.MessageID(); id != o.MessageID {
		t.Errorf("message-id = %q", id)
	}
	if d, _ := h.Date(); !d.Equal(o.Date) {
		t.Errorf("date = %v", d)
	}
	if h.Get("MIME-Version") != "1.0" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("mime-version %q auto-submitted %q", h.Get("MIME-Version"), h.Get("Auto-Submitted"))
	}
	if v, _ := h.Text("X-Invited-Event"); v != "évent" {
		t.Errorf("extra header = %q", v)
	}

	// Wire rules: CRLF only, short lines, 7-bit.
	for i, l := range strings.Split(string(raw), "\r\n") {
		if len(l) > 998 || strings.ContainsAny(l, "\r\n") {
			t.Errorf("line %d: %d octets or bare CR/LF", i, len(l))
		}
		for _, c := range []byte(l) {
			if c >= 0x80 {
				t.Fatalf("line %d has 8-bit data: %q", i, l)
			}
		}
	}

	// Same input, same bytes.
	again, _ := BuildMessage(testOutbound())
	if !bytes.Equal(raw, again) {
		t.Errorf("BuildMessage is not deterministic")
	}
}

func TestBuildMessage_ReadBack(t *testing.T) {
	o := testOutbound()
	raw, err := BuildMessage(o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadMessage(bytes.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Calendars) != 1 {
		t.Fatalf("%d calendars, want the inline and attached copies read as one", len(m.Calendars))
	}
	direct := mustParse(t, string(mustEncode(t, o.Calendar)))
	if !reflect.DeepEqual(m.Calendars[0], direct) {
		t.Errorf("calendar read back differs:\n got %+v\nwant %+v", m.Calendars[0], direct)
	}
	if m.Subject != o.Subject || m.MessageID != o.MessageID || m.From != (Address{Email: o.From.Email, Name: o.From.Name}) || !m.Date.Equal(o.Date) {
		t.Errorf("header read back: %+v", m)
	}
}

func mustEncode(t *testing.T, c *Calendar) []byte {
	t.Helper()
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildMessage_HeaderInjection(t *testing.T) {
	o := testOutbound()
	o.Subject = "Hi\r\nBcc: victim@evil.example\r\n\r\nbody"
	o.From.Name = "Eve\r\nBcc: victim2@evil.example"
	o.To.Name = "To\nX-Evil: 1"
	o.MessageID = "id>\r\nX-Evil: 2 <x"
	o.Headers = [][2]string{{"X-Note", "ok\r\nX-Evil: 3"}}
	o.Calendar.Events[0].Summary = "Meeting\r\nBcc: victim3@evil.example"
	raw, err := BuildMessage(o)
	if err != nil {
		t.Fatal(err)
	}
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	fields := e.Header.Fields()
	for fields.Next() {
		switch strings.ToLower(fields.Key()) {
		case "bcc", "x-evil":
			t.Errorf("injected header %s: %s", fields.Key(), fields.Value())
		}
	}
	h := mail.Header{Header: e.Header}
	if s, _ := h.Subject(); s != "Hi Bcc: victim@evil.example body" {
		t.Errorf("subject = %q", s)
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Name != "Eve Bcc: victim2@evil.example" {
		t.Errorf("from = %v", from)
	}
	_, _, leaves := walkLeaves(t, raw)
	for _, l := range leaves {
		if bytes.Contains(l.body, []byte("\nBcc:")) {
			t.Errorf("%s body carries a Bcc line", l.mediaType)
		}
	}
	// Extra headers cannot replace the ones BuildMessage owns.
	for _, kv := range [][2]string{{"Content-Type", "text/plain"}, {"bcc", "x@y"}, {"Bad Name", "x"}, {"X:Y", "x"}, {"", "x"}} {
		o := testOutbound()
		o.Headers = [][2]string{kv}
		if _, err := BuildMessage(o); err == nil {
			t.Errorf("header %q accepted", kv[0])
		}
	}
}

func TestBuildMessage_Errors(t *testing.T) {
	bad := []func(o *Outbound){
		func(o *Outbound) { o.Calendar = nil },
		func(o *Outbound) { o.Calendar.Method = "" },
		func(o *Outbound) { o.From.Email = "not-an-address" },
		func(o *Outbound) { o.To.Email = "" },
		func(o *Outbound) { o.ReplyTo = &Address{Email: "@x"} },
		func(o *Outbound) { o.Calendar.Events[0].UID = "" },
	}
	for i, f := range bad {
		o := testOutbound()
		f(&o)
		if _, err := BuildMessage(o); err == nil || !strings.HasPrefix(err.Error(), "itip: ") {
			t.Errorf("case %d: err = %v", i, err)
		}
	}
	// Minimal: no HTML, no Date, no Message-ID.
	o := testOutbound()
	o.HTML, o.MessageID, o.ReplyTo, o.Headers = "", "", nil, nil
	o.Date = utc("0001-01-01T00:00:00Z")
	o.Calendar.Method = "cancel"
	raw, err := BuildMessage(o)
	if err != nil {
		t.Fatal(err)
	}
	e, shape, leaves := walkLeaves(t, raw)
	if shape != "mixed(alternative(text/plain,text/calendar),application/ics)" || leaves[1].params["method"] != "CANCEL" {
		t.Errorf("structure %s, method %q", shape, leaves[1].params["method"])
	}
	if e.Header.Has("Date") || e.Header.Has("Message-Id") {
		t.Errorf("empty Date/Message-ID written")
	}
}
