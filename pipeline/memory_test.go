package pipeline

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/invited/invited/internal/membudget"
	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
)

// A large message is read only with memory from the stages' budget:
// while the budget is all taken, its parse is put
// off (not counted as an attempt) and the worker takes other jobs, so a
// small message goes meanwhile; the large ones go once memory is given
// back. Both ways a message reaches parse are covered: kept from Accept
// (up to maxFreshMessage) and read from the store.
func TestParse_WaitsForMemory(t *testing.T) {
	mem := membudget.New(4 << 20)
	h := newHarness(t, smtptest.Options{}, func(c *Config) {
		c.Memory = mem
		c.Workers = map[string]int{StageParse: 1}
	})
	held, _ := mem.Acquire(context.Background(), 4<<20)

	// A REQUEST of about size bytes (an unfolded DESCRIPTION reads as well
	// as a folded one), accepted.
	accept := func(i, size int) (id string, n int) {
		ics := setProp(testdata(t, weekly), "UID", fmt.Sprintf("%d-%s@example.org", i, strings.Repeat("u", 8)))
		ics = setProp(ics, "DESCRIPTION", strings.Repeat("long agenda ", size/12))
		org := organizerOf(t, ics)
		raw := wrap(org, "REQUEST", ics)
		return h.accept(org, "create@"+domain, raw), len(raw)
	}
	var large []string
	for i, size := range []int{100 << 10, maxFreshMessage + 50<<10} {
		id, n := accept(i, size)
		if readWeight(n) == 0 {
			t.Fatalf("a %d-byte message takes no memory", n)
		}
		large = append(large, id)
	}
	small, _ := accept(2, 100)
	if m := h.outcome(small); m.Status != store.MessageProcessed {
		t.Fatalf("the small message: %s %+v", m.Status, m.Notes)
	}
	h.eventually("the large messages put off", func() bool { return mem.Stats().Refused >= 2 })
	for _, id := range large {
		var m *store.Message
		h.db.View(func(tx *store.Tx) (err error) { m, err = tx.Message(id); return err })
		if m.Status != store.MessageQueued {
			t.Fatalf("message %s is %s while no memory is free", id, m.Status)
		}
	}
	jobs, _, err := h.db.Due(StageParse, time.Now().Add(time.Hour), 10, nil)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("%d parse jobs queued, %v; want the 2 large messages'", len(jobs), err)
	}
	for _, j := range jobs {
		if j.Attempts != 0 || j.LastError != "" {
			t.Errorf("waiting for memory counted as a failure: %+v", j)
		}
	}

	mem.Release(held)
	for _, id := range large {
		if m := h.outcome(id); m.Status != store.MessageProcessed {
			t.Errorf("message %s: %s %+v", id, m.Status, m.Notes)
		}
	}
	h.eventually("memory given back", func() bool { return mem.Stats().Held == 0 })
}

// readRaw, which reads a message again after a restart (its calendar, its
// CSV), takes memory for a large one too, and puts its job off while there
// is none.
func TestReadRaw_TakesMemory(t *testing.T) {
	mem := membudget.New(1 << 20)
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.Memory = mem })
	h.stop() // nothing parses: the test reads
	big := []byte("From: a@example.org\r\n\r\n" + strings.Repeat("x", 100<<10))
	id := h.accept("a@example.org", "create@"+domain, big)
	held, _ := mem.Acquire(context.Background(), 1<<20)
	_, raw, got, err := h.p.readRaw(context.Background(), id)
	if _, ok := isDeferral(err); !ok || got != 0 || raw != nil {
		t.Fatalf("readRaw with no memory free: %d bytes, took %d, %v; want a deferral", len(raw), got, err)
	}
	mem.Release(held)
	_, raw, got, err = h.p.readRaw(context.Background(), id)
	if err != nil || got != readWeight(len(raw)) || !strings.HasSuffix(string(raw), string(big)) {
		t.Fatalf("readRaw: %d bytes, took %d, %v", len(raw), got, err)
	}
	mem.Release(got)
}

// organizerOf is the ORGANIZER of ics.
func organizerOf(t *testing.T, ics string) string {
	t.Helper()
	cal, err := itip.ParseCalendar(strings.NewReader(ics))
	if err != nil {
		t.Fatal(err)
	}
	return cal.Events[0].Organizer.Email
}

// panickingResolver is a DNS that breaks the daemon's code.
type panickingResolver struct{ senderauth.Resolver }

func (panickingResolver) LookupTXT(context.Context, string) ([]string, error) {
	panic("resolver broken")
}

// Memory taken to read a large message is given back when parse panics
// (the panic is the job's failure).
func TestParse_PanicGivesMemoryBack(t *testing.T) {
	mem := membudget.New(4 << 20)
	h := newHarness(t, smtptest.Options{}, func(c *Config) {
		c.Memory = mem
		c.MaxAttempts = 1
		c.Auth = &senderauth.Checker{Resolver: panickingResolver{}, Policy: PolicyAligned}
	})
	big := []byte("From: a@example.org\r\n\r\n" + strings.Repeat("x", 100<<10))
	id := h.accept("a@example.org", "create@"+domain, big)
	if m := h.outcome(id); m.Status != store.MessageRejected || len(m.Notes) == 0 || !strings.Contains(m.Notes[len(m.Notes)-1].Text, "panic") {
		t.Fatalf("message %s: %+v", m.Status, m.Notes)
	}
	if s := mem.Stats(); s.Held != 0 || s.Peak == 0 {
		t.Errorf("budget stats %+v: want memory taken, then given back", s)
	}
}

// A bulk file's verify, run ahead of parse, reads the file again under
// the memory parse holds for the message: it takes none of its own, so a
// file the budget holds once goes in one pass, not put off.
func TestBulk_RunAheadUnderParseMemory(t *testing.T) {
	mem := membudget.New(1 << 20)
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.Memory = mem })
	e := h.register(testdata(t, weekly))
	h.setOrganizer(organizerAddr, func(o *store.Organizer) { o.BulkAuthorized = true })
	var file strings.Builder
	file.WriteString("uid,email,name\r\n")
	for i := 0; file.Len() < 150<<10; i++ {
		fmt.Fprintf(&file, "%s,guest%d@example.com,Guest number %d of a long list\r\n", e.UID, i, i)
	}
	raw := bulkMail(organizerAddr, "guests.csv", []byte(file.String()))
	if w := readWeight(len(raw)); w == 0 || 2*w <= 1<<20 || w > 1<<20 {
		t.Fatalf("a %d-byte message weighs %d: want it to fit the budget once, not twice", len(raw), w)
	}
	m := h.outcome(h.accept(organizerAddr, "bulk@"+domain, raw))
	if m.Status != store.MessageProcessed {
		t.Fatalf("bulk: %s %+v", m.Status, m.Notes)
	}
	if s := mem.Stats(); s.Refused != 0 || s.Peak == 0 {
		t.Errorf("budget stats %+v: want memory taken once, none refused", s)
	}
	h.eventually("memory given back", func() bool { return mem.Stats().Held == 0 })
}
