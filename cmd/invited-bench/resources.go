package main

import (
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// diskSnapshot is the database file and what the daemon says it holds.
type diskSnapshot struct {
	Size, Allocated int64
	Events          int64
	Attendees       int64
}

// perItem divides the growth between two snapshots by n.
func perItem(from, to diskSnapshot, n int64) (allocated, size int64) {
	if n <= 0 {
		return 0, 0
	}
	return (to.Allocated - from.Allocated) / n, (to.Size - from.Size) / n
}

// bucketUsage opens a stopped daemon's database read-only and sums the
// bytes each top-level bucket uses in its pages (nested buckets and
// overflow pages included).
func bucketUsage(path string) ([]BucketFigure, int64, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	var out []BucketFigure
	var total int64
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s := b.Stats()
			f := BucketFigure{Name: string(name), Keys: s.KeyN, InUse: int64(s.BranchInuse + s.LeafInuse)}
			total += f.InUse
			out = append(out, f)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b BucketFigure) int {
		switch {
		case a.InUse > b.InUse:
			return -1
		case a.InUse < b.InUse:
			return 1
		}
		return 0
	})
	return out, total, err
}
