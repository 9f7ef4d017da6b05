package pipeline

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/store"
)

// A message just accepted is kept for parse as the store holds it; parse
// takes it once, and reads the store for one not kept (evicted, or
// accepted before a restart).
func TestAccept_KeptForParseAsStored(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.stop() // messages stay queued
	raw := wrap(organizerAddr, "REQUEST", testdata(t, weekly))
	original := bytes.Clone(raw)
	kept := h.accept(organizerAddr, "create@"+domain, raw)
	// The caller may use its bytes again once Accept returns (smtpd does).
	for i := range raw {
		raw[i] = 'x'
	}
	a, ok := h.p.fresh.Get(kept)
	if !ok {
		t.Fatal("a message accepted with the parse queue empty was not kept")
	}
	var stored *store.Message
	var storedRaw []byte
	if err := h.db.View(func(tx *store.Tx) (err error) {
		if stored, err = tx.Message(kept); err != nil {
			return err
		}
		storedRaw, err = tx.Raw(kept)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(a.m)
	want, _ := json.Marshal(stored)
	if !bytes.Equal(got, want) || !a.m.Received.Equal(stored.Received) || !bytes.Equal(a.raw, original) || !bytes.Equal(storedRaw, original) {
		t.Errorf("kept %s (%d bytes), stored %s (%d bytes)", got, len(a.raw), want, len(storedRaw))
	}

	// A large message is not kept: copying it would double what a burst
	// of them holds.
	big := wrap(organizerAddr, "REQUEST", setProp(testdata(t, weekly), "DESCRIPTION", strings.Repeat("x", maxFreshMessage)))
	large := h.accept(organizerAddr, "create@"+domain, big)
	if _, ok := h.p.fresh.Get(large); ok {
		t.Error("a message over maxFreshMessage was kept")
	}

	evicted := h.accept(organizerAddr, "create@"+domain, wrap(organizerAddr, "REQUEST", setProp(testdata(t, weekly), "UID", "other@example.com")))
	h.p.fresh.Delete(evicted)

	// Parsing holds back for a burst: what is accepted meanwhile waits in
	// the queue, and would only be evicted from memory.
	h.p.burst.holding.Store(true)
	held := h.accept(organizerAddr, "create@"+domain, wrap(organizerAddr, "REQUEST", setProp(testdata(t, weekly), "UID", "third@example.com")))
	h.p.burst.holding.Store(false)
	if _, ok := h.p.fresh.Get(held); ok {
		t.Error("a message accepted while parsing held back was kept")
	}

	h.start()
	for _, id := range []string{kept, large, evicted, held} {
		if m := h.outcome(id); m.Status != store.MessageProcessed {
			t.Errorf("message %s: %s, %+v", id, m.Status, m.Notes)
		}
	}
	if n := h.p.fresh.Len(); n != 0 {
		t.Errorf("%d messages still kept after parse", n)
	}
}
