package daemonproc

import (
	"errors"
	"io/fs"
	"testing"
)

func TestAddrs_RoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadAddrs(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no file yet: %v", err)
	}
	want := Addrs{SMTP: "127.0.0.1:2525", HTTP: "127.0.0.1:8080"}
	if err := WriteAddrs(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadAddrs(dir); err != nil || got != want {
		t.Fatalf("read back %+v, %v", got, err)
	}
}
