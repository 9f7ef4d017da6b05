//go:build !linux

package store

func dropMapping(addr, length uintptr) error { return nil }

const canDropMapping = false

func mappedName(path string) string { return path }

func residentMapped(abs string) (int64, bool) { return 0, false }

type statm struct{}

func openStatm() *statm { return nil }

func (s *statm) close() {}

func (s *statm) residentFile() (int64, bool) { return 0, false }
