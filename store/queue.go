package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// Job is one item waiting in a stage's queue.
type Job struct {
	ID    uint64 `json:"id"`
	Stage string `json:"stage"`
	Kind  string `json:"kind"`
	// Message is the inbound message this job came from, if any: outcomes
	// are noted on it.
	Message string `json:"message,omitempty"`
	// Payload is the stage's own data: valid JSON, as json.Marshal makes
	// it. It is stored as it is, not checked (see encodeJob).
	Payload   json.RawMessage `json:"payload,omitempty"`
	Created   time.Time       `json:"created"`
	Due       time.Time       `json:"due"`
	Attempts  int             `json:"attempts,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	// Failed is set on dead letters: when the job was given up.
	Failed time.Time `json:"failed,omitzero"`
	// Carry is what the stage that made the job had decoded for it, for
	// the next stage when that runs the job straight away in memory. It
	// is never stored: a job read from a queue carries nothing.
	Carry any `json:"-"`
}

func (j *Job) key() []byte {
	k := timeKey(j.Due)
	return binary.BigEndian.AppendUint64(k, j.ID)
}

// KindUndecodable is the Kind of a queued job whose record cannot be read.
const KindUndecodable = "undecodable"

func queueBucket(stage string) []byte { return []byte(queuePrefix + stage) }

// Enqueue adds a copy of j to the queue of stage, due at j.Due (now when
// zero), and returns the copy with its new ID. j itself is not changed, so
// an Update function that enqueues can safely run more than once. Stage
// workers are woken once the transaction commits.
func (tx *Tx) Enqueue(stage string, j *Job, now time.Time) (*Job, error) {
	if !tx.writable {
		return nil, ErrReadOnly
	}
	c := *j
	id, err := tx.NextID()
	if err != nil {
		return nil, err
	}
	c.ID, c.Stage = id, stage
	if c.Created.IsZero() {
		c.Created = now
	}
	if c.Due.IsZero() {
		c.Due = now
	}
	if err := tx.putJob(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (tx *Tx) putJob(j *Job) error {
	b, err := tx.tx.CreateBucketIfNotExists(queueBucket(j.Stage))
	if err != nil {
		return fmt.Errorf("store: queue %s: %w", j.Stage, err)
	}
	b.FillPercent = appendedFill // new jobs are mostly due now: see fillAppended
	data, err := encodeJob(j)
	if err != nil {
		return fmt.Errorf("store: encode job: %w", err)
	}
	if err := b.Put(j.key(), data); err != nil {
		return err
	}
	db, stage := tx.db, j.Stage
	tx.OnCommit(func() { db.queueLen(stage).Add(1) })
	tx.wakes = append(tx.wakes, stage)
	return nil
}

// encodeJob is j's record: its JSON, with the payload copied in as it is
// (see encodeSpliced).
func encodeJob(j *Job) ([]byte, error) {
	c := *j
	c.Payload = nil
	return encodeSpliced(j, &c, "payload", j.Payload)
}

// Done removes j from its queue. It fails with ErrNotFound if j is no
// longer there, so a job can never be completed twice.
func (tx *Tx) Done(j *Job) error {
	if !tx.writable {
		return ErrReadOnly
	}
	if !tx.Queued(j) {
		return fmt.Errorf("job %d in %s: %w", j.ID, j.Stage, ErrNotFound)
	}
	if err := tx.tx.Bucket(queueBucket(j.Stage)).Delete(j.key()); err != nil {
		return err
	}
	db, stage := tx.db, j.Stage
	tx.OnCommit(func() { db.queueLen(stage).Add(-1) })
	return nil
}

// Queued reports whether j is still in its queue.
func (tx *Tx) Queued(j *Job) bool {
	b := tx.tx.Bucket(queueBucket(j.Stage))
	return b != nil && b.Get(j.key()) != nil
}

// Retry puts j back in its queue, due at due, with one more attempt and
// the error that failed it. j itself is not changed.
func (tx *Tx) Retry(j *Job, due time.Time, cause string) error {
	return tx.requeue(j, due, func(r *Job) { r.Attempts++; r.LastError = cause })
}

// Defer puts j back in its queue, due at due, as it was: not an attempt.
func (tx *Tx) Defer(j *Job, due time.Time) error {
	return tx.requeue(j, due, func(*Job) {})
}

// requeue takes j out of its queue and puts back a copy due at due,
// changed by change.
func (tx *Tx) requeue(j *Job, due time.Time, change func(*Job)) error {
	if err := tx.Done(j); err != nil {
		return err
	}
	r := *j
	r.Due = due
	change(&r)
	return tx.putJob(&r)
}

// Bury moves j from its queue to the dead-letter bucket with the error
// that made it give up; its Attempts counts this last one.
func (tx *Tx) Bury(j *Job, cause string, now time.Time) error {
	if err := tx.Done(j); err != nil {
		return err
	}
	d := *j
	d.Attempts++
	d.LastError = cause
	d.Failed = now
	return tx.put(bDead, u64(d.ID), &d)
}

// DeadLetter reads the dead letter id.
func (tx *Tx) DeadLetter(id uint64) (*Job, error) {
	var j Job
	if err := tx.get(bDead, u64(id), &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Resurrect moves the dead letter id back to its stage's queue, due now,
// with its attempts reset, and returns the queued job.
func (tx *Tx) Resurrect(id uint64, now time.Time) (*Job, error) {
	j, err := tx.DeadLetter(id)
	if err != nil {
		return nil, err
	}
	if err := tx.del(bDead, u64(id)); err != nil {
		return nil, err
	}
	j.Attempts, j.Failed, j.Due, j.LastError = 0, time.Time{}, now, ""
	return tx.Enqueue(j.Stage, j, now)
}

// DeadLetters lists up to limit dead letters, oldest first, after the id
// after (0 for the start).
func (tx *Tx) DeadLetters(after uint64, limit int) ([]Job, error) {
	c := tx.tx.Bucket(bDead).Cursor()
	var out []Job
	k, v := c.Seek(u64(after + 1))
	for ; k != nil && len(out) < limit; k, v = c.Next() {
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return nil, fmt.Errorf("store: decode dead letter: %w", err)
		}
		out = append(out, j)
	}
	return out, nil
}

// Oldest returns when the first job in stage's queue fell due (whether
// a worker has it in hand or not); false if the queue is empty.
func (db *DB) Oldest(stage string) (due time.Time, ok bool) {
	_ = db.View(func(tx *Tx) error {
		if b := tx.tx.Bucket(queueBucket(stage)); b != nil {
			if k, _ := b.Cursor().First(); k != nil {
				due, ok = keyTime(k), true
			}
		}
		return nil
	})
	return due, ok
}

// Due lists up to max jobs of stage that are due at now, earliest first,
// leaving out those for which skip returns true (jobs being worked on).
// next is when the earliest job that is not yet due will be, or zero.
func (db *DB) Due(stage string, now time.Time, max int, skip func(id uint64) bool) (jobs []*Job, next time.Time, err error) {
	err = db.View(func(tx *Tx) error {
		b := tx.tx.Bucket(queueBucket(stage))
		if b == nil {
			return nil
		}
		limit := timeKey(now)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if bytes.Compare(k[:8], limit) > 0 {
				next = keyTime(k)
				return nil
			}
			if skip != nil && skip(binary.BigEndian.Uint64(k[8:16])) {
				continue
			}
			if len(jobs) >= max {
				return nil
			}
			j := new(Job)
			if err := json.Unmarshal(v, j); err != nil {
				// Hand it out anyway, as a kind no stage knows, so it is
				// dropped with a reason instead of stalling the queue.
				j = &Job{Kind: KindUndecodable, LastError: err.Error()}
			}
			j.ID, j.Stage = binary.BigEndian.Uint64(k[8:16]), stage
			j.Due = keyTime(k)
			jobs = append(jobs, j)
		}
		return nil
	})
	return jobs, next, err
}

// Wake returns a channel that receives a value after a job is queued for
// stage. It has a buffer of one: a wake-up is never lost, several collapse.
func (db *DB) Wake(stage string) <-chan struct{} { return db.wake(stage) }

// kick wakes stage's scheduler.
func (db *DB) kick(stage string) {
	select {
	case db.wake(stage) <- struct{}{}:
	default:
	}
}

// QueueLen is how many jobs wait in stage's queue (as of the last commit).
func (db *DB) QueueLen(stage string) int64 { return db.queueLen(stage).Load() }
