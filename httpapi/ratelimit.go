package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimits bound the public invite endpoint, which anyone can call: per
// client address, per invited address and per event. A zero Per disables
// that limit.
type RateLimits struct {
	PerIP       Rate
	PerAttendee Rate
	PerEvent    Rate
}

// Rate is N requests per Per, with bursts of Burst (zero: in the
// proportion to N that the default of the same limit has). As text (a
// flag, a setting) it is "N/DURATION", like "30/1m", and the burst is
// left to that proportion.
type Rate struct {
	N     int
	Per   time.Duration
	Burst int
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rate) UnmarshalText(b []byte) error {
	n, per, ok := strings.Cut(string(b), "/")
	d, err := time.ParseDuration(per)
	if !ok || err != nil || d <= 0 {
		return fmt.Errorf("rate %q is not N/DURATION, like 30/1m", b)
	}
	if r.N, err = strconv.Atoi(n); err != nil || r.N < 0 {
		return fmt.Errorf("rate %q is not N/DURATION, like 30/1m", b)
	}
	r.Per, r.Burst = d, 0
	return nil
}

// Set and String make a Rate a flag.Value.
func (r *Rate) Set(s string) error { return r.UnmarshalText([]byte(s)) }

func (r *Rate) String() string { return fmt.Sprintf("%d/%s", r.N, r.Per) }

// withBurst is r with its burst filled in from def when it has none.
func (r Rate) withBurst(def Rate) Rate {
	if r.Burst <= 0 && def.N > 0 {
		r.Burst = max(1, r.N*def.Burst/def.N)
	}
	return r
}

// DefaultRateLimits are sensible for a landing page: a person, their
// address and a popular event each get plenty, a script does not.
var DefaultRateLimits = RateLimits{
	PerIP:       Rate{N: 30, Per: time.Minute, Burst: 10},
	PerAttendee: Rate{N: 5, Per: time.Hour, Burst: 3},
	PerEvent:    Rate{N: 1200, Per: time.Minute, Burst: 200},
}

// limiter keeps one token bucket per key, forgetting keys idle for long.
type limiter struct {
	rate  Rate
	mu    sync.Mutex
	m     map[string]*entry
	swept time.Time
}

type entry struct {
	l    *rate.Limiter
	seen time.Time
}

// maxKeys bounds the memory of one limiter; past it, idle keys are dropped
// and then the oldest.
const maxKeys = 100000

func newLimiter(r Rate) *limiter {
	return &limiter{rate: r, m: map[string]*entry{}}
}

// allow takes a token for key; when none is left it says how long to wait.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l.rate.Per <= 0 || l.rate.N <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxKeys || now.Sub(l.swept) > l.rate.Per {
			l.sweep(now)
		}
		e = &entry{l: rate.NewLimiter(rate.Limit(float64(l.rate.N)/l.rate.Per.Seconds()), max(l.rate.Burst, 1))}
		l.m[key] = e
	}
	e.seen = now
	r := e.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops keys idle for a whole period (their bucket is full again),
// and if that is not enough, arbitrary ones.
func (l *limiter) sweep(now time.Time) {
	l.swept = now
	for k, e := range l.m {
		if now.Sub(e.seen) > l.rate.Per {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) < maxKeys {
			break
		}
		delete(l.m, k)
	}
}

// clientIP is the caller's address: the connection's, or with
// TrustForwarded the last X-Forwarded-For hop (the one our proxy added).
func (h *Handler) clientIP(r *http.Request) string {
	if h.cfg.TrustForwarded {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			hops := strings.Split(xff, ",")
			return strings.TrimSpace(hops[len(hops)-1])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limitInvite applies the invite endpoint's rate limits; it answers 429
// and reports false when one bites.
func (h *Handler) limitInvite(w http.ResponseWriter, r *http.Request, uid, email string) bool {
	now := time.Now()
	for _, c := range []struct {
		what string
		l    *limiter
		key  string
	}{
		{"client address", h.perIP, h.clientIP(r)},
		{"invited address", h.perAttendee, strings.ToLower(email)},
		{"event", h.perEvent, uid},
	} {
		if ok, wait := c.l.allow(c.key, now); !ok {
			h.log.Warn("limit: invite rate", "per", c.what, "key", c.key, "retry_after", wait.Round(time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(w, http.StatusTooManyRequests, "too many invites per "+c.what+"; try again later")
			return false
		}
	}
	return true
}
