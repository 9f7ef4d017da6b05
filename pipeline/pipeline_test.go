package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/mailer"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
)

const domain = "invite.test"

// harness is a real store in a temp dir, a pipeline over it and a real
// SMTP server as its relay.
type harness struct {
	t     *testing.T
	db    *store.DB
	p     *Pipeline
	relay *smtptest.Server
	stop  func() // stops Run and waits for it
}

func newHarness(t *testing.T, opts smtptest.Options, mod func(*Config)) *harness {
	t.Helper()
	return newHarnessConns(t, opts, 0, mod)
}

// newHarnessConns is newHarness with conns connections to the relay (0:
// mailer's default).
func newHarnessConns(t *testing.T, opts smtptest.Options, conns int, mod func(*Config)) *harness {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "test.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	relay := smtptest.NewServer(t, opts)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	sender, err := mailer.NewRelay(mailer.Config{URL: "smtp://" + relay.Addr, Timeout: 5 * time.Second, Conns: conns}, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Domain: domain, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Auth: &senderauth.Checker{Resolver: dnstest.Loopback(), Policy: PolicyAligned}}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg, db, sender, log)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, p: p, relay: relay}
	h.start()
	t.Cleanup(func() {
		h.stop()
		sender.Close()
		db.Close()
	})
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.p.Run(ctx); close(done) }()
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); <-done }) }
}

// accept hands raw to the pipeline as if received for rcpt.
func (h *harness) accept(from, rcpt string, raw []byte) string {
	h.t.Helper()
	id, err := h.p.Accept(context.Background(), Envelope{Remote: "127.0.0.1:1", MailFrom: from, RcptTo: []string{rcpt}}, raw)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// outcome waits until message id is no longer queued and returns it.
func (h *harness) outcome(id string) *store.Message {
	h.t.Helper()
	var m *store.Message
	h.eventually("message "+id+" processed", func() bool {
		h.db.View(func(tx *store.Tx) (err error) { m, err = tx.Message(id); return err })
		return m != nil && m.Status != store.MessageQueued
	})
	return m
}

func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// register sends the organizer's REQUEST and returns our event UID.
func (h *harness) register(ics string) *store.Event {
	h.t.Helper()
	cal, err := itip.ParseCalendar(strings.NewReader(ics))
	if err != nil {
		h.t.Fatal(err)
	}
	org := cal.Events[0].Organizer.Email
	id := h.accept(org, "create@"+domain, wrap(org, "REQUEST", ics))
	if m := h.outcome(id); m.Status != store.MessageProcessed {
		h.t.Fatalf("REQUEST not registered: %+v", m.Notes)
	}
	var e *store.Event
	h.db.View(func(tx *store.Tx) (err error) { e, err = tx.EventByOriginalUID(cal.Events[0].UID); return err })
	if e == nil {
		h.t.Fatal("event not stored")
	}
	return e
}

// invite invites people and waits until the relay has n messages.
func (h *harness) invite(uid string, n int, emails ...string) []smtptest.Message {
	h.t.Helper()
	rows := make([]store.Invitee, len(emails))
	for i, e := range emails {
		rows[i] = store.Invitee{Email: e, Name: "Person " + fmt.Sprint(i)}
	}
	errs, err := h.p.Invite(context.Background(), uid, rows)
	if err != nil {
		h.t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			h.t.Fatalf("invite %s: %v", emails[i], e)
		}
	}
	return h.wait(n)
}

// wait waits until the relay has n messages to attendees, and returns
// them (notices to organizers are left out; see notices).
func (h *harness) wait(n int) []smtptest.Message {
	h.t.Helper()
	var msgs []smtptest.Message
	h.eventually(fmt.Sprintf("%d messages to attendees", n), func() bool {
		msgs = h.filter(false)
		return len(msgs) >= n
	})
	return msgs
}

// noticesOf waits until the relay has n notices made from template, and
// returns them (in the order the relay got them).
func (h *harness) noticesOf(template string, n int) []smtptest.Message {
	h.t.Helper()
	var msgs []smtptest.Message
	h.eventually(fmt.Sprintf("%d %s notices", n, template), func() bool {
		msgs = msgs[:0]
		for _, m := range h.filter(true) {
			if bytes.Contains(m.Data, []byte("<notice."+template+".")) {
				msgs = append(msgs, m)
			}
		}
		return len(msgs) >= n
	})
	return msgs
}

// attempts is how many times the queued send job of kind has failed (-1
// if there is none).
func (h *harness) attempts(kind string) int {
	jobs, _, _ := h.db.Due(StageSend, time.Now().Add(time.Hour), 100, nil)
	for _, j := range jobs {
		if j.Kind == kind {
			return j.Attempts
		}
	}
	return -1
}

func (h *harness) filter(notices bool) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range h.relay.Messages() {
		if isNotice(m.Data) == notices {
			out = append(out, m)
		}
	}
	return out
}

func isNotice(raw []byte) bool {
	return bytes.Contains(raw, []byte("Message-Id: <notice.")) || bytes.Contains(raw, []byte("Message-ID: <notice."))
}

func (h *harness) stats(uid string) store.Counters {
	var c store.Counters
	h.db.View(func(tx *store.Tx) (err error) { c, err = tx.EventStats(uid); return err })
	return c
}

func wrap(from, method, ics string) []byte {
	ics = strings.ReplaceAll(strings.ReplaceAll(ics, "\r\n", "\n"), "\n", "\r\n")
	return []byte("From: " + from + "\r\nTo: create@" + domain + "\r\nSubject: test\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/calendar; charset=UTF-8; method=" + method + "\r\n\r\n" + ics)
}

func testdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "imip", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func setProp(ics, name, value string) string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `([;:][^\r\n]*)(\r?\n[ \t][^\r\n]*)*`)
	return re.ReplaceAllLiteralString(ics, name+":"+value)
}

const weekly = "google-request-recurring-weekly-rrule-vtimezone.ics"

func TestBadInput_RejectedWithReasonNotRetried(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.register(testdata(t, weekly))
	cases := []struct {
		name, sender, rcpt string
		raw                string
		reason             string
	}{
		{"no calendar", "a@x.org", "create@" + domain, "From: a@x.org\r\nSubject: hi\r\n\r\nJust text.\r\n", "no usable calendar"},
		{"broken calendar", "a@x.org", "create@" + domain, string(wrap("a@x.org", "REQUEST", "BEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\nUID;X=\n")), "no usable calendar"},
		{"malformed MIME", "a@x.org", "create@" + domain, "From: a@x.org\r\nContent-Type: multipart/mixed; boundary=\"\r\n\r\n--x\r\n", "no usable calendar"},
		{"cancel of unknown UID", "foobar@nilas.com", "create@" + domain, string(wrap("foobar@nilas.com", "CANCEL",
			strings.ReplaceAll(setProp(testdata(t, weekly), "UID", "nope@example.com"), "METHOD:REQUEST", "METHOD:CANCEL"))), "unknown event"},
		{"reply for unknown UID", "karim@example.com", "rsvp@" + domain, string(wrap("karim@example.com", "REPLY",
			setProp(testdata(t, "google-reply-accepted-to-exchange-organizer.ics"), "UID", "nope"))), "unknown event"},
		{"reply sent to create@", "karim@example.com", "create@" + domain, string(wrap("karim@example.com", "REPLY",
			testdata(t, "google-reply-accepted-to-exchange-organizer.ics"))), "METHOD:REPLY is not accepted"},
		{"forged organizer (SPF fails)", "foobar@nilas.com", "create@" + domain, string(wrap("foobar@nilas.com", "REQUEST",
			setProp(testdata(t, weekly), "UID", "forged@google.com"))), "not authenticated"},
		{"request from someone else", "jack@kolab.org", "create@" + domain, string(wrap("jack@kolab.org", "REQUEST",
			setProp(testdata(t, weekly), "UID", "other@google.com"))), "is not the event's ORGANIZER"},
		{"request without DTSTART", "foobar@nilas.com", "create@" + domain, string(wrap("foobar@nilas.com", "REQUEST",
			regexp.MustCompile(`(?m)^DTSTART;TZID=America/Los_Angeles:.*\n`).ReplaceAllString(setProp(testdata(t, weekly), "UID", "x2"), ""))), "no DTSTART"},
	}
	for _, c := range cases {
		remote := "127.0.0.1:1"
		if strings.HasPrefix(c.name, "forged") {
			remote = "198.51.100.66:1" // not a host nilas.com's SPF allows
		}
		id, err := h.p.Accept(context.Background(), Envelope{Remote: remote, MailFrom: c.sender, RcptTo: []string{c.rcpt}}, []byte(c.raw))
		if err != nil {
			t.Fatal(err)
		}
		m := h.outcome(id)
		if m.Status != store.MessageRejected || len(m.Notes) == 0 || !strings.Contains(m.Notes[len(m.Notes)-1].Text, c.reason) {
			t.Errorf("%s: status %s notes %+v; want rejected with %q", c.name, m.Status, m.Notes, c.reason)
		}
	}
	var dead []store.Job
	h.db.View(func(tx *store.Tx) (err error) { dead, err = tx.DeadLetters(0, 10); return err })
	if len(dead) != 0 {
		t.Errorf("bad input became dead letters (it must not be retried): %+v", dead)
	}
	h.eventually("queues drained", func() bool {
		for _, s := range Stages {
			if h.db.QueueLen(s) != 0 {
				return false
			}
		}
		return true
	})
	// The organizer (the believed sender) heard about the REQUEST that
	// failed; the forger of the other did not.
	// Failure notices go to proven senders only: foobar@nilas.com for the
	// REQUEST without DTSTART (not for the forged one), karim@example.com
	// for the REPLY sent to create@; not to a@x.org (no SPF), nor to the
	// impostor of evil.example.
	failed := h.noticesOf(noticeFailed, 2)
	to := map[string]int{}
	for _, m := range failed {
		to[m.To[0]]++
		if m.To[0] == "foobar@nilas.com" && !bytes.Contains(m.Data, []byte("DTSTART")) {
			t.Errorf("failure notice to the organizer does not say why")
		}
	}
	if len(failed) != 2 || to["foobar@nilas.com"] != 1 || to["karim@example.com"] != 1 {
		t.Errorf("failure notices went to %v", to)
	}
}

func TestSend_TemporaryFailureRetried(t *testing.T) {
	var calls atomic.Int32
	h := newHarness(t, smtptest.Options{Reject: func(from, rcpt string) error {
		if rcpt != "" && calls.Add(1) <= 2 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
		}
		return nil
	}}, nil)
	e := h.register(testdata(t, weekly))
	msgs := h.invite(e.UID, 1, "grey@example.com")
	if len(msgs) != 1 || msgs[0].To[0] != "grey@example.com" {
		t.Fatalf("delivered %+v", msgs)
	}
	h.eventually("send recorded", func() bool { return h.stats(e.UID).InvitesSent == 1 })
	var a *store.Attendee
	h.db.View(func(tx *store.Tx) (err error) { a, err = tx.Attendee(e.UID, "grey@example.com"); return err })
	if a.Sent.IsZero() || a.SendError != "" {
		t.Errorf("attendee after delivery: %+v", a)
	}
}

func TestSend_PermanentFailureRecorded(t *testing.T) {
	h := newHarness(t, smtptest.Options{Reject: func(from, rcpt string) error {
		if rcpt == "nobody@example.com" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}}, nil)
	e := h.register(testdata(t, weekly))
	h.invite(e.UID, 1, "nobody@example.com", "ok@example.com")
	h.eventually("failure counted", func() bool { s := h.stats(e.UID); return s.SendFailed == 1 && s.InvitesSent == 1 })
	var a *store.Attendee
	h.db.View(func(tx *store.Tx) (err error) { a, err = tx.Attendee(e.UID, "nobody@example.com"); return err })
	if !strings.Contains(a.SendError, "550") || !a.Sent.IsZero() {
		t.Errorf("refused attendee: %+v", a)
	}
	if n := len(h.filter(false)); n != 1 {
		t.Errorf("relay got %d invites, want 1", n)
	}
}

func TestRetriesExhausted_DeadLetterThenRetry(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	h := newHarness(t, smtptest.Options{Reject: func(from, rcpt string) error {
		if down.Load() {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "down"}
		}
		return nil
	}}, func(c *Config) { c.MaxAttempts = 3 })
	e := h.register(testdata(t, weekly))
	if _, err := h.p.Invite(context.Background(), e.UID, []store.Invitee{{Email: "late@example.com"}}); err != nil {
		t.Fatal(err)
	}
	// The invite (and the organizer's "event created" notice) give up.
	var invite *store.Job
	h.eventually("the invite's dead letter", func() bool {
		h.db.View(func(tx *store.Tx) error {
			dead, err := tx.DeadLetters(0, 10)
			for i := range dead {
				if dead[i].Kind == kindInvite {
					invite = &dead[i]
				}
			}
			return err
		})
		return invite != nil
	})
	if invite.Stage != StageSend || invite.Attempts != 3 || !strings.Contains(invite.LastError, "down") {
		t.Errorf("dead letter %+v", invite)
	}
	if len(h.filter(false)) != 0 {
		t.Error("a dead letter was sent")
	}
	down.Store(false)
	if err := h.db.Update(context.Background(), func(tx *store.Tx) error {
		_, err := tx.Resurrect(invite.ID, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	h.wait(1)
}

func TestFanout_BatchesReachEveryone(t *testing.T) {
	h := newHarness(t, smtptest.Options{Discard: false}, func(c *Config) { c.FanoutBatch = 2 })
	ics := testdata(t, weekly)
	e := h.register(ics)
	people := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"}
	h.invite(e.UID, 5, people...)
	upd := setProp(setProp(ics, "SEQUENCE", "1"), "SUMMARY", "Weekly Planning Meeting (moved room)")
	upd = setProp(upd, "DTSTAMP", "20150113T000000Z")
	id := h.accept("foobar@nilas.com", "create@"+domain, wrap("foobar@nilas.com", "REQUEST", upd))
	h.outcome(id)
	msgs := h.wait(10)
	got := map[string]int{}
	for _, m := range msgs[5:] {
		got[m.To[0]]++
		if !strings.Contains(string(m.Data), "Event Updated") {
			t.Errorf("update subject missing in %s", m.Data[:200])
		}
	}
	for _, p := range people {
		if got[p] != 1 {
			t.Errorf("%s got %d updates, want 1", p, got[p])
		}
	}
	// Only the summary changed: statuses are not reset.
	h.eventually("updates counted", func() bool { return h.stats(e.UID).UpdatesSent == 5 })
}

func TestCancel_OneOccurrence(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	ics := testdata(t, weekly)
	e := h.register(ics)
	h.invite(e.UID, 1, "a@example.com")
	cancel := strings.Replace(ics, "METHOD:REQUEST", "METHOD:CANCEL", 1)
	cancel = strings.Replace(cancel, "RRULE:FREQ=WEEKLY;WKST=SU\n", "RECURRENCE-ID;TZID=America/Los_Angeles:20150119T133000\n", 1)
	cancel = setProp(setProp(cancel, "SEQUENCE", "1"), "DTSTAMP", "20150113T000000Z")
	id := h.accept("foobar@nilas.com", "create@"+domain, wrap("foobar@nilas.com", "CANCEL", cancel))
	if m := h.outcome(id); m.Status != store.MessageProcessed {
		t.Fatalf("cancel: %+v", m.Notes)
	}
	msgs := h.wait(2)
	m, err := itip.ReadMessage(strings.NewReader(string(msgs[1].Data)), itip.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ev := m.Calendars[0].Events[0]
	if m.Calendars[0].Method != "CANCEL" || ev.RecurrenceID == nil || ev.RecurrenceID.Value != "20150119T133000" || ev.Sequence != 1 {
		t.Fatalf("occurrence cancel: method %s, event %+v", m.Calendars[0].Method, ev)
	}
	var got *store.Event
	h.db.View(func(tx *store.Tx) (err error) { got, err = tx.Event(e.UID); return err })
	if got.Status != store.StatusConfirmed {
		t.Errorf("whole event status %s after cancelling one occurrence", got.Status)
	}
	// A new invitee gets the series without the cancelled occurrence.
	msgs = h.invite(e.UID, 3, "b@example.com")
	m, _ = itip.ReadMessage(strings.NewReader(string(msgs[2].Data)), itip.Limits{})
	ex := m.Calendars[0].Events[0].ExDates
	if len(ex) != 1 || ex[0].Value != "20150119T133000" {
		t.Errorf("new invite EXDATE = %+v, want the cancelled occurrence", ex)
	}
}

func TestRun_ResumesQueuedAndDrainsOnStop(t *testing.T) {
	release := make(chan struct{})
	var blocked atomic.Bool
	h := newHarness(t, smtptest.Options{Reject: func(from, rcpt string) error {
		if rcpt == "slow@example.com" {
			blocked.Store(true)
			<-release
		}
		return nil
	}}, nil)
	e := h.register(testdata(t, weekly))
	if _, err := h.p.Invite(context.Background(), e.UID, []store.Invitee{{Email: "slow@example.com"}}); err != nil {
		t.Fatal(err)
	}
	h.eventually("send in progress", blocked.Load)
	stopped := make(chan struct{})
	go func() { h.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Run returned while a send was in hand")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-stopped
	if h.db.QueueLen(StageSend) != 0 || h.stats(e.UID).InvitesSent != 1 {
		t.Fatalf("after drain: send queue %d, stats %+v", h.db.QueueLen(StageSend), h.stats(e.UID))
	}

	// Work queued while nothing runs is done by the next Run.
	if _, err := h.p.Invite(context.Background(), e.UID, []store.Invitee{{Email: "later@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if h.db.QueueLen(StageSend) != 1 {
		t.Fatalf("send queue %d, want 1", h.db.QueueLen(StageSend))
	}
	h.start()
	h.wait(2)
}

func TestInvite_Rules(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	ics := testdata(t, weekly)
	e := h.register(ics)
	errs, err := h.p.Invite(context.Background(), e.UID, []store.Invitee{{Email: "not an address"}, {Email: "A@Example.com"}, {Email: "a@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] == nil || errs[1] != nil || errs[2] == nil {
		t.Errorf("row errors %v: want bad address, queued, duplicate", errs)
	}
	if _, err := h.p.Invite(context.Background(), "nope", []store.Invitee{{Email: "a@example.com"}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown event: %v", err)
	}
	h.wait(1)
	// Cancelled: no more invites.
	cancel := setProp(setProp(strings.Replace(ics, "METHOD:REQUEST", "METHOD:CANCEL", 1), "SEQUENCE", "1"), "STATUS", "CANCELLED")
	h.outcome(h.accept("foobar@nilas.com", "create@"+domain, wrap("foobar@nilas.com", "CANCEL", cancel)))
	h.wait(2)
	errs, err = h.p.Invite(context.Background(), e.UID, []store.Invitee{{Email: "b@example.com"}})
	if err != nil || errs[0] == nil || !strings.Contains(errs[0].Error(), "cancelled") {
		t.Errorf("invite to a cancelled event: %v, row %v", err, errs)
	}
	var a *store.Attendee
	h.db.View(func(tx *store.Tx) (err error) { a, _ = tx.Attendee(e.UID, "b@example.com"); return nil })
	if a != nil {
		t.Errorf("attendee created for a cancelled event: %+v", a)
	}
}

// TestStatistics_EqualRecount drives a random mix of invites, replies
// (new, repeated, stale, from strangers), updates and a final cancel, and
// checks that the counters equal a recount over the attendees.
func TestStatistics_EqualRecount(t *testing.T) {
	h := newHarness(t, smtptest.Options{Discard: true}, nil)
	ics := testdata(t, weekly)
	e := h.register(ics)
	reply := testdata(t, "google-reply-accepted-to-exchange-organizer.ics")
	reply = setProp(reply, "UID", e.UID)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(1, seed))
	statuses := []string{"ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION", "DELEGATED"}
	seq := 0
	for step := range 200 {
		who := fmt.Sprintf("p%d@example.com", rng.IntN(40))
		switch r := rng.IntN(100); {
		case r < 35:
			h.p.Invite(context.Background(), e.UID, []store.Invitee{{Email: who}})
		case r < 96:
			ics := strings.Replace(reply, "mailto:karim@example.com", "mailto:"+who, 1)
			ics = strings.Replace(ics, "PARTSTAT=ACCEPTED", "PARTSTAT="+statuses[rng.IntN(len(statuses))], 1)
			// Mostly newer than anything before; one in five is from the past.
			stamp := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(step) * time.Hour)
			if rng.IntN(5) == 0 {
				stamp = stamp.Add(-time.Duration(rng.IntN(200)) * time.Hour)
			}
			ics = setProp(ics, "DTSTAMP", stamp.Format("20060102T150405Z"))
			h.accept(who, "rsvp@"+domain, wrap(who, "REPLY", ics))
		default:
			seq++
			stamp := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(step)*time.Hour - time.Minute)
			upd := setProp(setProp(ics, "SEQUENCE", fmt.Sprint(seq)), "DTSTAMP", stamp.Format("20060102T150405Z"))
			if rng.IntN(3) == 0 {
				upd = setProp(upd, "DTSTART;TZID=America/Los_Angeles", fmt.Sprintf("2015011%dT133000", step%10))
			} else {
				upd = setProp(upd, "SUMMARY", fmt.Sprint("Planning ", step))
			}
			h.accept("foobar@nilas.com", "create@"+domain, wrap("foobar@nilas.com", "REQUEST", upd))
		}
	}
	// Finally the organizer cancels: statuses stay, counters stay equal.
	cancel := setProp(setProp(strings.Replace(ics, "METHOD:REQUEST", "METHOD:CANCEL", 1), "SEQUENCE", fmt.Sprint(seq+1)), "STATUS", "CANCELLED")
	h.accept("foobar@nilas.com", "create@"+domain, wrap("foobar@nilas.com", "CANCEL", cancel))
	h.eventually("queues drained", func() bool {
		for _, s := range Stages {
			if h.db.QueueLen(s) != 0 {
				return false
			}
		}
		return true
	})
	var recount store.Counters
	h.db.View(func(tx *store.Tx) error {
		return tx.Attendees(e.UID, "", func(a *store.Attendee) (bool, error) {
			recount.Attendees++
			recount.AddStatus(a.Status, 1)
			if a.Origin != store.OriginShared {
				recount.Invited++
			}
			if !a.Sent.IsZero() {
				recount.InvitesSent++
			}
			return true, nil
		})
	})
	got := h.stats(e.UID)
	if got.Attendees != recount.Attendees || got.Accepted != recount.Accepted || got.Declined != recount.Declined ||
		got.Tentative != recount.Tentative || got.Pending != recount.Pending || got.Delegated != recount.Delegated ||
		got.InvitesSent != recount.InvitesSent || got.Invited != recount.Invited {
		t.Fatalf("counters %+v\nrecount  %+v", got, recount)
	}
	var org, sys store.Counters
	h.db.View(func(tx *store.Tx) error {
		org, _ = tx.OrganizerStats("foobar@nilas.com")
		sys, _ = tx.SystemStats()
		return nil
	})
	if org.Attendees != recount.Attendees || sys.Accepted != recount.Accepted || org.Events != 1 || sys.Events != 1 {
		t.Errorf("organizer %+v / system %+v disagree with the recount %+v", org, sys, recount)
	}
	t.Logf("%d attendees: %+v", recount.Attendees, got)
}

// TestRealClients_RegisterAndInvite registers the REQUEST of every real
// client in the corpus under the aligned policy (sent by its organizer)
// and checks that the invite we send for it keeps its time and zone.
func TestRealClients_RegisterAndInvite(t *testing.T) {
	cases := []struct {
		file      string
		organizer string // the sender: the ORGANIZER (iCloud: its EMAIL parameter)
	}{
		{"google-request-inline-textcalendar.eml", "alice@example.org"},
		{"google-request-application-ics-invite.eml", "alice@example.org"},
		{"proton-bridge-request-textcalendar-no-method-param.eml", "alice@example.org"},
		{"exchange-online-request-base64-multipart-alternative.eml", ""},
		{"roundcube-kolab-request-single-occurrence-recurrence-id.eml", "jack@kolab.org"},
		{"google-request-recurring-weekly-rrule-vtimezone.ics", "foobar@nilas.com"},
		{"google-request-seq0-before-cancel.ics", "inboxapptest.french@gmail.com"},
		{"exchange2010-request-uppercase-MAILTO-windows-tzid.ics", ""},
		{"icloud-request-allday.ics", "benbitdiddle@icloud.com"},
		{"lotus-notes-8.5-request-broken-fold-colon-quoted-tzid.ics", "user6@linagora.com"},
		{"obm-request-duration-resource-attendee-uppercase-MAILTO.ics", ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			h := newHarness(t, smtptest.Options{}, nil)
			raw := testdata(t, c.file)
			var cal *itip.Calendar
			if strings.HasSuffix(c.file, ".ics") {
				var err error
				if cal, err = itip.ParseCalendar(strings.NewReader(raw)); err != nil {
					t.Fatal(err)
				}
			} else {
				m, err := itip.ReadMessage(strings.NewReader(raw), itip.Limits{})
				if err != nil {
					t.Fatal(err)
				}
				cal = m.Calendars[0]
			}
			orig := cal.Events[0]
			org := c.organizer
			if org == "" {
				org = orig.Organizer.Email
			}
			if strings.HasSuffix(c.file, ".ics") {
				raw = string(wrap(org, "REQUEST", raw))
			} else {
				raw = regexp.MustCompile(`(?m)^From:.*$`).ReplaceAllLiteralString(raw, "From: <"+org+">\r")
			}
			id := h.accept(org, "create@"+domain, []byte(raw))
			if m := h.outcome(id); m.Status != store.MessageProcessed {
				t.Fatalf("not registered: %+v", m.Notes)
			}
			var e *store.Event
			h.db.View(func(tx *store.Tx) (err error) { e, err = tx.EventByOriginalUID(orig.UID); return err })
			if e.OrganizerEmail != org {
				t.Errorf("organizer %q, want %q", e.OrganizerEmail, org)
			}
			msgs := h.invite(e.UID, 1, "guest@example.com")
			m, err := itip.ReadMessage(strings.NewReader(string(msgs[0].Data)), itip.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			sent := m.Calendars[0]
			ev := sent.Events[0]
			if ev.UID != e.UID || ev.Start.Value != orig.Start.Value || ev.Start.TZID != orig.Start.TZID ||
				!ev.Start.UTC.Equal(orig.Start.UTC) || ev.Start.AllDay != orig.Start.AllDay || ev.Summary != orig.Summary {
				t.Errorf("sent event %+v\nfrom       %+v", ev, orig)
			}
			if !ev.End.UTC.Equal(orig.End.UTC) {
				t.Errorf("end %v, want %v", ev.End.UTC, orig.End.UTC)
			}
			if tz := ev.Start.TZID; tz != "" {
				if _, ok := sent.Timezones[tz]; !ok {
					t.Errorf("no VTIMEZONE for %q in %v", tz, sent.Timezones)
				}
			}
			if ev.RRule != orig.RRule || ev.RecurrenceID != nil {
				t.Errorf("RRULE %q RECURRENCE-ID %v, want %q and none", ev.RRule, ev.RecurrenceID, orig.RRule)
			}
		})
	}
}

// TestUpdateThenOccurrenceCancel: an update still waiting for the relay
// when one occurrence is cancelled must still reach the attendee.
func TestUpdateThenOccurrenceCancel(t *testing.T) {
	var down atomic.Bool
	h := newHarness(t, smtptest.Options{Reject: func(from, rcpt string) error {
		if down.Load() {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"}
		}
		return nil
	}}, func(c *Config) { c.MaxAttempts = 1000 })
	ics := testdata(t, weekly)
	e := h.register(ics)
	h.invite(e.UID, 1, "a@example.com")
	down.Store(true)
	moved := setProp(setProp(setProp(ics, "SEQUENCE", "1"), "DTSTAMP", "20150113T000000Z"),
		"DTSTART;TZID=America/Los_Angeles", "20150112T150000")
	h.outcome(h.accept("foobar@nilas.com", "create@"+domain, wrap("foobar@nilas.com", "REQUEST", moved)))
	cancel := strings.Replace(moved, "METHOD:REQUEST", "METHOD:CANCEL", 1)
	cancel = strings.Replace(cancel, "RRULE:FREQ=WEEKLY;WKST=SU\n", "RECURRENCE-ID;TZID=America/Los_Angeles:20150126T150000\n", 1)
	cancel = setProp(setProp(cancel, "SEQUENCE", "2"), "DTSTAMP", "20150114T000000Z")
	if m := h.outcome(h.accept("foobar@nilas.com", "create@"+domain, wrap("foobar@nilas.com", "CANCEL", cancel))); m.Status != store.MessageProcessed {
		t.Fatalf("cancel: %+v", m.Notes)
	}
	// An attempt that read the event before the cancel may still be under
	// way: let the update fail twice more, so the one that succeeds began
	// after the cancel.
	seen := h.attempts(kindUpdate)
	h.eventually("two more attempts at the update", func() bool { return h.attempts(kindUpdate) >= seen+2 })
	down.Store(false)
	msgs := h.wait(3)
	var methods []string
	for _, m := range msgs[1:] {
		r, err := itip.ReadMessage(strings.NewReader(string(m.Data)), itip.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		ev := r.Calendars[0].Events[0]
		methods = append(methods, r.Calendars[0].Method)
		if r.Calendars[0].Method == "REQUEST" && (ev.Start.Value != "20150112T150000" || len(ev.ExDates) != 1) {
			t.Errorf("update: DTSTART %s EXDATE %v; want the new time without the cancelled occurrence", ev.Start.Value, ev.ExDates)
		}
	}
	slices.Sort(methods)
	if fmt.Sprint(methods) != "[CANCEL REQUEST]" {
		t.Errorf("attendee got %v, want the update and the occurrence cancel", methods)
	}
}

// TestFanoutReset_KeepsAnswersToTheNewTime: the reset after a time change
// leaves alone an answer given after the change.
func TestFanoutReset_KeepsAnswersToTheNewTime(t *testing.T) {
	h := newHarness(t, smtptest.Options{Discard: true}, nil)
	e := h.register(testdata(t, weekly))
	change := time.Date(2015, 1, 13, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	err := h.db.Update(ctx, func(tx *store.Tx) error {
		for _, a := range []*store.Attendee{
			{UID: e.UID, Email: "before@example.com", Status: store.PartAccepted, LastDTStamp: change.Add(-time.Hour)},
			{UID: e.UID, Email: "after@example.com", Status: store.PartAccepted, LastDTStamp: change.Add(time.Hour)},
		} {
			a.Origin = "api"
			if err := tx.PutAttendee(a); err != nil {
				return err
			}
		}
		if err := tx.Count(e.UID, e.OrganizerEmail, store.Counters{Attendees: 2, Accepted: 2}); err != nil {
			return err
		}
		jb, err := newJob(kindUpdate, "", fanoutJob{UID: e.UID, Kind: kindUpdate, Sequence: 0, Reset: true, ResetAt: change})
		if err != nil {
			return err
		}
		_, err = tx.Enqueue(StageStage, jb, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eventually("fanout done", func() bool { return h.db.QueueLen(StageStage) == 0 && h.db.QueueLen(StageSend) == 0 })
	h.db.View(func(tx *store.Tx) error {
		b, _ := tx.Attendee(e.UID, "before@example.com")
		a, _ := tx.Attendee(e.UID, "after@example.com")
		if b.Status != store.PartNeedsAction || a.Status != store.PartAccepted {
			t.Errorf("after reset: answered before %s, after %s; want needs-action and accepted", b.Status, a.Status)
		}
		return nil
	})
	if s := h.stats(e.UID); s.Accepted != 1 || s.Pending != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestReply_TagsOccurrencesAndSequence covers how replies are bound and
// which are applied.
func TestReply_TagsOccurrencesAndSequence(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	ics := testdata(t, weekly)
	e := h.register(ics)
	msgs := h.invite(e.UID, 2, "owner@example.com", "other@example.com")
	tags := map[string]string{}
	for _, m := range msgs {
		r, _ := itip.ReadMessage(strings.NewReader(string(m.Data)), itip.Limits{})
		tags[m.To[0]] = r.Calendars[0].Events[0].Organizer.Email
	}
	base := setProp(testdata(t, "google-reply-accepted-to-exchange-organizer.ics"), "UID", e.UID)
	reply := func(who, to, extra string, seq int) *store.Message {
		ics := strings.Replace(base, "mailto:karim@example.com", "mailto:"+who, 1)
		ics = setProp(ics, "SEQUENCE", fmt.Sprint(seq))
		ics = setProp(ics, "DTSTAMP", time.Now().UTC().Format("20060102T150405Z"))
		ics = strings.Replace(ics, "END:VEVENT", extra+"END:VEVENT", 1)
		return h.outcome(h.accept(who, to, wrap(who, "REPLY", ics)))
	}
	status := func(who string) string {
		var a *store.Attendee
		h.db.View(func(tx *store.Tx) (err error) { a, err = tx.Attendee(e.UID, who); return err })
		if a == nil {
			return "absent"
		}
		return a.Status + "/" + a.Origin
	}
	tag := tags["owner@example.com"]
	if m := reply("other@example.com", tag, "", 0); m.Status != store.MessageRejected {
		t.Errorf("another attendee answering with owner's tag: %s", m.Status)
	}
	if m := reply("friend@example.org", tag, "", 0); m.Status != store.MessageProcessed || status("friend@example.org") != "accepted/shared" {
		t.Errorf("forwarded invite answered: %s, attendee %s; want a shared attendee", m.Status, status("friend@example.org"))
	}
	if reply("owner@example.com", tag, "RECURRENCE-ID;TZID=America/Los_Angeles:20150119T133000\n", 0); status("owner@example.com") != "needs-action/api" {
		t.Errorf("a reply for one occurrence changed the series: %s", status("owner@example.com"))
	}
	// The organizer moves the series: answers to SEQUENCE 0 are now stale.
	moved := setProp(setProp(setProp(ics, "SEQUENCE", "1"), "DTSTAMP", "20150113T000000Z"),
		"DTSTART;TZID=America/Los_Angeles", "20150112T150000")
	h.outcome(h.accept("foobar@nilas.com", "create@"+domain, wrap("foobar@nilas.com", "REQUEST", moved)))
	h.wait(5)
	if m := reply("owner@example.com", tag, "", 0); !strings.Contains(m.Notes[len(m.Notes)-1].Text, "before the time changed") {
		t.Errorf("reply to the old time: %+v", m.Notes)
	}
	if reply("owner@example.com", tag, "", 1); status("owner@example.com") != "accepted/api" {
		t.Errorf("reply to the new time not applied: %s", status("owner@example.com"))
	}
}
