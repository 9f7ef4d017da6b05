package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/store"
)

// parseNow runs the one queued parse job in the test's goroutine, with
// the pipeline stopped, and returns how many updates it committed.
func (h *harness) parseNow() int64 {
	h.t.Helper()
	jobs, _, err := h.db.Due(StageParse, time.Now(), 10, nil)
	if err != nil || len(jobs) != 1 {
		h.t.Fatalf("parse queue: %d jobs, %v", len(jobs), err)
	}
	before := h.db.Committed()
	h.p.work(context.Background(), h.p.stages[StageParse], jobs[0])
	return h.db.Committed() - before
}

// parseOnly is parseNow without running ahead: what parse passes on is
// left queued.
func (h *harness) parseOnly() {
	h.t.Helper()
	h.p.unchained = true
	defer func() { h.p.unchained = false }()
	h.parseNow()
}

// requestAhead stops the pipeline, accepts a REQUEST of ics from from to
// create@, and parses it in the test's goroutine: parse must commit once
// and leave no verify job and wantCreate create jobs. It returns the
// message's id.
func (h *harness) requestAhead(from, ics string, wantCreate int64) string {
	h.t.Helper()
	h.stop()
	id := h.accept(from, "create@"+domain, wrap(from, "REQUEST", ics))
	if n := h.parseNow(); n != 1 {
		h.t.Errorf("parse committed %d updates, want 1", n)
	}
	if v, c := h.db.QueueLen(StageVerify), h.db.QueueLen(StageCreate); v != 0 || c != wantCreate {
		h.t.Fatalf("%d verify and %d create jobs queued after parse, want 0 and %d", v, c, wantCreate)
	}
	return id
}

// message reads message id as it is now.
func (h *harness) message(id string) *store.Message {
	h.t.Helper()
	var m *store.Message
	if err := h.db.View(func(tx *store.Tx) (err error) { m, err = tx.Message(id); return err }); err != nil {
		h.t.Fatalf("message %s: %v", id, err)
	}
	return m
}

func (h *harness) system() store.Counters {
	var c store.Counters
	h.db.View(func(tx *store.Tx) (err error) { c, err = tx.SystemStats(); return err })
	return c
}

// TestAhead_ParseToCreateInOneTransaction: a REQUEST that passes every
// check is parsed, verified and registered by one commit, and nothing is
// left in the verify and create queues.
func TestAhead_ParseToCreateInOneTransaction(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	id := h.requestAhead(organizerAddr, testdata(t, weekly), 0)
	m := h.message(id)
	if m.Status != store.MessageProcessed || m.Auth == nil {
		t.Fatalf("message after one commit: %+v", m)
	}
	if last := m.Notes[len(m.Notes)-1]; last.Stage != StageCreate {
		t.Errorf("last note by stage %q, want %q", last.Stage, StageCreate)
	}
	if s := h.system(); s.Events != 1 || s.Organizers != 1 {
		t.Errorf("system statistics: %+v", s)
	}
	if n := h.db.QueueLen(StageSend); n != 1 {
		t.Errorf("%d sends queued, want the organizer's notice", n)
	}
	h.start()
	h.noticesOf(noticeCreated, 1)
}

// TestAhead_FailureGoesThroughTheQueues: when what create writes fails
// (here the organizer's event limit, found inside its transaction), the
// create job is queued for the create stage, as it would be without
// running ahead, and that stage refuses it with its reason and the
// organizer's notice.
func TestAhead_FailureGoesThroughTheQueues(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.EventLimit = 1 })
	ics := testdata(t, weekly)
	h.register(setProp(ics, "UID", "first@google.com"))
	id := h.requestAhead(organizerAddr, setProp(ics, "UID", "second@google.com"), 1) // the fallback
	m := h.message(id)
	if m.Status != store.MessageQueued || m.Auth == nil {
		t.Fatalf("message after parse: %s, auth %s", m.Status, m.Auth)
	}
	h.start()
	m = h.outcome(id)
	if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), "limit of 1 events") {
		t.Fatalf("second event: %s %q", m.Status, lastNote(m))
	}
	if last := m.Notes[len(m.Notes)-1]; last.Stage != StageCreate {
		t.Errorf("refused by stage %q, want %q", last.Stage, StageCreate)
	}
	h.noticesOf(noticeLimit, 1)
	if s := h.system(); s.Events != 1 {
		t.Errorf("events counted: %+v", s)
	}
	h.eventually("the hand-off emptied", func() bool { return h.p.handoff.Len() == 0 })
}

// TestAhead_RejectedWhereItFails: a REQUEST verify refuses (its sender is
// not the organizer) is refused in parse's own commit, by verify, and
// nothing is left in the hand-off for it.
func TestAhead_RejectedWhereItFails(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.Auth.Policy = PolicyAligned })
	id := h.requestAhead("jack@kolab.org", setProp(testdata(t, weekly), "UID", "other@google.com"), 0)
	m := h.message(id)
	if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), "not the event's ORGANIZER") {
		t.Fatalf("message after parse: %s %q", m.Status, lastNote(m))
	}
	if last := m.Notes[len(m.Notes)-1]; last.Stage != StageVerify {
		t.Errorf("refused by stage %q, want %q", last.Stage, StageVerify)
	}
	if n := h.p.handoff.Len(); n != 0 {
		t.Errorf("%d calendars still held for a refused message", n)
	}
}
