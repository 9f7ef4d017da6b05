//go:build !linux

package store

func dropMapping(addr, length uintptr) error { return nil }

func residentMapped(path string) (int64, bool) { return 0, false }

func residentFile() (int64, bool) { return 0, false }
