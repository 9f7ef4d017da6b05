// Package membudget bounds the memory that large inbound messages take
// while they are received and read. The SMTP listener takes from its
// budget once a message passes Small bytes, for the rest of it; the
// pipeline from its own before it reads a large message again; both give
// it back when done. A message under Small bytes takes nothing: the
// listener's connection limit bounds those.
package membudget

import (
	"context"
	"errors"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Small is the size below which a message's memory is not counted.
const Small = 64 << 10

// Budget is a number of bytes shared by the holders of large messages. A
// nil *Budget is unlimited: its methods take nothing and never wait.
type Budget struct {
	max     int64
	sem     *semaphore.Weighted
	held    atomic.Int64
	peak    atomic.Int64
	waiting atomic.Int64
	refused atomic.Uint64
}

// New returns a budget of max bytes, or nil (unlimited) if max <= 0.
func New(max int64) *Budget {
	if max <= 0 {
		return nil
	}
	return &Budget{max: max, sem: semaphore.NewWeighted(max)}
}

// Acquire takes n bytes, waiting until they are free or ctx ends (then it
// returns ctx's error and takes nothing). A request for more than the
// whole budget takes the whole budget, so that one message larger than
// it can still go, alone. It returns what it took, for Release.
func (b *Budget) Acquire(ctx context.Context, n int64) (int64, error) {
	if b == nil || n <= 0 {
		return 0, nil
	}
	n = min(n, b.max)
	if !b.sem.TryAcquire(n) {
		b.waiting.Add(1)
		err := b.sem.Acquire(ctx, n)
		b.waiting.Add(-1)
		if err != nil {
			if !errors.Is(err, context.Canceled) { // given up is not refused
				b.refused.Add(1)
			}
			return 0, err
		}
	}
	b.took(n)
	return n, nil
}

// TryAcquire is Acquire without the wait: it takes n bytes (at most the
// whole budget) only if they are free now and nobody waits.
func (b *Budget) TryAcquire(n int64) (int64, bool) {
	if b == nil || n <= 0 {
		return 0, true
	}
	n = min(n, b.max)
	if !b.sem.TryAcquire(n) {
		b.refused.Add(1)
		return 0, false
	}
	b.took(n)
	return n, true
}

// took records n bytes taken.
func (b *Budget) took(n int64) {
	h := b.held.Add(n)
	for p := b.peak.Load(); h > p && !b.peak.CompareAndSwap(p, h); p = b.peak.Load() {
	}
}

// Max is the budget's size, or 0 for a nil (unlimited) one.
func (b *Budget) Max() int64 {
	if b == nil {
		return 0
	}
	return b.max
}

// Release gives back n bytes that Acquire returned.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.held.Add(-n)
	b.sem.Release(n)
}

// Stats is what a Budget reports.
type Stats struct {
	Max, Held, Peak int64
	// Waiting is how many wait for bytes now; Refused how many were
	// refused since the start: their wait timed out, or TryAcquire found
	// too little free (a wait cancelled, given up, is not counted).
	Waiting int64
	Refused uint64
}

// Stats reports the budget's use; a nil Budget reports zeros.
func (b *Budget) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	return Stats{Max: b.max, Held: b.held.Load(), Peak: b.peak.Load(), Waiting: b.waiting.Load(), Refused: b.refused.Load()}
}
