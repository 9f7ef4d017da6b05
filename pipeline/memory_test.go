package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/invited/invited/internal/membudget"
	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/store"
)

// A large message is read only with memory from the budget it shares
// with the SMTP listener: while the budget is all taken, its parse waits,
// and it goes once memory is given back. Both ways a message reaches
// parse wait: kept from Accept (up to maxFreshMessage) and read from the
// store.
func TestParse_WaitsForMemory(t *testing.T) {
	mem := membudget.New(4 << 20)
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.Memory = mem })
	held, _ := mem.Acquire(context.Background(), 4<<20)

	var ids []string
	for i, size := range []int{100 << 10, maxFreshMessage + 50<<10} {
		ics := setProp(testdata(t, weekly), "UID", strings.Repeat("u", i+1)+"@example.org")
		ics = setProp(ics, "DESCRIPTION", folded(strings.Repeat("long agenda ", size/12)))
		cal, err := itip.ParseCalendar(strings.NewReader(ics))
		if err != nil {
			t.Fatal(err)
		}
		org := cal.Events[0].Organizer.Email
		raw := wrap(org, "REQUEST", ics)
		if readWeight(len(raw)) == 0 {
			t.Fatalf("a %d-byte message takes no memory", len(raw))
		}
		ids = append(ids, h.accept(org, "create@"+domain, raw))
	}
	h.eventually("both parses waiting for memory", func() bool { return mem.Stats().Waiting == 2 })
	for _, id := range ids {
		var m *store.Message
		h.db.View(func(tx *store.Tx) (err error) { m, err = tx.Message(id); return err })
		if m.Status != store.MessageQueued {
			t.Fatalf("message %s is %s while no memory is free", id, m.Status)
		}
	}

	mem.Release(held)
	for _, id := range ids {
		if m := h.outcome(id); m.Status != store.MessageProcessed {
			t.Errorf("message %s: %s %+v", id, m.Status, m.Notes)
		}
	}
	h.eventually("memory given back", func() bool { return mem.Stats().Held == 0 })
}

// folded is s folded into iCalendar content lines.
func folded(s string) string {
	var b strings.Builder
	for len(s) > 60 {
		b.WriteString(s[:60] + "\r\n ")
		s = s[60:]
	}
	b.WriteString(s)
	return b.String()
}
