package memo

import (
	"fmt"
	"sync"
	"testing"
)

func TestCache_OldestGoFirst(t *testing.T) {
	c := Cache[int, string]{Max: 3}
	if _, ok := c.Get(1); ok {
		t.Fatal("a value in an empty cache")
	}
	for i := range 3 {
		c.Put(i, string(rune('a'+i)))
	}
	for i := range 3 {
		if v, ok := c.Get(i); !ok || v != string(rune('a'+i)) {
			t.Fatalf("Get(%d) = %q, %v", i, v, ok)
		}
	}
	c.Put(3, "d")
	if _, ok := c.Get(0); ok {
		t.Error("the oldest value was kept past Max")
	}
	for i := 1; i <= 3; i++ {
		if _, ok := c.Get(i); !ok {
			t.Errorf("value %d went, though newer than the one that had to", i)
		}
	}
	c.Put(1, "b again") // put again: now the newest
	c.Put(4, "e")
	if _, ok := c.Get(1); !ok {
		t.Error("a value put again went as if it were still the oldest")
	}
	if _, ok := c.Get(2); ok {
		t.Error("the oldest value was kept past Max")
	}
}

func TestCache_SizeBoundDeleteAndTake(t *testing.T) {
	c := Cache[string, []byte]{Max: 100, MaxSize: 10, Size: func(b []byte) int { return len(b) }}
	c.Put("a", make([]byte, 4))
	c.Put("b", make([]byte, 4))
	c.Delete("a")
	if c.Len() != 1 || c.Held() != 4 {
		t.Fatalf("after Delete: %d values of %d bytes, want 1 of 4", c.Len(), c.Held())
	}
	if v, ok := c.Take("b"); !ok || len(v) != 4 || c.Len() != 0 || c.Held() != 0 {
		t.Fatalf("Take: %d bytes, %v; then %d values of %d bytes held", len(v), ok, c.Len(), c.Held())
	}
	if _, ok := c.Take("b"); ok {
		t.Fatal("a value taken twice")
	}
	c.Put("b", make([]byte, 4))
	c.Put("c", make([]byte, 4))
	c.Put("d", make([]byte, 4)) // 12 > 10: b goes
	if _, ok := c.Get("b"); ok || c.Held() != 8 {
		t.Errorf("past MaxSize: b kept %v, %d bytes held", ok, c.Held())
	}
	c.Put("huge", make([]byte, 50)) // alone over the bound, but the newest stays
	if _, ok := c.Get("huge"); !ok || c.Len() != 1 || c.Held() != 50 {
		t.Errorf("the newest value: %d values, %d bytes", c.Len(), c.Held())
	}
	for i := range 1000 { // Delete leaves stale slots: they must not grow without bound
		k := fmt.Sprint(i)
		c.Put(k, []byte{1})
		c.Delete(k)
	}
	if n := len(c.order); n > 2*c.Len()+64+1 {
		t.Errorf("%d slots kept for %d values", n, c.Len())
	}
}

func TestCache_Concurrent(t *testing.T) {
	c := Cache[int, int]{Max: 16}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				c.Put(i%40, g)
				c.Get(i % 32)
				if i%7 == 0 {
					c.Delete(i % 40)
				}
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 16 {
		t.Errorf("%d values kept, Max 16", n)
	}
}
