package pipeline

import (
	"sync"
	"sync/atomic"
	"time"
)

// A burst is SMTP arriving faster than the pipeline can work: a mail
// provider's retry storm, or the replies to a large send. On a small
// machine the listener and the pipeline then compete for the same cores,
// and senders wait for their 250 while the pipeline works through messages
// that are safely queued anyway. So while messages arrive faster than the
// inbound stages (parse, verify, create) were last seen to work them, at
// BurstRate or more, and fewer than BurstBuffer wait in those stages, the
// parse stage starts nothing new: the listener takes the cores and the
// queue absorbs the burst. Parsing resumes when arrivals slow down or the
// buffer fills, whichever comes first, so a hold lasts at most
// BurstBuffer/BurstRate (25 s with the defaults), and a rate the pipeline
// keeps up with never holds anything. A queue shorter than
// burstMinBacklog is always worked at once.

// burstMinBacklog is the queue below which parsing never yields: a few
// messages are cheaper to handle than to hold.
const burstMinBacklog = 64

// burstWindow is how far back the arrival rate is measured, in slots of
// burstSlot.
const (
	burstSlot  = 10 * time.Millisecond
	burstSlots = 10
)

// arrivals counts accepted messages over the last burstSlots*burstSlot.
// It uses the real clock, not Config.Now: it is about CPU, not business.
type arrivals struct {
	mu   sync.Mutex
	slot [burstSlots]struct {
		tick int64
		n    int
	}
}

func (a *arrivals) add(now time.Time) {
	tick := now.UnixNano() / int64(burstSlot)
	a.mu.Lock()
	s := &a.slot[tick%burstSlots]
	if s.tick != tick {
		s.tick, s.n = tick, 0
	}
	s.n++
	a.mu.Unlock()
}

// count is how many arrived in the window that ends at now.
func (a *arrivals) count(now time.Time) int { return a.last(now, burstSlots) }

// last is how many arrived in the last slots slots (the current one
// included) to now.
func (a *arrivals) last(now time.Time, slots int64) int {
	tick := now.UnixNano() / int64(burstSlot)
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.slot {
		if tick-s.tick < slots {
			n += s.n
		}
	}
	return n
}

// burst is what the parse scheduler knows about arrivals and its own pace.
type burst struct {
	arrived  arrivals     // messages accepted
	worked   arrivals     // messages that left the inbound stages
	holding  atomic.Bool  // the parse scheduler's last decision
	holds    atomic.Int64 // bursts held back for
	accepted atomic.Int64 // messages stored by Accept
	left     atomic.Int64 // messages that left the inbound stages (worked's total)
	// Only the parse scheduler touches these.
	pace    float64   // messages worked per window when last working flat out
	learned time.Time // when pace was last updated
}

// inBurst reports whether the parse stage should yield to the SMTP
// listener now (see above). Only the parse scheduler calls it.
func (p *Pipeline) inBurst(now time.Time) bool {
	b := &p.burst
	if p.cfg.BurstRate <= 0 {
		return false
	}
	backlog := p.inboundLen()
	if backlog < burstMinBacklog || backlog >= p.cfg.BurstBuffer {
		return false
	}
	window := burstSlot * burstSlots
	if !b.holding.Load() && now.Sub(b.learned) >= window {
		// Working flat out (a backlog, no hold): learn the pace, letting an
		// earlier, faster figure fade slowly rather than forgetting it
		// after one slow window.
		b.pace = max(float64(b.worked.count(now)), b.pace*0.9)
		b.learned = now
	}
	in := float64(b.arrived.count(now))
	// And messages still arrive at BurstRate now, not only over the
	// window: when a burst stops, parsing resumes within burstRecent
	// rather than a whole window later.
	recent := float64(b.arrived.last(now, burstRecent))
	return b.pace > 0 && in >= p.cfg.BurstRate*window.Seconds() && in > burstFactor*b.pace &&
		recent >= p.cfg.BurstRate*(burstRecent*burstSlot).Seconds()
}

// burstRecent is how many slots back a burst must still be arriving.
const burstRecent = 3

func inbound(stage string) bool {
	return stage == StageParse || stage == StageVerify || stage == StageCreate
}

// inboundLen is how many jobs wait in the inbound stages.
func (p *Pipeline) inboundLen() int64 {
	return p.db.QueueLen(StageParse) + p.db.QueueLen(StageVerify) + p.db.QueueLen(StageCreate)
}

// Holding reports whether parsing is holding back for a burst now.
func (p *Pipeline) Holding() bool { return p.burst.holding.Load() }

// Holds is how many bursts parsing has held back for since start.
func (p *Pipeline) Holds() int64 { return p.burst.holds.Load() }

// Accepted is how many messages Accept has stored since start.
func (p *Pipeline) Accepted() int64 { return p.burst.accepted.Load() }

// burstFactor is how much faster than the pipeline's pace messages must
// arrive for a burst: a closed loop of senders that wait for their
// messages to be applied arrives near the pace, give or take, and holding
// for it would only stall both.
const burstFactor = 1.5
