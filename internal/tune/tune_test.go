package tune

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// The garbage collector gets the defaults only where GOGC and
// GOMEMLIMIT say nothing, and a heap of eleven times the live one only
// under the daemon's own memory limit.
func TestTuneGC(t *testing.T) {
	percent, limit := debug.SetGCPercent(137), debug.SetMemoryLimit(137<<20)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	for _, c := range []struct {
		name  string
		env   map[string]string
		gc    int
		limit int64
	}{
		{"neither set", nil, GCPercent, MemoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, LimitedGCPercent, 137 << 20},
		{"GOGC set", map[string]string{"GOGC": "50"}, 137, MemoryLimit},
		{"both set", map[string]string{"GOGC": "50", "GOMEMLIMIT": "1GiB"}, 137, 137 << 20},
	} {
		debug.SetGCPercent(137)
		debug.SetMemoryLimit(137 << 20)
		gc(func(k string) string { return c.env[k] })
		if got := debug.SetGCPercent(137); got != c.gc {
			t.Errorf("%s: GC percent %d, want %d", c.name, got, c.gc)
		}
		if got := debug.SetMemoryLimit(137 << 20); got != c.limit {
			t.Errorf("%s: memory limit %d, want %d", c.name, got, c.limit)
		}
	}
}

// Go code runs on one thread more than the runtime's default (here,
// unless a CPU quota holds the default below the CPUs), unless
// GOMAXPROCS is set.
func TestTuneProcs(t *testing.T) {
	n := runtime.GOMAXPROCS(0)
	want := threads(n, runtime.NumCPU())
	t.Cleanup(func() { runtime.SetDefaultGOMAXPROCS() })
	procs(func(string) string { return "" })
	if got := runtime.GOMAXPROCS(n); got != want {
		t.Errorf("GOMAXPROCS unset: %d threads, want %d", got, want)
	}
	procs(func(k string) string { return map[string]string{"GOMAXPROCS": "1"}[k] })
	if got := runtime.GOMAXPROCS(0); got != n {
		t.Errorf("GOMAXPROCS set: changed to %d", got)
	}
}

// The thread is added where Go's default is the machine's CPUs, not where
// a CPU quota holds it lower.
func TestThreads(t *testing.T) {
	for _, c := range []struct{ def, cpus, want int }{
		{1, 1, 2},
		{2, 2, 3},
		{8, 8, 9},
		{2, 8, 2}, // a quota of two CPUs (or less) on eight
		{3, 8, 3}, // a quota of 2.5 CPUs, rounded up
	} {
		if got := threads(c.def, c.cpus); got != c.want {
			t.Errorf("threads(%d, %d) = %d, want %d", c.def, c.cpus, got, c.want)
		}
	}
}

// Runtime sets both.
func TestRuntime(t *testing.T) {
	n, percent, limit := runtime.GOMAXPROCS(0), debug.SetGCPercent(137), debug.SetMemoryLimit(137<<20)
	t.Cleanup(func() { runtime.SetDefaultGOMAXPROCS(); debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	Runtime(func(string) string { return "" })
	if got, want := runtime.GOMAXPROCS(0), threads(n, runtime.NumCPU()); got != want {
		t.Errorf("%d threads, want %d", got, want)
	}
	if got := debug.SetGCPercent(137); got != GCPercent {
		t.Errorf("GC percent %d, want %d", got, GCPercent)
	}
}
