// Command invited-bench measures the invited daemon against the ceilings
// of this machine and of its own dependencies, in one run: a go-smtp
// server that discards, and bbolt with group commit. It builds and starts
// the real daemon (fsync on, a discarding SMTP relay), drives it over SMTP
// and HTTP on 127.0.0.1, prints a table and writes every figure to a JSON
// file. It measures; it never asserts a speed.
//
//	go run ./cmd/invited-bench -out bench.json    # about 3 minutes on 2 cores
//	go run ./cmd/invited-bench -quick             # a smoke run of about a minute
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/invited/invited/internal/dnstest"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == sinkArg {
		if err := runSink(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "invited-bench sink:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "invited-bench:", err)
		os.Exit(1)
	}
}

// Organizers of the generated load, one per purpose, so that each lists
// only its own events.
const (
	loadOrganizer   = "load@example.org"
	fanoutOrganizer = "fanout@example.org"
	smallOrganizer  = "small@example.org"
	bigOrganizer    = "big@example.org"
)

const totalSteps = 7

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args[1:], stderr)
	if err != nil {
		return err
	}
	lockstep = o.Lockstep
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second Ctrl-C kills at once

	res := &Result{
		Command: args,
		Go:      runtime.Version(),
		Started: time.Now(),
		Host:    Host{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH, Dir: o.Dir},
		Options: o,
	}
	prog := newProgress(stderr)
	res.Host.LoadBefore = loadAverage()
	if res.Host.LoadBefore > float64(runtime.NumCPU())/2 {
		w := fmt.Sprintf("the load average was %.1f on %d CPUs before the run: other work on the machine makes the figures noisy",
			res.Host.LoadBefore, runtime.NumCPU())
		res.Warnings = append(res.Warnings, w)
		prog.Note("warning: %s", w)
	}
	defer func() {
		prog.Done()
		res.Seconds = time.Since(res.Started).Seconds()
		res.Host.LoadAfter = loadAverage()
		if err != nil && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		if err != nil {
			res.Error = err.Error()
		}
		printTable(stdout, res)
		if o.Out != "" {
			if werr := writeJSON(o.Out, res); werr != nil {
				err = errors.Join(err, werr)
			} else {
				fmt.Fprintf(stderr, "figures written to %s\n", o.Out)
			}
		}
	}()

	work, err := os.MkdirTemp(o.Dir, "invited-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if w := tmpfsWarning(work); w != "" {
		res.Warnings = append(res.Warnings, w)
		prog.Note("warning: %s", w)
	}
	root := ""
	if o.Bin == "" || o.Testdata == "" {
		if root, err = moduleRoot(); err != nil {
			return err
		}
	}
	if o.Testdata == "" {
		o.Testdata = filepath.Join(root, "testdata", "imip")
	}
	res.Options.Testdata = o.Testdata
	res.Git = gitDescribe(ctx, root)
	tmpl, err := loadTemplate(o.Testdata, loadOrganizer, o.MessageBytes)
	if err != nil {
		return err
	}
	runID := time.Now().Format("150405")
	b := &bench{o: o, res: res, prog: prog, work: work, tmpl: tmpl, run: runID}
	b.msgBytes = len(tmpl.message(newUIDSource(runID, "size").next()))

	if o.runs("ceilings") {
		prog.Step(1, totalSteps, "ceilings: go-smtp discarding, bbolt group commit")
		if err := b.ceilings(ctx); err != nil {
			return err
		}
	}
	needDaemon := o.runs("accept") || o.runs("e2e") || o.runs("fanout") || o.runs("reads") || o.runs("large")
	if !needDaemon {
		return nil
	}
	if o.Auth == "aligned" {
		dns, err := dnstest.Serve(dnstest.Loopback())
		if err != nil {
			return err
		}
		defer dns.Close()
		b.dns = dns.Addr()
	}
	if o.Bin == "" {
		prog.Step(2, totalSteps, "building ./cmd/invited")
		if b.bin, err = buildDaemon(ctx, root, work); err != nil {
			return err
		}
	} else {
		b.bin = o.Bin
	}
	if o.runs("accept") {
		prog.Step(2, totalSteps, fmt.Sprintf("durable SMTP accept at %v sessions", []int(o.Sessions)))
		if err := b.accept(ctx); err != nil {
			return err
		}
	}
	if o.runs("e2e") || o.runs("fanout") || o.runs("reads") {
		if err := b.mainDaemon(ctx); err != nil {
			return err
		}
	}
	if o.runs("large") {
		prog.Step(7, totalSteps, fmt.Sprintf("large messages: %d sessions of %s", o.Large, mib(int64(o.LargeBytes))))
		if err := b.large(ctx); err != nil {
			return err
		}
	}
	return nil
}

// bench is one run's state.
type bench struct {
	o        Options
	res      *Result
	prog     *progress
	work     string
	bin      string
	run      string
	tmpl     *requestTemplate
	msgBytes int

	acceptPeak int64  // largest VmHWM of the accept daemons
	dns        string // the loopback DNS server for the sender checks
}

// daemonConfig is how the bench starts a daemon over data.
func (b *bench) daemonConfig(data, relay string, extra ...string) daemonConfig {
	return daemonConfig{Bin: b.bin, Data: data, Relay: relay, LogLevel: b.o.LogLevel, Auth: b.o.Auth, DNS: b.dns,
		Extra: append(extra, b.o.DaemonFlags...)}
}

// loadAverage is the 1-minute load average, 0 where unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// gitDescribe names the commit of the checkout at dir, if it is one.
func gitDescribe(ctx context.Context, dir string) string {
	if dir == "" {
		return ""
	}
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty", "--tags")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
