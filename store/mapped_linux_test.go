package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// mappedValues values of mappedValueSize bytes are what fillMapped stores:
// 25 MiB.
const mappedValues, mappedValueSize = 400, 64 << 10

// fillMapped stores mappedValues values in db's raw bucket under k0000,
// k0001, ... and returns the function that gives value i.
func fillMapped(t *testing.T, db *DB) func(int) []byte {
	t.Helper()
	value := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, mappedValueSize) }
	for i := 0; i < mappedValues; i += 50 {
		err := db.Update(context.Background(), func(tx *Tx) error {
			for j := i; j < i+50; j++ {
				if err := tx.tx.Bucket(bRaw).Put([]byte(fmt.Sprintf("k%04d", j)), value(j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return value
}

// TestReleaseMapped: letting the mapped pages go shrinks the resident set
// by about the data read, and every value reads back the same afterwards.
func TestReleaseMapped(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "invited.db"), Options{MappedBudget: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n, size = mappedValues, mappedValueSize
	value := fillMapped(t, db)
	readAll := func() {
		t.Helper()
		err := db.View(func(tx *Tx) error {
			for i := range n {
				if v := tx.tx.Bucket(bRaw).Get([]byte(fmt.Sprintf("k%04d", i))); !bytes.Equal(v, value(i)) {
					return fmt.Errorf("value %d differs (%d bytes)", i, len(v))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	resident := func() int64 {
		t.Helper()
		b, ok := residentMapped(db.mapName)
		if !ok {
			t.Fatal("the database's mapping is not in /proc/self/smaps")
		}
		return b
	}
	st := openStatm()
	db.statm = st // closed with db
	first, _ := st.residentFile()
	readAll()
	before := resident()
	total, ok := st.residentFile()
	if !ok || total < before {
		t.Fatalf("file-backed resident total %d, the database's mapping alone %d", total, before)
	}
	if total < first+n*size/2 {
		t.Fatalf("file-backed resident total %d MiB after reading 25 MiB, %d MiB before: the open statm reads stale", total>>20, first>>20)
	}
	db.budget = total + 1<<20
	if db.checkMapped() {
		t.Fatal("let go while under the budget")
	}
	db.budget = before / 2
	if !db.checkMapped() {
		t.Fatal("kept the pages while over the budget")
	}
	after := resident()
	if before < n*size/2 || after > before/4 {
		t.Errorf("resident file pages %d MiB before letting go, %d MiB after: want at least %d MiB less",
			before>>20, after>>20, n*size/2>>20)
	}
	readAll() // the same data, from the page cache
	if db.Released() != 1 {
		t.Errorf("Released() = %d", db.Released())
	}
}

// TestWatcherSleepsWhileIdle: with no transactions the watcher stops
// looking, and the next transaction wakes it.
func TestWatcherSleepsWhileIdle(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "invited.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 10s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if st := openStatm(); st == nil {
		t.Skip("no /proc/self/statm: the watcher does not run")
	} else {
		st.close()
	}
	eventually("sleep while idle", db.parked.Load)
	if n := db.watcherWakes.Load(); n != 0 {
		t.Fatalf("woken %d times with nothing read", n)
	}
	looks := db.looks.Load()
	if err := db.View(func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	eventually("wake on a read", func() bool { return db.watcherWakes.Load() == 1 })
	eventually("sleep again", db.parked.Load)
	// Once for the read, once more after it ended (it may have mapped
	// pages after the first look).
	if n := db.looks.Load() - looks; n < 2 {
		t.Errorf("looked %d times for a read, want 2", n)
	}
	if err := db.Update(context.Background(), func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	eventually("wake on a write", func() bool { return db.watcherWakes.Load() == 2 })

	// A long read keeps it looking while it lasts.
	eventually("sleep again", db.parked.Load)
	release := make(chan struct{})
	var releasing sync.Once
	free := func() { releasing.Do(func() { close(release) }) }
	defer free() // before Close, which waits for the read
	reading := make(chan error, 1)
	go func() { reading <- db.View(func(*Tx) error { <-release; return nil }) }()
	eventually("wake on a read", func() bool { return db.watcherWakes.Load() == 3 })
	looks = db.looks.Load()
	eventually("looks all along the read", func() bool { return db.looks.Load() >= looks+3*mappedIdleLooks })
	if n := db.watcherWakes.Load(); n != 3 {
		t.Errorf("went to sleep %d times while the read was open", n-3)
	}
	free()
	if err := <-reading; err != nil {
		t.Fatal(err)
	}
	eventually("sleep after the read", db.parked.Load)
}

// TestWriterLetsMappedGo: a write transaction that stores attendees looks
// at the mapped pages itself every mappedWriteEvery of them, and lets
// them go past the budget while it runs, with no watcher to do it; what
// it wrote and read stays the same.
func TestWriterLetsMappedGo(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "invited.db"), Options{MappedBudget: -1}) // no watcher
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.statm = openStatm(); db.statm == nil {
		t.Skip("no /proc/self/statm")
	}
	db.budget = 4 << 20
	const n, size = mappedValues, mappedValueSize
	value := fillMapped(t, db)
	var before, after int64
	err = db.Update(context.Background(), func(tx *Tx) error {
		for i := range n { // map every page of the values
			if v := tx.tx.Bucket(bRaw).Get([]byte(fmt.Sprintf("k%04d", i))); !bytes.Equal(v, value(i)) {
				return fmt.Errorf("value %d differs before", i)
			}
		}
		before, _ = residentMapped(db.mapName)
		for i := range mappedWriteEvery {
			if err := tx.PutAttendee(&Attendee{UID: "e", Email: fmt.Sprintf("a%d@example.com", i), Tag: fmt.Sprintf("t%d", i)}); err != nil {
				return err
			}
		}
		after, _ = residentMapped(db.mapName)
		for i := range n { // and again, from the page cache
			if v := tx.tx.Bucket(bRaw).Get([]byte(fmt.Sprintf("k%04d", i))); !bytes.Equal(v, value(i)) {
				return fmt.Errorf("value %d differs after", i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if db.writerLooks.Load() != 1 || db.Released() != 1 {
		t.Fatalf("the writer looked %d times and let go %d times for %d attendees, want once each",
			db.writerLooks.Load(), db.Released(), mappedWriteEvery)
	}
	if before < n*size/2 || after > before/4 {
		t.Errorf("the database's resident pages: %d MiB before the attendees, %d MiB after", before>>20, after>>20)
	}
	err = db.View(func(tx *Tx) error {
		a, err := tx.Attendee("e", fmt.Sprintf("a%d@example.com", mappedWriteEvery-1))
		if err != nil || a.Tag != fmt.Sprintf("t%d", mappedWriteEvery-1) {
			return fmt.Errorf("last attendee %+v, %v", a, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
