package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssSampler reads the resident set of a process periodically and keeps
// the largest values: in all (VmRSS), of anonymous memory (RssAnon: the Go
// heap and stacks) and of mapped files (RssFile: mostly the bbolt mmap).
// It also notes what the bench was doing (see Label) when the kernel's
// high-water mark (VmHWM) last rose, which catches peaks between samples.
type rssSampler struct {
	pid             int
	mu              sync.Mutex
	rss, anon, file int64
	hwm             int64
	hwmDuring       string
	label           func() string
}

func newRSSSampler(ctx context.Context, pid int, every time.Duration) *rssSampler {
	s := &rssSampler{pid: pid}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// sample reads the process's figures once.
func (s *rssSampler) sample() {
	v, err := procStatus(s.pid, "VmRSS", "RssAnon", "RssFile", "VmHWM")
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rss, s.anon, s.file = max(s.rss, v[0]), max(s.anon, v[1]), max(s.file, v[2])
	if v[3] > s.hwm && s.label != nil {
		s.hwmDuring = s.label()
	}
	s.hwm = v[3] // the kernel's high-water mark only rises
}

// Peak is the process's resident high-water mark (VmHWM) as of now, in
// bytes: never below any VmRSS sampled.
func (s *rssSampler) Peak() int64 {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hwm
}

// Label sets what names the bench's current doing for PeakDuring.
func (s *rssSampler) Label(f func() string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.label = f
}

// Max is the largest VmRSS seen, in bytes.
func (s *rssSampler) Max() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rss
}

// MaxParts are the largest RssAnon and RssFile seen, in bytes.
func (s *rssSampler) MaxParts() (anon, file int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.anon, s.file
}

// PeakDuring is the label at the sample where VmHWM last rose.
func (s *rssSampler) PeakDuring() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hwmDuring
}

// procStatus reads "kB" fields of /proc/PID/status, in bytes.
func procStatus(pid int, fields ...string) ([]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	v := make([]int64, len(fields))
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, value, _ := strings.Cut(line, ":")
		if i := slices.Index(fields, name); i >= 0 {
			if v[i], err = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64); err != nil {
				return nil, err
			}
			v[i] <<= 10
			found++
		}
	}
	if found != len(fields) {
		return nil, fmt.Errorf("not all of %v in /proc/%d/status", fields, pid)
	}
	return v, nil
}

// procCPU is the CPU time (user+system) process pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, which is 100 on every Linux platform Go supports.
const clockTicks = 100

// cpuMeter measures a process's CPU use over an interval.
type cpuMeter struct {
	pid   int
	cpu0  time.Duration
	wall0 time.Time
}

func startCPU(pid int) cpuMeter {
	c, _ := procCPU(pid)
	return cpuMeter{pid: pid, cpu0: c, wall0: time.Now()}
}

// Cores is the average number of cores used since start.
func (m cpuMeter) Cores() float64 {
	c, err := procCPU(m.pid)
	if err != nil {
		return 0
	}
	return (c - m.cpu0).Seconds() / time.Since(m.wall0).Seconds()
}

// Used is the CPU time used since start.
func (m cpuMeter) Used() time.Duration {
	c, err := procCPU(m.pid)
	if err != nil {
		return 0
	}
	return c - m.cpu0
}

// fileSize returns the apparent size and the bytes allocated on disk of
// path (bbolt grows its file sparsely, so the two differ).
func fileSize(path string) (size, allocated int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), allocatedBytes(fi), nil
}
