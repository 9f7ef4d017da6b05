package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/invited/invited/internal/smtptest"
)

// startRelay starts the SMTP server the daemon relays its outbound mail
// to; it counts messages and keeps none.
func startRelay() (*smtptest.Server, error) {
	return smtptest.Start(smtptest.Options{Discard: true})
}

// requests returns a source of REQUEST messages, each with a calendar UID
// of its own for phase.
func (b *bench) requests(phase string) func() []byte { return b.requestsOf(b.tmpl, phase) }

// requestsOf is requests from template t.
func (b *bench) requestsOf(t *requestTemplate, phase string) func() []byte {
	uids := newUIDSource(b.run, phase)
	return func() []byte { return t.message(uids.next()) }
}

// ceilings is step 1. When step 2 runs too, go-smtp at the most sessions
// is left to it, which measures it in turns with the daemon.
func (b *bench) ceilings(ctx context.Context) error {
	msg := b.requests("ceiling")
	for _, s := range b.o.Sessions {
		if b.o.runs("accept") && s == slices.Max(b.o.Sessions) {
			continue
		}
		b.prog.Update("go-smtp, %d sessions", s)
		sample, err := smtpCeiling(ctx, s, time.Duration(b.o.Measure), msg)
		if err != nil {
			return err
		}
		b.res.Ceilings.SMTP = append(b.res.Ceilings.SMTP, smtpFigureOf([]smtpSample{sample}))
	}
	for _, group := range []bool{true, false} {
		for _, p := range b.o.Producers {
			b.prog.Update("bbolt, %d producers, group commit %v", p, group)
			f, err := boltCeiling(ctx, b.work, p, group, time.Duration(b.o.Measure), b.o.MessageBytes)
			if err != nil {
				return fmt.Errorf("bbolt ceiling: %w", err)
			}
			b.res.Ceilings.Bolt = append(b.res.Ceilings.Bolt, f)
		}
	}
	return nil
}

// accept measures the durable accept rate, one fresh daemon per
// measurement so that the backlog one builds up does not slow the next.
// At the most sessions the daemon as configured takes turns with the
// go-smtp ceiling (-rounds): this machine's speed drifts by a third
// within a minute, and in turns the drift falls on both.
func (b *bench) accept(ctx context.Context) error {
	relay, err := startRelay()
	if err != nil {
		return err
	}
	defer relay.Close()
	msg := b.requests("accept")
	most := slices.Max(b.o.Sessions)
	for _, s := range b.o.Sessions {
		if s == most {
			continue
		}
		b.prog.Update("%d sessions", s)
		a, err := b.acceptOnce(ctx, relay.Addr, "default", s, msg)
		if err != nil {
			return err
		}
		b.res.Accept = append(b.res.Accept, b.acceptFigure("default", s, []acceptSample{a}))
	}
	var smtps []smtpSample
	var accepts []acceptSample
	var rounds []RoundFigure
	for i := range b.o.Rounds {
		var sm smtpSample
		var a acceptSample
		turns := []func() (err error){
			func() (err error) {
				b.prog.Update("%d sessions, round %d of %d: go-smtp", most, i+1, b.o.Rounds)
				sm, err = smtpCeiling(ctx, most, time.Duration(b.o.Measure), msg)
				return err
			},
			func() (err error) {
				b.prog.Update("%d sessions, round %d of %d: invited", most, i+1, b.o.Rounds)
				a, err = b.acceptOnce(ctx, relay.Addr, "default", most, msg)
				return err
			},
		}
		if i%2 == 1 { // so that a steady drift favours neither
			slices.Reverse(turns)
		}
		for _, turn := range turns {
			if err := turn(); err != nil {
				return err
			}
		}
		smtps, accepts = append(smtps, sm), append(accepts, a)
		rounds = append(rounds, RoundFigure{SMTP: sm.load.Rate(), Invited: a.load.Rate(), Ratio: a.load.Rate() / sm.load.Rate()})
	}
	b.res.Ceilings.SMTP = append(b.res.Ceilings.SMTP, smtpFigureOf(smtps))
	f := b.acceptFigure("default", most, accepts)
	f.PerRound = rounds
	b.res.Accept = append(b.res.Accept, f)
	// Once more with --burst-rate=-1, parsing every message as it comes.
	b.prog.Update("%d sessions, no-hold", most)
	a, err := b.acceptOnce(ctx, relay.Addr, "no-hold", most, msg)
	if err != nil {
		return err
	}
	b.res.Accept = append(b.res.Accept, b.acceptFigure("no-hold", most, []acceptSample{a}))
	return nil
}

// acceptSample is one measurement of the daemon's accept: the load, the
// daemon's CPU, and its commit counters before and after.
type acceptSample struct {
	load   loadResult
	cpu    time.Duration
	c0, c1 commitCount
}

func (b *bench) acceptOnce(ctx context.Context, relay, mode string, sessions int, msg func() []byte) (acceptSample, error) {
	dir, err := os.MkdirTemp(b.work, "accept-")
	if err != nil {
		return acceptSample{}, err
	}
	defer os.RemoveAll(dir)
	// The backlog may pass the default high-water mark of 10000 queued
	// messages, where SMTP answers 451: lift it, the accept rate is
	// measured. Half of it, the burst buffer, then covers the whole run.
	flags := []string{"--max-inbound", "10000000"}
	if mode == "no-hold" {
		flags = append(flags, "--burst-rate=-1")
	}
	d, err := startDaemon(ctx, b.daemonConfig(dir, relay, flags...))
	if err != nil {
		return acceptSample{}, err
	}
	defer d.kill()
	cpu := startCPU(d.Pid())
	c0, err := d.api.commits(ctx)
	if err != nil {
		return acceptSample{}, err
	}
	r := closedLoop(ctx, sender{addr: d.SMTP, from: loadOrganizer, rcpt: "create@" + benchDomain}, sessions, time.Duration(b.o.Measure), msg, false)
	c1, err := d.api.commits(ctx)
	if err != nil {
		return acceptSample{}, err
	}
	used := cpu.Used()
	if err := ctx.Err(); err != nil {
		return acceptSample{}, err
	}
	if err := d.Alive(); err != nil {
		return acceptSample{}, err
	}
	if r.OK == 0 {
		return acceptSample{}, fmt.Errorf("accept at %d sessions: nothing accepted: %v\n%s", sessions, r.FirstErr, d.Tail())
	}
	if r.Errors > 0 {
		b.prog.Note("accept at %d sessions: %d errors, first: %v", sessions, r.Errors, r.FirstErr)
	}
	peak := d.rss.Peak()
	if err := d.stop(15 * time.Second); err != nil {
		b.warn("accept daemon: %v", err)
	}
	b.acceptPeak = max(b.acceptPeak, peak)
	return acceptSample{load: r, cpu: used, c0: c0, c1: c1}, nil
}

// acceptFigure sums up samples taken in one mode at one session count,
// compared with the ceilings.
func (b *bench) acceptFigure(mode string, sessions int, samples []acceptSample) AcceptFigure {
	var (
		loads      []loadResult
		cpu        time.Duration
		start, end commitCount // end: start plus each sample's growth
	)
	for _, s := range samples {
		loads = append(loads, s.load)
		cpu += s.cpu
		end = end.plus(s.c0, s.c1)
	}
	r := mergeLoads(loads)
	f := AcceptFigure{
		Mode:         mode,
		Sessions:     sessions,
		Rounds:       len(samples),
		Accepted:     r.OK,
		Deferred:     r.Deferred,
		Errors:       r.Errors,
		Seconds:      r.Elapsed.Seconds(),
		PerSecond:    r.Rate(),
		Latency:      latencyOf(r.Latencies),
		DaemonCores:  cpu.Seconds() / r.Elapsed.Seconds(),
		CPUPerMsgUS:  float64(cpu.Microseconds()) / float64(r.OK),
		MessageBytes: b.msgBytes,
		Commits:      commitsBetween(start, end, 0),
	}
	for _, c := range b.res.Ceilings.SMTP {
		if c.Sessions == sessions {
			f.VsSMTP = f.PerSecond / c.PerSecond
		}
	}
	if c, ok := b.boltFor(sessions); ok {
		f.VsBolt, f.BoltProducers = f.PerSecond/c.PerSecond, c.Producers
	}
	return f
}

// boltFor is the group-commit ceiling to compare n concurrent writers
// with: the smallest producer count at least n, else the largest.
func (b *bench) boltFor(n int) (BoltFigure, bool) {
	var best BoltFigure
	found := false
	for _, c := range b.res.Ceilings.Bolt {
		if c.Mode != "group-commit" {
			continue
		}
		better := !found ||
			(c.Producers >= n && (best.Producers < n || c.Producers < best.Producers)) ||
			(c.Producers < n && best.Producers < n && c.Producers > best.Producers)
		if better {
			best, found = c, true
		}
	}
	return best, found
}

func (b *bench) warn(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.res.Warnings = append(b.res.Warnings, s)
	b.prog.Note("warning: %s", s)
}

// mainDaemon runs steps 3 to 6 against one daemon, whose database grows
// from step to step.
func (b *bench) mainDaemon(ctx context.Context) error {
	relay, err := startRelay()
	if err != nil {
		return err
	}
	defer relay.Close()
	dir := filepath.Join(b.work, "main")
	if err := os.Mkdir(dir, 0o750); err != nil {
		return err
	}
	d, err := startDaemon(ctx, b.daemonConfig(dir, relay.Addr))
	if err != nil {
		return err
	}
	defer d.kill()
	d.rss.Label(b.prog.Now)
	m := &mainRun{bench: b, d: d, relay: relay, db: filepath.Join(dir, "invited.db"), around: b.requests("around")}
	res := &ResourceFigure{}
	b.res.Resources = res

	snap0, err := m.snapshot(ctx)
	if err != nil {
		return err
	}
	if b.o.runs("e2e") {
		b.prog.Step(3, totalSteps, fmt.Sprintf("end-to-end at %.0f msg/s for %v", b.o.Rate, time.Duration(b.o.E2E)))
		if err := m.endToEnd(ctx); err != nil {
			return err
		}
	}
	// Every event registered so far had its "event created" notice
	// queued: wait until the relay has them all, so that what follows
	// starts from a quiet daemon.
	b.prog.Update("waiting for the event notices to reach the relay")
	if err := m.settle(ctx); err != nil {
		return err
	}
	snap1, err := m.snapshot(ctx)
	if err != nil {
		return err
	}
	res.EventsAdded = snap1.Events - snap0.Events
	res.BytesPerEvent, res.PerEventSize = perItem(snap0, snap1, res.EventsAdded)

	if b.o.runs("fanout") {
		b.prog.Step(4, totalSteps, fmt.Sprintf("invite fan-out of %d, then its attendees' replies", b.o.Invites))
		uid, err := m.register(ctx, fanoutOrganizer, fanoutTag)
		if err != nil {
			return err
		}
		if b.res.Fanout, err = fanout(ctx, d, relay, uid, fanoutTag, b.o.Invites, b.prog); err != nil {
			return err
		}
		m.invited += b.o.Invites
		if b.res.Fanout.Replies, err = m.replies(ctx, uid); err != nil {
			return err
		}
	}
	if b.o.runs("reads") {
		b.prog.Step(5, totalSteps, fmt.Sprintf("HTTP reads, after seeding events of %d and %d attendees", b.o.Small, b.o.Big))
		if err := m.reads(ctx); err != nil {
			return err
		}
	}

	b.prog.Step(6, totalSteps, "memory and disk")
	if err := m.settle(ctx); err != nil {
		return err
	}
	snap2, err := m.snapshot(ctx)
	if err != nil {
		return err
	}
	res.Attendees = snap2.Attendees - snap1.Attendees
	res.BytesPerAtt, res.PerAttSize = perItem(snap1, snap2, res.Attendees)
	res.PeakRSS = d.rss.Peak()
	res.MaxSampledRSS = d.rss.Max()
	res.PeakDuring = d.rss.PeakDuring()
	res.MaxAnon, res.MaxFile = d.rss.MaxParts()
	res.AcceptPeakRSS = b.acceptPeak
	if err := d.stop(30 * time.Second); err != nil {
		b.warn("%v", err)
	}
	res.DBSize, res.DBAllocated, err = fileSize(m.db)
	if err != nil {
		return err
	}
	if res.Buckets, res.BucketsInUse, err = bucketUsage(m.db); err != nil {
		b.warn("reading the database after the run: %v", err)
	}
	return nil
}

// mainRun is the state of steps 3 to 6.
type mainRun struct {
	*bench
	d       *daemon
	relay   *smtptest.Server
	db      string
	invited int           // invitations posted, each one message to the relay
	around  func() []byte // the REQUESTs of the accept turns around max applied runs
}

func (m *mainRun) snapshot(ctx context.Context) (diskSnapshot, error) {
	c, err := m.d.api.systemCounts(ctx)
	if err != nil {
		return diskSnapshot{}, err
	}
	size, alloc, err := fileSize(m.db)
	return diskSnapshot{Size: size, Allocated: alloc, Events: c.Events, Attendees: c.AttendeeCount}, err
}

// settle waits until the relay has one notice per registered event and
// every invitation posted.
func (m *mainRun) settle(ctx context.Context) error {
	c, err := m.d.api.systemCounts(ctx)
	if err != nil {
		return err
	}
	want := int(c.Events) + m.invited
	if err := waitRelay(ctx, m.relay, want, 2*time.Minute, m.prog, "settling"); err != nil {
		if ctx.Err() != nil {
			return err
		}
		m.warn("%v: figures that follow ran with outbound mail still queued", err)
	}
	return nil
}

// register registers an event of organizer and waits for its notice.
func (m *mainRun) register(ctx context.Context, organizer, name string) (string, error) {
	tmpl, err := loadTemplate(m.o.Testdata, organizer, m.o.MessageBytes)
	if err != nil {
		return "", err
	}
	uid, err := registerEvent(ctx, m.d, tmpl, organizer, fmt.Sprintf("bench-%s-%s@example.org", m.run, name))
	if err != nil {
		return "", err
	}
	return uid, m.settle(ctx)
}

func (m *mainRun) endToEnd(ctx context.Context) error {
	msg := m.requests("e2e")
	fig, err := openLoop(ctx, m.d, e2eConfig{
		Rate:      m.o.Rate,
		Duration:  time.Duration(m.o.E2E),
		Sessions:  m.o.E2ESessions,
		PollEvery: time.Duration(m.o.PollEvery),
		Pollers:   m.o.Pollers,
		Batch:     m.o.PollBatch,
		Drain:     30 * time.Second,
	}, msg, loadOrganizer, m.prog)
	if err != nil {
		return err
	}
	m.res.EndToEnd = fig
	m.prog.Note("open loop: %d applied, p50 %.1f ms, p99 %.1f ms", fig.Applied, fig.Latency.P50, fig.Latency.P99)
	fig.Max, err = m.maxApplied(ctx, requestLoad(m.d, msg, loadOrganizer))
	return err
}

// maxApplied is a max applied run of load, compared with the accept rate
// of a fresh daemon measured in turns just before and just after it, the
// main daemon quiet meanwhile: the machine's speed drifts by a third
// within a minute, and step 2 ran minutes earlier. Step 2's best is kept
// for reference.
func (m *mainRun) maxApplied(ctx context.Context, load appliedLoad) (*MaxAppliedFigure, error) {
	sessions := m.o.MaxSessions
	if sessions <= 0 {
		sessions = slices.Max(m.o.Sessions)
	}
	var turns []acceptSample
	turn := func(when string) error {
		if err := m.settle(ctx); err != nil {
			return err
		}
		m.prog.Update("accept compared, %d sessions, %s the max applied run", sessions, when)
		a, err := m.acceptTurn(ctx, sessions)
		turns = append(turns, a)
		return err
	}
	if err := turn("before"); err != nil {
		return nil, err
	}
	m.prog.Update("max applied rate, %d sessions: %s", sessions, load.what)
	mx, err := maxApplied(ctx, m.d, sessions, m.o.Window, time.Duration(m.o.E2E), load, m.prog)
	if err != nil {
		return nil, err
	}
	if err := turn("after"); err != nil {
		return nil, err
	}
	for _, a := range turns {
		mx.AcceptAround = append(mx.AcceptAround, a.load.Rate())
	}
	mx.AcceptPerSecond = m.acceptFigure("default", sessions, turns).PerSecond
	for _, a := range m.res.Accept {
		if a.Mode == "default" {
			mx.AcceptStep2 = max(mx.AcceptStep2, a.PerSecond)
		}
	}
	if mx.AcceptPerSecond > 0 {
		mx.RatioToAccept = mx.AppliedPerSecond / mx.AcceptPerSecond
	}
	return mx, nil
}

// acceptTurn is one accept of step 2's kind (REQUESTs to create@, a fresh
// daemon with parsing holding back in the burst, a discarding relay of its
// own).
func (m *mainRun) acceptTurn(ctx context.Context, sessions int) (acceptSample, error) {
	relay, err := startRelay()
	if err != nil {
		return acceptSample{}, err
	}
	defer relay.Close()
	return m.acceptOnce(ctx, relay.Addr, "default", sessions, m.around)
}

// replies is a max applied run of the fan-out's attendees accepting their
// invitations of event uid (the burst of replies after a bulk send).
func (m *mainRun) replies(ctx context.Context, uid string) (*MaxAppliedFigure, error) {
	tmpl, err := loadReply(m.o.Testdata, uid, fanoutOrganizer, "rsvp@"+benchDomain, m.o.MessageBytes)
	if err != nil {
		return nil, err
	}
	return m.maxApplied(ctx, replyLoad(m.d, tmpl, uid, m.run, m.o.Invites))
}

func (m *mainRun) reads(ctx context.Context) error {
	small, err := m.register(ctx, smallOrganizer, "small")
	if err != nil {
		return err
	}
	if _, err := fanout(ctx, m.d, m.relay, small, "small", m.o.Small, m.prog); err != nil {
		return err
	}
	m.invited += m.o.Small
	big, err := m.register(ctx, bigOrganizer, "big")
	if err != nil {
		return err
	}
	seed, err := fanout(ctx, m.d, m.relay, big, "big", m.o.Big, m.prog)
	if err != nil {
		return err
	}
	m.invited += m.o.Big
	if m.res.Fanout != nil {
		m.res.Fanout.Seed = seed
	} else {
		m.res.Fanout = &FanoutFigure{Seed: seed}
	}
	c, err := m.d.api.systemCounts(ctx)
	if err != nil {
		return err
	}
	var loadEvents countsJSON
	if err := m.d.api.get(ctx, "/organizer/"+url.PathEscape(loadOrganizer)+"/statistics", &loadEvents); err != nil {
		return err
	}
	reads := []ReadFigure{
		{What: fmt.Sprintf("statistics, event of %d", m.o.Small), Path: "/event/" + small + "/statistics", Attendees: m.o.Small},
		{What: fmt.Sprintf("statistics, event of %d", m.o.Big), Path: "/event/" + big + "/statistics", Attendees: m.o.Big},
		{What: fmt.Sprintf("organizer events, event of %d", m.o.Small), Path: "/organizer/" + smallOrganizer + "/events?limit=50", Attendees: m.o.Small, Events: 1},
		{What: fmt.Sprintf("organizer events, event of %d", m.o.Big), Path: "/organizer/" + bigOrganizer + "/events?limit=50", Attendees: m.o.Big, Events: 1},
		{What: fmt.Sprintf("organizer events, %d events", loadEvents.Events), Path: "/organizer/" + loadOrganizer + "/events?limit=50", Events: loadEvents.Events},
		{What: "attendees page, event of " + fmt.Sprint(m.o.Big), Path: "/event/" + big + "/attendees?limit=50", Attendees: m.o.Big},
		{What: fmt.Sprintf("system statistics, %d events", c.Events), Path: "/system/statistics", Events: c.Events},
	}
	paths := make([]string, len(reads))
	for i, r := range reads {
		paths[i] = r.Path
	}
	m.prog.Update("%d GETs of each of %d paths, in turns", m.o.Reads, len(paths))
	lats, sizes, err := readLatencies(ctx, m.d.api, paths, m.o.Reads)
	if err != nil {
		return err
	}
	for i := range reads {
		reads[i].Requests, reads[i].Latency, reads[i].Bytes = m.o.Reads, lats[i], sizes[i]
	}
	m.res.Reads = reads
	return nil
}
