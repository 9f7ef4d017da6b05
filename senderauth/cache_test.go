package senderauth

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/invited/invited/internal/dnstest"
)

// counting passes lookups to a dnstest resolver and counts them; names
// in fail answer a temporary error.
type counting struct {
	*dnstest.Resolver
	n    atomic.Int64
	fail sync.Map
	// hold, when set, keeps every answer back until it is closed: a slow
	// server, under the test's control.
	hold chan struct{}
}

func (c *counting) LookupTXT(ctx context.Context, name string) ([]string, error) {
	c.n.Add(1)
	if c.hold != nil {
		select {
		case <-c.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if _, ok := c.fail.Load(name); ok {
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	return c.Resolver.LookupTXT(ctx, name)
}

func TestCache(t *testing.T) {
	dns := &counting{Resolver: dnstest.NewResolver()}
	dns.SetTXT("example.com", "v=spf1 ip4:192.0.2.10 -all")
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	c := NewCache(dns, time.Minute, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	lookup := func(name string, wantCalls int64) ([]string, error) {
		t.Helper()
		v, err := c.LookupTXT(ctx, name)
		if got := dns.n.Load(); got != wantCalls {
			t.Fatalf("after looking up %s: %d upstream lookups, want %d", name, got, wantCalls)
		}
		return v, err
	}

	v, err := lookup("example.com", 1)
	if err != nil || len(v) != 1 || v[0] != "v=spf1 ip4:192.0.2.10 -all" {
		t.Fatalf("first lookup: %q, %v", v, err)
	}
	v[0] = "changed by a caller"
	if v, _ = lookup("Example.COM.", 1); v[0] != "v=spf1 ip4:192.0.2.10 -all" {
		t.Fatalf("cached answer %q: a caller's change leaked, or the name was not normalised", v)
	}

	// A record changed upstream is seen once the TTL has passed.
	dns.SetTXT("example.com", "v=spf1 -all")
	now = now.Add(59 * time.Second)
	lookup("example.com", 1)
	now = now.Add(time.Second)
	if v, _ = lookup("example.com", 2); v[0] != "v=spf1 -all" {
		t.Fatalf("after the TTL: %q", v)
	}

	// "No such name" is an answer and is kept; a temporary failure is not.
	if _, err := lookup("missing.example", 3); !isNotFound(err) {
		t.Fatalf("missing name: %v", err)
	}
	if _, err := lookup("missing.example", 3); !isNotFound(err) {
		t.Fatalf("missing name, cached: %v", err)
	}
	dns.fail.Store("flaky.example", true)
	for want := int64(4); want <= 5; want++ {
		var dnsErr *net.DNSError
		if _, err := lookup("flaky.example", want); !errors.As(err, &dnsErr) || !dnsErr.IsTemporary {
			t.Fatalf("temporary failure: %v", err)
		}
	}
}

func TestCache_Bounded(t *testing.T) {
	dns := &counting{Resolver: dnstest.NewResolver()}
	c := NewCache(dns, time.Hour, 8)
	for i := range 100 {
		c.LookupTXT(context.Background(), string(rune('a'+i%26))+".example")
		if n := len(c.entries); n > 8 {
			t.Fatalf("%d entries, bound 8", n)
		}
	}
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(time.Millisecond)
	}
}

func TestCache_Concurrent(t *testing.T) {
	dns := &counting{Resolver: dnstest.NewResolver(), hold: make(chan struct{})}
	dns.SetTXT("example.com", "v=spf1 -all")
	c := NewCache(dns, time.Hour, 0)
	var wg sync.WaitGroup
	var waiting atomic.Int64
	for range 16 {
		wg.Go(func() {
			ctx := watchedCtx{context.Background(), &waiting}
			if v, err := c.LookupTXT(ctx, "example.com"); err != nil || len(v) != 1 {
				t.Errorf("lookup: %q, %v", v, err)
			}
		})
	}
	// Every caller waits for an answer (it has asked its context when to
	// give up) while the query is held back; once it is answered, they
	// must all have shared one.
	waitFor(t, "16 callers waiting", func() bool { return waiting.Load() >= 16 })
	close(dns.hold)
	wg.Wait()
	if n := dns.n.Load(); n != 1 {
		t.Errorf("%d upstream lookups for 16 callers of one name at once, want them to share one", n)
	}
}

// watchedCtx counts the calls of Done: a caller asks it when it starts to
// wait.
type watchedCtx struct {
	context.Context
	n *atomic.Int64
}

func (c watchedCtx) Done() <-chan struct{} {
	c.n.Add(1)
	return c.Context.Done()
}

// TestCache_CallerGivesUp: a caller whose context ends gets its error at
// once, and the query it started still finishes and is kept for others.
func TestCache_CallerGivesUp(t *testing.T) {
	dns := &counting{Resolver: dnstest.NewResolver(), hold: make(chan struct{})}
	dns.SetTXT("example.com", "v=spf1 -all")
	c := NewCache(dns, time.Hour, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.LookupTXT(ctx, "example.com"); done <- err }()
	waitFor(t, "the query", func() bool { return dns.n.Load() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v", err)
	}
	close(dns.hold)
	if v, err := c.LookupTXT(context.Background(), "example.com"); err != nil || len(v) != 1 {
		t.Fatalf("the next caller: %q, %v", v, err)
	}
	if n := dns.n.Load(); n != 1 {
		t.Errorf("%d upstream lookups: the first query was abandoned with its caller", n)
	}
}
