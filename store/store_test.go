package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTestDB opens a store in a temp dir; on cleanup it closes it and
// checks the file's consistency.
func openTestDB(t testing.TB) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "invited.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer b.Close()
		if err := b.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		}); err != nil {
			t.Errorf("consistency check: %v", err)
		}
	})
	return db
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestUpdate_GroupCommitSharesTransactions(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := db.Update(ctx, func(tx *Tx) error {
				return tx.PutMessage(&Message{MailFrom: fmt.Sprint(i)}, []byte("raw"))
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var count int
	db.View(func(tx *Tx) error {
		count = tx.tx.Bucket(bMessages).Stats().KeyN
		return nil
	})
	if count != n {
		t.Fatalf("messages = %d, want %d", count, n)
	}
	if c := db.Commits(); c >= n {
		t.Errorf("commits = %d for %d concurrent updates, want fewer (shared)", c, n)
	}
}

// A stage's scheduler is woken for the jobs queued only after every
// commit hook ran: a hook may leave what the job will look for.
func TestOnCommit_HooksRunBeforeWakeUps(t *testing.T) {
	db := openTestDB(t)
	wake := db.Wake("parse")
	var woken []bool
	err := db.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.Enqueue("parse", &Job{Kind: "message", Message: "1"}, time.Now()); err != nil {
			return err
		}
		tx.OnCommit(func() { woken = append(woken, len(wake) > 0) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(woken) != 1 || woken[0] {
		t.Errorf("the hook ran %d times; the scheduler already woken: %v", len(woken), woken)
	}
	select {
	case <-wake:
	default:
		t.Error("the scheduler was not woken for the job queued")
	}
}

func TestUpdate_FailureIsIsolated(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	results := make([]error, 50)
	for i := range results {
		wg.Go(func() {
			results[i] = db.Update(ctx, func(tx *Tx) error {
				if err := tx.PutAttendee(&Attendee{UID: "e", Email: fmt.Sprintf("a%02d@x", i), Status: PartNeedsAction}); err != nil {
					return err
				}
				if i%7 == 0 {
					return boom
				}
				if i == 3 {
					panic("bad update")
				}
				return nil
			})
		})
	}
	wg.Wait()
	var got []string
	db.View(func(tx *Tx) error {
		return tx.Attendees("e", "", func(a *Attendee) (bool, error) {
			got = append(got, a.Email)
			return true, nil
		})
	})
	want := 0
	for i, err := range results {
		switch {
		case i%7 == 0:
			if !errors.Is(err, boom) {
				t.Errorf("update %d: err = %v, want boom", i, err)
			}
		case i == 3:
			if err == nil {
				t.Errorf("update 3 panicked but returned nil")
			}
		default:
			want++
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		}
	}
	if len(got) != want {
		t.Errorf("attendees stored = %d, want %d (failed updates must leave nothing)", len(got), want)
	}
}

func TestQueue_DueRetryBury(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	var a, b Job
	err := db.Update(ctx, func(tx *Tx) error {
		pa, err := tx.Enqueue("parse", &Job{Kind: "k", Payload: []byte(`{"n":1}`)}, t0)
		if err != nil {
			return err
		}
		pb, err := tx.Enqueue("parse", &Job{Kind: "k", Due: t0.Add(time.Minute)}, t0)
		a, b = *pa, *pb
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.Wake("parse"):
	default:
		t.Fatal("no wake-up after enqueue")
	}
	if n := db.QueueLen("parse"); n != 2 {
		t.Fatalf("QueueLen = %d, want 2", n)
	}
	jobs, next, err := db.Due("parse", t0, 10, nil)
	if err != nil || len(jobs) != 1 || jobs[0].ID != a.ID || !next.Equal(b.Due) {
		t.Fatalf("Due = %v, %v, %v; want job %d and next %v", jobs, next, err, a.ID, b.Due)
	}
	if skipped, _, _ := db.Due("parse", t0, 10, func(id uint64) bool { return id == a.ID }); len(skipped) != 0 {
		t.Fatalf("Due with skip = %v, want none", skipped)
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.Retry(jobs[0], t0.Add(2*time.Minute), "try again") }); err != nil {
		t.Fatal(err)
	}
	jobs, _, _ = db.Due("parse", t0.Add(3*time.Minute), 10, nil)
	if len(jobs) != 2 || jobs[0].ID != b.ID || jobs[1].Attempts != 1 || jobs[1].LastError != "try again" {
		t.Fatalf("after retry Due = %+v", jobs)
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.Bury(jobs[1], "gave up", t0) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.Done(jobs[1]) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Done on a buried job: %v, want ErrNotFound", err)
	}
	var dead []Job
	db.View(func(tx *Tx) (err error) { dead, err = tx.DeadLetters(0, 10); return err })
	if len(dead) != 1 || dead[0].LastError != "gave up" || dead[0].Attempts != 2 {
		t.Fatalf("dead letters = %+v", dead)
	}
	if err := db.Update(ctx, func(tx *Tx) error { _, err := tx.Resurrect(dead[0].ID, t0); return err }); err != nil {
		t.Fatal(err)
	}
	if n := db.QueueLen("parse"); n != 2 {
		t.Fatalf("QueueLen after resurrect = %d, want 2", n)
	}
}

func TestEvents_IndexesNewestFirst(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	for i := range 25 {
		org := "a@x"
		if i%5 == 0 {
			org = "b@x"
		}
		err := db.Update(ctx, func(tx *Tx) error {
			return tx.CreateEvent(&Event{UID: fmt.Sprintf("u%02d", i), OriginalUID: fmt.Sprintf("o%02d", i),
				OrganizerEmail: org, Created: t0.Add(time.Duration(i) * time.Second)})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := db.Update(ctx, func(tx *Tx) error {
		return tx.CreateEvent(&Event{UID: "dup", OriginalUID: "o03", OrganizerEmail: "a@x", Created: t0})
	})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate original uid: %v, want ErrExists", err)
	}
	var all []string
	db.View(func(tx *Tx) error {
		cursor := ""
		for {
			evs, next, err := tx.OrganizerEvents("a@x", cursor, 7)
			if err != nil {
				return err
			}
			for _, e := range evs {
				all = append(all, e.UID)
			}
			if next == "" {
				return nil
			}
			cursor = next
		}
	})
	if len(all) != 20 || all[0] != "u24" || all[19] != "u01" {
		t.Fatalf("organizer a events = %v", all)
	}
	db.View(func(tx *Tx) error {
		evs, next, err := tx.SystemEvents("", 3)
		if err != nil || len(evs) != 3 || evs[0].UID != "u24" || next == "" {
			t.Errorf("system events = %v %q %v", evs, next, err)
		}
		if evs, next, err := tx.SystemEvents("", 0); len(evs) != 0 || next != "" || err != nil {
			t.Errorf("limit 0: %v %q %v", evs, next, err)
		}
		if _, _, err := tx.SystemEvents("garbage!", 3); !errors.Is(err, ErrBadCursor) {
			t.Errorf("bad cursor: %v", err)
		}
		s, _ := tx.SystemStats()
		if s.Events != 25 || s.Organizers != 2 {
			t.Errorf("system stats = %+v", s)
		}
		o, _ := tx.OrganizerStats("b@x")
		if o.Events != 5 {
			t.Errorf("organizer b stats = %+v", o)
		}
		e, err := tx.EventByOriginalUID("o07")
		if err != nil || e.UID != "u07" {
			t.Errorf("EventByOriginalUID = %v, %v", e, err)
		}
		return nil
	})
}

func TestAttendees_ResumeAfter(t *testing.T) {
	db := openTestDB(t)
	err := db.Update(context.Background(), func(tx *Tx) error {
		for i := range 10 {
			if err := tx.PutAttendee(&Attendee{UID: "e1", Email: fmt.Sprintf("p%d@x", i), Tag: fmt.Sprint("t", i)}); err != nil {
				return err
			}
		}
		return tx.PutAttendee(&Attendee{UID: "e10", Email: "other@x"})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		var got []string
		tx.Attendees("e1", "p4@x", func(a *Attendee) (bool, error) {
			got = append(got, a.Email)
			return len(got) < 3, nil
		})
		if fmt.Sprint(got) != "[p5@x p6@x p7@x]" {
			t.Errorf("after p4 = %v", got)
		}
		uid, email, err := tx.TagOwner("t3")
		if err != nil || uid != "e1" || email != "p3@x" {
			t.Errorf("TagOwner = %q %q %v", uid, email, err)
		}
		return nil
	})
}

func TestOpen_ReopenKeepsQueueLengths(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Update(context.Background(), func(tx *Tx) error {
		for range 3 {
			if _, err := tx.Enqueue("send", &Job{Kind: "x"}, t0); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err := db.Update(context.Background(), func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Update after Close: %v", err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := db.QueueLen("send"); n != 3 {
		t.Fatalf("QueueLen after reopen = %d, want 3", n)
	}
}

// TestRun_RerunAfterNeighbourFails runs a batch in which a job is retried
// and then another function fails: the batch is rolled back and run again
// without the failed one, so the retry runs twice and must still apply
// once.
func TestRun_RerunAfterNeighbourFails(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	var j *Job
	db.Update(ctx, func(tx *Tx) (err error) {
		j, err = tx.Enqueue("send", &Job{Kind: "x"}, t0)
		return err
	})
	retry := &request{fn: func(tx *Tx) error { return tx.Retry(j, t0.Add(time.Hour), "relay down") }, done: make(chan error, 1)}
	boom := errors.New("boom")
	failing := &request{fn: func(tx *Tx) error { return boom }, done: make(chan error, 1)}
	db.run([]*request{retry, failing})
	if err := <-retry.done; err != nil {
		t.Fatalf("retry in a re-run batch: %v", err)
	}
	if err := <-failing.done; !errors.Is(err, boom) {
		t.Fatalf("failing function: %v", err)
	}
	jobs, next, _ := db.Due("send", t0.Add(time.Minute), 10, nil)
	if len(jobs) != 0 || !next.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after retry: due now %v, next %v; want none now and one in an hour", jobs, next)
	}
	jobs, _, _ = db.Due("send", t0.Add(2*time.Hour), 10, nil)
	if len(jobs) != 1 || jobs[0].Attempts != 1 || jobs[0].LastError != "relay down" {
		t.Fatalf("retried job %+v", jobs)
	}
}

func TestDue_UndecodableJobIsHandedOut(t *testing.T) {
	db := openTestDB(t)
	var j *Job
	db.Update(context.Background(), func(tx *Tx) (err error) {
		if j, err = tx.Enqueue("parse", &Job{Kind: "x"}, t0); err != nil {
			return err
		}
		return tx.tx.Bucket(queueBucket("parse")).Put(j.key(), []byte("{not json"))
	})
	jobs, _, err := db.Due("parse", t0, 10, nil)
	if err != nil || len(jobs) != 1 || jobs[0].Kind != KindUndecodable || jobs[0].ID != j.ID {
		t.Fatalf("Due = %+v, %v; want the broken job as %s", jobs, err, KindUndecodable)
	}
	if err := db.Update(context.Background(), func(tx *Tx) error { return tx.Done(jobs[0]) }); err != nil {
		t.Fatalf("Done on the broken job: %v", err)
	}
}

func TestKeys_HashedCheckedRevoked(t *testing.T) {
	db := openTestDB(t)
	k, token := NewAPIKey("ci", []string{"organizer:a@x.org"}, t0)
	if strings.Contains(string(k.Hash), token) || !strings.HasPrefix(token, "inv_"+k.ID+"_") {
		t.Fatalf("token %q, key %+v", token, k)
	}
	db.Update(context.Background(), func(tx *Tx) error { return tx.PutKey(k) })
	db.View(func(tx *Tx) error {
		if got, err := tx.CheckKey(token); err != nil || got.Scopes[0] != "organizer:a@x.org" {
			t.Errorf("CheckKey(good) = %+v, %v", got, err)
		}
		for _, bad := range []string{"", token + "x", strings.Replace(token, k.ID, "nope", 1), "inv_" + k.ID, "Bearer " + token} {
			if _, err := tx.CheckKey(bad); !errors.Is(err, ErrBadKey) {
				t.Errorf("CheckKey(%q) = %v, want ErrBadKey", bad, err)
			}
		}
		return nil
	})
	k.Revoked = t0
	db.Update(context.Background(), func(tx *Tx) error { return tx.PutKey(k) })
	db.View(func(tx *Tx) error {
		if _, err := tx.CheckKey(token); !errors.Is(err, ErrBadKey) {
			t.Errorf("revoked key accepted: %v", err)
		}
		return nil
	})
}

func TestEventShared_FollowsWrites(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	update := func(fn func(*Tx) error) {
		t.Helper()
		if err := db.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	shared := func() *Event {
		t.Helper()
		var e *Event
		if err := db.View(func(tx *Tx) (err error) { e, err = tx.EventShared("u1"); return err }); err != nil {
			t.Fatal(err)
		}
		return e
	}
	update(func(tx *Tx) error {
		return tx.CreateEvent(&Event{UID: "u1", OriginalUID: "o1", OrganizerEmail: "a@x", Summary: "First", Created: t0,
			Calendar: json.RawMessage(`{"master":{}}`)})
	})
	first := shared()
	if first.Summary != "First" {
		t.Fatalf("summary %q", first.Summary)
	}
	// Read again unchanged: decoded once, so the nested bytes are shared.
	if again := shared(); &again.Calendar[0] != &first.Calendar[0] {
		t.Error("the second read decoded the event again")
	}
	e := shared()
	e.Summary = "changed by a reader" // a copy: the next reader must not see it
	if e := shared(); e.Summary != "First" {
		t.Fatalf("a reader's change leaked: %q", e.Summary)
	}
	update(func(tx *Tx) error {
		e, err := tx.Event("u1")
		if err != nil {
			return err
		}
		e.Summary, e.Sequence = "Second", 1
		return tx.PutEvent(e)
	})
	if e := shared(); e.Summary != "Second" || e.Sequence != 1 {
		t.Fatalf("after a write: %q sequence %d", e.Summary, e.Sequence)
	}
	if err := db.View(func(tx *Tx) error { _, err := tx.EventShared("nope"); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing event: %v", err)
	}
}

// TestUpdateLater_Gathers: functions nobody waits on share commits, and a
// plain Update does not wait for the linger.
func TestUpdateLater_Gathers(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "invited.db"), Options{Linger: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	put := func(tx *Tx, k string) error { return tx.tx.Bucket(bMeta).Put([]byte(k), []byte("x")) }

	later := make(chan error)
	go func() { later <- db.UpdateLater(ctx, func(tx *Tx) error { return put(tx, "later") }) }()
	// With an hour's linger, only a plain Update gets it committed.
	deadline := time.Now().Add(10 * time.Second)
	for done := false; !done; {
		if err := db.Update(ctx, func(tx *Tx) error { return put(tx, "now") }); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-later:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
			if time.Now().After(deadline) {
				t.Fatal("UpdateLater still waiting after plain Updates committed")
			}
		}
	}

	// Functions nobody waits on wait for company: ten of them, with an
	// hour's linger and room for ten, make one commit. (Without the
	// linger, the first would commit alone as soon as it came.)
	db2, err := Open(filepath.Join(t.TempDir(), "invited.db"), Options{Linger: time.Hour, MaxBatch: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	before := db2.Commits()
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			if err := db2.UpdateLater(ctx, func(tx *Tx) error { return put(tx, fmt.Sprint(g)) }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := db2.Commits() - before; n != 1 {
		t.Errorf("%d commits for 10 UpdateLater calls that fit one batch, want 1", n)
	}
}

// TestFill_AppendedBucketsFillTheirPages: jobs queued one commit after
// another fill their queue's pages, where bbolt's default would leave
// every page half empty (and write one more page per commit).
func TestFill_AppendedBucketsFillTheirPages(t *testing.T) {
	db := openTestDB(t)
	payload, _ := json.Marshal(strings.Repeat("x", 200))
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	const n = 300
	for i := range n {
		if err := db.Update(context.Background(), func(tx *Tx) error {
			_, err := tx.Enqueue("fill", &Job{Kind: "k", Payload: payload}, start.Add(time.Duration(i)*time.Second))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// And events, whose UIDs grow with time, one commit each.
	for i := range n {
		if err := db.Update(context.Background(), func(tx *Tx) error {
			return tx.CreateEvent(&Event{UID: fmt.Sprintf("e%05d", i), OrganizerEmail: "o@x", Summary: strings.Repeat("s", 200),
				Created: start.Add(time.Duration(i) * time.Second)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	leaves := func(bucket []byte) (n int) {
		db.bolt.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucket).Stats().LeafPageN; return nil })
		return n
	}
	// Jobs of about 400 bytes: nine fit a 4 KiB page filled to 90%, five
	// at bbolt's 50%.
	if perPage := float64(n) / float64(leaves(queueBucket("fill"))); perPage < 7.5 {
		t.Errorf("%d jobs on %d leaf pages (%.1f a page), want about 9", n, leaves(queueBucket("fill")), perPage)
	}
	if perPage := float64(n) / float64(leaves(bEvents)); perPage < 4.2 {
		t.Errorf("%d events on %d leaf pages (%.1f a page), want about 5 (3 at bbolt's 50%%)", n, leaves(bEvents), perPage)
	}
}

func TestQueue_Oldest(t *testing.T) {
	db := openTestDB(t)
	if _, ok := db.Oldest("send"); ok {
		t.Fatal("an empty queue has an oldest job")
	}
	err := db.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.Enqueue("send", &Job{Kind: "k", Due: t0.Add(time.Minute)}, t0); err != nil {
			return err
		}
		_, err := tx.Enqueue("send", &Job{Kind: "k"}, t0.Add(time.Second)) // due as queued
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if due, ok := db.Oldest("send"); !ok || !due.Equal(t0.Add(time.Second)) {
		t.Errorf("Oldest = %v, %v; want %v", due, ok, t0.Add(time.Second))
	}
}

// TestUpdate_EndedContextWritesNothing: an update whose context has ended
// is not run, even with the committer free to take it.
func TestUpdate_EndedContextWritesNothing(t *testing.T) {
	db := openTestDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		ran := false
		err := db.Update(ctx, func(*Tx) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) || ran {
			t.Fatalf("update with an ended context: %v, ran %v", err, ran)
		}
	}
}

// TestMessage_ChangedTwiceInOneUpdate: changes to a message within one
// update are read back within it and all written; an update that fails
// writes none of its changes.
func TestMessage_ChangedTwiceInOneUpdate(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	m := &Message{MailFrom: "a@example.com", RcptTo: []string{"create@example.net"}}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.PutMessage(m, []byte("raw")) }); err != nil {
		t.Fatal(err)
	}
	note := Note{Stage: "create", Status: MessageProcessed, Text: "registered"}
	err := db.Update(ctx, func(tx *Tx) error {
		if err := tx.SetMessageAuth(m.ID, json.RawMessage(`{"pass":true}`)); err != nil {
			return err
		}
		if err := tx.NoteMessage(m.ID, note); err != nil {
			return err
		}
		got, err := tx.Message(m.ID)
		if err != nil {
			return err
		}
		if string(got.Auth) != `{"pass":true}` || len(got.Notes) != 1 || got.Status != MessageProcessed {
			return fmt.Errorf("within the update: %+v", got)
		}
		got.Notes[0].Text = "changed by the reader" // a copy: must not reach the store
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	failed := errors.New("fails")
	err = db.Update(ctx, func(tx *Tx) error {
		if err := tx.NoteMessage(m.ID, Note{Stage: "send", Status: MessageRejected, Text: "never written"}); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("failing update: %v", err)
	}
	if err := db.View(func(tx *Tx) error { return tx.NoteMessage(m.ID, note) }); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("noting a message in a read: %v, want ErrReadOnly", err)
	}
	var got *Message
	if err := db.View(func(tx *Tx) (err error) { got, err = tx.Message(m.ID); return err }); err != nil {
		t.Fatal(err)
	}
	if string(got.Auth) != `{"pass":true}` || len(got.Notes) != 1 || got.Notes[0] != note || got.Status != MessageProcessed ||
		got.MailFrom != m.MailFrom || len(got.RcptTo) != 1 {
		t.Fatalf("stored message %+v", got)
	}
}

// TestRecords_RawKeptAsIs: the JSON a record carries from its maker (a
// job's payload, an event's calendar, a message's sender decision) is
// stored as it was encoded, and reads back the same, whatever it holds;
// raw that does not even begin like JSON is refused rather than stored.
func TestRecords_RawKeptAsIs(t *testing.T) {
	raws := []string{
		`{"uid":"e1","data":{"summary":"Tea \"and\" cake <b>","n":[1, 2, 3]}}`,
		`["a", {"b": null}]`,
		`"just a string"`,
		``,
	}
	kinds := []struct {
		name  string
		put   func(tx *Tx, i int, raw json.RawMessage) error
		check func(t *testing.T, db *DB, i int) string // the raw read back
	}{
		{"job payload", func(tx *Tx, i int, raw json.RawMessage) error {
			_, err := tx.Enqueue("send", &Job{Kind: "notify", Message: strconv.Itoa(i), Payload: raw}, t0)
			return err
		}, func(t *testing.T, db *DB, i int) string {
			jobs, _, err := db.Due("send", t0.Add(time.Hour), 100, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				if j.Message == strconv.Itoa(i) {
					if j.Kind != "notify" || j.Stage != "send" || !j.Due.Equal(t0) {
						t.Errorf("job read back as %+v", j)
					}
					return string(j.Payload)
				}
			}
			t.Fatalf("job %d not found", i)
			return ""
		}},
		{"event calendar", func(tx *Tx, i int, raw json.RawMessage) error {
			return tx.CreateEvent(&Event{UID: fmt.Sprintf("e%d", i), OrganizerEmail: "o@example.org", Created: t0, Summary: "S", Calendar: raw})
		}, func(t *testing.T, db *DB, i int) string {
			var e *Event
			if err := db.View(func(tx *Tx) (err error) { e, err = tx.Event(fmt.Sprintf("e%d", i)); return err }); err != nil {
				t.Fatal(err)
			}
			if e.Summary != "S" || e.OrganizerEmail != "o@example.org" || !e.Created.Equal(t0) {
				t.Errorf("event read back as %+v", e)
			}
			return string(e.Calendar)
		}},
		{"message auth", func(tx *Tx, i int, raw json.RawMessage) error {
			m := &Message{MailFrom: "a@example.org", RcptTo: []string{"create@x"}, Received: t0}
			if err := tx.PutMessage(m, []byte("raw")); err != nil {
				return err
			}
			if m.ID != strconv.Itoa(i+1) {
				return fmt.Errorf("message id %s, want %d", m.ID, i+1)
			}
			return tx.SetMessageAuth(m.ID, raw)
		}, func(t *testing.T, db *DB, i int) string {
			var m *Message
			if err := db.View(func(tx *Tx) (err error) { m, err = tx.Message(strconv.Itoa(i + 1)); return err }); err != nil {
				t.Fatal(err)
			}
			if m.MailFrom != "a@example.org" || len(m.RcptTo) != 1 || m.Status != MessageQueued {
				t.Errorf("message read back as %+v", m)
			}
			return string(m.Auth)
		}},
	}
	ctx := context.Background()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			db := openTestDB(t)
			for i, raw := range raws {
				if err := db.Update(ctx, func(tx *Tx) error { return k.put(tx, i, json.RawMessage(raw)) }); err != nil {
					t.Fatalf("%q: %v", raw, err)
				}
			}
			for i, raw := range raws {
				if got := k.check(t, db, i); got != raw {
					t.Errorf("%q read back as %q", raw, got)
				}
			}
			err := db.Update(ctx, func(tx *Tx) error { return k.put(tx, len(raws), json.RawMessage(`nope`)) })
			if err == nil {
				t.Error("raw that is not JSON was stored")
			}
		})
	}
}
