package pipeline

import (
	"testing"
	"time"
)

func TestThrottle_PacesAndPausesPerDomain(t *testing.T) {
	tt := newThrottle(2, 2, time.Second, 8*time.Second)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2 {
		if tt.take("a.example", now) != 0 {
			t.Fatalf("send %d of a burst of 2 refused", i+1)
		}
	}
	if w := tt.take("a.example", now); w <= 0 || w > time.Second {
		t.Errorf("third at once: wait %v, want up to half a second", w)
	}
	if tt.take("b.example", now) != 0 {
		t.Error("another domain is paced by the first")
	}
	if tt.take("a.example", now.Add(time.Second)) != 0 {
		t.Error("a second later: still refused")
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if got := tt.failed("b.example", now); got != want {
			t.Errorf("pause after %d failures: %v, want %v", i+1, got, want)
		}
	}
	if w := tt.take("b.example", now.Add(7*time.Second)); w != time.Second {
		t.Errorf("during the pause: wait %v, want 1s", w)
	}
	tt.ok("b.example")
	if tt.take("b.example", now.Add(7*time.Second)) != 0 {
		t.Error("a delivery did not end the pause")
	}
	unlimited := newThrottle(-1, 1, time.Second, time.Minute)
	for range 1000 {
		if unlimited.take("c.example", now) != 0 {
			t.Fatal("a negative rate limits")
		}
	}
}
