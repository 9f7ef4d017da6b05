package store

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// bbolt reads the database through a read-only shared memory map, so every
// page a read touches counts in the daemon's resident memory until the
// kernel needs it back: a fan-out to a million attendees reads them all
// and the RSS grows to the size of the file, although the data is in the
// page cache either way. The watcher below drops the daemon's own mapping
// of those pages whenever the process's file-backed pages pass
// Options.MappedBudget with at least half of it the database's: the page cache
// keeps them (a later read is a minor fault, no disk), the kernel may
// reclaim them like any cache, and the RSS stays the heap plus the budget.

// mappedEvery is how often the watcher looks. While a million attendees
// are invited the daemon maps pages at times faster than a GB a second:
// looking ten times a second let the mapped pages pass the budget by about
// 60 MiB, fifty times by 25. A look is one small read of /proc/self/statm,
// and one of smaps only past the budget.
const mappedEvery = 10 * time.Millisecond

// mappedIdleLooks is how many looks in a row that find no transaction
// open or begun since the one before make the watcher sleep until the next
// transaction: pages are mapped only by reading them in one, so an idle
// daemon needs no looks, and wakes no core a hundred times a second for
// them. (An open transaction keeps it looking: one long read, a report of
// a million attendees, maps pages all along.)
const mappedIdleLooks = 10

// mappedWriteEvery is how many attendees are stored, across the store's
// write transactions, between two looks at the mapped pages by the writer
// itself. Storing an invitee reads a page of the attendees and of the tags
// at random, so a POST of 10 000 on an event of a million read pages faster
// than the watcher looked while the cores were busy: up to 30 MiB between
// two of its looks. A look from the writer every 128 attendees bounds that
// to about 2 MiB.
const mappedWriteEvery = 128

// wroteAttendee counts an attendee stored by tx, and every
// mappedWriteEvery looks at the mapped pages from tx's own goroutine,
// unless the watcher is looking just then. It runs on the committer, which
// every writer waits on, so it reads only statm (a few µs, against tens of
// µs a row), never smaps: it lets the pages go whenever the watcher would
// count the database's own share (mayBeOver), as if that share were over.
// Letting go once too often costs a few ms of minor faults; one look too
// few, tens of MiB.
//
// Dropping the pages inside a write transaction is safe with bbolt (checked
// against v1.5.0): its mapping is read-only and shared, and it writes with
// pwrite, so no change lives in the mapped pages; and it remaps only in
// DB.allocate, called from the commit on this same goroutine, so the
// mapping's address and size (Info().Data, tx.Size()) cannot move while
// the transaction's function runs.
func (tx *Tx) wroteAttendee() {
	db := tx.db
	if db.statm == nil || db.attendeeWrites.Add(1)%mappedWriteEvery != 0 || !db.mappedMu.TryLock() {
		return
	}
	defer db.mappedMu.Unlock()
	db.writerLooks.Add(1)
	if _, over := db.mayBeOver(); over {
		db.letGo(func() error { return dropMapping(db.bolt.Info().Data, uintptr(tx.tx.Size())) })
	}
}

// watchMapped checks the database's mapped pages in memory every
// interval until the store closes, and lets them go past db.budget bytes.
func (db *DB) watchMapped(interval time.Duration) {
	defer db.watching.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	var seen uint64
	idle := 0
	for {
		select {
		case <-db.closing:
			return
		case <-t.C:
		}
		if n := db.txns.Load(); n != seen || db.open.Load() > 0 {
			seen, idle = n, 0
		} else {
			idle++
		}
		switch {
		case idle >= mappedIdleLooks:
			t.Stop()
			if !db.parkWatcher(seen) {
				return
			}
			t.Reset(interval)
			idle = 0
		case idle <= 1: // a transaction since the last look, or the look after its end
			db.mappedMu.Lock()
			db.looks.Add(1)
			db.checkMapped()
			db.mappedMu.Unlock()
		}
	}
}

// parkWatcher waits until a transaction begins after the seen-th, and
// reports false if the store closes first.
func (db *DB) parkWatcher(seen uint64) bool {
	select {
	case <-db.wakeWatcher: // left by a transaction that began as it last woke
	default:
	}
	db.parked.Store(true)
	woken := func() bool {
		db.parked.Store(false)
		db.watcherWakes.Add(1)
		return true
	}
	if db.txns.Load() != seen || db.open.Load() > 0 {
		return woken() // one began before the flag was up
	}
	select {
	case <-db.wakeWatcher:
		return woken()
	case <-db.closing:
		db.parked.Store(false)
		return false
	}
}

// began counts a transaction for the watcher, and wakes it if it sleeps;
// ended counts its end.
func (db *DB) began() {
	db.open.Add(1)
	db.txns.Add(1)
	if db.parked.Load() {
		select {
		case db.wakeWatcher <- struct{}{}:
		default:
		}
	}
}

func (db *DB) ended() { db.open.Add(-1) }

// checkMapped lets the mapped pages go (releaseMapped) if more than half
// of db.budget of them are resident while the process's file-backed pages
// pass it, and reports whether it did. The caller holds db.mappedMu.
func (db *DB) checkMapped() bool {
	total, over := db.mayBeOver()
	if !over {
		return false
	}
	n, ok := residentMapped(db.mapName)
	if !ok {
		return false
	}
	if n <= db.budget/2 {
		db.otherFile = total - n
		return false
	}
	return db.letGo(db.releaseMapped)
}

// mayBeOver reads the process's file-backed resident total and reports
// whether the database's share of it may be over: the total, cheap to
// read and an upper bound, past the budget, and, once a count found most
// of it to be other files (db.otherFile), grown by half the budget past
// those. The costlier count of the database's own mapping (smaps) is for
// the caller to make, or not. The caller holds db.mappedMu.
func (db *DB) mayBeOver() (total int64, over bool) {
	total, ok := db.statm.residentFile()
	return total, ok && total > db.budget && total-db.otherFile > db.budget/2
}

// letGo drops the mapped pages with release, and counts it if it worked.
func (db *DB) letGo(release func() error) bool {
	if release() != nil {
		return false
	}
	db.released.Add(1)
	return true
}

// releaseMapped drops the daemon's mapping of the database's pages (see
// above). It holds a read transaction, so bbolt cannot remap meanwhile.
func (db *DB) releaseMapped() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		return dropMapping(db.bolt.Info().Data, uintptr(tx.Size()))
	})
}

// Released is how many times the mapped pages were let go.
func (db *DB) Released() int64 { return db.released.Load() }
