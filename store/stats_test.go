package store

import (
	"context"
	"testing"
	"time"
)

func TestCounters_StoredCompactlyJSONStillReads(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	e := &Event{UID: "ev1", OrganizerEmail: "org@example.org", Created: now, LastModified: now}
	err := db.Update(ctx, func(tx *Tx) error {
		if err := tx.CreateEvent(e); err != nil {
			return err
		}
		d := Counters{Attendees: 3, Invited: 3, Pending: 3}
		d.Add(StatusChange(PartNeedsAction, PartAccepted))
		return tx.Count(e.UID, e.OrganizerEmail, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{Attendees: 3, Invited: 3, Pending: 2, Accepted: 1}
	err = db.View(func(tx *Tx) error {
		if c, err := tx.EventStats(e.UID); err != nil || c != want {
			t.Errorf("event: %+v, %v; want %+v", c, err, want)
		}
		wantOrg := want
		wantOrg.Events = 1
		if c, err := tx.OrganizerStats(e.OrganizerEmail); err != nil || c != wantOrg {
			t.Errorf("organizer: %+v, %v; want %+v", c, err, wantOrg)
		}
		if c, err := tx.SystemStats(); err != nil || c.Events != 1 || c.Organizers != 1 || c.Accepted != 1 {
			t.Errorf("system: %+v, %v", c, err)
		}
		if v := tx.tx.Bucket(bEventStats).Get([]byte(e.UID)); len(v) == 0 || v[0] != countersBinary || len(v) > 20 {
			t.Errorf("event counters stored as %q, want the compact form", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Counters an earlier version stored as JSON read, and are counted on.
	err = db.Update(ctx, func(tx *Tx) error {
		if err := tx.put(bEventStats, []byte(e.UID), &Counters{Attendees: 5, Declined: 2, Pending: 3}); err != nil {
			return err
		}
		return tx.Count(e.UID, "", StatusChange(PartNeedsAction, PartDeclined))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if c, err := tx.EventStats(e.UID); err != nil || c != (Counters{Attendees: 5, Declined: 3, Pending: 2}) {
			t.Errorf("after counting on JSON: %+v, %v", c, err)
		}
		return nil
	})

	// A damaged value is an error, not a panic nor zero counters.
	for _, bad := range []string{"\x01\x80", "\x07abc", "\x01" + string(make([]byte, 14)), "{bad json"} {
		db.Update(ctx, func(tx *Tx) error { return tx.tx.Bucket(bEventStats).Put([]byte(e.UID), []byte(bad)) })
		db.View(func(tx *Tx) error {
			if c, err := tx.EventStats(e.UID); err == nil {
				t.Errorf("%q read as %+v", bad, c)
			}
			return nil
		})
	}
	db.Update(ctx, func(tx *Tx) error { return tx.putCounters(bEventStats, []byte(e.UID), Counters{}) })
}
