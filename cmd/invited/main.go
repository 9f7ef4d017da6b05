// Command invited is a self-hosted calendar invite server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "invited:", err)
		}
		os.Exit(exitCode(err))
	}
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

// defaultMemoryLimit is the Go runtime's soft memory limit unless
// GOMEMLIMIT sets one. The live heap is 5-25 MiB in the bench's runs (its
// bounded caches included), so under load it is the limit, more than
// GOGC, that sets when the heap is collected; the store's mapped pages
// (store.Options.MappedBudget, 48 MiB) come on top.
const defaultMemoryLimit = 64 << 20

// defaultGCPercent is GOGC unless set, while the memory limit is
// defaultMemoryLimit; limitedGCPercent takes its place when GOMEMLIMIT
// sets another limit, which may be none (see tuneGC).
const (
	defaultGCPercent = 1000
	limitedGCPercent = 200
)

const usage = `invited is a self-hosted calendar invite server.

Organizers put create@DOMAIN on meetings they create in Gmail, Outlook or
Apple Calendar; invited registers the event, sends its own invites to the
attendees you add (HTTP API, RSVP buttons, landing pages), collects their
Accept/Decline/Maybe replies at rsvp@DOMAIN, and keeps every invite in step
with the organizer's updates and cancellations.

Usage:
  invited serve [flags]    run the daemon (invited serve --help for flags)
  invited keys …           create, list and revoke API keys (invited keys --help)
  invited dkim generate    make a DKIM key and print its DNS record
  invited version          print the version
  invited help             this text

`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stderr)
	case "keys":
		return keys(ctx, args[1:], getenv, stdout, stderr)
	case "dkim":
		return dkimCmd(args[1:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "invited", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		def := DefaultConfig()
		serveFlags(fs, &def)
		fmt.Fprintln(stdout, "Flags of invited serve (each also read from the INVITED_* variable named, and from the --config file):")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("invited serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: invited serve [flags]\n\nRuns the daemon. Each flag can also be set by the INVITED_* variable named,\nor by the same key (with _ for -) in the TOML file given by --config.\nFlags win over variables, variables over the file.")
		fmt.Fprintf(stderr, "Go's GOGC and GOMEMLIMIT tune garbage collection (here by default %d\nand %dMiB; GOGC %d with a GOMEMLIMIT of your own), and GOMAXPROCS how many\nthreads run Go code at once (here by default one more than the CPUs Go\nwould use).\n\nFlags:\n", defaultGCPercent, defaultMemoryLimit>>20, limitedGCPercent)
		fs.PrintDefaults()
	}
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file` until the daemon stops (for finding what is slow)")
	cfg, err := loadConfig(args, getenv, fs)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	log := newLogger(stderr, cfg.LogLevel)
	tuneGC(getenv)
	tuneProcs(getenv)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills at once.
	context.AfterFunc(ctx, stop)

	app, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	return app.Wait()
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// tuneProcs runs Go code on one thread more than Go's default (the CPUs
// available), unless GOMAXPROCS says otherwise.
//
// The committer that every writer waits on spends half its time in
// fdatasync. While it is in the call, the runtime hands its thread's turn
// at running Go code to a parse or SMTP goroutine; with every turn taken,
// the committer back from fdatasync queues behind them before it can wake
// its writers and start the next commit. With a spare turn it more often
// goes straight on: in a trace of the bench's highest applied run on two
// CPUs, the committer waited to run 15% of its time with two, 9% with
// three. Setting it stops the runtime from following later changes of
// the CPU limit, which a restart picks up.
func tuneProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + 1)
	}
}

// tuneGC sets the garbage collector's defaults, leaving what GOGC and
// GOMEMLIMIT set to them.
//
// The live heap is small (5-25 MiB; the database is mapped, not on the
// heap), so Go's default of collecting each time it doubles spends a
// tenth of the CPU of a busy daemon on GC. With neither variable set, the
// heap may grow to eleven times what is live, but no further than
// defaultMemoryLimit, which with the store's mapped-page budget keeps the
// daemon within its memory target (see the README's Performance
// section): under load it collects about when the runtime holds 64 MiB.
// A GOMEMLIMIT of the admin's own may be far higher or off, so with one
// the heap only triples.
func tuneGC(getenv func(string) string) {
	limited := getenv("GOMEMLIMIT") == ""
	if limited {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if getenv("GOGC") == "" {
		if limited {
			debug.SetGCPercent(defaultGCPercent)
		} else {
			debug.SetGCPercent(limitedGCPercent)
		}
	}
}
