package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

// TestSchema_Version1Upgraded: a file of schema 1 (JSON counters) opens,
// its counters read, and it is marked 2, which a build reading only 1
// refuses; a file of a later schema is refused.
func TestSchema_Version1Upgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	setSchema := func(v string) {
		b, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		err = b.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists(bMeta)
			if err != nil {
				return err
			}
			if err := meta.Put(keySchema, []byte(v)); err != nil {
				return err
			}
			// What version 1 wrote for the system's counters.
			return meta.Put(keySysStats, []byte(`{"organizers":1,"events":2,"attendees":3,"invited":0,"invites_sent":0,"accepted":1,"declined":0,"tentative":0,"pending":2,"delegated":0,"updates_sent":0,"cancels_sent":0,"send_failed":0}`))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setSchema("1")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open a version 1 file: %v", err)
	}
	db.View(func(tx *Tx) error {
		if c, err := tx.SystemStats(); err != nil || c != (Counters{Organizers: 1, Events: 2, Attendees: 3, Accepted: 1, Pending: 2}) {
			t.Errorf("version 1 counters: %+v, %v", c, err)
		}
		if v := tx.tx.Bucket(bMeta).Get(keySchema); string(v) != "2" {
			t.Errorf("schema after open: %q, want 2", v)
		}
		return nil
	})
	db.Close()

	setSchema("3")
	if _, err := Open(path, Options{}); !errors.Is(err, ErrSchema) {
		t.Fatalf("open a version 3 file: %v, want ErrSchema", err)
	}
}

// TestCounters_FieldsListsEveryField: a counter added to Counters but not
// to fields would never be stored.
func TestCounters_FieldsListsEveryField(t *testing.T) {
	var c Counters
	v := reflect.ValueOf(&c).Elem()
	fields := c.fields()
	if v.NumField() != len(fields) {
		t.Fatalf("Counters has %d fields, fields() lists %d", v.NumField(), len(fields))
	}
	for i := range v.NumField() {
		v.Field(i).SetInt(int64(i + 1))
	}
	for i, f := range fields {
		if *f != int64(i+1) {
			t.Errorf("fields()[%d] is not field %s", i, v.Type().Field(i).Name)
		}
	}
}
