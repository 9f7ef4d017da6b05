package store

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// dropMapping tells the kernel the process no longer needs the pages of
// the shared file mapping at addr: they leave its resident set and stay in
// the page cache; touching them again maps them back from there.
func dropMapping(addr, length uintptr) error {
	if addr == 0 || length == 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, length, syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}

// residentFileBytes is how much of the process's resident memory is
// file-backed (RssFile in /proc/self/status).
func residentFileBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
