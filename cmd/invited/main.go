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
	"runtime/pprof"
	"syscall"

	"github.com/invited/invited/internal/tune"
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
		fmt.Fprintf(stderr, "\nGo's GOGC and GOMEMLIMIT tune garbage collection (here by default %d\nand %dMiB; GOGC %d with a GOMEMLIMIT of your own), and GOMAXPROCS how many\nthreads run Go code at once (here by default one more than the CPUs,\nunless a CPU quota holds Go to fewer; then Go's own default).\n\nFlags:\n", tune.GCPercent, tune.MemoryLimit>>20, tune.LimitedGCPercent)
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
	tune.Runtime(getenv)
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
