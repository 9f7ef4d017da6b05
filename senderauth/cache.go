package senderauth

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Cache is a Resolver that remembers the answers of another for a fixed
// time. Go's resolver keeps nothing, so without it every message costs a
// round trip per SPF, DKIM and DMARC record even when a burst comes from
// one sender. Answers and "no such name" are kept for TTL; other errors
// (timeouts, SERVFAIL) are not, so the next message asks again. Lookups of
// the same name in flight at once share one query.
type Cache struct {
	next Resolver
	ttl  time.Duration
	max  int
	now  func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
	flight  singleflight.Group
}

type cacheKey struct {
	kind byte // 't' TXT, 'm' MX, 'i' IP, 'a' PTR
	name string
}

type cacheEntry struct {
	val     any
	err     error
	expires time.Time
}

// NewCache returns a cache of next's answers, each kept for ttl, at most
// maxEntries of them (0: 10 000).
func NewCache(next Resolver, ttl time.Duration, maxEntries int) *Cache {
	if maxEntries <= 0 {
		maxEntries = 10000
	}
	return &Cache{next: next, ttl: ttl, max: maxEntries, now: time.Now, entries: map[cacheKey]cacheEntry{}}
}

// LookupTXT implements Resolver.
func (c *Cache) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return cached(c, ctx, 't', name, c.next.LookupTXT)
}

// LookupMX implements Resolver.
func (c *Cache) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return cached(c, ctx, 'm', name, c.next.LookupMX)
}

// LookupIPAddr implements Resolver.
func (c *Cache) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return cached(c, ctx, 'i', host, c.next.LookupIPAddr)
}

// LookupAddr implements Resolver.
func (c *Cache) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return cached(c, ctx, 'a', addr, c.next.LookupAddr)
}

// cached answers from the cache or asks lookup. Callers get their own copy
// of the slice, so none can change another's answer.
func cached[T any](c *Cache, ctx context.Context, kind byte, name string,
	lookup func(context.Context, string) ([]T, error)) ([]T, error) {
	k := cacheKey{kind, strings.ToLower(strings.TrimSuffix(name, "."))}
	e, ok := c.fresh(k)
	if !ok {
		// The shared query belongs to no one caller: it outlives a caller
		// that gives up, and each caller waits only as long as its own ctx.
		ch := c.flight.DoChan(string(kind)+k.name, func() (any, error) {
			// A query that ended between the look above and this one has
			// just stored its answer.
			if e, ok := c.fresh(k); ok {
				return e.val, e.err
			}
			qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
			defer cancel()
			v, err := lookup(qctx, name)
			if err == nil || isNotFound(err) {
				c.store(k, cacheEntry{val: v, err: err, expires: c.now().Add(c.ttl)})
			}
			return v, err
		})
		select {
		case r := <-ch:
			e = cacheEntry{val: r.Val, err: r.Err}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	v, _ := e.val.([]T)
	return slices.Clone(v), e.err
}

// fresh returns the entry for k, if there is one not expired.
func (c *Cache) fresh(k cacheKey) (cacheEntry, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	return e, ok && now.Before(e.expires)
}

func (c *Cache) store(k cacheKey, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		now := c.now()
		for k, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[k] = e
}

// lookupTimeout bounds one shared query.
const lookupTimeout = 15 * time.Second

// isNotFound reports a definite "no such name or record" answer, which is
// as cacheable as a record.
func isNotFound(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}
