package pipeline

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

// TestHandoff_ReadAgainAfterRestart: a calendar parse handed off but lost
// (a restart) is read again from the message, and the event registered.
func TestHandoff_ReadAgainAfterRestart(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.stop()
	ics := testdata(t, weekly)
	cal, err := itip.ParseCalendar(strings.NewReader(ics))
	if err != nil {
		t.Fatal(err)
	}
	id := h.accept(organizerAddr, "create@"+domain, wrap(organizerAddr, "REQUEST", ics))
	h.parseOnly()
	if n := h.db.QueueLen(StageVerify); n != 1 {
		t.Fatalf("%d verify jobs after parse, want 1", n)
	}
	if h.p.handoff.Len() != 1 {
		t.Fatalf("parse handed off %d calendars, want 1", h.p.handoff.Len())
	}
	h.p.handoff.Delete(calKey{id, 0}) // what a restart leaves
	h.start()
	if m := h.outcome(id); m.Status != store.MessageProcessed {
		t.Fatalf("message %s: %s %+v", id, m.Status, m.Notes)
	}
	var e *store.Event
	h.db.View(func(tx *store.Tx) (err error) { e, err = tx.EventByOriginalUID(cal.Events[0].UID); return err })
	if e == nil || e.Summary != cal.Events[0].Summary {
		t.Fatalf("event %+v, want summary %q", e, cal.Events[0].Summary)
	}
	// Read again for verify, kept for create, let go once created.
	h.eventually("the hand-off emptied", func() bool { return h.p.handoff.Len() == 0 })
}

// TestHandoff_Bounded: the calendars held stay under maxHandoffBytes,
// the oldest going first.
func TestHandoff_Bounded(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	big := make([]byte, 1<<20)
	for i := range 100 {
		h.p.handoff.Put(calKey{"m", i}, big)
		if n := h.p.handoff.Held(); n > maxHandoffBytes {
			t.Fatalf("%d bytes held, bound %d", n, maxHandoffBytes)
		}
	}
	if _, ok := h.p.handoff.Get(calKey{"m", 99}); !ok {
		t.Error("the newest calendar was evicted")
	}
	if _, ok := h.p.handoff.Get(calKey{"m", 0}); ok {
		t.Error("the oldest calendar was kept past the bound")
	}
}

// TestHandoff_DroppedOnceCreated: a registered event leaves nothing held.
func TestHandoff_DroppedOnceCreated(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.register(testdata(t, weekly))
	h.eventually("the hand-off emptied", func() bool { return h.p.handoff.Len() == 0 })
}

// TestHandoff_TwoCalendarsReadAgain: with two calendars in a message and
// nothing handed off, each job gets its own calendar back.
func TestHandoff_TwoCalendarsReadAgain(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.stop()
	base := testdata(t, weekly)
	org := organizerAddr
	first := setProp(setProp(base, "UID", "first@example.com"), "SUMMARY", "First meeting")
	second := setProp(setProp(base, "UID", "second@example.com"), "SUMMARY", "Second meeting")
	part := func(ics string) string {
		ics = strings.ReplaceAll(strings.ReplaceAll(ics, "\r\n", "\n"), "\n", "\r\n")
		return "--b\r\nContent-Type: text/calendar; charset=UTF-8; method=REQUEST\r\n\r\n" + ics + "\r\n"
	}
	raw := "From: " + org + "\r\nTo: create@" + domain + "\r\nSubject: two\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + part(first) + part(second) + "--b--\r\n"
	id := h.accept(org, "create@"+domain, []byte(raw))
	h.parseOnly()
	if n := h.db.QueueLen(StageVerify); n != 2 {
		t.Fatalf("%d verify jobs, want 2", n)
	}
	h.p.handoff.Delete(calKey{id, 0}) // what a restart leaves
	h.p.handoff.Delete(calKey{id, 1})
	h.start()
	if m := h.outcome(id); m.Status != store.MessageProcessed {
		t.Fatalf("message %s: %s %+v", id, m.Status, m.Notes)
	}
	for uid, summary := range map[string]string{"first@example.com": "First meeting", "second@example.com": "Second meeting"} {
		var e *store.Event
		h.eventually("event "+uid, func() bool {
			h.db.View(func(tx *store.Tx) (err error) { e, err = tx.EventByOriginalUID(uid); return err })
			return e != nil
		})
		if e.Summary != summary {
			t.Errorf("event %s: summary %q, want %q", uid, e.Summary, summary)
		}
	}
}

// TestHandoff_CalendarCarried: parse's job for verify, and verify's for
// create, keep the command and its calendar in memory, with no payload and
// nothing handed off, and the stage run straight after takes them rather
// than decoding anything; only a job queued gets a payload, and its
// calendar goes to the hand-off; a job read back from a queue carries
// nothing.
func TestHandoff_CalendarCarried(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.stop()
	ics := testdata(t, weekly)
	id := h.accept(organizerAddr, "create@"+domain, wrap(organizerAddr, "REQUEST", ics))
	parse, _, err := h.db.Due(StageParse, h.p.cfg.Now().Add(time.Hour), 10, nil)
	if err != nil || len(parse) != 1 {
		t.Fatalf("parse jobs %v, %v; want 1", parse, err)
	}
	o, err := h.p.parse(context.Background(), parse[0])
	if err != nil || len(o.next) != 1 {
		t.Fatalf("parse: %+v, %v", o, err)
	}
	c, ok := o.next[0].Carry.(*commandJob)
	if !ok || c.Calendar == nil || o.next[0].Payload != nil || h.p.handoff.Len() != 0 {
		t.Fatalf("parse's job for verify: carries %#v, payload %q, %d handed off; want the command and its calendar, no payload, nothing handed off",
			o.next[0].Carry, o.next[0].Payload, h.p.handoff.Len())
	}

	h.parseOnly()
	handed, _ := h.p.handoff.Get(calKey{id, 0})
	if b, _ := json.Marshal(c.Calendar); string(b) != string(handed) {
		t.Errorf("the job queued for verify handed off %s, want the calendar parse read, %s", handed, b)
	}
	jobs, _, err := h.db.Due(StageVerify, h.p.cfg.Now().Add(time.Hour), 10, nil)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("verify jobs %v, %v; want 1", jobs, err)
	}
	if jobs[0].Carry != nil {
		t.Errorf("a job read from the queue carries %T", jobs[0].Carry)
	}
	queued, err := decode[commandJob](jobs[0])
	if err != nil || queued.Calendar != nil || queued.Sum != calendarSum(handed) || !reflect.DeepEqual(queued.Auth, c.Auth) {
		t.Errorf("queued verify job %+v, %v; want the command with the calendar's sum and without the calendar", queued, err)
	}
	o, err = h.p.verify(context.Background(), jobs[0])
	if err != nil || len(o.next) != 1 {
		t.Fatalf("verify: %+v, %v", o, err)
	}
	vc, ok := o.next[0].Carry.(*commandJob)
	if !ok || vc.Calendar == nil || len(vc.Calendar.Events) != 1 || !vc.Believed {
		t.Fatalf("verify's job for create carries %#v", o.next[0].Carry)
	}

	// With nothing handed off and no message to read again, only what
	// verify kept can serve create.
	h.p.handoff.Delete(calKey{id, 0})
	j := *o.next[0]
	j.Message = "no-such-message"
	got, err := h.p.command(context.Background(), &j)
	if err != nil || got.Calendar != vc.Calendar || got == vc || !reflect.DeepEqual(*got, *vc) {
		t.Fatalf("create's command: %v, %v; want a copy of the one verify kept", got, err)
	}
	if got.UID = "changed by create"; vc.UID == got.UID {
		t.Error("a change to create's command reached the one verify kept")
	}
	j.Carry, j.Payload = nil, jobs[0].Payload
	if _, err := h.p.command(context.Background(), &j); err == nil {
		t.Fatal("without the command kept in memory, a job whose message is gone still read")
	}
}

// TestHandoff_CalendarsSurviveJSON: parse's calendar goes to verify in
// memory when verify runs straight after, and as JSON (the hand-off)
// otherwise: the two must be the same calendar, or a job would be judged
// differently after a restart. Every sample calendar comes back from JSON
// as it was.
func TestHandoff_CalendarsSurviveJSON(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "imip", "*"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		var cals []*itip.Calendar
		switch filepath.Ext(f) {
		case ".ics":
			cal, err := itip.ParseCalendar(strings.NewReader(testdata(t, filepath.Base(f))))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			cals = append(cals, cal)
		case ".eml":
			m, err := itip.ReadMessage(strings.NewReader(testdata(t, filepath.Base(f))), itip.Limits{})
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			cals = m.Calendars
		}
		for _, cal := range cals {
			b, err := json.Marshal(cal)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var back *itip.Calendar
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if !reflect.DeepEqual(cal, back) {
				t.Errorf("%s: the calendar changed through JSON:\n was %#v\n now %#v", filepath.Base(f), cal, back)
			}
			n++
		}
	}
	if n < 15 {
		t.Errorf("only %d calendars checked", n)
	}
}
