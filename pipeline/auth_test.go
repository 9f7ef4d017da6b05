package pipeline

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
)

// authHarness: the organizer's domain (nilas.com) and an attendee's
// (example.com) publish SPF for 192.0.2.10 only, DKIM keys and DMARC
// p=reject; evil.example signs its own mail. Messages arrive from
// 127.0.0.1, so only a DKIM signature can prove a sender.
func authHarness(t *testing.T, policy, trusted string) (*harness, *dnstest.Signer, *dnstest.Signer, *dnstest.Signer) {
	dns := dnstest.NewResolver()
	org := dns.Domain("nilas.com", "reject", "192.0.2.10")
	att := dns.Domain("example.com", "reject", "192.0.2.10")
	evil := dns.Domain("evil.example", "", "192.0.2.99")
	h := newHarness(t, smtptest.Options{}, func(c *Config) {
		c.Auth = &senderauth.Checker{Resolver: dns, Policy: policy, TrustedAuthServID: trusted}
	})
	return h, org, att, evil
}

// mail wraps ics in a message From from, signed by s (nil: unsigned).
func signed(s *dnstest.Signer, from, method, ics string) []byte {
	raw := wrap(from, method, ics)
	raw = []byte(strings.Replace(string(raw), "Subject: test\r\n", "Subject: test\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <"+method+"@test>\r\n", 1))
	if s == nil {
		return raw
	}
	return s.Sign(raw)
}

func TestAuth_OnlyTheRealOrganizerCancels(t *testing.T) {
	for _, policy := range []string{PolicyAligned, PolicyDMARC} {
		t.Run(policy, func(t *testing.T) {
			h, org, att, evil := authHarness(t, policy, "")
			ics := testdata(t, weekly)
			id := h.accept(organizerAddr, "create@"+domain, signed(org, organizerAddr, "REQUEST", ics))
			if m := h.outcome(id); m.Status != store.MessageProcessed {
				t.Fatalf("genuine REQUEST: %+v", m.Notes)
			}
			var e *store.Event
			h.db.View(func(tx *store.Tx) (err error) {
				e, err = tx.EventByOriginalUID("flg2h6nam1cb1uqetgfkslrfrc@google.com")
				return err
			})
			h.invite(e.UID, 1, "guest@example.net")

			cancel := setProp(setProp(strings.Replace(ics, "METHOD:REQUEST", "METHOD:CANCEL", 1), "SEQUENCE", "1"), "STATUS", "CANCELLED")
			bad := []struct {
				name string
				raw  []byte
				why  string
			}{
				{"forged From, no SPF, no DKIM", signed(nil, organizerAddr, "CANCEL", cancel), "not authenticated"},
				{"DKIM of another domain", signed(evil, organizerAddr, "CANCEL", cancel), "not authenticated"},
				{"From is not the ORGANIZER", signed(att, "karim@example.com", "CANCEL", cancel), "not the event's ORGANIZER"},
			}
			for _, b := range bad {
				m := h.outcome(h.accept(organizerAddr, "create@"+domain, b.raw))
				if m.Status != store.MessageRejected || !strings.Contains(lastNote(m), b.why) {
					t.Errorf("%s: %s %q; want rejected: %s", b.name, m.Status, lastNote(m), b.why)
				}
			}
			h.eventually("queues drained", func() bool { return h.db.QueueLen(StageSend) == 0 && h.db.QueueLen(StageStage) == 0 })
			if got := h.event(e.UID); got.Status != store.StatusConfirmed || got.Sequence != 0 || len(h.filter(false)) != 1 {
				t.Fatalf("a forged CANCEL changed something: status %s seq %d, %d messages", got.Status, got.Sequence, len(h.filter(false)))
			}
			// Nobody was told anything about the forgeries either.
			if n := len(h.filter(true)); n != 1 { // the "event created" notice
				t.Errorf("%d notices, want 1", n)
			}
			m := h.outcome(h.accept(organizerAddr, "create@"+domain, signed(org, organizerAddr, "CANCEL", cancel)))
			if m.Status != store.MessageProcessed || h.event(e.UID).Status != store.StatusCancelled {
				t.Fatalf("genuine CANCEL: %s %q", m.Status, lastNote(m))
			}
			h.wait(2)
			var auth senderauth.Verdict
			h.db.View(func(tx *store.Tx) error {
				rec, _ := tx.Message(m.ID)
				return json.Unmarshal(rec.Auth, &auth)
			})
			if !auth.Authenticated || auth.DMARC != "pass" || len(auth.DKIM) != 1 || auth.DKIM[0].Domain != "nilas.com" {
				t.Errorf("the decision recorded on the message: %+v", auth)
			}
		})
	}
}

func TestAuth_OnlyTheRealAttendeeReplies(t *testing.T) {
	h, org, att, evil := authHarness(t, PolicyAligned, "")
	ics := testdata(t, weekly)
	h.outcome(h.accept(organizerAddr, "create@"+domain, signed(org, organizerAddr, "REQUEST", ics)))
	var e *store.Event
	h.db.View(func(tx *store.Tx) (err error) {
		e, err = tx.EventByOriginalUID("flg2h6nam1cb1uqetgfkslrfrc@google.com")
		return err
	})
	h.invite(e.UID, 1, "karim@example.com")
	reply := setProp(testdata(t, "google-reply-accepted-to-exchange-organizer.ics"), "UID", e.UID)
	for _, b := range []struct {
		name string
		raw  []byte
	}{
		{"forged From", signed(nil, "karim@example.com", "REPLY", reply)},
		{"DKIM of another domain", signed(evil, "karim@example.com", "REPLY", reply)},
		{"From is not the ATTENDEE", signed(org, organizerAddr, "REPLY", reply)},
	} {
		if m := h.outcome(h.accept("karim@example.com", "rsvp@"+domain, b.raw)); m.Status != store.MessageRejected {
			t.Errorf("%s: %s %q", b.name, m.Status, lastNote(m))
		}
	}
	if s := h.stats(e.UID); s.Accepted != 0 {
		t.Fatalf("a forged reply was counted: %+v", s)
	}
	h.outcome(h.accept("karim@example.com", "rsvp@"+domain, signed(att, "karim@example.com", "REPLY", reply)))
	if s := h.stats(e.UID); s.Accepted != 1 {
		t.Errorf("genuine reply not counted: %+v", s)
	}
}

func TestAuth_TrustedAuthenticationResults(t *testing.T) {
	h, _, _, _ := authHarness(t, PolicyAligned, "mx.invite.test")
	ics := testdata(t, weekly)
	ar := func(id string) string {
		return "Authentication-Results: " + id + "; spf=fail smtp.mailfrom=foobar@nilas.com;\r\n dkim=pass header.d=nilas.com; dmarc=pass header.from=nilas.com\r\n"
	}
	untrusted := append([]byte(ar("evil.example")), signed(nil, organizerAddr, "REQUEST", setProp(ics, "UID", "a@google.com"))...)
	if m := h.outcome(h.accept(organizerAddr, "create@"+domain, untrusted)); m.Status != store.MessageRejected {
		t.Errorf("untrusted Authentication-Results believed: %q", lastNote(m))
	}
	trusted := append([]byte(ar("mx.invite.test")), signed(nil, organizerAddr, "REQUEST", setProp(ics, "UID", "b@google.com"))...)
	if m := h.outcome(h.accept(organizerAddr, "create@"+domain, trusted)); m.Status != store.MessageProcessed {
		t.Errorf("trusted Authentication-Results not believed: %q", lastNote(m))
	}
}

func (h *harness) event(uid string) *store.Event {
	var e *store.Event
	h.db.View(func(tx *store.Tx) (err error) { e, err = tx.Event(uid); return err })
	return e
}
