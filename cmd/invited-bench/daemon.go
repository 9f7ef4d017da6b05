package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildDaemon compiles ./cmd/invited of the module at root into dir.
func buildDaemon(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "invited")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/invited")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/invited: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of the go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the invited repository, or pass -bin and -testdata")
		}
		dir = parent
	}
}

// daemonConfig is how one daemon is started.
type daemonConfig struct {
	Bin      string
	Data     string   // data directory, created by the caller
	Relay    string   // host:port of the relay
	Extra    []string // appended to the serve flags
	LogLevel string
	Auth     string // --auth-policy
	DNS      string // --dns, for the sender checks; "" for none
}

const (
	benchDomain = "bench.test"
	benchKey    = "bench-admin-key"
)

// daemon is `invited serve` running as a child process.
type daemon struct {
	cmd  *exec.Cmd
	smtp string
	http string
	api  *apiClient

	exited  chan struct{}
	waitErr error

	tailMu sync.Mutex
	tail   []string

	rss     *rssSampler
	stopRSS context.CancelFunc
}

var startedRe = regexp.MustCompile(`msg="invited started".* smtp=(\S+) http=(\S+)`)

// startDaemon runs the daemon on 127.0.0.1:0 ports and waits for both
// listeners. The address comes from the "invited started" log line when the
// log level shows it, else from the sockets the process listens on.
func startDaemon(ctx context.Context, cfg daemonConfig) (*daemon, error) {
	args := []string{"serve",
		"--data", cfg.Data,
		"--domain", benchDomain,
		"--smtp", "127.0.0.1:0",
		"--http", "127.0.0.1:0",
		"--admin-key", benchKey,
		"--auth-policy", cfg.Auth,
		"--relay", "smtp://" + cfg.Relay,
		"--log-level", cfg.LogLevel,
		"--event-limit", "-1",
		"--invite-limit", "-1",
		"--shutdown-timeout", "5s",
		// The load comes from one address and one recipient domain: lift
		// the abuse limits meant for strangers on the internet.
		"--max-conns-per-ip", "10000",
		"--max-messages-per-conn", "1000000000",
		"--send-rate-per-domain", "-1",
		"--invite-rate-ip", "0/1s",
		"--invite-rate-attendee", "0/1s",
		"--invite-rate-event", "0/1s",
	}
	if cfg.DNS != "" {
		args = append(args, "--dns", cfg.DNS)
	}
	args = append(args, cfg.Extra...)
	cmd := exec.Command(cfg.Bin, args...)
	// Only INVITED_* variables from our own environment would change the
	// daemon's configuration behind our back: drop them.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INVITED_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	setProcAttr(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := startedRe.FindStringSubmatch(line); m != nil {
				select {
				case ready <- [2]string{m[1], m[2]}:
				default:
				}
			}
			d.tailMu.Lock()
			d.tail = append(d.tail, line)
			if len(d.tail) > 30 {
				d.tail = d.tail[1:]
			}
			d.tailMu.Unlock()
		}
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()

	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for d.smtp == "" {
		select {
		case a := <-ready:
			d.smtp, d.http = a[0], a[1]
		case <-tick.C:
			if s, h, err := listenersOf(cmd.Process.Pid); err == nil {
				d.smtp, d.http = s, h
			}
		case <-d.exited:
			return nil, fmt.Errorf("daemon exited at start: %v\n%s", d.waitErr, d.Tail())
		case <-deadline.C:
			d.kill()
			return nil, fmt.Errorf("daemon did not start in 30s\n%s", d.Tail())
		case <-ctx.Done():
			d.kill()
			return nil, ctx.Err()
		}
	}
	d.api = newAPIClient(d.http, benchKey)
	if err := d.api.waitHealthy(ctx); err != nil {
		d.kill()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	d.rss, d.stopRSS = newRSSSampler(rctx, cmd.Process.Pid, 200*time.Millisecond), cancel
	return d, nil
}

// Pid is the daemon's process id.
func (d *daemon) Pid() int { return d.cmd.Process.Pid }

// Tail is the last lines the daemon logged.
func (d *daemon) Tail() string {
	d.tailMu.Lock()
	defer d.tailMu.Unlock()
	return strings.Join(d.tail, "\n")
}

// Alive reports an error if the daemon has exited.
func (d *daemon) Alive() error {
	select {
	case <-d.exited:
		return fmt.Errorf("daemon exited: %v\n%s", d.waitErr, d.Tail())
	default:
		return nil
	}
}

// stop asks the daemon to shut down (SIGTERM) and kills it if it has not
// exited within grace.
func (d *daemon) stop(grace time.Duration) error {
	if d.stopRSS != nil {
		d.stopRSS()
	}
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-d.exited:
		return nil
	case <-t.C:
		d.kill()
		return fmt.Errorf("daemon did not stop within %v after SIGTERM: killed", grace)
	}
}

// kill ends the daemon at once and waits for it.
func (d *daemon) kill() {
	if d.stopRSS != nil {
		d.stopRSS()
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
}

// listenersOf finds the SMTP and HTTP listeners of process pid from
// /proc: its TCP sockets in state LISTEN, told apart by the SMTP greeting.
func listenersOf(pid int) (smtpAddr, httpAddr string, err error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return "", "", err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			_, portHex, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseUint(portHex, 16, 16)
			if err != nil {
				continue
			}
			addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		}
	}
	if len(addrs) != 2 {
		return "", "", fmt.Errorf("%d listeners", len(addrs))
	}
	type probe struct {
		addr string
		smtp bool
	}
	res := make(chan probe, 2)
	for _, a := range addrs {
		go func() {
			res <- probe{a, greets(a)}
		}()
	}
	p1, p2 := <-res, <-res
	switch {
	case p1.smtp && !p2.smtp:
		return p1.addr, p2.addr, nil
	case p2.smtp && !p1.smtp:
		return p2.addr, p1.addr, nil
	}
	return "", "", errors.New("cannot tell the SMTP listener from the HTTP one")
}

// greets reports whether addr answers a connection with an SMTP 220.
func greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "220")
}
