package pipeline

import (
	"errors"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttle spaces out what is sent to each recipient domain: at most a
// rate per domain, and after the relay answered 4xx for a domain, a pause
// for it that doubles while the 4xx go on.
type throttle struct {
	perSecond  float64
	burst      int
	minBackoff time.Duration
	maxBackoff time.Duration

	mu sync.Mutex
	m  map[string]*domainState
}

type domainState struct {
	lim     *rate.Limiter
	until   time.Time // paused until, after 4xx answers
	backoff time.Duration
}

func newThrottle(perSecond float64, burst int, minBackoff, maxBackoff time.Duration) *throttle {
	return &throttle{perSecond: perSecond, burst: max(burst, 1), minBackoff: minBackoff, maxBackoff: maxBackoff, m: map[string]*domainState{}}
}

func domainOf(email string) string {
	_, d, _ := strings.Cut(strings.ToLower(email), "@")
	return d
}

func (t *throttle) state(domain string) *domainState {
	s, ok := t.m[domain]
	if !ok {
		lim := rate.NewLimiter(rate.Inf, t.burst)
		if t.perSecond > 0 {
			lim = rate.NewLimiter(rate.Limit(t.perSecond), t.burst)
		}
		s = &domainState{lim: lim}
		t.m[domain] = s
	}
	return s
}

// take reserves a send to domain at now, or says how long to wait.
func (t *throttle) take(domain string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.state(domain)
	if now.Before(s.until) {
		return s.until.Sub(now)
	}
	r := s.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// failed records a 4xx answer for domain: it pauses, for twice as long
// as last time.
func (t *throttle) failed(domain string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.state(domain)
	s.backoff = min(max(s.backoff*2, t.minBackoff), t.maxBackoff)
	s.until = now.Add(s.backoff)
	return s.backoff
}

// ok records a delivery to domain: the pause is over.
func (t *throttle) ok(domain string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[domain]; ok {
		s.backoff, s.until = 0, time.Time{}
	}
}

// deferral postpones a job without counting an attempt: not a failure of
// the job, only not its turn yet.
type deferral struct {
	wait time.Duration
	why  string
}

func (d *deferral) Error() string { return "deferred " + d.wait.String() + ": " + d.why }

func isDeferral(err error) (*deferral, bool) {
	var d *deferral
	return d, errors.As(err, &d)
}
