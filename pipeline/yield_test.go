package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/invited/invited/internal/dnstest"
	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/senderauth"
	"github.com/invited/invited/store"
)

// holdingResolver answers TXT lookups as its dnstest resolver does, but
// only once hold (when set) is closed: a slow DNS server under the test's
// control.
type holdingResolver struct {
	*dnstest.Resolver
	mu   sync.Mutex
	hold chan struct{}
}

func (r *holdingResolver) setHold(c chan struct{}) {
	r.mu.Lock()
	r.hold = c
	r.mu.Unlock()
}

func (r *holdingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return r.Resolver.LookupTXT(ctx, name)
}

// relayGate holds every message at the relay's DATA while shut, and counts
// how many it holds at once.
type relayGate struct {
	mu         sync.Mutex
	open       chan struct{}
	held, most int
}

func newRelayGate() *relayGate {
	g := &relayGate{open: make(chan struct{})}
	close(g.open)
	return g
}

// reject is the relay's smtptest.Options.Reject: DATA waits for the gate.
func (g *relayGate) reject(_, rcpt string) error {
	if rcpt != "" {
		return nil
	}
	g.mu.Lock()
	open := g.open
	g.held++
	g.most = max(g.most, g.held)
	g.mu.Unlock()
	<-open
	g.mu.Lock()
	g.held--
	g.mu.Unlock()
	return nil
}

func (g *relayGate) shut() {
	g.mu.Lock()
	g.open, g.most = make(chan struct{}), 0
	g.mu.Unlock()
}

// release opens the gate, if shut.
func (g *relayGate) release() {
	g.mu.Lock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
	g.mu.Unlock()
}

func (g *relayGate) counts() (held, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.most
}

// testClock is time.Now moved on by the test, or, while frozen, a time
// that moves only when the test moves it.
type testClock struct {
	mu     sync.Mutex
	off    time.Duration
	frozen time.Time // the time while frozen
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen.IsZero() {
		return c.frozen
	}
	return time.Now().Add(c.off)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	if !c.frozen.IsZero() {
		c.frozen = c.frozen.Add(d)
	}
	c.mu.Unlock()
}

// freeze stops the clock where it is, until thaw.
func (c *testClock) freeze() {
	t := c.now()
	c.mu.Lock()
	c.frozen = t
	c.mu.Unlock()
}

func (c *testClock) thaw() {
	c.mu.Lock()
	c.frozen = time.Time{}
	c.mu.Unlock()
}

// While every parse worker has a job in hand and a backlog waits, sends go
// out sendsWhileInboundBusy at a time, until the oldest has waited
// Config.SendYield; once the inbound work lets up, on all the send
// workers.
func TestSends_YieldWhileInboundBusy(t *testing.T) {
	const yield = 3 * time.Minute
	r := newYieldRig(t, yield)

	r.invite()
	r.waitHeld(sendsWhileInboundBusy)
	if most := r.deliver(); most > sendsWhileInboundBusy {
		t.Errorf("%d invites at the relay at once while parsing was busy, want at most %d", most, sendsWhileInboundBusy)
	}

	// Still busy, but the oldest invite has waited long enough.
	r.invite()
	r.waitHeld(sendsWhileInboundBusy)
	r.clock.advance(yield - time.Minute)
	if !r.h.p.SendsYielding() {
		t.Fatalf("sends stopped yielding before %v", yield)
	}
	r.clock.advance(time.Minute + time.Second)
	r.waitHeld(yieldSendWorkers)
	r.deliver()

	// Inbound work done: every send worker sends.
	r.answerDNS()
	r.h.eventually("the parse worker free", func() bool { return !r.h.p.inboundBusy() })
	r.invite()
	r.waitHeld(yieldSendWorkers)
	r.deliver()
}

// While sends yield, they also start at most one a burstSlot: with a relay
// that answers at once (as one on the same machine does), four at a time
// would still take a core from the inbound work. With the clock stopped
// and the relay holding every send at DATA, each slot adds one send in
// flight.
func TestSends_YieldOnePerSlot(t *testing.T) {
	r := newYieldRig(t, 3*time.Minute)
	r.clock.freeze()
	r.invite() // 20 invites; the gate stays shut
	send := r.h.p.stages[StageSend]
	for n := 1; n <= 3; n++ {
		if n > 1 {
			r.clock.advance(burstSlot)
		}
		// The scheduler counts a send in flight just after it starts it:
		// wait for both the relay and the count.
		r.h.eventually(fmt.Sprint(n, " sends started"), func() bool {
			held, _ := r.gate.counts()
			return held >= n && send.busy.Load() >= int64(n)
		})
		if b := send.busy.Load(); b != int64(n) {
			t.Fatalf("%d sends in flight in slot %d while yielding, want %d", b, n, n)
		}
	}
	r.clock.thaw()
	r.deliver()
}

// With SendYield negative (--send-yield=0), sends never yield, however
// busy the inbound stages.
func TestSends_NeverYield(t *testing.T) {
	r := newYieldRig(t, -1)
	if r.h.p.SendsYielding() {
		t.Fatal("sends yield with SendYield negative")
	}
	r.invite()
	r.waitHeld(yieldSendWorkers)
	r.deliver()
}

const yieldSendWorkers = 16

// yieldRig is a pipeline with one parse worker, yieldSendWorkers send
// workers and a relay whose gate the test shuts and opens, with an event
// registered and the parse worker waiting on DNS (until answerDNS) with a
// backlog behind it.
type yieldRig struct {
	t          *testing.T
	h          *harness
	gate       *relayGate
	clock      *testClock
	e          *store.Event
	ctx        context.Context
	delivered  int
	dnsAnswers chan struct{}
	answer     sync.Once
}

func newYieldRig(t *testing.T, yield time.Duration) *yieldRig {
	t.Helper()
	dns := &holdingResolver{Resolver: dnstest.Loopback()}
	r := &yieldRig{t: t, gate: newRelayGate(), clock: &testClock{}, dnsAnswers: make(chan struct{})}
	r.h = newHarnessConns(t, smtptest.Options{Reject: r.gate.reject}, yieldSendWorkers, func(c *Config) {
		c.Workers = map[string]int{StageParse: 1, StageSend: yieldSendWorkers}
		c.Auth = &senderauth.Checker{Resolver: dns, Policy: PolicyAligned}
		c.Now = r.clock.now
		c.SendYield = yield
	})
	h := r.h
	r.e = h.register(testdata(t, weekly))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	r.ctx = ctx
	r.delivered = 1 // the "event registered" notice
	if _, err := h.relay.Wait(ctx, r.delivered); err != nil {
		t.Fatal(err)
	}

	// The one parse worker waits for DNS, checking who sent a reply, and a
	// backlog builds behind it.
	t.Cleanup(func() { r.answerDNS(); r.gate.release() }) // before the harness stops, if the test fails
	dns.setHold(r.dnsAnswers)
	reply := setProp(testdata(t, "google-reply-accepted-to-exchange-organizer.ics"), "UID", r.e.UID)
	reply = strings.Replace(reply, "mailto:karim@example.com", "mailto:late@example.net", 1)
	h.accept("late@example.net", "rsvp@"+domain, wrap("late@example.net", "REPLY", reply))
	h.eventually("the parse worker busy", func() bool { return h.p.stages[StageParse].busy.Load() == 1 })
	if h.p.inboundBusy() {
		t.Fatal("inbound busy with one message: a slow message alone holds nothing back")
	}
	for i := range burstMinBacklog {
		h.accept("a@example.com", "create@"+domain, junk(i))
	}
	if !h.p.inboundBusy() {
		t.Fatalf("inbound not busy with the parse worker in hand and %d queued", h.p.inboundLen())
	}
	return r
}

func (r *yieldRig) answerDNS() { r.answer.Do(func() { close(r.dnsAnswers) }) }

// invite invites 20 more people with the relay's gate shut.
func (r *yieldRig) invite() {
	r.t.Helper()
	r.gate.shut()
	rows := make([]store.Invitee, 20)
	for i := range rows {
		rows[i] = store.Invitee{Email: fmt.Sprintf("guest%d@example.net", r.delivered+i)}
	}
	if _, err := r.h.p.Invite(r.ctx, r.e.UID, rows); err != nil {
		r.t.Fatal(err)
	}
	r.delivered += len(rows)
}

// waitHeld waits until the gate holds want invites at once.
func (r *yieldRig) waitHeld(want int) {
	r.t.Helper()
	r.h.eventually(fmt.Sprint(want, " invites held at the relay at once"), func() bool {
		held, _ := r.gate.counts()
		return held == want
	})
}

// deliver opens the gate, waits for everything invited, and returns the
// most invites the gate held at once.
func (r *yieldRig) deliver() (most int) {
	r.t.Helper()
	r.gate.release()
	if _, err := r.h.relay.Wait(r.ctx, r.delivered); err != nil {
		r.t.Fatal(err)
	}
	_, most = r.gate.counts()
	return most
}

// While parsing holds back for a burst the listener has the cores, and
// sends yield too.
func TestSends_YieldDuringBurstHold(t *testing.T) {
	h := newHarness(t, smtptest.Options{}, nil)
	h.stop() // the parse scheduler would decide the hold itself
	if h.p.inboundBusy() {
		t.Fatal("inbound busy with nothing queued")
	}
	h.p.burst.holding.Store(true)
	if !h.p.inboundBusy() {
		t.Fatal("sends do not yield while parsing holds back for a burst")
	}
}
