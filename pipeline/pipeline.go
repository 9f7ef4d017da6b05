// Package pipeline turns accepted messages and invite requests into
// events, attendees, statistics and outbound invites, through the stages
// parse → verify → create → stage → send.
//
// Each stage is a durable queue in the store plus a few workers. A worker
// does its slow part (reading MIME, rendering, talking to the relay)
// outside any transaction, then removes its job and writes its results and
// the next stage's jobs in one transaction. Parse and verify run the jobs
// they pass on through the next inbound stages at once when they can (see
// ahead), so a message usually goes from parse to create in one
// transaction. A crash replays the stages run since the last commit, which
// only read; nothing is lost and nothing is counted twice.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/invited/invited/internal/membudget"
	"github.com/invited/invited/internal/memo"
	"github.com/invited/invited/itip"
	"github.com/invited/invited/mailer"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
	"github.com/invited/invited/templates"
)

// Stage names, which are also the store's queue names.
const (
	StageParse  = "parse"
	StageVerify = "verify"
	StageCreate = "create"
	StageStage  = "stage"
	StageSend   = "send"
)

// Stages lists the stages in order.
var Stages = []string{StageParse, StageVerify, StageCreate, StageStage, StageSend}

// Auth policies: see senderauth.
const (
	PolicyNone    = senderauth.PolicyNone
	PolicyAligned = senderauth.PolicyAligned
	PolicyDMARC   = senderauth.PolicyDMARC
)

// Sender delivers one rendered message (mailer.Relay, mailer.Outbox).
type Sender = mailer.Sender

// Config configures a Pipeline. Zero fields take the defaults noted.
type Config struct {
	Domain string // served domain, e.g. invite.example.com
	// Local parts of the mailboxes (defaults create, rsvp, bulk, unsubscribe).
	CreateLocal, RSVPLocal, BulkLocal, UnsubscribeLocal string
	// Auth decides who sent each message (default: policy aligned, the
	// system's DNS). A command must pass its policy, and its From must be
	// the ORGANIZER (the ATTENDEE of a reply) unless the policy is none.
	Auth *senderauth.Checker
	// Workers per stage (default 16 for parse, which usually does verify's
	// and create's work too, 8 for verify and create, 2 for stage, 32 for
	// send).
	Workers map[string]int
	// MaxAttempts before a job becomes a dead letter (default 10).
	MaxAttempts int
	// Backoff after the first failure, doubled each time (default 2s), capped at MaxBackoff (default 1h).
	Backoff, MaxBackoff time.Duration
	// MaxInbound is the inbound queue depth past which Busy reports true (default 10000).
	MaxInbound int64
	// BurstRate and BurstBuffer: while messages are accepted faster than
	// they are worked, at BurstRate a second or more, and fewer than
	// BurstBuffer wait in the inbound stages, the parse stage yields the
	// CPU to the SMTP listener (see burst.go; defaults 200/s and MaxInbound/2; a
	// negative rate: never).
	BurstRate   float64
	BurstBuffer int64
	// SendYield is how long at most outbound mail is put off while the
	// inbound stages are overloaded (see sendsWhileInboundBusy; default 1
	// minute; negative: never put off).
	SendYield time.Duration
	// FanoutBatch is how many attendees one stage transaction fans out to (default 500).
	FanoutBatch int
	// EventLimit is how many events an organizer without a subscription
	// may register, InviteLimit how many people may be invited to one
	// event, unless the organizer's record says otherwise (defaults 100
	// and 50000; negative: no limit).
	EventLimit, InviteLimit int
	// MaxBulkRows bounds the rows of a CSV mailed to bulk@ (default
	// 50000); a longer file is refused whole.
	MaxBulkRows int
	// PublicURL is the HTTP API as people reach it, for links in notices
	// (default http://localhost).
	PublicURL string
	// UpgradeURL is where organizers buy a subscription, named in the
	// event limit notice (default none: "contact the administrator").
	UpgradeURL string
	// MIME bounds reading inbound messages: nesting depth, parts, decoded
	// size of a calendar or CSV part (zero fields: itip's defaults, 10, 200
	// and 5 MiB).
	MIME itip.Limits
	// DomainRate is how many messages a second go to one recipient domain
	// (default 50; negative: no limit); a 4xx answer pauses that domain
	// from Backoff, doubling, up to MaxBackoff.
	DomainRate float64
	// DrainTimeout is how long Run lets jobs in hand finish after its
	// context ends before cancelling them (default 30s); a cancelled job
	// stays queued for the next start.
	DrainTimeout time.Duration
	// Memory, when set, bounds what reading large messages again holds at
	// once (see memory.go); the daemon gives the SMTP listener a budget of
	// its own.
	Memory *membudget.Budget
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Templates renders message bodies (default: the embedded set).
	Templates *templates.Set
}

func (c *Config) setDefaults() error {
	if c.Domain == "" {
		return errors.New("pipeline: no domain")
	}
	c.Domain = strings.ToLower(c.Domain)
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.CreateLocal, "create")
	def(&c.RSVPLocal, "rsvp")
	def(&c.BulkLocal, "bulk")
	def(&c.UnsubscribeLocal, "unsubscribe")
	if c.Auth == nil {
		c.Auth = &senderauth.Checker{Policy: PolicyAligned, Resolver: senderauth.NewResolver("")}
	}
	switch c.Auth.Policy {
	case PolicyNone, PolicyAligned, PolicyDMARC:
	default:
		return fmt.Errorf("pipeline: unknown auth policy %q", c.Auth.Policy)
	}
	w := map[string]int{StageParse: 16, StageVerify: 8, StageCreate: 8, StageStage: 2, StageSend: 32}
	for k, v := range c.Workers {
		if v > 0 {
			w[k] = v
		}
	}
	c.Workers = w
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.Backoff <= 0 {
		c.Backoff = 2 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Hour
	}
	if c.MaxInbound <= 0 {
		c.MaxInbound = 10000
	}
	if c.BurstRate == 0 {
		c.BurstRate = 200
	}
	if c.BurstBuffer <= 0 {
		c.BurstBuffer = c.MaxInbound / 2
	}
	if c.SendYield == 0 {
		c.SendYield = time.Minute
	}
	if c.FanoutBatch <= 0 {
		c.FanoutBatch = 500
	}
	if c.EventLimit == 0 {
		c.EventLimit = 100
	}
	if c.InviteLimit == 0 {
		c.InviteLimit = 50000
	}
	if c.MaxBulkRows <= 0 {
		c.MaxBulkRows = 50000
	}
	if c.DomainRate == 0 {
		c.DomainRate = 50
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://localhost"
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Templates == nil {
		t, err := templates.New("")
		if err != nil {
			return err
		}
		c.Templates = t
	}
	return nil
}

// Pipeline is the set of stages. Create it with New and start it with Run.
type Pipeline struct {
	cfg    Config
	db     *store.DB
	sender Sender
	log    *slog.Logger
	stages map[string]*stage
	sends  *throttle

	dataCache memo.Cache[dataKey, *eventData] // see eventData

	// unchained queues every job a stage passes on instead of running it
	// ahead (tests of what happens between stages).
	unchained bool

	burst   burst                        // see burst.go
	fresh   memo.Cache[string, accepted] // messages just accepted, see Accept
	handoff memo.Cache[calKey, []byte]   // calendars parse read, see handoff.go
	bulk    memo.Cache[calKey, bulkFile] // CSV rows bulk batches read, see bulk.go
}

// stage is one queue and how its jobs are handled.
type stage struct {
	name    string
	workers int
	busy    atomic.Int64 // jobs in hand, as its scheduler last counted them
	// step does the work of a job outside any transaction and returns
	// what to write when the job is completed.
	step func(ctx context.Context, j *store.Job) (outcome, error)
}

// outcome is what a stage made of a job: what to write as the job is
// completed, and the jobs it passes on to the next stage, to. The worker
// either runs those at once (see ahead) or queues them.
type outcome struct {
	apply func(*store.Tx) error
	next  []*store.Job
	to    string
	// more: apply queues a later job of the same stage for the message
	// (the next batch of a bulk file), which has not left the stage yet.
	more bool
	// memory is what the stage took from Config.Memory, given back once
	// the outcome is written (or not). Only parse takes any, and parse is
	// never run ahead; the stages run ahead of it read under its memory.
	memory int64
}

// only is a stage whose jobs pass nothing on but through what they write.
func only(handle func(context.Context, *store.Job) (func(*store.Tx) error, error)) func(context.Context, *store.Job) (outcome, error) {
	return func(ctx context.Context, j *store.Job) (outcome, error) {
		apply, err := handle(ctx, j)
		return outcome{apply: apply}, err
	}
}

// New returns a pipeline over db that delivers through sender.
func New(cfg Config, db *store.DB, sender Sender, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, db: db, sender: sender, log: log,
		sends: newThrottle(cfg.DomainRate, int(max(cfg.DomainRate, 1)), cfg.Backoff, cfg.MaxBackoff)}
	p.stages = map[string]*stage{
		StageParse:  {name: StageParse, step: p.parse},
		StageVerify: {name: StageVerify, step: p.verify},
		StageCreate: {name: StageCreate, step: p.create},
		StageStage:  {name: StageStage, step: only(p.fanout)},
		StageSend:   {name: StageSend, step: only(p.send)},
	}
	for name, st := range p.stages {
		st.workers = cfg.Workers[name]
	}
	p.fresh.Max, p.fresh.MaxSize, p.fresh.Size = 2*maxFresh, maxFreshBytes, func(a accepted) int { return len(a.raw) }
	p.handoff.Max, p.handoff.MaxSize, p.handoff.Size = 1<<16, maxHandoffBytes, func(b []byte) int { return len(b) }
	p.bulk.Max, p.bulk.MaxSize, p.bulk.Size = 1<<12, maxBulkCachedRows, func(f bulkFile) int { return len(f.rows) }
	return p, nil
}

// Run works the queues until ctx ends, then lets the jobs in hand finish
// and returns. Jobs still queued are picked up by the next Run.
func (p *Pipeline) Run(ctx context.Context) error {
	// Jobs keep running after ctx ends so that SIGTERM drains them, for
	// DrainTimeout at most.
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.DrainTimeout, cancel)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stop()
	var wg sync.WaitGroup
	for _, name := range Stages {
		st := p.stages[name]
		wg.Go(func() { p.schedule(ctx, work, st) })
	}
	wg.Wait()
	return nil
}

// schedule hands due jobs of st to at most st.workers goroutines. It wakes
// on a new job, a finished job, or the next retry falling due.
//
// A finished job leaves the in-flight set only here, at the top of the
// loop, after its worker's commit: every queue read that follows sees that
// commit, so a job is never handed out again once it is done.
func (p *Pipeline) schedule(ctx, workCtx context.Context, st *stage) {
	var (
		inflight = make(map[uint64]bool)
		wg       sync.WaitGroup
		finished = make(chan uint64, st.workers)
		timer    = time.NewTimer(time.Hour)
		started  time.Time // when the last send started while yielding
	)
	defer timer.Stop()
	skip := func(id uint64) bool { return inflight[id] }
	for {
	drain:
		for {
			select {
			case id := <-finished:
				delete(inflight, id)
			default:
				break drain
			}
		}
		free := st.workers - len(inflight)
		var next, now time.Time
		yielding := st.name == StageSend && p.SendsYielding()
		if yielding {
			// Look again shortly: nothing on this stage's side says when
			// the inbound work lets up.
			// (Config.Now rather than the real clock: in production they
			// are one, and a test can stop it.)
			now = p.cfg.Now()
			free = min(free, max(sendsWhileInboundBusy, st.workers/8)-len(inflight), 1)
			next = now.Add(burstSlot)
			if d := now.Sub(started); d >= 0 && d < burstSlot {
				free, next = 0, started.Add(burstSlot)
			}
		}
		if st.name == StageParse && p.yieldToSMTP() {
			// Look again shortly: the burst ends when arrivals slow down.
			next = p.cfg.Now().Add(burstSlot)
		} else if free > 0 {
			jobs, n, err := p.db.Due(st.name, p.cfg.Now(), free, skip)
			if err != nil {
				p.log.Error("read queue", "stage", st.name, "err", err)
			}
			if next.IsZero() || !n.IsZero() && n.Before(next) {
				next = n
			}
			if yielding && len(jobs) > 0 {
				started = now
			}
			for _, j := range jobs {
				inflight[j.ID] = true
				wg.Go(func() {
					defer func() { finished <- j.ID }()
					p.work(workCtx, st, j)
				})
			}
		}
		st.busy.Store(int64(len(inflight)))
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(p.cfg.Now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-p.db.Wake(st.name):
		case id := <-finished:
			delete(inflight, id)
		case <-timer.C:
		}
	}
}

// sendsWhileInboundBusy is how many sends run at once while the inbound
// stages are overloaded (an eighth of the send workers, if more), for at
// most Config.SendYield, and no more than one starts in each burstSlot
// (100 a second): a relay on the same machine answers in a millisecond,
// and four at a time would still take a core. A send that is only put off
// again (its domain's pace) uses its slot too. Inbound work that fills them
// (a storm of registrations or replies) is what senders are waiting on;
// the notices and invites queued meanwhile are put off, a few going out at
// a time, and catch up once it lets up, rather than taking the cores from
// it. Not none: outbound mail never stops.
const sendsWhileInboundBusy = 4

// SendsYielding reports whether sends yield to inbound work now (see
// sendsWhileInboundBusy): not once the oldest queued send has been due
// for Config.SendYield, overload or not.
func (p *Pipeline) SendsYielding() bool {
	if p.cfg.SendYield < 0 || !p.inboundBusy() {
		return false
	}
	due, ok := p.db.Oldest(StageSend)
	return !ok || p.cfg.Now().Sub(due) < p.cfg.SendYield
}

// inboundBusy reports whether the inbound stages are overloaded: parsing
// holds back for a burst, or every parse worker has a job in hand with
// burstMinBacklog or more queued. A few slow messages (a sender's DNS
// timing out) keep the workers busy without a backlog, and hold nothing
// back.
func (p *Pipeline) inboundBusy() bool {
	if p.burst.holding.Load() {
		return true
	}
	st := p.stages[StageParse]
	return st.busy.Load() >= int64(st.workers) && p.inboundLen() >= burstMinBacklog
}

// yieldToSMTP is inBurst, logging when a burst starts and ends. Only the
// parse scheduler calls it.
func (p *Pipeline) yieldToSMTP() bool {
	b := p.inBurst(time.Now())
	if p.burst.holding.Swap(b) != b {
		if b {
			p.burst.holds.Add(1)
			p.log.Info("burst: parsing yields to the SMTP listener", "queued", p.inboundLen())
		} else {
			p.log.Info("burst over: parsing resumes", "queued", p.inboundLen())
		}
	}
	return b
}

// work runs one job and commits its outcome: done with results, rejected
// with a reason, retried later, or buried as a dead letter.
func (p *Pipeline) work(ctx context.Context, st *stage, j *store.Job) {
	// A job has left the inbound stages once create completed it, or an
	// inbound stage rejected or buried it: the pace bursts are measured
	// against. Retries and deferrals have not left.
	left := false
	defer func() {
		if left {
			p.burst.worked.add(time.Now())
			p.burst.left.Add(1)
		}
	}()
	// Sends finish in a trickle that nobody waits on: let their commits
	// gather. Inbound stages commit at once, they are on a message's way
	// to being applied.
	commit := p.db.Update
	if st.name == StageSend {
		commit = p.db.UpdateLater
	}
	log := p.log.With("stage", st.name, "job", j.ID, "kind", j.Kind)
	if j.Message != "" {
		log = log.With("msg_id", j.Message)
	}
	var whole bool // the job, and all it passed on, left the inbound stages
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("pipeline: panic: %v", v)
				log.Error("panic in stage", "panic", v)
			}
		}()
		if j.Kind == store.KindUndecodable {
			return reject("unreadable job: %s", j.LastError)
		}
		o, err := st.step(ctx, j)
		if err != nil {
			return err
		}
		defer p.cfg.Memory.Release(o.memory)
		var next []*ranAhead
		if p.unchained {
			next = queued(o.to, o.next)
		} else {
			// What the job holds covers its message for the stages run
			// ahead of it (readRaw).
			actx := ctx
			if o.memory > 0 {
				actx = context.WithValue(ctx, memoryHeldFor{}, j.Message)
			}
			next = p.ahead(actx, o.to, o.next)
		}
		write := func(tx *store.Tx) error {
			if err := tx.Done(j); err != nil {
				return fmt.Errorf("%w: %w", errGone, err)
			}
			if o.apply != nil {
				if err := o.apply(tx); err != nil {
					return err
				}
			}
			return p.writeAhead(tx, next)
		}
		for {
			// What is to be queued is encoded outside the transaction,
			// anew after a round below marks one more job to be queued.
			if err = p.encodeQueued(next); err != nil {
				break
			}
			err = commit(ctx, write)
			var failed *aheadError
			if !errors.As(err, &failed) {
				break
			}
			// What a job run ahead wrote failed: queue it instead, so that
			// its own stage meets the failure and deals with it (reject,
			// retry, defer) as it would have without running ahead. Each
			// round queues one more job: this ends.
			log.Debug("a stage run ahead failed; queuing its job", "stage", failed.r.stage, "err", failed.err)
			failed.r.queue = true
		}
		whole = err == nil && inbound(st.name) && !o.more && allAhead(next)
		return err
	}()
	if err == nil {
		left = whole
		return
	}
	if errors.Is(err, errGone) {
		log.Debug("job was already completed", "err", err)
		return
	}
	now := p.cfg.Now()
	var rej *Rejection
	d, deferred := isDeferral(err)
	switch {
	case deferred:
		log.Debug("deferred", "in", d.wait, "why", d.why)
		err = commit(ctx, func(tx *store.Tx) error { return tx.Defer(j, now.Add(d.wait)) })
	case errors.As(err, &rej):
		left = inbound(st.name)
		log.Info("rejected", "reason", rej.Reason)
		err = commit(ctx, func(tx *store.Tx) error {
			if err := tx.Done(j); err != nil {
				return err
			}
			return p.rejected(tx, j, rej)
		})
	case j.Attempts+1 >= p.cfg.MaxAttempts:
		left = inbound(st.name)
		log.Error("giving up", "attempts", j.Attempts+1, "err", err)
		cause := err.Error()
		err = commit(ctx, func(tx *store.Tx) error {
			if err := tx.Bury(j, cause, now); err != nil {
				return err
			}
			p.forget(tx, j)
			return p.note(tx, j, store.MessageRejected, fmt.Sprintf("failed after %d attempts: %s", j.Attempts+1, cause))
		})
	default:
		delay := p.backoff(j.Attempts)
		log.Warn("will retry", "attempt", j.Attempts+1, "in", delay, "err", err)
		cause := err.Error()
		err = commit(ctx, func(tx *store.Tx) error { return tx.Retry(j, now.Add(delay), cause) })
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Error("record job outcome", "err", err)
	}
}

// ranAhead is a job passed on to stage, as run ahead: what it writes and
// the jobs it passed on in turn, or, when queue is set, nothing but the
// job queued for its stage.
type ranAhead struct {
	stage string
	job   *store.Job // as passed on
	write func(*store.Tx) error
	next  []*ranAhead
	queue bool
	more  bool // see outcome
}

// queued is jobs passed on to stage to, to be queued there.
func queued(to string, jobs []*store.Job) []*ranAhead {
	rs := make([]*ranAhead, len(jobs))
	for i, jb := range jobs {
		rs[i] = &ranAhead{stage: to, job: jb, queue: true}
	}
	return rs
}

// ahead runs jobs, just passed on to stage to, through that stage and the
// ones after it as far as each succeeds, so that their writes join the
// transaction that completes the job they came from: a message goes from
// parse to create in one transaction instead of three. A job its stage
// rejects is rejected there and then; one that fails otherwise (a
// deferral, an error) is queued for its stage as usual.
//
// Nothing is lost to a crash: until that transaction commits the first job
// is still queued, and the stages run ahead read, but never write, outside
// it, so running them all again is safe.
func (p *Pipeline) ahead(ctx context.Context, to string, jobs []*store.Job) []*ranAhead {
	st := p.stages[to]
	rs := queued(to, jobs)
	for _, r := range rs {
		j := *r.job
		j.Stage = to // for the notes it writes
		o, err := st.step(ctx, &j)
		var rej *Rejection
		switch {
		case errors.As(err, &rej):
			p.log.Info("rejected", "stage", to, "kind", j.Kind, "msg_id", j.Message, "reason", rej.Reason)
			r.write, r.queue = func(tx *store.Tx) error { return p.rejected(tx, &j, rej) }, false
		case err == nil:
			r.write, r.next, r.queue, r.more = o.apply, p.ahead(ctx, o.to, o.next), false, o.more
		}
	}
	return rs
}

// aheadError is a write of a job run ahead that failed.
type aheadError struct {
	r   *ranAhead
	err error
}

func (e *aheadError) Error() string { return e.r.stage + " (run ahead): " + e.err.Error() }
func (e *aheadError) Unwrap() error { return e.err }

// writeAhead writes what the jobs run ahead made of themselves, or queues
// them.
func (p *Pipeline) writeAhead(tx *store.Tx, rs []*ranAhead) error {
	for _, r := range rs {
		if r.queue {
			if _, err := tx.Enqueue(r.stage, r.job, p.cfg.Now()); err != nil {
				return err
			}
			continue
		}
		if r.write != nil {
			if err := r.write(tx); err != nil {
				return &aheadError{r, err}
			}
		}
		if err := p.writeAhead(tx, r.next); err != nil {
			return err
		}
	}
	return nil
}

// encodeQueued encodes the commands among rs to be queued
// (encodeCommand), before the transaction that queues them: encoding a
// calendar is no work for the committer, which every writer waits on.
// Commands already encoded are left as they are.
func (p *Pipeline) encodeQueued(rs []*ranAhead) error {
	for _, r := range rs {
		if r.queue {
			if err := p.encodeCommand(r.job); err != nil {
				return err
			}
		}
		if err := p.encodeQueued(r.next); err != nil {
			return err
		}
	}
	return nil
}

// allAhead reports whether no job run ahead was queued, nor queued a later
// job of its own (see outcome.more): every one went through the inbound
// stages.
func allAhead(rs []*ranAhead) bool {
	for _, r := range rs {
		if r.queue || r.more || !allAhead(r.next) {
			return false
		}
	}
	return true
}

// rejected writes the rejection of job j: what goes with it, and the
// note on its message.
func (p *Pipeline) rejected(tx *store.Tx, j *store.Job, rej *Rejection) error {
	if rej.apply != nil {
		if err := rej.apply(tx); err != nil {
			return err
		}
	}
	p.forget(tx, j)
	return p.note(tx, j, store.MessageRejected, rej.Reason)
}

// forget lets go, once tx commits, of what was kept for job j, which is
// done with it: the calendar parse handed off for a command, the rows read
// from a bulk file. (The stages that finish a job normally let go of it
// themselves, knowing its part: create, and bulk's last batch.)
func (p *Pipeline) forget(tx *store.Tx, j *store.Job) {
	switch j.Kind {
	case kindRequest, kindCancel, kindReply:
		if j.Payload == nil {
			break // a command kept in memory (commandJobOf) handed nothing off
		}
		if c, err := decode[commandJob](j); err == nil {
			k := calKey{j.Message, c.Part}
			tx.OnCommit(func() { p.handoff.Delete(k) })
		}
	case kindBulk:
		if b, err := decode[bulkJob](j); err == nil {
			k := calKey{j.Message, b.Part}
			tx.OnCommit(func() { p.bulk.Delete(k) })
		}
	}
}

// errGone means a job was no longer in its queue when its worker finished.
var errGone = errors.New("pipeline: job no longer queued")

// backoff is the delay before attempt n+1: doubling from cfg.Backoff,
// capped, with ±20% jitter so retries of a burst spread out.
func (p *Pipeline) backoff(n int) time.Duration {
	d := p.cfg.Backoff
	for range n {
		d *= 2
		if d >= p.cfg.MaxBackoff {
			d = p.cfg.MaxBackoff
			break
		}
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

// note records an outcome on the job's inbound message, if it has one.
func (p *Pipeline) note(tx *store.Tx, j *store.Job, status, text string) error {
	if j.Message == "" {
		return nil
	}
	err := tx.NoteMessage(j.Message, store.Note{Time: p.cfg.Now(), Stage: j.Stage, Status: status, Text: text})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// Rejection is a final outcome: the job is dropped and its reason noted
// on its message. It is never retried.
type Rejection struct {
	Reason string
	// apply, if set, is written together with the rejection.
	apply func(*store.Tx) error
}

func (r *Rejection) Error() string { return "rejected: " + r.Reason }

func reject(format string, args ...any) *Rejection {
	return &Rejection{Reason: fmt.Sprintf(format, args...)}
}
