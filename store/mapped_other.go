//go:build !linux

package store

func dropMapping(addr, length uintptr) error { return nil }

func residentFileBytes() (int64, bool) { return 0, false }
