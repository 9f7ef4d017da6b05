package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/store"
)

func junk(i int) []byte {
	return []byte("From: a@example.com\r\nSubject: not a calendar " + string(rune('a'+i%26)) + "\r\n\r\nhello\r\n")
}

func TestBurst_Decision(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.BurstRate = 100; c.BurstBuffer = 200 })
	h.stop() // nothing is parsed: the queue is what we accept
	accept := func(n int) {
		for i := range n {
			h.accept("a@example.com", "create@"+domain, junk(i))
		}
	}
	accept(10)
	if h.p.inBurst(time.Now()) {
		t.Fatal("a burst with 10 messages queued: a short queue is always worked")
	}
	accept(burstMinBacklog)
	if h.p.inBurst(time.Now()) {
		t.Fatal("a burst before the parse pace is known")
	}
	h.p.burst.pace = 1000 // parsed a window: faster than we accept
	if h.p.inBurst(time.Now()) {
		t.Fatal("a burst while arrivals are slower than parsing")
	}
	// However slowly the test accepted, messages are arriving now.
	now := time.Now()
	for range 10 {
		h.p.burst.arrived.add(now)
	}
	in := float64(h.p.burst.arrived.count(now))
	h.p.burst.pace, h.p.burst.learned = in/burstFactor*1.1, now // and not learned again
	if h.p.inBurst(now) {
		t.Fatalf("a burst with %v arrivals a window against a pace of %v: near the pace is no burst", in, h.p.burst.pace)
	}
	h.p.burst.pace = 1
	if !h.p.inBurst(now) {
		t.Fatalf("no burst with %d queued just now, rate 100/s, faster than parsing", h.db.QueueLen(StageParse))
	}
	if h.p.inBurst(now.Add(burstSlot * (burstRecent + 1))) {
		t.Fatal("still a burst once arrivals stopped, though the window still counts them")
	}
	if h.p.inBurst(now.Add(burstSlot * (burstSlots + 1))) {
		t.Fatal("still a burst once arrivals stopped")
	}
	accept(200 - int(h.db.QueueLen(StageParse)))
	if h.p.inBurst(time.Now()) {
		t.Fatal("a burst with the buffer full: parsing must resume")
	}
	h.p.cfg.BurstRate, h.p.cfg.BurstBuffer = -1, 10000
	if h.p.inBurst(time.Now()) {
		t.Fatal("a burst with the rate negative (off)")
	}
}

// TestBurst_HoldsThenDrains: while messages keep arriving fast, parsing
// holds back; once they stop, every one of them is worked.
func TestBurst_HoldsThenDrains(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, func(c *Config) { c.BurstRate = 20; c.BurstBuffer = 100000 })
	h.stop()
	// As if parsing had been measured at one message a window, and not
	// measured again during the test.
	h.p.burst.pace, h.p.burst.learned = 1, time.Now().Add(time.Hour)
	var ids []string
	for i := range 2 * burstMinBacklog {
		ids = append(ids, h.accept("a@example.com", "create@"+domain, junk(i)))
	}
	// Keep arriving from before parsing starts until some time after.
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan []string)
	go func() {
		var more []string
		for i := 0; ctx.Err() == nil; i++ {
			id, err := h.p.Accept(context.Background(), Envelope{Remote: "127.0.0.1:1", RcptTo: []string{"create@" + domain}}, junk(i))
			if err != nil {
				t.Error(err)
				break
			}
			more = append(more, id)
		}
		fed <- more
	}()
	// Each Accept waits for its fsync, which a slow disk can stretch past
	// the window a hold looks at (arrivals within the last burstRecent
	// slots): count an arrival every millisecond besides, so the test does
	// not depend on the disk's speed.
	injected := make(chan struct{})
	go func() {
		defer close(injected)
		for ctx.Err() == nil {
			h.p.burst.arrived.add(time.Now())
			<-time.After(time.Millisecond)
		}
	}()
	h.eventually("arrivals", func() bool { return h.p.burst.arrived.count(time.Now()) >= 4 })
	h.start()
	h.eventually("the parse scheduler to see the burst", func() bool { return h.p.burst.holding.Load() })
	held := h.db.QueueLen(StageParse)
	deadline := time.Now().Add(150 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := h.db.QueueLen(StageParse); n < held-int64(h.p.cfg.Workers[StageParse]) {
			t.Fatalf("parsed during a burst: queue went from %d to %d", held, n)
		}
		<-time.After(time.Millisecond)
	}
	cancel()
	<-injected
	ids = append(ids, <-fed...)
	for _, id := range ids {
		if m := h.outcome(id); m.Status != store.MessageRejected {
			t.Fatalf("message %s: %s, want rejected (not a calendar)", id, m.Status)
		}
	}
	if h.p.burst.holding.Load() {
		t.Error("still bursting after every message was worked")
	}
}

// TestBurst_LearnsPace: working a backlog flat out measures the pace that
// arrivals are compared with.
func TestBurst_LearnsPace(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.stop()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 / 16 {
				env := Envelope{Remote: "127.0.0.1:1", RcptTo: []string{"create@" + domain}}
				if _, err := h.p.Accept(context.Background(), env, junk(g+i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	h.start()
	h.eventually("the backlog worked off", func() bool { return h.db.QueueLen(StageParse) == 0 })
	h.stop()
	if h.p.burst.pace <= 0 {
		t.Fatalf("pace %v after parsing 2000 messages flat out", h.p.burst.pace)
	}
	if h.p.burst.holding.Load() {
		t.Fatal("held with nothing arriving")
	}
}
