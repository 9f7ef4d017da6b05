package store

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var raw4k = make([]byte, 4096)

// BenchmarkAccept_GroupCommit is the SMTP accept path: one message and its
// parse job per Update, from many goroutines at once (b.SetParallelism
// times GOMAXPROCS), sharing fsyncs through the committer.
func BenchmarkAccept_GroupCommit(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(map[int]string{1: "writers=2", 16: "writers=32"}[par], func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			now := time.Now()
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					err := db.Update(ctx, func(tx *Tx) error {
						m := &Message{MailFrom: "a@example.org", RcptTo: []string{"create@x"}}
						if err := tx.PutMessage(m, raw4k); err != nil {
							return err
						}
						_, err := tx.Enqueue("parse", &Job{Kind: "message", Message: m.ID}, now)
						return err
					})
					if err != nil {
						b.Error(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N)/float64(db.Commits()), "msgs/commit")
		})
	}
}

// BenchmarkAccept_UpdatePerMessage is the same write with one bbolt
// transaction (one fsync) per message: the design group commit replaces.
func BenchmarkAccept_UpdatePerMessage(b *testing.B) {
	bdb, err := bolt.Open(filepath.Join(b.TempDir(), "db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer bdb.Close()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bdb.Update(func(tx *bolt.Tx) error {
				bk, _ := tx.CreateBucketIfNotExists(bRaw)
				id, _ := bk.NextSequence()
				return bk.Put(u64(id), raw4k)
			})
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkCount is one statistics update for an RSVP: event, organizer
// and system counters.
func BenchmarkCount(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.Update(context.Background(), func(tx *Tx) error {
		return tx.CreateEvent(&Event{UID: "u", OrganizerEmail: "o@x", Created: time.Now()})
	})
	// One long transaction: the cost of the counter update itself.
	db.bolt.Update(func(btx *bolt.Tx) error {
		tx := &Tx{db: db, tx: btx, writable: true}
		for b.Loop() {
			if err := tx.Count("u", "o@x", StatusChange(PartNeedsAction, PartAccepted)); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkStageTransition is one job moving between stages: delete it
// from one queue and put its successor in the next, in one transaction
// shared with other workers (8 at once).
func BenchmarkStageTransition(b *testing.B) {
	db := openTestDB(b)
	ctx := context.Background()
	now := time.Now()
	payload := []byte(`"` + string(bytes.Repeat([]byte("x"), 510)) + `"`) // a JSON string
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var j *Job
		if err := db.Update(ctx, func(tx *Tx) (err error) {
			j, err = tx.Enqueue("verify", &Job{Kind: "k", Payload: payload}, now)
			return err
		}); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			// An Update function may run twice (group commit): it must
			// not change j; the new job is taken once it committed.
			var next *Job
			err := db.Update(ctx, func(tx *Tx) (err error) {
				if err := tx.Done(j); err != nil {
					return err
				}
				next, err = tx.Enqueue("verify", &Job{Kind: "k", Payload: payload}, now)
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
			j = next
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transitions/s")
}
