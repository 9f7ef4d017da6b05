// Package tune sets the Go runtime's defaults for invited's daemon: how
// often it collects garbage and how many threads run Go code. The bench's
// go-smtp ceiling runs with them too, so that it is compared with the
// daemon on equal terms. What the admin sets in GOGC, GOMEMLIMIT or
// GOMAXPROCS is left as it is.
package tune

import (
	"runtime"
	"runtime/debug"
)

// MemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT sets one. The live heap is 5-25 MiB in the bench's runs (its
// bounded caches included), so under load it is the limit, more than
// GOGC, that sets when the heap is collected; the store's mapped pages
// (store.Options.MappedBudget, 48 MiB) come on top.
const MemoryLimit = 64 << 20

// GCPercent is GOGC unless set, while the memory limit is
// MemoryLimit; LimitedGCPercent takes its place when GOMEMLIMIT
// sets another limit, which may be none (see gc).
const (
	GCPercent        = 1000
	LimitedGCPercent = 200
)

// Runtime sets the defaults (gc and procs); getenv is os.Getenv.
func Runtime(getenv func(string) string) {
	gc(getenv)
	procs(getenv)
}

// procs runs Go code on one thread more than Go's default (the CPUs
// available), unless GOMAXPROCS says otherwise or a CPU quota holds Go's
// default below the machine's CPUs (see threads).
//
// The committer that every writer waits on spends half its time in
// fdatasync. While it is in the call, the runtime hands its thread's turn
// at running Go code to a parse or SMTP goroutine; with every turn taken,
// the committer back from fdatasync queues behind them before it can wake
// its writers and start the next commit. With a spare turn it more often
// goes straight on: in a trace of the bench's highest applied run on two
// CPUs, the committer waited to run 15% of its time with two, 9% with
// three.
func procs(getenv func(string) string) {
	if getenv("GOMAXPROCS") != "" {
		return
	}
	def := runtime.GOMAXPROCS(0)
	if n := threads(def, runtime.NumCPU()); n != def {
		runtime.GOMAXPROCS(n)
	}
}

// threads is how many threads run Go code, given Go's default and the
// CPUs the machine lets the process use. Go's default counts a
// container's CPU quota (rounded up, never below two), and a quota is
// time on the CPUs, not CPUs: with a thread more than the quota, the
// process spends its share sooner and is then held until the next period,
// committer and all. So the thread is added only where Go's default is
// the CPUs themselves, and under a quota Go's default stays, and follows
// the quota when it changes (setting GOMAXPROCS stops that). Go's default
// cannot show a quota of up to two CPUs on a machine of two (it is two
// either way): there, set GOMAXPROCS.
func threads(def, cpus int) int {
	if def < cpus {
		return def
	}
	return def + 1
}

// gc sets the garbage collector's defaults, leaving what GOGC and
// GOMEMLIMIT set to them.
//
// The live heap is small (5-25 MiB; the database is mapped, not on the
// heap), so Go's default of collecting each time it doubles spends a
// tenth of the CPU of a busy daemon on GC. With neither variable set, the
// heap may grow to eleven times what is live, but no further than
// MemoryLimit, which with the store's mapped-page budget keeps the
// daemon within its memory target (see the README's Performance
// section): under load it collects about when the runtime holds 64 MiB.
// A GOMEMLIMIT of the admin's own may be far higher or off, so with one
// the heap only triples.
func gc(getenv func(string) string) {
	limited := getenv("GOMEMLIMIT") == ""
	if limited {
		debug.SetMemoryLimit(MemoryLimit)
	}
	if getenv("GOGC") == "" {
		if limited {
			debug.SetGCPercent(GCPercent)
		} else {
			debug.SetGCPercent(LimitedGCPercent)
		}
	}
}
