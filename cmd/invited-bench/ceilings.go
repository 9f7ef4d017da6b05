package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/invited/invited/internal/smtptest"
	"github.com/invited/invited/internal/tune"
)

// smtpCeiling measures a go-smtp server that discards what it receives:
// the most any go-smtp based listener can accept on this machine. The
// server runs in a process of its own, as the daemon does, with the load
// generator sharing the CPUs as it does against the daemon: in the bench's
// own process the two would share one Go scheduler, and hand-offs between
// client and server that cost a daemon a switch between processes would
// come free. It runs with the daemon's defaults for the Go runtime
// (package tune), which speed it up as well.
func smtpCeiling(ctx context.Context, sessions int, d time.Duration, msg func() []byte) (smtpSample, error) {
	sink, err := startSink()
	if err != nil {
		return smtpSample{}, err
	}
	defer sink.stop()
	cpu := startCPU(sink.cmd.Process.Pid)
	r := closedLoop(ctx, sender{addr: sink.addr, from: "bench@example.org", rcpt: "sink@example.net"}, sessions, d, msg, false)
	if r.OK == 0 {
		return smtpSample{}, fmt.Errorf("smtp ceiling: nothing accepted: %v", r.FirstErr)
	}
	return smtpSample{r, cpu.Used()}, nil
}

// smtpSample is one measurement of the go-smtp ceiling: the load and the
// server's CPU.
type smtpSample struct {
	load loadResult
	cpu  time.Duration
}

// smtpFigureOf sums up samples taken at one session count.
func smtpFigureOf(samples []smtpSample) SMTPFigure {
	var loads []loadResult
	var cpu time.Duration
	for _, s := range samples {
		loads = append(loads, s.load)
		cpu += s.cpu
	}
	r := mergeLoads(loads)
	f := smtpFigure(r)
	f.Rounds = len(samples)
	f.ServerCores, f.CPUPerMsgUS = cpu.Seconds()/r.Elapsed.Seconds(), float64(cpu.Microseconds())/float64(r.OK)
	return f
}

// sinkArg, as the bench's only argument, makes it the discarding go-smtp
// server of smtpCeiling: it prints its address and serves until its
// standard input closes.
const sinkArg = "-internal-sink"

// runSink is the bench run with sinkArg. It outlives a Ctrl-C, which
// reaches it too, to end with the bench's own cleanup (or the bench).
func runSink(stdin io.Reader, stdout io.Writer) error {
	signal.Ignore(os.Interrupt)
	tune.Runtime(os.Getenv)
	srv, err := smtptest.Start(smtptest.Options{Discard: true})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintln(stdout, srv.Addr)
	_, err = io.Copy(io.Discard, stdin)
	return err
}

type sink struct {
	cmd  *exec.Cmd
	in   io.Closer
	addr string
}

// startSink starts the bench's own binary as a discarding server. Not
// tied to ctx: on a Ctrl-C the bench stops its clients first, then the
// sink (stop), and a bench that dies closes the sink's standard input.
func startSink() (*sink, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, sinkArg)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &sink{cmd: cmd, in: in}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("smtp ceiling: the sink did not start: %w", err)
	}
	s.addr = strings.TrimSpace(line)
	return s, nil
}

// stop closes the sink's standard input, which ends it, and waits.
func (s *sink) stop() {
	s.in.Close()
	s.cmd.Wait()
}

// boltOptions are the options invited's store opens bbolt with.
func boltOptions() *bolt.Options { return &bolt.Options{Timeout: time.Second} }

var bucketName = []byte("bench")

// boltCeiling measures durable 4 KiB writes to a bbolt file in dir from
// producers goroutines for d. With group, one committer goroutine takes
// whatever writes are queued when the previous commit ends and puts them
// in one transaction (one fsync), acking each writer after the commit, as
// invited's store does; without, each write is its own bolt.Update.
func boltCeiling(ctx context.Context, dir string, producers int, group bool, d time.Duration, valueSize int) (BoltFigure, error) {
	f, err := os.CreateTemp(dir, "ceiling-*.db")
	if err != nil {
		return BoltFigure{}, err
	}
	path := f.Name()
	f.Close()
	os.Remove(path)
	defer os.Remove(path)
	db, err := bolt.Open(path, 0o600, boltOptions())
	if err != nil {
		return BoltFigure{}, err
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	}); err != nil {
		return BoltFigure{}, err
	}
	value := make([]byte, valueSize)
	for i := range value {
		value[i] = byte(rand.Uint32())
	}

	put := func(tx *bolt.Tx, v []byte) error {
		b := tx.Bucket(bucketName)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, id), v)
	}
	var write func() error
	var commits func() int64
	if group {
		gc := startGroupCommitter(db, put, 1000)
		defer gc.close()
		write = func() error { return gc.write(value) }
		commits = gc.commitCount
	} else {
		var mu sync.Mutex
		var n int64
		write = func() error {
			err := db.Update(func(tx *bolt.Tx) error { return put(tx, value) })
			mu.Lock()
			n++
			mu.Unlock()
			return err
		}
		commits = func() int64 { mu.Lock(); defer mu.Unlock(); return n }
	}

	var (
		mu    sync.Mutex
		total int64
		lats  []time.Duration
		first error
		wg    sync.WaitGroup
	)
	c0 := commits()
	start := time.Now()
	deadline := start.Add(d)
	for range producers {
		wg.Go(func() {
			var n int64
			var my []time.Duration
			var err error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t := time.Now()
				if err = write(); err != nil {
					break
				}
				my = append(my, time.Since(t))
				n++
			}
			mu.Lock()
			defer mu.Unlock()
			total += n
			lats = append(lats, my...)
			if first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return BoltFigure{}, first
	}
	if err := ctx.Err(); err != nil {
		return BoltFigure{}, err
	}
	mode := "update-per-write"
	if group {
		mode = "group-commit"
	}
	fig := BoltFigure{
		Mode:      mode,
		Producers: producers,
		Writes:    total,
		Seconds:   elapsed.Seconds(),
		PerSecond: float64(total) / elapsed.Seconds(),
		Latency:   latencyOf(lats),
	}
	if c := commits() - c0; c > 0 {
		fig.WritesPerCommit = float64(total) / float64(c)
	}
	return fig, nil
}

// groupCommitter is a single goroutine draining a channel of writes into
// one bolt.Update per batch.
type groupCommitter struct {
	reqs chan *writeReq
	done chan struct{}

	mu      sync.Mutex
	commits int64
}

type writeReq struct {
	value []byte
	done  chan error
}

func startGroupCommitter(db *bolt.DB, put func(*bolt.Tx, []byte) error, maxBatch int) *groupCommitter {
	g := &groupCommitter{reqs: make(chan *writeReq), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		batch := make([]*writeReq, 0, maxBatch)
		for r := range g.reqs {
			batch = append(batch[:0], r)
		fill:
			for len(batch) < maxBatch {
				select {
				case r, ok := <-g.reqs:
					if !ok {
						break fill
					}
					batch = append(batch, r)
				default:
					break fill
				}
			}
			err := db.Update(func(tx *bolt.Tx) error {
				for _, r := range batch {
					if err := put(tx, r.value); err != nil {
						return err
					}
				}
				return nil
			})
			g.mu.Lock()
			g.commits++
			g.mu.Unlock()
			for _, r := range batch {
				r.done <- err
			}
		}
	}()
	return g
}

// write queues one write and returns once it is durable.
func (g *groupCommitter) write(v []byte) error {
	r := &writeReq{value: v, done: make(chan error, 1)}
	g.reqs <- r
	return <-r.done
}

func (g *groupCommitter) commitCount() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.commits
}

// close stops the committer once the writers are done.
func (g *groupCommitter) close() {
	close(g.reqs)
	<-g.done
}

// tmpfsWarning checks that dir is a real disk: on tmpfs every fsync is free
// and neither the ceilings nor the daemon are measured as they run.
func tmpfsWarning(dir string) string {
	if inMemoryFS(dir) {
		return "the work directory " + filepath.Clean(dir) + " is on tmpfs: fsync costs nothing there, so durable figures are far above a disk's; pass -dir on a disk"
	}
	return ""
}
