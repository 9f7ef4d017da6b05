package main

import (
	"math"
	"testing"
	"time"
)

// Turns are summed up as one measurement: rates and CPU over the total
// time and messages, commits over the counters' growth in each turn.
func TestAcceptFigure_SumsTurns(t *testing.T) {
	b := &bench{res: &Result{Ceilings: Ceilings{SMTP: []SMTPFigure{{Sessions: 32, PerSecond: 600}}}}}
	at := time.Now()
	turn := func(ok int64, secs float64, cpu time.Duration, commits, updates float64) acceptSample {
		d := time.Duration(secs * float64(time.Second))
		return acceptSample{
			load: loadResult{Sessions: 32, OK: ok, Elapsed: d, Latencies: make([]time.Duration, ok)},
			cpu:  cpu,
			c0:   commitCount{at: at, commits: 1000, updates: 5000},
			c1:   commitCount{at: at.Add(d), commits: 1000 + commits, updates: 5000 + updates},
		}
	}
	f := b.acceptFigure("default", 32, []acceptSample{
		turn(100, 1, 10*time.Millisecond, 10, 100),
		turn(500, 2, 50*time.Millisecond, 30, 500),
	})
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6*math.Max(1, want) }
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"rate", f.PerSecond, 200},       // 600 messages in 3 s
		{"ratio", f.VsSMTP, 200.0 / 600}, // to the ceiling at 32 sessions
		{"CPU per message µs", f.CPUPerMsgUS, 100},
		{"cores", f.DaemonCores, 0.02},
		{"commits/s", f.Commits.PerSecond, 40.0 / 3},
		{"updates per commit", f.Commits.UpdatesPerCommit, 15},
		{"rounds", float64(f.Rounds), 2},
		{"latencies", float64(f.Latency.N), 600},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}
