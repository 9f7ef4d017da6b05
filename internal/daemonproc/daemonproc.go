// Package daemonproc is the running daemon as other programs see it: the
// file in its data directory that names the addresses it listens on, and a
// child process of `invited serve` for the tests and the bench that run
// the built binary.
package daemonproc

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ListenFile, in the data directory, names the addresses the daemon
// listens on, written once both are bound (ports chosen by the system
// included).
const ListenFile = "listen.json"

// Addrs are the daemon's listeners.
type Addrs struct {
	SMTP string `json:"smtp"`
	HTTP string `json:"http"`
}

// WriteAddrs records a in dir's ListenFile, atomically.
func WriteAddrs(dir string, a Addrs) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ListenFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ListenFile))
}

// ReadAddrs reads dir's ListenFile; an fs.ErrNotExist error when there is
// none.
func ReadAddrs(dir string) (Addrs, error) {
	var a Addrs
	b, err := os.ReadFile(filepath.Join(dir, ListenFile))
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(b, &a)
}

// Process is `invited serve` running as a child process.
type Process struct {
	Cmd *exec.Cmd
	Addrs

	exited  chan struct{}
	waitErr error

	mu   sync.Mutex
	tail []string
}

// tailLines is how many of its last log lines a Process keeps.
const tailLines = 40

// Start starts cmd (an `invited serve` over data directory dir, its
// arguments and environment set by the caller) and waits up to timeout
// for its ListenFile. A stale file from an earlier run is removed first.
func Start(cmd *exec.Cmd, dir string, timeout time.Duration) (*Process, error) {
	if err := os.Remove(filepath.Join(dir, ListenFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	p := &Process{Cmd: cmd, exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.tail = append(p.tail, sc.Text())
			if len(p.tail) > tailLines {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
		}
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(timeout)
	for {
		a, err := ReadAddrs(dir)
		if err == nil {
			p.Addrs = a
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("daemon exited at start: %v\n%s", p.waitErr, p.Tail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("daemon did not start in %v\n%s", timeout, p.Tail())
		}
	}
}

// Tail is the last lines the daemon logged.
func (p *Process) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Exited is closed once the process has ended; Err then says how.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended (nil before it has).
func (p *Process) Err() error {
	select {
	case <-p.exited:
		return p.waitErr
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits up to grace for the process to end, then
// kills it. It reports how the process ended, or that it had to be killed.
func (p *Process) Stop(grace time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("daemon did not stop within %v after SIGTERM: killed", grace)
	}
}

// Kill ends the process at once and waits for it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.exited
}
