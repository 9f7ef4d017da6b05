package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// e2eConfig is the open-loop end-to-end run.
type e2eConfig struct {
	Rate      float64       // messages offered per second
	Duration  time.Duration // how long they are offered
	Sessions  int           // SMTP sessions the offered messages are spread over
	PollEvery time.Duration // how often the oldest pending messages are polled
	Pollers   int           // concurrent polls
	Batch     int           // messages polled per round, oldest first
	Drain     time.Duration // how long to wait for the last ones to apply
}

// openLoop offers REQUESTs at a fixed rate, on a schedule that does not
// wait for answers, and measures for each accepted message the time from
// its 250 until GET /admin/messages/{id} shows it is no longer queued
// (processed or rejected). The time is that of the answer to the first
// poll that sees it, so it is late by up to PollEvery plus a request.
func openLoop(ctx context.Context, d *daemon, cfg e2eConfig, msg func() []byte, from string, prog *progress) (*E2EFigure, error) {
	total := int(cfg.Rate * cfg.Duration.Seconds())
	if total < 1 {
		return nil, fmt.Errorf("rate %v for %v offers no message", cfg.Rate, cfg.Duration)
	}
	jobs := make(chan struct{}, total)
	tr := newTracker()
	fig := &E2EFigure{OfferedPerSecond: cfg.Rate, Seconds: cfg.Duration.Seconds(), PollIntervalMS: ms(cfg.PollEvery)}
	cpu := startCPU(d.Pid())

	var (
		mu         sync.Mutex
		acceptLats []time.Duration
		wg         sync.WaitGroup
	)
	// The schedule: message i is due at start + i/rate, whatever happened
	// to the ones before it.
	start := time.Now()
	wg.Go(func() {
		defer close(jobs)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		released := 0
		for released < total {
			due := min(total, int(time.Since(start).Seconds()*cfg.Rate)+1)
			for ; released < due; released++ {
				jobs <- struct{}{}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	var sendersDone sync.WaitGroup
	for range cfg.Sessions {
		sendersDone.Go(func() {
			s := &sender{addr: d.SMTP, from: from, rcpt: "create@" + benchDomain}
			defer s.close()
			for range jobs {
				r := s.send(msg())
				mu.Lock()
				fig.Sent++
				switch {
				case r.Err == nil:
					fig.Accepted++
					acceptLats = append(acceptLats, r.Latency)
				case r.Deferred:
					fig.Deferred++
				default:
					fig.Errors++
				}
				mu.Unlock()
				if r.Err == nil {
					tr.add(r.ID, r.Done)
				}
			}
		})
	}
	sending := make(chan struct{})
	go func() {
		sendersDone.Wait()
		close(sending)
	}()

	// Every PollEvery, poll the Batch oldest pending messages once, Pollers
	// at a time: a round ends when all its answers are in.
	var polls atomic.Int64
	pollRound := func(ids []string) {
		next := make(chan string, len(ids))
		for _, id := range ids {
			next <- id
		}
		close(next)
		var round sync.WaitGroup
		for range min(cfg.Pollers, len(ids)) {
			round.Go(func() {
				for id := range next {
					var m messageJSON
					err := d.api.get(ctx, "/admin/messages/"+id, &m)
					polls.Add(1)
					if err == nil && m.Status != "queued" {
						tr.markApplied(id, time.Now(), m.Status)
					}
				}
			})
		}
		round.Wait()
	}
	pollStart := time.Now()
	var drainUntil time.Time
	tick := time.NewTicker(cfg.PollEvery)
	defer tick.Stop()
	timedOut := false
poll:
	for ctx.Err() == nil {
		pollRound(tr.oldest(cfg.Batch))
		select {
		case <-sending:
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(cfg.Drain)
			}
			if tr.pendingCount() == 0 {
				break poll
			}
			if time.Now().After(drainUntil) {
				timedOut = true
				break poll
			}
		default:
		}
		prog.Update("open loop: %d accepted, %d applied", tr.addedCount(), tr.appliedCount())
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	pollElapsed := time.Since(pollStart)
	wg.Wait()
	<-sending
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.Alive(); err != nil {
		return nil, err
	}
	lats, applied, rejected, last := tr.results()
	fig.Applied, fig.Rejected = applied, rejected
	fig.TimedOut = int64(tr.pendingCount())
	if timedOut {
		prog.Note("%d messages still queued %v after the last was sent", fig.TimedOut, cfg.Drain)
	}
	if applied > 0 {
		fig.AppliedPerSecond = float64(applied) / last.Sub(start).Seconds()
	}
	fig.Latency = latencyOf(lats)
	fig.AcceptLatency = latencyOf(acceptLats)
	fig.PollsPerSecond = float64(polls.Load()) / pollElapsed.Seconds()
	fig.DaemonCores = cpu.Cores()
	return fig, nil
}

// tracker holds the accepted messages not yet seen applied, oldest first.
type tracker struct {
	mu       sync.Mutex
	pending  map[string]time.Time // id → when its 250 arrived
	order    []string             // ids in the order of their 250; applied ones are skipped
	added    int64
	lats     []time.Duration
	applied  int64
	rejected int64
	last     time.Time
}

func newTracker() *tracker { return &tracker{pending: make(map[string]time.Time)} }

func (t *tracker) add(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending[id] = at
	t.order = append(t.order, id)
	t.added++
}

func (t *tracker) markApplied(id string, at time.Time, status string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	acked, ok := t.pending[id]
	if !ok {
		return // two polls of the same message saw it applied
	}
	delete(t.pending, id)
	t.lats = append(t.lats, at.Sub(acked))
	t.applied++
	if status == "rejected" {
		t.rejected++
	}
	if at.After(t.last) {
		t.last = at
	}
}

// oldest returns the k pending messages accepted first. The pipeline
// works its queues in order, so these are the next to be applied: polling
// only them keeps the polls (and the CPU they take from the daemon)
// bounded when a backlog builds up.
func (t *tracker) oldest(k int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.order) > 0 {
		if _, ok := t.pending[t.order[0]]; ok {
			break
		}
		t.order = t.order[1:]
	}
	var ids []string
	for _, id := range t.order {
		if len(ids) == k {
			break
		}
		if _, ok := t.pending[id]; ok {
			ids = append(ids, id)
		}
	}
	return ids
}

func (t *tracker) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func (t *tracker) addedCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.added
}

func (t *tracker) appliedCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.applied
}

func (t *tracker) results() ([]time.Duration, int64, int64, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lats, t.applied, t.rejected, t.last
}

// appliedLoad is what a max applied run sends, and how it counts the
// messages applied.
type appliedLoad struct {
	what string // for the report
	rcpt string
	// next is the next message and its sender; false when none are left.
	next func() (from string, msg []byte, ok bool)
	// count is a counter that each message applied adds one to.
	count func(ctx context.Context) (int64, error)
}

// requestLoad registers events of organizer: a REQUEST is applied when
// the system counts its event.
func requestLoad(d *daemon, msg func() []byte, organizer string) appliedLoad {
	return appliedLoad{
		what: "REQUESTs registering events (each queues a notice to its organizer)",
		rcpt: "create@" + benchDomain,
		next: func() (string, []byte, bool) { return organizer, msg(), true },
		count: func(ctx context.Context) (int64, error) {
			c, err := d.api.systemCounts(ctx)
			return c.Events, err
		},
	}
}

// maxApplied sends load over sessions SMTP sessions as fast as the
// pipeline applies it, keeping at most window accepted but not applied
// (so the backlog, and the wait for it afterwards, stay bounded), and
// measures the applied rate from load's counter. It runs for dur, or
// until load has nothing left to send.
func maxApplied(ctx context.Context, d *daemon, sessions, window int, dur time.Duration, load appliedLoad, prog *progress) (*MaxAppliedFigure, error) {
	base, err := load.count(ctx)
	if err != nil {
		return nil, err
	}
	var accepted, applied atomic.Int64
	mctx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	var monitorErr error
	monitorDone := make(chan struct{})
	go func() {
		defer close(monitorDone)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			n, err := load.count(mctx)
			if err != nil {
				if mctx.Err() == nil {
					monitorErr = err
				}
				return
			}
			applied.Store(n - base)
			select {
			case <-mctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	c0, err := d.api.commits(ctx)
	if err != nil {
		return nil, err
	}
	cpu := startCPU(d.Pid())
	start := time.Now()
	deadline := start.Add(dur)
	var failed atomic.Int64
	var senders sync.WaitGroup
	for range sessions {
		senders.Go(func() {
			s := &sender{addr: d.SMTP, rcpt: load.rcpt}
			defer s.close()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if accepted.Load()-applied.Load() >= int64(window) {
					time.Sleep(time.Millisecond)
					continue
				}
				from, msg, ok := load.next()
				if !ok {
					return
				}
				s.from = from
				if r := s.send(msg); r.Err == nil {
					accepted.Add(1)
				} else if failed.Add(1) > 100 {
					return
				}
			}
		})
	}
	sent := make(chan struct{})
	go func() { senders.Wait(); close(sent) }()
	// The queues shown come from /metrics, which costs the measured daemon
	// CPU: ask every few seconds, not at every check of the deadline.
	var shown time.Time
	early := false // the load ran out before the deadline
wait:
	for ctx.Err() == nil && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
		case <-sent:
			early = true
			break wait
		case <-time.After(min(500*time.Millisecond, time.Until(deadline))):
		}
		if time.Since(shown) < 5*time.Second || time.Now().After(deadline) {
			continue
		}
		shown = time.Now()
		q := ""
		if c, err := d.api.commits(ctx); err == nil {
			q = fmt.Sprint(c.queues)
		}
		prog.Update("max applied rate: %d accepted, %d applied; queued %s", accepted.Load(), applied.Load(), q)
	}
	// catchUp waits until what was accepted is applied (at most window
	// messages), the monitor stops, or until.
	catchUp := func(until time.Time) {
		for applied.Load() < accepted.Load() && time.Now().Before(until) {
			select {
			case <-monitorDone: // failed, or ctx ended
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	if early {
		// Run out early, the messages still in flight belong to the time
		// measured: wait for them before reading the clock.
		catchUp(start.Add(2 * dur))
	}
	end, err := load.count(ctx)
	elapsed := time.Since(start)
	cores, used := cpu.Cores(), cpu.Used()
	c1, cerr := d.api.commits(ctx)
	err = errors.Join(err, cerr)
	<-sent
	if err != nil {
		return nil, err
	}
	// Let the backlog apply before what follows.
	catchUp(time.Now().Add(60 * time.Second))
	stopMonitor()
	<-monitorDone
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if monitorErr != nil {
		return nil, monitorErr
	}
	if n := failed.Load(); n > 0 {
		prog.Note("%d messages were not accepted during the max applied run", n)
	}
	f := &MaxAppliedFigure{
		What:        load.what,
		Sessions:    sessions,
		Window:      window,
		Seconds:     elapsed.Seconds(),
		Accepted:    accepted.Load(),
		Applied:     end - base,
		DaemonCores: cores,
	}
	f.Commits = commitsBetween(c0, c1, f.Applied)
	f.AppliedPerSecond = float64(f.Applied) / elapsed.Seconds()
	if f.Applied > 0 {
		f.CPUPerMsgUS = float64(used.Microseconds()) / float64(f.Applied)
	}
	return f, nil
}
