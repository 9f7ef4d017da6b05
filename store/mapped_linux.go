package store

import (
	"os"
	"path/filepath"
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

// statm reads the process's resident totals from /proc/self/statm, which
// it keeps open: the watcher reads it a hundred times a second, and
// opening the file each time cost several times the read.
type statm struct {
	f   *os.File
	buf [128]byte
}

// openStatm opens /proc/self/statm; nil if it cannot.
func openStatm() *statm {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return nil
	}
	return &statm{f: f}
}

func (s *statm) close() {
	if s != nil {
		s.f.Close()
	}
}

// residentFile is how many bytes of the process's resident memory are
// file-backed (the third field of /proc/self/statm: kept by the kernel as
// a counter, so reading it costs nothing like a walk of the mappings).
func (s *statm) residentFile() (int64, bool) {
	if s == nil {
		return 0, false
	}
	n, err := s.f.ReadAt(s.buf[:], 0)
	if n == 0 && err != nil {
		return 0, false
	}
	f := strings.Fields(string(s.buf[:n]))
	if len(f) < 3 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[2], 10, 64)
	return pages * int64(os.Getpagesize()), err == nil
}

// canDropMapping says the watcher has something to watch and drop here.
const canDropMapping = true

// mappedName is path as /proc/self/smaps names the file: absolute, with
// symbolic links resolved.
func mappedName(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		return p
	}
	return abs
}

// residentMapped is how many bytes of the process's mappings of the file
// abs (see mappedName) are resident (the Rss of its entries in
// /proc/self/smaps).
func residentMapped(abs string) (int64, bool) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, false
	}
	var total int64
	found, inFile := false, false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSuffix(line, "\n")
		if isMappingHeader(line) {
			inFile = strings.HasSuffix(line, " "+abs)
			found = found || inFile
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && inFile {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, false
			}
			total += kb << 10
		}
	}
	return total, found
}

// isMappingHeader reports whether an smaps line starts a mapping
// ("start-end perms offset dev inode path"), not a "Key: value" line.
func isMappingHeader(line string) bool {
	addr, _, ok := strings.Cut(line, " ")
	if !ok {
		return false
	}
	lo, hi, ok := strings.Cut(addr, "-")
	return ok && isHex(lo) && isHex(hi)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
