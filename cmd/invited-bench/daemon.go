package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/invited/invited/internal/daemonproc"
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
	*daemonproc.Process
	api *apiClient

	rss     *rssSampler
	stopRSS context.CancelFunc
}

// startDaemon runs the daemon on 127.0.0.1:0 ports and waits for both
// listeners (which it names in its data directory) and its health check.
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
		"--max-conns", "10000",
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
	p, err := daemonproc.Start(cmd, cfg.Data, 30*time.Second)
	if err != nil {
		return nil, err
	}
	d := &daemon{Process: p, api: newAPIClient(p.HTTP, benchKey)}
	if err := d.api.waitHealthy(ctx); err != nil {
		p.Kill()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	d.rss, d.stopRSS = newRSSSampler(rctx, cmd.Process.Pid, 200*time.Millisecond), cancel
	return d, nil
}

// Pid is the daemon's process id.
func (d *daemon) Pid() int { return d.Cmd.Process.Pid }

// Alive reports an error if the daemon has exited.
func (d *daemon) Alive() error {
	select {
	case <-d.Exited():
		return fmt.Errorf("daemon exited: %v\n%s", d.Err(), d.Tail())
	default:
		return nil
	}
}

// stop asks the daemon to shut down (SIGTERM) and kills it if it has not
// exited within grace; a daemon that had already exited gives its exit
// status.
func (d *daemon) stop(grace time.Duration) error {
	d.stopRSS()
	return d.Stop(grace)
}

// kill ends the daemon at once and waits for it.
func (d *daemon) kill() {
	d.stopRSS()
	d.Kill()
}
