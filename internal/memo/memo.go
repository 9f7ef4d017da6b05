// Package memo keeps results that are cheap to make again and asked for
// far more often than they change: a fan-out renders one event for every
// attendee; a calendar parse read goes on to verify and create.
package memo

import "sync"

// Cache maps keys to values, at most Max of them (default 256) and, when
// MaxSize is set, values whose Size adds up to at most MaxSize; past either
// bound the oldest go first, though the newest is always kept. It is safe
// for concurrent use; its zero value is ready.
type Cache[K comparable, V any] struct {
	Max     int
	MaxSize int
	// Size is what a value counts against MaxSize (bytes, rows).
	Size func(V) int

	mu    sync.Mutex
	m     map[K]entry[V]
	order []slot[K] // oldest first; a slot whose seq is not its entry's is stale
	seq   uint64
	size  int
}

type entry[V any] struct {
	v    V
	size int
	seq  uint64
}

type slot[K comparable] struct {
	k   K
	seq uint64
}

// Get returns the value kept for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return e.v, ok
}

// Take returns the value kept for k and forgets it.
func (c *Cache[K, V]) Take(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if ok {
		c.deleteLocked(k)
	}
	return e.v, ok
}

// Put keeps v for k, in place of what was kept for it.
func (c *Cache[K, V]) Put(k K, v V) {
	n := 0
	if c.Size != nil {
		n = c.Size(v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[K]entry[V]{}
	}
	c.deleteLocked(k)
	c.seq++
	c.m[k] = entry[V]{v: v, size: n, seq: c.seq}
	c.order = append(c.order, slot[K]{k, c.seq})
	c.size += n
	max := c.Max
	if max <= 0 {
		max = 256
	}
	for len(c.m) > 1 && (len(c.m) > max || c.MaxSize > 0 && c.size > c.MaxSize) {
		s := c.order[0]
		c.order = c.order[1:]
		if e, ok := c.m[s.k]; ok && e.seq == s.seq {
			c.deleteLocked(s.k)
		}
	}
	if len(c.order) > 2*len(c.m)+64 { // drop the stale slots Delete left
		live := c.order[:0]
		for _, s := range c.order {
			if e, ok := c.m[s.k]; ok && e.seq == s.seq {
				live = append(live, s)
			}
		}
		clear(c.order[len(live):])
		c.order = live
	}
}

// Delete forgets k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleteLocked(k)
}

func (c *Cache[K, V]) deleteLocked(k K) {
	if e, ok := c.m[k]; ok {
		c.size -= e.size
		delete(c.m, k)
	}
}

// Len is how many values are kept.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Held is what the values kept add up to by Size.
func (c *Cache[K, V]) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
