package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

const organizerAddr = "foobar@nilas.com" // the ORGANIZER of the weekly testdata event

// setOrganizer changes an organizer record as an admin would.
func (h *harness) setOrganizer(email string, change func(*store.Organizer)) {
	h.t.Helper()
	err := h.db.Update(context.Background(), func(tx *store.Tx) error {
		o, err := tx.OrganizerOrNew(email, time.Now())
		if err != nil {
			return err
		}
		change(o)
		return tx.PutOrganizer(o)
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// lastNote is the last outcome noted on a message.
func lastNote(m *store.Message) string {
	if len(m.Notes) == 0 {
		return ""
	}
	return m.Notes[len(m.Notes)-1].Text
}

// inviteOutcome invites email (Invite decides in its own transaction) and
// returns the attendee, or nil if none was created, and why the row was
// refused ("" when it was not).
func (h *harness) inviteOutcome(uid, email string) (*store.Attendee, string) {
	h.t.Helper()
	errs, err := h.p.Invite(context.Background(), uid, []store.Invitee{{Email: email}})
	if err != nil {
		h.t.Fatal(err)
	}
	why := ""
	if errs[0] != nil {
		why = errs[0].Error()
	}
	var a *store.Attendee
	if err := h.db.View(func(tx *store.Tx) (err error) { a, err = tx.Attendee(uid, email); return err }); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.t.Fatal(err)
	}
	if (a == nil) != (why != "") {
		h.t.Fatalf("invite of %s: attendee %v, refusal %q", email, a, why)
	}
	return a, why
}

// noticeText is the decoded text of a notice and its attachments.
func noticeText(t *testing.T, m smtptest.Message) string {
	t.Helper()
	e, err := message.Read(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString(e.Header.Get("Subject") + "\n")
	e.Walk(func(_ []int, part *message.Entity, _ error) error {
		if mt, _, _ := part.Header.ContentType(); strings.HasPrefix(mt, "text/plain") || mt == "text/csv" {
			io.Copy(&b, part.Body)
			b.WriteString("\n")
		}
		return nil
	})
	return b.String()
}

func TestRule_SuspendedOrganizer(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	ics := testdata(t, weekly)
	e := h.register(ics)
	h.setOrganizer(organizerAddr, func(o *store.Organizer) { o.Suspended, o.SuspendedReason = true, "spam complaints" })

	if a, why := h.inviteOutcome(e.UID, "a@example.com"); a != nil || !strings.Contains(why, "suspended") {
		t.Errorf("suspended organizer's invite: attendee %+v, refusal %q", a, why)
	}
	other := setProp(ics, "UID", "second@google.com")
	m := h.outcome(h.accept(organizerAddr, "create@"+domain, wrap(organizerAddr, "REQUEST", other)))
	if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), "suspended") {
		t.Errorf("suspended organizer's REQUEST: %s %q", m.Status, lastNote(m))
	}
	n := h.noticesOf(noticeFailed, 1)
	if txt := noticeText(t, n[0]); !strings.Contains(txt, "suspended") {
		t.Errorf("failure notice does not say why:\n%s", txt)
	}
	// Reinstated: invites flow again.
	h.setOrganizer(organizerAddr, func(o *store.Organizer) { o.Suspended = false })
	if a, why := h.inviteOutcome(e.UID, "a@example.com"); a == nil {
		t.Errorf("reinstated organizer's invite refused: %s", why)
	}
	h.wait(1)
}

// TestRule_SuspendedWhileQueued: an invite staged before the suspension is
// not sent, is marked so, and goes out when invited again after the
// organizer is reinstated, counted once.
func TestRule_SuspendedWhileQueued(t *testing.T) {
	var down atomic.Bool
	h := newHarness(t, smtptest.Options{Reject: func(from, rcpt string) error {
		if down.Load() && rcpt != "" && rcpt != organizerAddr {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}
		}
		return nil
	}}, func(c *Config) { c.MaxAttempts = 1000 })
	e := h.register(testdata(t, weekly))
	down.Store(true) // the invite waits in the send queue, retried
	if a, why := h.inviteOutcome(e.UID, "a@example.com"); a == nil {
		t.Fatalf("invite not staged: %s", why)
	}
	h.setOrganizer(organizerAddr, func(o *store.Organizer) { o.Suspended = true })
	// The relay stays down until an attempt has seen the suspension and
	// ended the job; one begun before it may only fail.
	h.eventually("send queue drained", func() bool { return h.db.QueueLen(StageSend) == 0 })
	down.Store(false)
	var a *store.Attendee
	h.db.View(func(tx *store.Tx) (err error) { a, err = tx.Attendee(e.UID, "a@example.com"); return err })
	if !strings.Contains(a.SendError, "suspended") || !a.Sent.IsZero() || len(h.filter(false)) != 0 {
		t.Fatalf("attendee of a suspended organizer: %+v", a)
	}
	h.setOrganizer(organizerAddr, func(o *store.Organizer) { o.Suspended = false })
	if a, why := h.inviteOutcome(e.UID, "a@example.com"); a == nil || a.SendError != "" {
		t.Fatalf("invited again: %+v %s", a, why)
	}
	h.wait(1)
	h.eventually("sent", func() bool { return h.stats(e.UID).InvitesSent == 1 })
	if s := h.stats(e.UID); s.Invited != 1 || s.Attendees != 1 || s.Pending != 1 {
		t.Errorf("counted twice: %+v", s)
	}
}

func TestRule_EventLimitAndSubscription(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.EventLimit = 2 })
	ics := testdata(t, weekly)
	for i := range 3 {
		m := h.outcome(h.accept(organizerAddr, "create@"+domain, wrap(organizerAddr, "REQUEST", setProp(ics, "UID", fmt.Sprint("ev", i, "@google.com")))))
		if want := store.MessageProcessed; i == 2 {
			if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), "limit of 2 events") {
				t.Errorf("third event: %s %q; want refused at the limit", m.Status, lastNote(m))
			}
		} else if m.Status != want {
			t.Errorf("event %d: %s %q", i, m.Status, lastNote(m))
		}
	}
	n := h.noticesOf(noticeLimit, 1)
	if txt := noticeText(t, n[0]); !strings.Contains(txt, "2") || !strings.Contains(strings.ToLower(txt), "limit") {
		t.Errorf("limit notice:\n%s", txt)
	}
	// A subscription lifts the limit; a per-organizer limit overrides the default.
	if _, err := h.p.Enroll(context.Background(), organizerAddr, []store.Subscription{{OrderNumber: "1001", ProductID: "7", Product: "invited Pro"}}); err != nil {
		t.Fatal(err)
	}
	m := h.outcome(h.accept(organizerAddr, "create@"+domain, wrap(organizerAddr, "REQUEST", setProp(ics, "UID", "ev3@google.com"))))
	if m.Status != store.MessageProcessed {
		t.Errorf("paid organizer over the default limit: %s %q", m.Status, lastNote(m))
	}
	other := "boss@nilas.com"
	h.setOrganizer(other, func(o *store.Organizer) { limit := 0; o.EventLimit = &limit })
	req := setProp(setProp(ics, "UID", "boss1@google.com"), "ORGANIZER", "mailto:"+other)
	if m := h.outcome(h.accept(other, "create@"+domain, wrap(other, "REQUEST", req))); m.Status != store.MessageRejected {
		t.Errorf("organizer with a limit of 0: %s", m.Status)
	}
}

func TestRule_InviteLimitAndBlocks(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.InviteLimit = 2 })
	e := h.register(testdata(t, weekly))
	err := h.db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutBlock(&store.Block{Attendee: "blocker@example.com", Organizer: organizerAddr, Created: time.Now(), Source: "admin"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, why := h.inviteOutcome(e.UID, "blocker@example.com"); a != nil || !strings.Contains(why, "asked not to receive") {
		t.Errorf("blocked attendee: %+v, refusal %q", a, why)
	}
	for i, who := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		a, why := h.inviteOutcome(e.UID, who)
		if (a == nil) != (i == 2) || i == 2 && !strings.Contains(why, "limit of 2 invites") {
			t.Errorf("invite %d (%s): attendee %v, refusal %q; the limit is 2", i, who, a, why)
		}
	}
	h.wait(2)
	if s := h.stats(e.UID); s.Invited != 2 || s.Attendees != 2 {
		t.Errorf("stats %+v", s)
	}
}

// bulkMail is a message to bulk@ from sender with a CSV attachment.
func bulkMail(sender, filename string, csv []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: bulk@%s\r\nSubject: invites\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"+
		"--XX\r\nContent-Type: text/csv; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n", sender, domain, filename, filename)
	enc := make([]byte, 0, len(csv)*2)
	for i := 0; i < len(csv); i += 57 {
		chunk := csv[i:min(i+57, len(csv))]
		enc = fmt.Appendf(enc, "%s\r\n", base64Std(chunk))
	}
	b.Write(enc)
	b.WriteString("--XX--\r\n")
	return b.Bytes()
}

func TestBulk_MixedFileReport(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.InviteLimit = 5; c.FanoutBatch = 3 })
	ics := testdata(t, weekly)
	e := h.register(ics)
	// Someone else's event, for a foreign uid.
	other := "boss@nilas.com"
	h.outcome(h.accept(other, "create@"+domain, wrap(other, "REQUEST", setProp(setProp(ics, "UID", "boss@google.com"), "ORGANIZER", "mailto:"+other))))
	var foreign *store.Event
	h.db.View(func(tx *store.Tx) (err error) { foreign, err = tx.EventByOriginalUID("boss@google.com"); return err })
	h.db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutBlock(&store.Block{Attendee: "blocker@example.com", Organizer: organizerAddr, Created: time.Now()})
	})

	file := "\ufeffuid,email,name\r\n" +
		e.UID + ",ann@example.com,Ann\r\n" +
		e.UID + ",\"bob@example.com\",\"Bob, Jr.\"\r\n" +
		e.UID + ",not-an-address,Nobody\r\n" +
		"nosuchevent,carl@example.com,Carl\r\n" +
		foreign.UID + ",dan@example.com,Dan\r\n" +
		e.UID + ",ANN@example.com,Ann again\r\n" +
		e.UID + ",blocker@example.com,Blocker\r\n" +
		e.UID + ",eve@example.com,=cmd|' /C calc'!A0\r\n" +
		e.UID + ",fay@example.com,Fay\r\n" +
		e.UID + ",gus@example.com,Gus\r\n" +
		e.UID + ",hal@example.com,Hal\r\n"

	// Not authorized yet: nothing is invited; the known sender is told why.
	m := h.outcome(h.accept(organizerAddr, "bulk@"+domain, bulkMail(organizerAddr, "guests.csv", []byte(file))))
	if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), "not authorized") {
		t.Fatalf("unauthorized bulk: %s %q", m.Status, lastNote(m))
	}
	h.setOrganizer(organizerAddr, func(o *store.Organizer) { o.BulkAuthorized = true })
	m = h.outcome(h.accept(organizerAddr, "bulk@"+domain, bulkMail(organizerAddr, "guests.csv", []byte(file))))
	if m.Status != store.MessageProcessed {
		t.Fatalf("bulk: %s %+v", m.Status, m.Notes)
	}
	// Each message accepted leaves the inbound stages once, the file of
	// four batches too: the burst pace counts messages, not batches.
	h.eventually("as many messages worked as accepted", func() bool { return h.p.burst.left.Load() == h.p.burst.accepted.Load() })
	if !strings.Contains(lastNote(m), "11 rows, 5 queued, 6 rejected") {
		t.Errorf("bulk outcome %q", lastNote(m))
	}
	// Four batches of three; the file's rows go with the last.
	h.eventually("the file's rows let go", func() bool { return h.p.bulk.Len() == 0 })
	msgs := h.wait(5)
	got := map[string]bool{}
	for _, m := range msgs {
		got[m.To[0]] = true
	}
	for _, who := range []string{"ann@example.com", "bob@example.com", "eve@example.com", "fay@example.com", "gus@example.com"} {
		if !got[who] {
			t.Errorf("%s not invited (got %v)", who, got)
		}
	}
	var bob *store.Attendee
	h.db.View(func(tx *store.Tx) (err error) { bob, err = tx.Attendee(e.UID, "bob@example.com"); return err })
	if bob == nil || bob.Origin != store.OriginBulk || bob.Name != "Bob, Jr." {
		t.Errorf("bob = %+v", bob)
	}
	n := h.noticesOf(noticeBulk, 2) // not authorized, then the report
	report := noticeText(t, n[1])
	if !strings.Contains(noticeText(t, n[0]), "not authorized") {
		t.Errorf("first bulk notice: %s", noticeText(t, n[0]))
	}
	for _, want := range []string{"not-an-address", "nosuchevent", "is not yours", "already invited", "asked not to receive", "limit of 5 invites"} {
		if !strings.Contains(report, want) {
			t.Errorf("bulk report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, foreign.Summary) && foreign.Summary != e.Summary {
		t.Errorf("bulk report shows another organizer's event")
	}

	// The attendee report defuses the formula in Eve's name.
	var buf bytes.Buffer
	h.db.View(func(tx *store.Tx) error { return tx.WriteAttendeeCSV(&buf, e.UID) })
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r[0] == "eve@example.com" && r[1] != "'=cmd|' /C calc'!A0" {
			t.Errorf("report cell %q is not defused", r[1])
		}
	}
}

func TestBulk_HostileFiles(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.MaxBulkRows = 100 })
	e := h.register(testdata(t, weekly))
	h.setOrganizer(organizerAddr, func(o *store.Organizer) { o.BulkAuthorized = true })
	var many strings.Builder
	for i := range 101 {
		fmt.Fprintf(&many, "%s,p%d@example.com,P\n", e.UID, i)
	}
	latin1 := []byte(e.UID + ",jose@example.com,Jos\xe9\n")
	utf16 := []byte{0xff, 0xfe, 'u', 0, 'i', 0, 'd', 0}
	cases := []struct {
		name, file string
		data       []byte
		reason     string
	}{
		{"too many rows", "big.csv", []byte(many.String()), "more than 100 rows"},
		{"latin-1", "latin1.csv", latin1, "not UTF-8"},
		{"utf-16", "excel.csv", utf16, "UTF-16"},
		{"binary", "x.csv", []byte("uid,email\n\x00\x01\x02"), "not text"},
		{"broken quotes", "q.csv", []byte(e.UID + ",\"a@example.com,A\n"), "not valid CSV"},
		{"no rows", "empty.csv", []byte("uid,email,name\n"), "no rows"},
		{"6 MiB attachment", "huge.csv", bytes.Repeat([]byte(e.UID+",someone@example.com,Someone Else\n"), 6<<20/60), "over 5242880 bytes"},
	}
	for _, c := range cases {
		m := h.outcome(h.accept(organizerAddr, "bulk@"+domain, bulkMail(organizerAddr, c.file, c.data)))
		if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), c.reason) {
			t.Errorf("%s: %s %q; want refused with %q", c.name, m.Status, lastNote(m), c.reason)
		}
	}
	// No calendar and no CSV at all.
	m := h.outcome(h.accept(organizerAddr, "bulk@"+domain, []byte("From: "+organizerAddr+"\r\nSubject: hi\r\n\r\nplease invite everyone\r\n")))
	if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), "no CSV attachment") {
		t.Errorf("no attachment: %s %q", m.Status, lastNote(m))
	}
	if s := h.stats(e.UID); s.Attendees != 0 {
		t.Errorf("hostile files invited someone: %+v", s)
	}
	// A stranger gets no report (no backscatter), and invites nobody.
	h.outcome(h.accept("stranger@evil.example", "bulk@"+domain, bulkMail("stranger@evil.example", "x.csv", []byte(e.UID+",a@example.com,A\n"))))
	h.eventually("queues drained", func() bool { return h.db.QueueLen(StageSend) == 0 && h.db.QueueLen(StageCreate) == 0 })
	for _, n := range h.filter(true) {
		if n.To[0] == "stranger@evil.example" {
			t.Error("a report went to a stranger")
		}
	}
	if s := h.stats(e.UID); s.Attendees != 0 {
		t.Errorf("a stranger's file invited someone: %+v", s)
	}
}

func TestNotices_ReportAndEnrollment(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	e := h.register(testdata(t, weekly))
	h.invite(e.UID, 2, "a@example.com", "=b@example.com")
	if err := h.p.Report(context.Background(), e.UID); err != nil {
		t.Fatal(err)
	}
	n := h.noticesOf(noticeReport, 1)
	txt := noticeText(t, n[0])
	if n[0].To[0] != organizerAddr || !strings.Contains(txt, "email,name,status,origin,prodid") || !strings.Contains(txt, "a@example.com") {
		t.Errorf("attendee report to %v:\n%s", n[0].To, txt)
	}
	if strings.Contains(txt, "\n=b@example.com") {
		t.Errorf("report CSV has a live formula:\n%s", txt)
	}
	sub := store.Subscription{OrderNumber: "1002", ProductID: "9", Product: "invited Pro"}
	for range 2 { // the shop retries its webhook
		if _, err := h.p.Enroll(context.Background(), "new@example.org", []store.Subscription{sub}); err != nil {
			t.Fatal(err)
		}
	}
	n = h.noticesOf(noticeEnrollment, 1)
	h.eventually("queues drained", func() bool { return h.db.QueueLen(StageSend) == 0 })
	if e := h.noticesOf(noticeEnrollment, 1); len(e) != 1 || n[0].To[0] != "new@example.org" || !strings.Contains(noticeText(t, n[0]), "invited Pro") {
		t.Errorf("enrollment notices: %d, to %v", len(e), n[0].To)
	}
	var o *store.Organizer
	h.db.View(func(tx *store.Tx) (err error) { o, err = tx.Organizer("new@example.org"); return err })
	if len(o.Subscriptions) != 1 || !o.Paid(time.Now()) {
		t.Errorf("organizer after two identical webhooks: %+v", o)
	}
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestUnsubscribe_ByMail: a message to the mailto of List-Unsubscribe
// blocks the organizer for that attendee: later invites are refused and a
// pending update is not sent.
func TestUnsubscribe_ByMail(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	ics := testdata(t, weekly)
	e := h.register(ics)
	msgs := h.invite(e.UID, 1, "a@example.com")
	m := regexp.MustCompile(`mailto:(unsubscribe\+[a-z0-9]+@` + domain + `)`).FindSubmatch(msgs[0].Data)
	if m == nil {
		t.Fatalf("no mailto unsubscribe in the invite")
	}
	id := h.accept("a@example.com", string(m[1]), []byte("From: a@example.com\r\nSubject: unsubscribe\r\n\r\n"))
	if out := h.outcome(id); out.Status != store.MessageProcessed || !strings.Contains(lastNote(out), "a@example.com from "+organizerAddr) {
		t.Fatalf("unsubscribe mail: %s %q", out.Status, lastNote(out))
	}
	upd := setProp(setProp(ics, "SEQUENCE", "1"), "SUMMARY", "Renamed")
	h.outcome(h.accept(organizerAddr, "create@"+domain, wrap(organizerAddr, "REQUEST", upd)))
	h.eventually("queues drained", func() bool { return h.db.QueueLen(StageSend) == 0 && h.db.QueueLen(StageStage) == 0 })
	if n := len(h.filter(false)); n != 1 {
		t.Errorf("%d messages to attendees; the update must not reach someone who unsubscribed", n)
	}
	errs, _ := h.p.Invite(context.Background(), e.UID, []store.Invitee{{Email: "a@example.com"}})
	if errs[0] == nil {
		t.Error("invite after unsubscribe accepted")
	}
	bad := h.outcome(h.accept("x@example.com", "unsubscribe+nosuchtoken@"+domain, []byte("From: x@example.com\r\n\r\n")))
	if bad.Status != store.MessageRejected {
		t.Errorf("unknown token: %s", bad.Status)
	}
}

// TestSend_DomainPausedAfter4xx: the relay's 4xx for one domain pauses
// that domain (a job that meets the pause waits without using up an
// attempt); mail to other domains goes on.
func TestSend_DomainPausedAfter4xx(t *testing.T) {
	var slow atomic.Int32
	h := newHarness(t, smtptest.Options{Reject: func(from, rcpt string) error {
		if strings.HasSuffix(rcpt, "@slow.example") && slow.Add(1) <= 2 {
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "try later"}
		}
		return nil
	}}, func(c *Config) {
		c.MaxAttempts = 3
		c.Backoff = 5 * time.Millisecond
		c.MaxBackoff = 40 * time.Millisecond
	})
	e := h.register(testdata(t, weekly))
	msgs := h.invite(e.UID, 3, "a@slow.example", "b@fast.example", "c@fast.example")
	got := map[string]bool{}
	for _, m := range msgs {
		got[m.To[0]] = true
	}
	if len(got) != 3 {
		t.Fatalf("delivered %v", got)
	}
	h.eventually("send recorded", func() bool { return h.stats(e.UID).InvitesSent == 3 })
	var rec *store.SendRecord
	h.db.View(func(tx *store.Tx) error {
		return tx.Attendees(e.UID, "", func(a *store.Attendee) (bool, error) {
			if a.Email == "a@slow.example" {
				rec, _ = tx.Send(h.p.messageID(&sendJob{UID: e.UID, Email: a.Email, Kind: kindInvite}, 0))
			}
			return true, nil
		})
	})
	if rec == nil || rec.Attempts != 3 {
		t.Errorf("send record %+v: want delivered at the third attempt, pauses not counted", rec)
	}
}

// TestMIMELimits: the configured MIME limits bite with a clear reason.
func TestMIMELimits(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.MIME = itip.Limits{MaxParts: 5, MaxDepth: 3} })
	var parts strings.Builder
	parts.WriteString("From: " + organizerAddr + "\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n")
	for range 8 {
		parts.WriteString("--zz\r\nContent-Type: text/plain\r\n\r\nx\r\n")
	}
	parts.WriteString("--zz--\r\n")
	m := h.outcome(h.accept(organizerAddr, "create@"+domain, []byte(parts.String())))
	if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), "parts") {
		t.Errorf("8 parts with a limit of 5: %s %q", m.Status, lastNote(m))
	}
}

// TestBulk_RowsKeptOrReadAgain: a file's rows are kept between batches,
// and read again from the message when they are not (a restart).
func TestBulk_RowsKeptOrReadAgain(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.stop()
	file := "ev1,ann@example.com,Ann\r\nev1,bob@example.com,Bob\r\n"
	id := h.accept(organizerAddr, "bulk@"+domain, bulkMail(organizerAddr, "guests.csv", []byte(file)))
	b := &bulkJob{Part: 0}
	rows, err := h.p.bulkRows(context.Background(), id, b)
	if err != nil || len(rows) != 2 || b.Filename != "guests.csv" {
		t.Fatalf("first read: %d rows, %q, %v", len(rows), b.Filename, err)
	}
	if h.p.bulk.Len() != 1 {
		t.Fatal("rows not kept for the next batch")
	}
	kept, err := h.p.bulkRows(context.Background(), id, &bulkJob{Part: 0})
	if err != nil || &kept[0] != &rows[0] {
		t.Fatalf("second read did not use the kept rows: %v", err)
	}
	h.p.bulk.Delete(calKey{id, 0}) // what a restart leaves
	b = &bulkJob{Part: 0}
	again, err := h.p.bulkRows(context.Background(), id, b)
	if err != nil || len(again) != 2 || again[1].Email != "bob@example.com" || b.Filename != "guests.csv" {
		t.Fatalf("read again: %+v, %q, %v", again, b.Filename, err)
	}
}

// TestBulk_RowsForgotten: the rows read from a bulk file are let go of
// when the job ends without its last batch: rejected (a file of no rows,
// which is read first), or buried after its last attempt (forget, which
// burial calls like rejection does).
func TestBulk_RowsForgotten(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.register(testdata(t, weekly))
	h.setOrganizer(organizerAddr, func(o *store.Organizer) { o.BulkAuthorized = true })
	m := h.outcome(h.accept(organizerAddr, "bulk@"+domain, bulkMail(organizerAddr, "empty.csv", []byte("uid,email,name\r\n"))))
	if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), "no rows") {
		t.Fatalf("a file of no rows: %s %q", m.Status, lastNote(m))
	}
	// Let go of once the rejection commits: a read can see the commit a
	// moment before.
	h.eventually("the file's rows let go of after the rejection", func() bool { return h.p.bulk.Len() == 0 })

	h.stop()
	id := h.accept(organizerAddr, "bulk@"+domain, bulkMail(organizerAddr, "guests.csv", []byte("ev1,ann@example.com,Ann\r\n")))
	if _, err := h.p.bulkRows(context.Background(), id, &bulkJob{Part: 0}); err != nil || h.p.bulk.Len() != 1 {
		t.Fatalf("rows not kept: %v", err)
	}
	j, err := newJob(kindBulk, id, bulkJob{Part: 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.Update(context.Background(), func(tx *store.Tx) error { h.p.forget(tx, j); return nil }); err != nil {
		t.Fatal(err)
	}
	if n := h.p.bulk.Len(); n != 0 {
		t.Errorf("%d files' rows kept after forget", n)
	}
}
