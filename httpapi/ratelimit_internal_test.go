package httpapi

import (
	"testing"
	"time"
)

func TestRate_WithBurst(t *testing.T) {
	d := DefaultRateLimits
	cases := []struct {
		r, def Rate
		want   int
	}{
		{Rate{N: d.PerAttendee.N, Per: time.Hour}, d.PerAttendee, d.PerAttendee.Burst}, // the default keeps its own burst
		{Rate{N: 60, Per: time.Minute}, d.PerIP, 20},                                   // twice the default rate, twice the burst
		{Rate{N: 1, Per: time.Minute}, d.PerEvent, 1},                                  // never below one
		{Rate{N: 60, Per: time.Minute, Burst: 7}, d.PerIP, 7},                          // a burst given is kept
	}
	for _, c := range cases {
		if got := c.r.withBurst(c.def).Burst; got != c.want {
			t.Errorf("%+v with default %+v: burst %d, want %d", c.r, c.def, got, c.want)
		}
	}
}
