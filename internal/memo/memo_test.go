package memo

import "testing"

func TestCache(t *testing.T) {
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
	c.Put(3, "d") // full: emptied, then kept
	if _, ok := c.Get(0); ok {
		t.Error("kept more than Max")
	}
	if v, ok := c.Get(3); !ok || v != "d" {
		t.Errorf("the newest value: %q, %v", v, ok)
	}
}
