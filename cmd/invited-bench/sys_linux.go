package main

import (
	"io/fs"
	"os/exec"
	"syscall"
)

// setProcAttr puts the daemon in its own process group, so a Ctrl-C in the
// terminal reaches only the bench (which then stops the daemon), and has the
// kernel kill the daemon if the bench dies without cleaning up.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// allocatedBytes is the disk space a file really uses.
func allocatedBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// tmpfsMagic is TMPFS_MAGIC from linux/magic.h.
const tmpfsMagic = 0x01021994

// inMemoryFS reports whether dir is on tmpfs, where fsync costs nothing.
func inMemoryFS(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == tmpfsMagic
}
