package mailer_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/invited/invited/mailer"
)

func newOutbox(t *testing.T) (*mailer.Outbox, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outbox")
	o, err := mailer.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	return o, dir
}

func emlFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOutbox_WritesIdenticalBytes(t *testing.T) {
	o, dir := newOutbox(t)
	msg := testMessage(7)
	if err := o.Send(t.Context(), from, []string{"a@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "msg-7_invited.test.eml")
	if got := o.Path(msg); got != path {
		t.Errorf("Path = %q, want %q", got, path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Errorf("file holds\n%q\nwant\n%q", got, msg)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o640 {
		t.Errorf("file mode = %v, want 0640", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm&^0o750 != 0 {
		t.Errorf("directory mode = %v, want at most 0750", perm)
	}
	if names := emlFiles(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want one file", names)
	}
}

func TestOutbox_SameMessageIDSameFile(t *testing.T) {
	o, dir := newOutbox(t)
	first := []byte("Message-ID: <same@invited.test>\r\nSubject: one\r\n\r\nfirst\r\n")
	second := []byte("Subject: two\r\nMessage-Id:\r\n <same@invited.test>\r\n\r\nsecond\r\n")
	for _, msg := range [][]byte{first, second} {
		if err := o.Send(t.Context(), from, []string{"a@example.net"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	names := emlFiles(t, dir)
	if len(names) != 1 || names[0] != "same_invited.test.eml" {
		t.Fatalf("directory holds %q, want same_invited.test.eml only", names)
	}
	got, err := os.ReadFile(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, second) {
		t.Errorf("file holds %q, want the later message", got)
	}
}

func TestOutbox_NoMessageIDUsesHash(t *testing.T) {
	o, dir := newOutbox(t)
	msg := []byte("Subject: no id\r\n\r\nMessage-ID: <in-the-body@invited.test>\r\n")
	for range 2 {
		if err := o.Send(t.Context(), from, []string{"a@example.net"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	names := emlFiles(t, dir)
	if len(names) != 1 || len(names[0]) != len("sha256-")+64+len(".eml") {
		t.Fatalf("directory holds %q, want one sha256-….eml file", names)
	}
}

func TestOutbox_ConcurrentSends(t *testing.T) {
	o, dir := newOutbox(t)
	const ids, copies = 10, 8
	var wg sync.WaitGroup
	errs := make(chan error, ids*copies)
	for i := range ids * copies {
		wg.Go(func() {
			errs <- o.Send(t.Context(), from, []string{"a@example.net"}, testMessage(i%ids))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	names := emlFiles(t, dir)
	if len(names) != ids {
		t.Fatalf("directory holds %d files, want %d: %q", len(names), ids, names)
	}
	for i := range ids {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("msg-%d_invited.test.eml", i)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, testMessage(i)) {
			t.Errorf("message %d holds %q", i, got)
		}
	}
}

func TestOutbox_CancelledContext(t *testing.T) {
	o, dir := newOutbox(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := o.Send(ctx, from, []string{"a@example.net"}, testMessage(1)); err == nil {
		t.Fatal("Send with a cancelled context succeeded")
	}
	if names := emlFiles(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q", names)
	}
}
