package membudget

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBudget_TakesGivesBackAndWaits(t *testing.T) {
	b := New(100)
	ctx := context.Background()
	if got, err := b.Acquire(ctx, 60); got != 60 || err != nil {
		t.Fatalf("Acquire(60) = %d, %v", got, err)
	}
	if _, ok := b.TryAcquire(50); ok {
		t.Fatal("TryAcquire(50) with 40 free succeeded")
	}
	if got, ok := b.TryAcquire(40); got != 40 || !ok {
		t.Fatalf("TryAcquire(40) with 40 free = %d, %v", got, ok)
	}

	// A wait ends with its context, takes nothing and is counted.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if got, err := b.Acquire(short, 1); got != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire on a full budget = %d, %v; want 0 and the deadline", got, err)
	}
	// One given up (cancelled) takes nothing and is not counted refused.
	gone, give := context.WithCancel(ctx)
	give()
	if got, err := b.Acquire(gone, 1); got != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire given up on a full budget = %d, %v; want 0 and cancelled", got, err)
	}

	// A waiter is let in once enough is given back.
	done := make(chan int64)
	go func() {
		got, _ := b.Acquire(ctx, 50)
		done <- got
	}()
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().Waiting != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second Acquire is not waiting")
		}
		time.Sleep(time.Millisecond)
	}
	b.Release(40)
	select {
	case got := <-done:
		t.Fatalf("Acquire(50) with 40 free took %d", got)
	default:
	}
	b.Release(60)
	if got := <-done; got != 50 {
		t.Fatalf("Acquire(50) took %d", got)
	}
	b.Release(50)
	s := b.Stats()
	if s != (Stats{Max: 100, Held: 0, Peak: 100, Waiting: 0, Refused: 2}) { // TryAcquire(50), Acquire(short, 1)
		t.Errorf("stats %+v", s)
	}
}

// A request for more than the whole budget takes the whole budget: one
// message larger than it still goes, alone.
func TestBudget_LargerThanWhole(t *testing.T) {
	b := New(100)
	got, err := b.Acquire(context.Background(), 500)
	if got != 100 || err != nil {
		t.Fatalf("Acquire(500) of 100 = %d, %v", got, err)
	}
	if _, ok := b.TryAcquire(1); ok {
		t.Fatal("the budget is not all taken")
	}
	b.Release(got)
	if got, ok := b.TryAcquire(300); got != 100 || !ok {
		t.Fatalf("TryAcquire(300) of a free budget of 100 = %d, %v", got, ok)
	}
}

func TestBudget_NilIsUnlimited(t *testing.T) {
	var b *Budget
	if b = New(0); b != nil {
		t.Fatal("New(0) is not unlimited")
	}
	if got, err := b.Acquire(context.Background(), 1<<40); got != 0 || err != nil {
		t.Fatalf("nil Acquire = %d, %v", got, err)
	}
	if _, ok := b.TryAcquire(1 << 40); !ok {
		t.Fatal("nil TryAcquire refused")
	}
	b.Release(5)
	if b.Stats() != (Stats{}) || b.Max() != 0 {
		t.Errorf("nil stats %+v, max %d", b.Stats(), b.Max())
	}
}
