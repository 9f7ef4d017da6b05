// Package memo keeps results that are cheap to make again and asked for
// far more often than they change: a fan-out renders one event for every
// attendee.
package memo

import (
	"sync"
	"sync/atomic"
)

// Cache maps keys to values, at most Max of them (default 256): when it is
// full it is emptied. It is safe for concurrent use; its zero value is
// ready.
type Cache[K comparable, V any] struct {
	Max int64

	m sync.Map
	n atomic.Int64
}

// Get returns the value kept for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	v, ok := c.m.Load(k)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

// Put keeps v for k.
func (c *Cache[K, V]) Put(k K, v V) {
	limit := c.Max
	if limit <= 0 {
		limit = 256
	}
	if c.n.Add(1) > limit {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(k, v)
}
