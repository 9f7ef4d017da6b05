package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/invited/invited/internal/memo"
)

// SchemaVersion is the layout version this package writes. Version 2
// keeps counters as varints, not JSON (see putCounters). A version 1 file
// is read as it is (its JSON counters still read) and marked 2 when
// opened, so that a build which reads only version 1 refuses it rather
// than fail on the counters.
const SchemaVersion = 2

// upgradable are the earlier versions Open reads and marks current.
var upgradable = []string{"1"}

// Bucket names. Queues are "q:" + stage name.
var (
	bMeta       = []byte("meta")
	bMessages   = []byte("messages")  // id → Message
	bRaw        = []byte("raw")       // id → raw RFC 5322 bytes
	bEvents     = []byte("events")    // uid → Event
	bOrigUID    = []byte("orig_uid")  // original uid → uid
	bAttendees  = []byte("attendees") // uid 0x00 email → Attendee
	bTags       = []byte("tags")      // tag → uid 0x00 email
	bEventStats = []byte("stats_event")
	bOrgStats   = []byte("stats_org")
	bOrgs       = []byte("organizers")   // email → Organizer
	bOrgIndex   = []byte("idx_org")      // email 0x00 created uid → nil
	bSysIndex   = []byte("idx_sys")      // created uid → nil
	bSends      = []byte("sends")        // message-id → SendRecord
	bDead       = []byte("dead")         // job id → Job
	bBlocks     = []byte("blocks")       // attendee 0x00 organizer → Block
	bKeys       = []byte("keys")         // key id → APIKey
	keySchema   = []byte("schema")       // in meta
	keySysStats = []byte("system_stats") // in meta
)

const queuePrefix = "q:"

// Options configure Open.
type Options struct {
	// MaxBatch caps how many Update functions share one transaction (default 1000).
	MaxBatch int
	// NoSync skips fsync: for throwaway benchmarks only, never in production.
	NoSync bool
	// LockTimeout is how long Open waits for another process to let go of
	// the file before failing with ErrLocked (default 1s).
	LockTimeout time.Duration
	// Linger is how long a transaction holding only UpdateLater functions
	// waits for more before it commits (default 2ms; negative: not at all).
	Linger time.Duration
	// MappedBudget is how many bytes of the database's memory map may stay
	// resident before the store lets them go to the page cache (see
	// mapped.go; default 48 MiB, checked every mappedEvery; negative:
	// never).
	MappedBudget int64
}

// DB is the store. It is safe for concurrent use.
type DB struct {
	bolt     *bolt.DB
	maxBatch int
	linger   time.Duration

	reqs    chan *request
	closing chan struct{}
	done    chan struct{}
	once    sync.Once

	mu     sync.Mutex
	wakes  map[string]chan struct{}
	qlen   map[string]*atomic.Int64
	commit atomic.Int64 // transactions committed
	fns    atomic.Int64 // Update functions they held
	fnTime atomic.Int64 // nanoseconds the committer spent running them
	wrTime atomic.Int64 // and writing and syncing their transactions

	released atomic.Int64   // see releaseMapped
	watching sync.WaitGroup // watchMapped, waited for by Close
	// txns counts the transactions begun and open those not yet ended,
	// for the watcher, which sleeps (parked) while none are open or begin,
	// until began wakes it (see mapped.go).
	txns         atomic.Uint64
	open         atomic.Int64
	parked       atomic.Bool
	wakeWatcher  chan struct{}
	watcherWakes atomic.Int64 // times it was woken
	looks        atomic.Int64 // times it looked
	mapName      string       // the file as /proc/self/smaps names it
	// The mapped-page budget, and what looking at it takes: statm (nil
	// when there is nothing to watch) and otherFile, the last count of
	// file-backed resident bytes that were not the database's, used under
	// mappedMu by the watcher and by writers (Tx.wroteAttendee).
	budget         int64
	statm          *statm
	otherFile      int64
	mappedMu       sync.Mutex
	attendeeWrites atomic.Int64
	writerLooks    atomic.Int64 // looks made by writers

	events memo.Cache[string, sharedEvent] // see Tx.EventShared
}

type request struct {
	fn    func(*Tx) error
	done  chan error
	later bool // see UpdateLater
}

// Open opens (creating if needed) the store file at path.
func Open(path string, opts Options) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	} else if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db := &DB{
		bolt:        bdb,
		maxBatch:    opts.MaxBatch,
		linger:      opts.Linger,
		reqs:        make(chan *request),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
		wakeWatcher: make(chan struct{}, 1),
		wakes:       make(map[string]chan struct{}),
		qlen:        make(map[string]*atomic.Int64),
		events:      memo.Cache[string, sharedEvent]{Max: maxSharedEvents, MaxSize: maxSharedBytes, Size: func(e sharedEvent) int { return 2 * len(e.data) }},
	}
	if db.maxBatch <= 0 {
		db.maxBatch = 1000
	}
	if db.linger == 0 {
		db.linger = 2 * time.Millisecond
	}
	if err := db.init(); err != nil {
		bdb.Close()
		return nil, err
	}
	go db.commitLoop()
	if opts.MappedBudget == 0 {
		opts.MappedBudget = 48 << 20
	}
	db.mapName = mappedName(path)
	if opts.MappedBudget > 0 && canDropMapping {
		// Without statm there is nothing cheap to watch with: smaps at
		// the watcher's rate would cost more than it saves.
		if db.statm = openStatm(); db.statm != nil {
			db.budget = opts.MappedBudget
			db.watching.Add(1)
			go db.watchMapped(mappedEvery)
		}
	}
	return db, nil
}

func (db *DB) init() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bMeta, bMessages, bRaw, bEvents, bOrigUID, bAttendees, bTags,
			bEventStats, bOrgStats, bOrgs, bOrgIndex, bSysIndex, bSends, bDead, bBlocks, bKeys} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bMeta)
		switch v := meta.Get(keySchema); {
		case v == nil || slices.Contains(upgradable, string(v)):
			if err := meta.Put(keySchema, []byte(fmt.Sprint(SchemaVersion))); err != nil {
				return err
			}
		case string(v) != fmt.Sprint(SchemaVersion):
			return fmt.Errorf("%w: file has %s, this build reads %d and earlier", ErrSchema, v, SchemaVersion)
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if stage, ok := strings.CutPrefix(string(name), queuePrefix); ok {
				db.queueLen(stage).Store(int64(b.Stats().KeyN))
			}
			return nil
		})
	})
}

// Close waits for queued updates to commit and closes the file.
func (db *DB) Close() error {
	db.once.Do(func() { close(db.closing) })
	<-db.done
	db.watching.Wait()
	db.statm.close()
	return db.bolt.Close()
}

// Path is the file the store lives in.
func (db *DB) Path() string { return db.bolt.Path() }

// Size is the size of the store file in bytes.
func (db *DB) Size() (int64, error) {
	fi, err := os.Stat(db.bolt.Path())
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Commits is how many write transactions have committed since Open.
func (db *DB) Commits() int64 { return db.commit.Load() }

// Committed is how many Update functions those transactions held: over
// Commits, how well group commit shares each fsync.
func (db *DB) Committed() int64 { return db.fns.Load() }

// Writes is how many page writes (each a run of contiguous pages, meta
// pages included) the committed transactions made: over Commits, what one
// fsync has to flush.
func (db *DB) Writes() int64 {
	st := db.bolt.Stats()
	return st.TxStats.GetWrite()
}

// WriterTime is how long the one committing goroutine has spent running
// Update functions (run) and writing and syncing the transactions that
// held them (commit), failed ones included. Over a span of time, their sum
// is the fraction of it the committer was busy: near 1, writes queue
// behind it.
func (db *DB) WriterTime() (run, commit time.Duration) {
	return time.Duration(db.fnTime.Load()), time.Duration(db.wrTime.Load())
}

// Update runs fn in a write transaction shared with other concurrent
// callers and returns once that transaction is durable (or failed). If fn
// returns an error nothing it wrote is kept, and the error is returned.
func (db *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	return db.update(ctx, &request{fn: fn, done: make(chan error, 1)})
}

// UpdateLater is Update for a caller that nobody waits on (a pipeline
// stage finishing a job): a transaction made only of such functions waits
// up to Options.Linger for more before committing, so that a trickle of
// them shares one fsync instead of paying one each. A plain Update
// arriving meanwhile commits them all at once.
func (db *DB) UpdateLater(ctx context.Context, fn func(*Tx) error) error {
	return db.update(ctx, &request{fn: fn, done: make(chan error, 1), later: true})
}

func (db *DB) update(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err // an ended caller's write is never begun
	}
	select {
	case db.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.closing:
		return ErrClosed
	}
	// Once handed over, wait for the outcome even if ctx ends: the caller
	// must know whether its write is on disk.
	return <-r.done
}

// View runs fn in a read-only transaction. Write methods return ErrReadOnly.
func (db *DB) View(fn func(*Tx) error) error {
	db.began()
	defer db.ended()
	return db.bolt.View(func(btx *bolt.Tx) error {
		return fn(&Tx{db: db, tx: btx})
	})
}

func (db *DB) commitLoop() {
	defer close(db.done)
	batch := make([]*request, 0, db.maxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-db.reqs:
			batch = append(batch, r)
		case <-db.closing:
			return
		}
	fill:
		for len(batch) < db.maxBatch {
			select {
			case r := <-db.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		batch = db.gather(batch)
		db.run(batch)
	}
}

// gather waits up to db.linger for more requests while batch holds only
// UpdateLater requests, and returns the batch to commit.
func (db *DB) gather(batch []*request) []*request {
	if db.linger < 0 || len(batch) >= db.maxBatch {
		return batch
	}
	for _, r := range batch {
		if !r.later {
			return batch
		}
	}
	t := time.NewTimer(db.linger)
	defer t.Stop()
	for len(batch) < db.maxBatch {
		select {
		case r := <-db.reqs:
			batch = append(batch, r)
			if !r.later {
				return batch
			}
		case <-t.C:
			return batch
		case <-db.closing:
			return batch
		}
	}
	return batch
}

// run commits batch in one transaction. A function that fails is answered
// with its error and the others are run again without it.
func (db *DB) run(batch []*request) {
	for len(batch) > 0 {
		failed := -1
		var ferr error
		var hooks []func()
		var wakes []string
		start := time.Now()
		var ran time.Duration
		db.began()
		err := db.bolt.Update(func(btx *bolt.Tx) error {
			defer func() { ran = time.Since(start) }()
			fillAppended(btx)
			hooks, wakes = hooks[:0], wakes[:0]
			for i, r := range batch {
				tx := &Tx{db: db, tx: btx, writable: true}
				err := call(r.fn, tx)
				if err == nil {
					err = tx.flushMessages()
				}
				if err != nil {
					failed, ferr = i, err
					return err
				}
				hooks = append(hooks, tx.hooks...)
				wakes = append(wakes, tx.wakes...)
			}
			return nil
		})
		db.ended()
		db.fnTime.Add(int64(ran))
		db.wrTime.Add(int64(time.Since(start) - ran))
		if failed >= 0 {
			batch[failed].done <- ferr
			batch = append(batch[:failed:failed], batch[failed+1:]...)
			continue
		}
		if err == nil {
			db.commit.Add(1)
			db.fns.Add(int64(len(batch)))
			for _, h := range hooks {
				h()
			}
			for _, stage := range wakes {
				db.kick(stage)
			}
		} else {
			err = fmt.Errorf("store: commit: %w", err)
		}
		for _, r := range batch {
			r.done <- err
		}
		return
	}
}

// appended are the buckets whose new keys sort after the ones before
// (sequence numbers, creation times, time-ordered UIDs). The queues, keyed
// by due time, are filled the same way (putJob).
var appended = [][]byte{bRaw, bMessages, bEvents, bEventStats, bSysIndex, bDead}

// fillAppended has bbolt fill the pages of appended buckets to
// appendedFill before splitting them instead of its default 50%: when keys
// only ever come at the end, a half-full page is never filled later, and a
// commit adding ten small records would write two pages instead of four.
// (The messages' decimal ids are not quite in order where their number of
// digits grows, but each new one still lands right after the last.)
// (A writable transaction hands out one *Bucket per name, so this lasts
// until it commits.)
func fillAppended(btx *bolt.Tx) {
	for _, name := range appended {
		if b := btx.Bucket(name); b != nil {
			b.FillPercent = appendedFill
		}
	}
}

const appendedFill = 0.9

// call runs fn, turning a panic into an error so one bad function cannot
// stop the committer.
func call(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("store: panic in update: %v", v)
		}
	}()
	return fn(tx)
}

// Tx is a transaction. Values it returns are copies and stay valid after
// the transaction ends.
type Tx struct {
	db       *DB
	tx       *bolt.Tx
	writable bool
	hooks    []func()
	wakes    []string            // stages with jobs queued here, woken after every hook (see OnCommit)
	msgs     map[string]*Message // changed by this update, written when it returns (flushMessages)
}

// OnCommit registers f to run after the transaction is durable. The
// hooks of every update committed together run before the schedulers of
// the stages they queued jobs for are woken, so that what a hook leaves
// for a job (a message kept in memory, say) is there when the job runs.
func (tx *Tx) OnCommit(f func()) { tx.hooks = append(tx.hooks, f) }

// NextID returns a new id, unique in this store.
func (tx *Tx) NextID() (uint64, error) {
	if !tx.writable {
		return 0, ErrReadOnly
	}
	return tx.tx.Bucket(bMeta).NextSequence()
}

func (tx *Tx) get(bucket, key []byte, v any) error {
	b := tx.tx.Bucket(bucket)
	if b == nil {
		return ErrNotFound
	}
	data := b.Get(key)
	if data == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("store: decode %s/%q: %w", bucket, key, err)
	}
	return nil
}

func (tx *Tx) put(bucket, key []byte, v any) error {
	if !tx.writable {
		return ErrReadOnly
	}
	var data []byte
	var err error
	switch r := v.(type) {
	case *Event:
		c := *r
		c.Calendar = nil
		data, err = encodeSpliced(r, &c, "calendar", r.Calendar)
	case *Message:
		c := *r
		c.Auth = nil
		data, err = encodeSpliced(r, &c, "auth", r.Auth)
	default:
		data, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", bucket, err)
	}
	return tx.tx.Bucket(bucket).Put(key, data)
}

// encodeSpliced encodes a record whose field name holds raw, JSON its
// maker encoded (or read back from a record): without, its copy with that
// field empty (omitempty) is encoded and raw is copied in last, as it is.
// json.Marshal would check and compact raw again byte by byte: three
// quarters of the cost of storing a notice's job, and the most of storing
// an event's calendar, inside the transaction every writer waits on. Raw
// that does not begin like a JSON value goes through json.Marshal of
// whole after all, and fails there; raw that begins like one but is not
// valid JSON is the caller's bug, stored as it is: the record then does
// not decode, or, spliced into valid JSON with keys of its own, decodes
// as something else.
func encodeSpliced(whole, without any, name string, raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 || !strings.ContainsRune(`{["`, rune(raw[0])) {
		return json.Marshal(whole)
	}
	data, err := json.Marshal(without)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(data)+len(name)+4+len(raw))
	out = append(out, data[:len(data)-1]...) // without its closing brace
	if len(data) > 2 {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, name...)
	out = append(out, `":`...)
	out = append(out, raw...)
	return append(out, '}'), nil
}

func (tx *Tx) del(bucket, key []byte) error {
	if !tx.writable {
		return ErrReadOnly
	}
	return tx.tx.Bucket(bucket).Delete(key)
}

func (tx *Tx) exists(bucket, key []byte) bool {
	return tx.tx.Bucket(bucket).Get(key) != nil
}

// wake returns the channel that is signalled when a job is queued for stage.
func (db *DB) wake(stage string) chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	c, ok := db.wakes[stage]
	if !ok {
		c = make(chan struct{}, 1)
		db.wakes[stage] = c
	}
	return c
}

func (db *DB) queueLen(stage string) *atomic.Int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	n, ok := db.qlen[stage]
	if !ok {
		n = new(atomic.Int64)
		db.qlen[stage] = n
	}
	return n
}

func u64(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

func timeKey(t time.Time) []byte {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return u64(uint64(n))
}

// keyTime reads back the time a key begins with (see timeKey).
func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
}

func join(parts ...string) []byte {
	return []byte(strings.Join(parts, "\x00"))
}
