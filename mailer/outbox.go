package mailer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxNameLen keeps file names well under the usual 255-byte limit.
const maxNameLen = 128

// Outbox writes each message to a directory as an .eml file instead of
// sending it, for running without a relay. It is safe for concurrent use.
type Outbox struct {
	dir string
}

// NewOutbox returns an Outbox writing to dir, which it creates (mode 0750)
// when missing.
func NewOutbox(dir string) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("mailer: outbox: %w", err)
	}
	return &Outbox{dir: dir}, nil
}

// Send writes msg, byte for byte, to DIR/NAME.eml (mode 0640), where NAME
// comes from the Message-ID header (reduced to [A-Za-z0-9._-]) or, without
// one, from the SHA-256 of msg. The same message sent again overwrites the
// same file. The file appears atomically and is synced before Send returns.
// The envelope (from, to) is not recorded.
func (o *Outbox) Send(ctx context.Context, from string, to []string, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mailer: outbox: %w", err)
	}
	if err := checkEnvelope(from, to); err != nil {
		return err
	}
	name := filepath.Join(o.dir, fileName(msg))
	if err := writeFileAtomic(name, msg); err != nil {
		return fmt.Errorf("mailer: outbox: %w", err)
	}
	return nil
}

// Path returns the file Send writes msg to.
func (o *Outbox) Path(msg []byte) string {
	return filepath.Join(o.dir, fileName(msg))
}

// fileName names the file for msg.
func fileName(msg []byte) string {
	id := messageID(msg)
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := strings.TrimLeft(b.String(), ".") // no hidden files
	if name == "" {
		sum := sha256.Sum256(msg)
		return "sha256-" + hex.EncodeToString(sum[:]) + ".eml"
	}
	if len(name) > maxNameLen {
		sum := sha256.Sum256([]byte(id))
		name = name[:maxNameLen-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return name + ".eml"
}

// writeFileAtomic writes data to a temporary file next to name, syncs it,
// renames it to name and syncs the directory.
func writeFileAtomic(name string, data []byte) (err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, ".tmp-*.eml")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o640)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
