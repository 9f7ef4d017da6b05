package pipeline

import (
	"strings"
	"testing"
	"time"
)

// TestNewUID_TimeOrdered: server UIDs sort by creation time, so new
// events are added at the end of the event buckets, and stay unguessable
// (80 random bits) and URL-safe.
func TestNewUID_TimeOrdered(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 1, 2, 3, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		u := newUID(t0.Add(time.Duration(i/2) * time.Millisecond))
		if len(u) != 26 || strings.Trim(u, "0123456789abcdefghijklmnopqrstuv") != "" {
			t.Fatalf("UID %q: want 26 characters of lower-case base32hex", u)
		}
		if seen[u] {
			t.Fatalf("UID %q made twice", u)
		}
		seen[u] = true
		if i%2 == 0 && u <= prev {
			t.Fatalf("UID %q of a later millisecond sorts before %q", u, prev)
		}
		prev = u
	}
}
